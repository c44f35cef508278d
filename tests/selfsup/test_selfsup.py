"""Self-supervised through-plane SR (issue 14): exact pairs, a gain over cubic, geometry."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch

from medsr.cli import main
from medsr.degrade.resize import imresize
from medsr.degrade.volume import ThickSlice
from medsr.errors import ConfigError
from medsr.image import MedicalImage
from medsr.io import read, write
from medsr.selfsup import (
    AxisPairs,
    PairSampler,
    SelfSupervisedSettings,
    SliceAcquisition,
    ThroughPlaneSR,
    degrade_along,
    fit_linear_base,
    load_learnt_model,
    upscale_self_supervised,
)


def _box_weight(row: int, centre: float, thickness: float) -> float:
    """Overlap of HR row ``row`` (extent row +- 0.5) with the box centred at ``centre``."""
    lo, hi = max(row - 0.5, centre - thickness / 2), min(row + 0.5, centre + thickness / 2)
    return max(hi - lo, 0.0)


def _gauss_weight(row: int, centre: float, fwhm: float) -> float:
    """Integral over HR row ``row`` of a Gaussian of FWHM ``fwhm`` centred at ``centre``."""
    sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
    z = (np.array([row - 0.5, row + 0.5]) - centre) / (sigma * math.sqrt(2))
    return 0.5 * (math.erf(z[1]) - math.erf(z[0]))


@pytest.mark.parametrize(
    ("spacing", "thickness", "profile", "weight"),
    [
        (4.0, 4.0, "box", _box_weight),  # contiguous
        (3.0, 2.0, "box", _box_weight),  # 1 mm gap
        (4.0, 2.5, "gaussian", _gauss_weight),  # Gaussian FWHM with a gap
    ],
)
def test_pairs_reproduce_the_slice_profile_exactly(
    spacing: float, thickness: float, profile: str, weight: object
) -> None:
    """An impulse row in an in-plane slice: each LR value is the profile's integral over
    that HR row, normalised over the slice, along whichever in-plane axis is degraded."""
    acquisition = SliceAcquisition(spacing, thickness, profile)
    height, width, impulse = 24, 5, 9
    slices = torch.zeros(1, 1, height, width)
    slices[0, 0, impulse, :] = 1.0
    lr = degrade_along(slices, AxisPairs(-2, acquisition.degradation(1.0)))
    assert lr.shape == (1, 1, math.ceil(height / spacing), width)
    for j in range(lr.shape[-2]):
        centre = (j + 0.5) * spacing - 0.5
        total = sum(weight(r, centre, thickness) for r in range(height))  # type: ignore[operator]
        expected = weight(impulse, centre, thickness) / total  # type: ignore[operator]
        assert lr[0, 0, j].tolist() == pytest.approx([expected] * width, abs=1e-6)
    # along the other axis: the same profile on the transposed slice
    lr_cols = degrade_along(slices.transpose(-1, -2), AxisPairs(-1, acquisition.degradation(1.0)))
    torch.testing.assert_close(lr_cols, lr)
    # pixel units: 2 mm pixels halve the factor and the thickness
    half = acquisition.degradation(2.0)
    assert (half.through_plane, half.thickness) == (spacing / 2, thickness / 2)


def test_pairs_match_a_thick_slice_acquisition_of_the_volume() -> None:
    """Degrading in-plane slices along H is what the scanner did along z: acquiring an
    isotropic volume with thick slices equals the pairs of its (z, x) planes."""
    torch.manual_seed(0)
    volume = torch.rand(17, 6, 9)  # (z, y, x), isotropic 1 mm
    acquisition = SliceAcquisition(3.0, 2.0, "gaussian")
    acquired = ThickSlice(3.0, thickness=2.0, profile="gaussian", clip=False).apply_volume(volume)
    planes = volume.permute(1, 0, 2).unsqueeze(1)  # (y, 1, z, x): z plays the in-plane rows
    pairs = degrade_along(planes, AxisPairs(-2, acquisition.degradation(1.0)))
    torch.testing.assert_close(pairs[:, 0].permute(1, 0, 2), acquired)


def test_sampler_pairs_are_degraded_patches_of_the_slices() -> None:
    torch.manual_seed(1)
    slices = torch.rand(3, 40, 36)
    acquisition = SliceAcquisition(4.0, 4.0, "box")
    axes = [
        AxisPairs(-2, acquisition.degradation(1.0)),
        AxisPairs(-1, acquisition.degradation(1.0)),
    ]
    sampler = PairSampler(slices, axes, patch=24, generator=torch.Generator().manual_seed(0))
    for _ in range(4):
        lr, hr, pairs = sampler.sample(5)
        torch.testing.assert_close(lr, pairs.degradation.apply(hr, {}))
        assert hr.shape[-2] >= 24
        # every HR patch is a (flipped) window of a slice, rows along the degraded axis
        patch = hr[0, 0]
        planes = slices if pairs.axis == -2 else slices.transpose(-1, -2)
        rows, cols = patch.shape
        found = False
        for plane in planes:
            for flips in ([], [0], [1], [0, 1]):
                candidate = patch.flip(flips) if flips else patch
                windows = plane.unfold(0, rows, 1).unfold(1, cols, 1)
                if (windows == candidate).all(-1).all(-1).any():
                    found = True
        assert found


def _phantom(depth: int = 32, size: int = 40, seed: int = 0) -> np.ndarray:
    """A 1 mm isotropic phantom: Gaussian-smoothed noise (sigma 1.5 mm), values in [0, 400]."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((depth, size, size))
    kz, ky, kx = np.meshgrid(*(np.fft.fftfreq(n) for n in noise.shape), indexing="ij")
    smooth = np.exp(-2 * (np.pi * 1.5) ** 2 * (kz**2 + ky**2 + kx**2))
    volume = np.real(np.fft.ifftn(np.fft.fftn(noise) * smooth))
    return ((volume - volume.min()) / np.ptp(volume) * 400).astype(np.float32)


def _thick(hr: np.ndarray, factor: int) -> MedicalImage:
    lr = ThickSlice(float(factor), clip=False).apply_volume(torch.from_numpy(hr)).numpy()
    hr_image = MedicalImage(hr, (1.0, 1.0, 1.0), modality="MR")
    return hr_image.rescaled(lr, (1.0 / factor, 1.0, 1.0), "thick")


def _psnr(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    return float(10 * np.log10(data_range**2 / np.mean((a - b) ** 2)))


def test_tiny_run_improves_on_cubic() -> None:
    hr = _phantom()
    lr = _thick(hr, 4)
    planes = torch.from_numpy(lr.pixels).permute(1, 0, 2)[:, None]
    cubic = imresize(planes, scale=(4.0, 1.0), kernel="cubic")[:, 0].permute(1, 0, 2).numpy()
    data_range = float(hr.max() - hr.min())
    reference = _psnr(cubic, hr, data_range)
    gains = []
    for iterations in (0, 40):
        settings = SelfSupervisedSettings(
            spacing=1.0, budget_s=600, max_iterations=iterations, num_blocks=1, channels=8,
            batch_size=4, patch=32, start_from=None,
        )  # fmt: skip
        result = upscale_self_supervised(lr, settings)
        assert result.image.shape == (32, 40, 40)
        assert result.report.iterations == iterations
        gains.append(_psnr(result.image.pixels, hr, data_range) - reference)
    assert gains[0] > 0.5, gains  # the least-squares filter alone (measured +0.75 dB)
    assert gains[1] > gains[0], gains  # the trained correction adds to it
    assert result.report.stopped_by == "iteration cap"
    assert result.report.pairs_psnr_model > result.report.pairs_psnr_linear


def test_linear_base_recovers_a_known_filter() -> None:
    """Pairs whose LR is the nearest row reproduce the identity per phase exactly."""
    torch.manual_seed(2)
    model = ThroughPlaneSR(2.0, num_blocks=0, channels=4, taps=(1, 1))
    slices = torch.rand(4, 16, 12)
    acquisition = SliceAcquisition(2.0, 2.0, "box")
    fit_linear_base(model, slices, [AxisPairs(-2, acquisition.degradation(1.0))], ridge=1e-9)
    lr = acquisition.degradation(1.0).apply(slices[:, None], {})
    base = model.base(lr, 16)
    # a 2-row box average cannot be inverted exactly, but least squares beats cubic
    cubic = imresize(lr, scale=(2.0, 1.0), kernel="cubic")
    assert (base - slices[:, None]).pow(2).mean() < (cubic - slices[:, None]).pow(2).mean()


def test_nifti_output_geometry_and_reapplied_model(tmp_path: Path) -> None:
    hr = _phantom(depth=24, size=24)
    lr = _thick(hr, 3)
    rotation = np.array(  # oblique: the grid rotated about x, then shifted
        [[1, 0, 0, 0], [0, 0.8, -0.6, 0], [0, 0.6, 0.8, 0], [0, 0, 0, 1]], dtype=np.float64
    )
    lr.affine = rotation @ lr.affine
    lr.affine[:3, 3] += (12.0, -7.0, 30.0)
    source = write(lr, tmp_path / "thick.nii.gz")
    out = tmp_path / "iso.nii.gz"
    args = ["upscale", str(source), "-o", str(out), "--self-supervised", "--quiet"]
    assert main([*args, "--budget-s", "0"]) == 0
    got = read(out)
    src = read(source)
    assert got.shape == (24, 24, 24)
    expected = src.with_pixels(np.zeros((24, 24, 24), np.float32), "ref").affine
    np.testing.assert_allclose(got.affine, expected, atol=1e-4)
    np.testing.assert_allclose(got.spacing_mm, (1.0, 1.0, 1.0), rtol=1e-5)
    weights = tmp_path / "iso_selfsup.safetensors"
    model, info = load_learnt_model(weights)
    assert model.scale == pytest.approx(3.0)
    acquisition = info["acquisition"]  # NIfTI stores float32 spacings: 3.0000000477
    assert acquisition["profile"] == "box"
    assert acquisition["spacing_mm"] == acquisition["thickness_mm"] == pytest.approx(3.0)
    again = tmp_path / "again.nii.gz"
    assert main([*args[:3], str(again), "--self-supervised", "--model", str(weights)]) == 0
    np.testing.assert_allclose(read(again).pixels, got.pixels, atol=1e-3)
    assert not (tmp_path / "again_selfsup.safetensors").exists()  # nothing new was learnt


def test_dicom_series_geometry_and_header_thickness(tmp_path: Path) -> None:
    hr = _phantom(depth=24, size=24)
    lr = _thick(hr, 4)
    lr.affine[:3, 3] = (-10.0, 5.0, 30.0)
    series = write(lr, tmp_path / "series")
    for path in sorted(series.iterdir()):  # a scanner's header: 3 mm slices, 4 mm apart
        ds = pydicom.dcmread(path)
        ds.SliceThickness = "3"
        ds.SpacingBetweenSlices = "4"
        ds.save_as(path)
    image = read(series)
    result = upscale_self_supervised(image, SelfSupervisedSettings(budget_s=0))
    assert result.acquisition == SliceAcquisition(4.0, 3.0, "box")  # thickness from the header
    assert main(["upscale", str(series), "-o", str(tmp_path / "out"), "--self-supervised",
                 "--budget-s", "0", "--quiet"]) == 0  # fmt: skip
    out = tmp_path / "out" / "series_sr-selfsup"
    files = sorted(out.iterdir())
    assert len(files) == 24
    first, second = (pydicom.dcmread(f) for f in files[:2])
    assert float(first.SliceThickness) == pytest.approx(1.0)
    assert float(first.SpacingBetweenSlices) == pytest.approx(1.0)
    step = np.subtract(second.ImagePositionPatient, first.ImagePositionPatient)
    np.testing.assert_allclose(step, (0.0, 0.0, 1.0), atol=1e-4)
    # the first 1 mm slice centre sits 1.5 mm below the first 4 mm slice centre
    np.testing.assert_allclose(first.ImagePositionPatient, (-10.0, 5.0, 28.5), atol=1e-4)
    assert (tmp_path / "out" / "series_sr-selfsup_selfsup.safetensors").is_file()


def test_bad_requests_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flat = write(MedicalImage(np.zeros((16, 16), np.float32), (1.0, 1.0)), tmp_path / "a.nii.gz")
    assert main(["upscale", str(flat), "-o", str(tmp_path / "o.nii.gz"), "--self-supervised"]) == 2
    thin = write(MedicalImage(np.zeros((4, 8, 8), np.float32), (1.0, 1.0, 1.0)), tmp_path / "t.nii")
    assert main(["upscale", str(thin), "-o", str(tmp_path / "o2.nii"), "--self-supervised"]) == 2
    assert "nothing to upscale" in capsys.readouterr().err
    assert main(["upscale", str(thin), "-o", str(tmp_path / "o3.nii"), "--self-supervised",
                 "--scale", "2"]) == 2  # fmt: skip
    with pytest.raises(ConfigError, match="slice profile"):
        SelfSupervisedSettings(slice_profile="triangle").check()
    with pytest.raises(ConfigError, match="positive"):
        SliceAcquisition(4.0, 0.0)


def test_eval_thick_slice_scores_volumes_in_3d(tmp_path: Path) -> None:
    import json

    volume = MedicalImage(_phantom(depth=24, size=24), (1.0, 1.0, 1.0), modality="MR")
    data = write(volume, tmp_path / "phantom.nii.gz")
    report = tmp_path / "r.json"
    args = ["eval", "--degradation", "thick-slice", "--data", str(data), "--scale", "3"]
    assert main([*args, "--model", "bicubic", "--budget-s", "0", "--json", str(report)]) == 0
    results = json.loads(report.read_text())
    methods = results["methods"]
    assert list(methods) == ["cubic", "bicubic", "self-supervised"]
    # --plane through with bicubic is cubic interpolation along z: the same figures
    assert methods["bicubic"]["gain_over_cubic"]["psnr"] == pytest.approx(0.0, abs=0.01)
    assert methods["self-supervised"]["gain_over_cubic"]["psnr"] > 0.3
    assert methods["cubic"]["volumes"][0]["data_range"] == pytest.approx(
        volume.normalization().data_range
    )
    assert results["shave_slices"] == 3
    gap = ["--slice-profile", "gaussian", "--slice-thickness", "2", "--budget-s", "0"]
    assert main([*args, *gap, "--json", str(report)]) == 0
    results = json.loads(report.read_text())
    assert (results["profile"], results["thickness_mm"]) == ("gaussian", 2.0)
    assert results["methods"]["self-supervised"]["gain_over_cubic"]["psnr"] > 0.3
