"""The file pipeline on bundled samples: formats kept, geometry updated, inputs never overwritten."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch

import medsr
from medsr.cli import main
from medsr.degrade.resize import imresize
from medsr.errors import ConfigError, InputError
from medsr.image import MedicalImage
from medsr.infer.consistency import downscale, project_consistent
from medsr.infer.pipeline import UpscaleSettings, upscale_image
from medsr.io import read, write
from medsr.models import build
from medsr.samples import get_sample


@pytest.fixture(scope="module")
def ct_crop_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64x64 crop of the bundled head CT written as a DICOM file (geometry kept)."""
    ct = get_sample("ct-head-693").load()
    top, left = 416, 256  # skull edge: bone, soft tissue and air
    affine = ct.affine.copy()
    affine[:3, 3] = ct.affine[:3, :3] @ np.array([left, top, 0.0]) + ct.affine[:3, 3]
    crop = MedicalImage(
        ct.pixels[top : top + 64, left : left + 64],
        affine=affine,
        modality=ct.modality,
        source=ct.source,
    )
    return write(crop, tmp_path_factory.mktemp("ct") / "ct.dcm")


@pytest.fixture(scope="module")
def mr_volume() -> MedicalImage:
    """The bundled 10 x 64 x 64 MR with a known anisotropic geometry (the file has none)."""
    pixels = get_sample("mr-enhanced-small").load().pixels
    affine = np.diag([0.7, 0.8, 3.0, 1.0])
    affine[:3, 3] = (10.0, -20.0, 30.0)
    return MedicalImage(pixels, affine=affine, modality="MR")


def test_dicom_in_dicom_out_with_matching_geometry(ct_crop_file: Path, tmp_path: Path) -> None:
    src = pydicom.dcmread(ct_crop_file)
    assert (
        main(
            [
                "upscale",
                str(ct_crop_file),
                "-o",
                str(tmp_path),
                "--model",
                "bicubic",
                "--scale",
                "2",
                "--quiet",
            ]
        )
        == 0
    )
    out = tmp_path / "ct_sr-x2.dcm"
    ds = pydicom.dcmread(out)
    assert (ds.Rows, ds.Columns) == (2 * src.Rows, 2 * src.Columns) == (128, 128)
    np.testing.assert_allclose(
        [float(v) for v in ds.PixelSpacing], [float(v) / 2 for v in src.PixelSpacing], rtol=1e-6
    )
    assert ds.SOPInstanceUID != src.SOPInstanceUID
    assert ds.SeriesInstanceUID != src.SeriesInstanceUID
    assert ds.StudyInstanceUID == src.StudyInstanceUID
    assert "DERIVED" in ds.ImageType
    # first output pixel centre sits a quarter input pixel before the input's first centre
    shift = np.array(src.ImageOrientationPatient[:3], float) * float(src.PixelSpacing[1]) * -0.25
    shift += np.array(src.ImageOrientationPatient[3:], float) * float(src.PixelSpacing[0]) * -0.25
    np.testing.assert_allclose(
        np.array(ds.ImagePositionPatient, float),
        np.array(src.ImagePositionPatient, float) + shift,
        atol=1e-3,
    )
    # intensities stay in HU: the bicubic reference on the HU pixels, up to integer storage
    hu_in = read(ct_crop_file).pixels
    ref = imresize(torch.from_numpy(hu_in)[None, None], scale=2.0, antialias=False)[0, 0].numpy()
    hu_out = read(out).pixels
    assert np.abs(hu_out - ref).max() <= 0.51


def test_dicom_series_stays_a_series_with_positions(
    mr_volume: MedicalImage, tmp_path: Path
) -> None:
    series = write(mr_volume, tmp_path / "series")
    assert len(list(series.iterdir())) == 10
    out_root = tmp_path / "out"
    assert (
        main(
            [
                "upscale",
                str(series),
                "-o",
                str(out_root),
                "--model",
                "bicubic",
                "--scale",
                "2",
                "--quiet",
            ]
        )
        == 0
    )
    out = out_root / "series_sr-x2"
    files = sorted(out.iterdir())
    assert len(files) == 10
    first = pydicom.dcmread(files[0])
    assert (first.Rows, first.Columns) == (128, 128)
    src = read(series)
    got = read(out)
    assert got.shape == (10, 128, 128)
    expected = src.with_pixels(np.zeros((10, 128, 128), np.float32), "ref")
    np.testing.assert_allclose(got.affine, expected.affine, atol=1e-3)
    np.testing.assert_allclose(
        got.spacing_mm, (src.spacing_mm[0], *(s / 2 for s in src.spacing_mm[1:])), rtol=1e-5
    )


def test_through_plane_series_reaches_thinner_slices(
    mr_volume: MedicalImage, tmp_path: Path
) -> None:
    series = write(mr_volume, tmp_path / "series")
    assert (
        main(
            [
                "upscale",
                str(series),
                "-o",
                str(tmp_path / "o"),
                "--model",
                "bicubic",
                "--plane",
                "through",
                "--scale",
                "2",
                "--quiet",
            ]
        )
        == 0
    )
    got = read(tmp_path / "o" / "series_sr-x2-z")
    src = read(series)
    assert got.shape == (20, 64, 64)
    np.testing.assert_allclose(
        got.spacing_mm, (src.spacing_mm[0] / 2, *src.spacing_mm[1:]), rtol=1e-5
    )
    z = [
        float(pydicom.dcmread(f).ImagePositionPatient[2])
        for f in sorted((tmp_path / "o" / "series_sr-x2-z").iterdir())
    ]
    np.testing.assert_allclose(np.diff(z), src.spacing_mm[0] / 2, rtol=1e-4)


def test_nifti_affine_is_scaled(mr_volume: MedicalImage, tmp_path: Path) -> None:
    nii = write(mr_volume, tmp_path / "vol.nii.gz")
    before = nib.load(nii).affine
    result = medsr.upscale(nii, "bicubic", scale=(2.0, 4.0))
    out = write(result, tmp_path / "vol_sr.nii.gz")
    img = nib.load(out)
    assert img.shape == (256, 128, 10)  # nibabel (i, j, k) = (W, H, D)
    after = img.affine
    np.testing.assert_allclose(after[:3, 0], before[:3, 0] / 4, atol=1e-6)
    np.testing.assert_allclose(after[:3, 1], before[:3, 1] / 2, atol=1e-6)
    np.testing.assert_allclose(after[:3, 2], before[:3, 2], atol=1e-6)
    centre = before @ np.array([0.5 / 4 - 0.5, 0.5 / 2 - 0.5, 0, 1])
    np.testing.assert_allclose(after[:3, 3], centre[:3], atol=1e-5)


def test_inputs_are_never_overwritten(
    ct_crop_file: Path, mr_volume: MedicalImage, tmp_path: Path
) -> None:
    before = ct_crop_file.read_bytes()
    code = main(
        ["upscale", str(ct_crop_file), "-o", str(ct_crop_file), "--model", "bicubic", "--quiet"]
    )
    assert code == 2
    assert ct_crop_file.read_bytes() == before
    series = write(mr_volume, tmp_path / "series")
    with pytest.raises(InputError, match="inside the input folder"):
        from medsr.infer.pipeline import collect_inputs, output_paths

        output_paths(collect_inputs([series]), series / "sub", "_sr")


def test_any_scale_from_target_spacing(ct_crop_file: Path) -> None:
    image = read(ct_crop_file)
    dy, _ = image.spacing_mm
    sr = medsr.upscale(image, "bicubic", spacing=0.3)
    # 64 x 0.478516 / 0.3 = 102.08: the nearest count, within 0.1% of the spacing asked
    assert round(64 * dy / 0.3, 2) == 102.08 and sr.shape == (102, 102)
    np.testing.assert_allclose(sr.spacing_mm, (0.3, 0.3), rtol=1e-3)


def test_fixed_scale_model_runs_higher_and_resamples_down(ct_crop_file: Path) -> None:
    model = build("srresnet", num_blocks=1, channels=8)
    result = upscale_image(read(ct_crop_file), model, UpscaleSettings(scale=2.5))
    assert result.image.shape == (160, 160)
    assert any("runs at x4" in n and "resampled" in n for n in result.notes)
    assert model.training  # the caller's mode is restored


def test_consistency_residual_and_data_consistency(ct_crop_file: Path, tmp_path: Path) -> None:
    assert (
        main(
            [
                "upscale",
                str(ct_crop_file),
                "-o",
                str(tmp_path),
                "--model",
                "bicubic",
                "--scale",
                "2",
                "--consistency",
                "--quiet",
            ]
        )
        == 0
    )
    residual = read(tmp_path / "ct_sr-x2_residual.dcm")
    assert residual.shape == (64, 64)
    assert (tmp_path / "ct_sr-x2_residual.png").is_file()
    image = read(ct_crop_file)
    plain = upscale_image(image, build("bicubic"), UpscaleSettings(scale=2.0, consistency=True))
    assert plain.residual_summary is not None and plain.residual_summary.rms_percent > 0.01
    assert (
        plain.residual is not None and np.abs(plain.residual.pixels - residual.pixels).max() < 1.0
    )
    fixed = upscale_image(
        image, build("bicubic"), UpscaleSettings(scale=2.0, consistency=True, data_consistency=True)
    )
    assert fixed.projected_residual_percent is not None and fixed.projected_residual_percent < 1e-3
    assert fixed.residual_summary is not None and fixed.residual_summary.rms_percent < 1e-3


def test_projection_solves_the_resize_constraint() -> None:
    g = torch.Generator().manual_seed(5)
    sr, lr = torch.rand(2, 1, 41, 30, generator=g), torch.rand(2, 1, 17, 12, generator=g)
    np.testing.assert_allclose(downscale(sr, (17, 12)), imresize(sr, size=(17, 12)), atol=1e-6)
    projected = project_consistent(sr, lr)
    assert (imresize(projected, size=(17, 12)) - lr).abs().max() < 1e-5
    # a consistent input is left alone (it is a projection)
    again = project_consistent(projected, lr)
    assert (again - projected).abs().max() < 1e-5


def test_user_mistakes_are_config_errors(mr_volume: MedicalImage) -> None:
    with pytest.raises(ConfigError, match="shrink"):
        medsr.upscale(mr_volume, "bicubic", scale=0.5)
    with pytest.raises(ConfigError, match="either a scale or a target spacing"):
        medsr.upscale(mr_volume, "bicubic", scale=2, spacing=0.5)
    with pytest.raises(ConfigError, match="through needs a volume"):
        medsr.upscale(mr_volume.slice(0), "bicubic", plane="through", scale=2)
    with pytest.raises(ConfigError, match="cannot reach"):
        medsr.upscale(mr_volume, build("srresnet", num_blocks=1, channels=8), scale=8)


def test_device_and_precision_mistakes_are_config_errors(mr_volume: MedicalImage) -> None:
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        medsr.upscale(mr_volume, "bicubic", scale=2, device="cpu", precision="fp16")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            medsr.upscale(mr_volume, "bicubic", scale=2, device="cuda")


def test_folder_of_rasters_keeps_bit_depth_and_layout(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    (tmp_path / "in" / "sub").mkdir(parents=True)
    Image.fromarray((rng.random((20, 30)) * 255).astype(np.uint8)).save(tmp_path / "in" / "a.png")
    b16 = (rng.random((20, 30)) * 60000).astype(np.uint16)
    Image.fromarray(b16).save(tmp_path / "in" / "sub" / "b.png")
    assert main(["upscale", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model",
                 "bicubic", "--scale", "2", "--quiet"]) == 0  # fmt: skip
    a = read(tmp_path / "out" / "a_sr-x2.png")
    b = read(tmp_path / "out" / "sub" / "b_sr-x2.png")
    assert a.shape == b.shape == (40, 60)
    assert a.source.bits_stored == 8 and a.pixels.min() >= 0 and a.pixels.max() <= 255
    assert b.source.bits_stored == 16
    ref = imresize(torch.from_numpy(b16.astype(np.float32))[None, None], scale=2.0, antialias=False)
    expected = np.clip(np.rint(ref[0, 0].numpy()), 0, 65535)
    assert np.abs(b.pixels - expected).max() <= 1.0
