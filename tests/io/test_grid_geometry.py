"""Geometry written for each grid convention puts anatomy where it was, through DICOM and
NIfTI files: ``medsr degrade`` then ``medsr upscale`` (``run_files``), read back with
medsr.io. The phantom is a vertical bright bar centred at a known x in mm."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medsr.cli import main
from medsr.image import MedicalImage, Modality
from medsr.infer.pipeline import UpscaleSettings, run_files
from medsr.io import read, write
from medsr.models import build

H, W = 48, 64
SPACING = (0.9, 0.7)  # (dy, dx) mm
ORIGIN = (-21.3, 12.0, 4.0)  # first pixel centre, LPS mm
CENTRE = 29.37  # bar centre, HR column index
BAR_X_MM = ORIGIN[0] + CENTRE * SPACING[1]  # -0.741 mm
#: a small fraction of an HR pixel; the wrong grid misplaces the bar by (s - 1) / 2 pixels
TOLERANCE_MM = 0.02 * SPACING[1]


def bar_phantom(modality: Modality) -> MedicalImage:
    """``200 + 1000 cos^16(pi (x - X) / W)``: a bar about 12 pixels wide, periodic over the
    field of view and band-limited to 8 cycles, so x2 k-space truncation keeps it exactly."""
    bar = np.cos(np.pi * (np.arange(W) - CENTRE) / W) ** 16
    pixels = np.repeat((200.0 + 1000.0 * bar)[None, :], H, axis=0).astype(np.float32)
    affine = np.diag([SPACING[1], SPACING[0], 1.0, 1.0])
    affine[:3, 3] = ORIGIN
    return MedicalImage(pixels, affine=affine, modality=modality)


def bar_x_mm(image: MedicalImage) -> float:
    """The bar's x in mm from the file's geometry: the phase of the first harmonic of the
    column profile over the field of view (the centroid on a circle; a constant
    background does not move it)."""
    profile = image.pixels.mean(axis=0).astype(np.float64)
    n = profile.size
    columns = np.stack([np.arange(n), np.zeros(n), np.zeros(n), np.ones(n)])  # (col, row, 0, 1)
    x = (image.affine @ columns)[0]
    fov = n * image.spacing_mm[-1]
    phase = np.angle(np.sum(profile * np.exp(2j * np.pi * (x - x[0]) / fov)))
    return float(x[0] + phase * fov / (2 * np.pi))


def degrade(source: Path, degradation: str, out: Path) -> MedicalImage:
    args = ["degrade", str(source), "-o", str(out), "--degradation", degradation, "--scale", "2"]
    assert main(args) == 0
    (written,) = (p for p in out.iterdir() if not p.name.endswith("_gallery.png"))
    return read(written)


@pytest.mark.parametrize("suffix", [".dcm", ".nii.gz"])
@pytest.mark.parametrize(
    ("degradation", "modality", "first_centre_shift", "lr_shape"),
    [
        ("mr-kspace", Modality.MR, (0.0, 0.0), (24, 32)),  # dft: first centre kept
        ("bicubic", Modality.MR, (0.5, 0.5), (24, 32)),  # area: edges kept
        ("ultrasound-lateral", Modality.US, (0.0, 0.0), (48, 32)),  # sample: column 0 kept
    ],
)
def test_degraded_file_keeps_the_bar_where_it_was(
    tmp_path: Path, suffix, degradation, modality, first_centre_shift, lr_shape
) -> None:
    source = write(bar_phantom(modality), tmp_path / "in" / f"bar{suffix}")
    hr = read(source)
    lr = degrade(source, degradation, tmp_path / "out")
    assert lr.shape == lr_shape
    np.testing.assert_allclose(
        lr.spacing_mm,
        [d * H_or_W / n for d, H_or_W, n in zip(SPACING, (H, W), lr_shape)],
        rtol=1e-6,
    )
    shift_x, shift_y = first_centre_shift[1] * SPACING[1], first_centre_shift[0] * SPACING[0]
    expected_origin = (ORIGIN[0] + shift_x, ORIGIN[1] + shift_y, ORIGIN[2])
    np.testing.assert_allclose(lr.origin_mm, expected_origin, atol=1e-4)
    assert bar_x_mm(hr) == pytest.approx(BAR_X_MM, abs=TOLERANCE_MM)
    assert bar_x_mm(lr) == pytest.approx(BAR_X_MM, abs=TOLERANCE_MM)


@pytest.mark.parametrize("suffix", [".dcm", ".nii.gz"])
@pytest.mark.parametrize(
    ("degradation", "model_name"), [("mr-kspace", "srresnet-zero-fill"), ("bicubic", "bicubic")]
)
def test_upscaled_file_is_back_on_the_original_grid(
    tmp_path: Path, suffix, degradation, model_name
) -> None:
    source = write(bar_phantom(Modality.MR), tmp_path / "in" / f"bar{suffix}")
    hr = read(source)
    lr = degrade(source, degradation, tmp_path / "lr")
    if model_name == "bicubic":
        model = build("bicubic")
    else:  # zero-initialised tail: exactly ZIP, the scanner's own x2
        model = build("srresnet", scale=2, num_blocks=1, channels=8, residual="zero-fill")
    assert model.grid == ("dft" if degradation == "mr-kspace" else "area")
    lr_path = Path(lr.source.path or "")
    settings = UpscaleSettings(scale=2)
    (written,) = run_files(
        [lr_path],
        tmp_path / "sr",
        model,
        settings,
        device="cpu",
        progress=False,
        log=lambda _: None,
    )
    sr = read(written)
    assert sr.shape == hr.shape
    np.testing.assert_allclose(sr.affine, hr.affine, atol=1e-4)
    assert bar_x_mm(sr) == pytest.approx(BAR_X_MM, abs=TOLERANCE_MM)
    if degradation == "mr-kspace":  # ZIP of the truncated band-limited bar is the bar
        np.testing.assert_allclose(sr.pixels, hr.pixels, atol=2.0)


def test_zero_fill_model_resampled_to_another_scale_stays_on_the_dft_grid(tmp_path: Path) -> None:
    """A x2 zero-fill model asked for x1.5 runs at x2 and is truncated in k-space to x1.5,
    so the output is on the DFT grid of its input (first centre kept, spacing / 1.5)."""
    source = write(bar_phantom(Modality.MR), tmp_path / "in" / "bar.nii.gz")
    lr = degrade(source, "mr-kspace", tmp_path / "lr")
    model = build("srresnet", scale=2, num_blocks=1, channels=8, residual="zero-fill")
    notes: list[str] = []
    lr_path = Path(lr.source.path or "")
    (written,) = run_files(
        [lr_path],
        tmp_path / "sr",
        model,
        UpscaleSettings(scale=1.5),
        device="cpu",
        progress=False,
        log=notes.append,
    )
    sr = read(written)
    assert sr.shape == (36, 48)
    np.testing.assert_allclose(sr.origin_mm, ORIGIN, atol=1e-4)
    np.testing.assert_allclose(sr.spacing_mm, (SPACING[0] * 4 / 3, SPACING[1] * 4 / 3), rtol=1e-6)
    assert bar_x_mm(sr) == pytest.approx(BAR_X_MM, abs=TOLERANCE_MM)
    assert any("k-space truncation" in n for n in notes)
    assert not any("cubic imresize" in n for n in notes)
