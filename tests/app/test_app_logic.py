"""The web app's logic without a browser: uploads, limits, modes, metrics, display, download."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from PIL import Image

from medsr.app import logic
from medsr.degrade.resize import imresize
from medsr.errors import InputError
from medsr.image import MedicalImage, Modality, SourceInfo
from medsr.io import read, write
from medsr.metrics import psnr_np, ssim_np
from medsr.models.interpolation import Interpolation
from medsr.samples import get_sample


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder that ``tempfile`` uses, so a test can see what the app leaves behind."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def smooth_ct(h: int = 48, w: int = 40, depth: int | None = None) -> MedicalImage:
    """A smooth synthetic CT (HU) with 0.8 mm pixels."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    plane = 400.0 * np.sin(x / 6.0) * np.cos(y / 7.0) - 200.0
    pixels = plane if depth is None else np.stack([plane + 10.0 * k for k in range(depth)])
    spacing = (0.8, 0.8) if depth is None else (2.0, 0.8, 0.8)
    return MedicalImage(pixels, spacing, modality=Modality.CT)


# ------------------------------------------------------------------------------ uploads
def test_read_upload_dicom_matches_file_and_leaves_no_temp(private_tmp: Path) -> None:
    sample = get_sample("ct-head-693")
    image = logic.read_upload("head.dcm", sample.path.read_bytes())
    np.testing.assert_array_equal(image.pixels, sample.load().pixels)
    assert image.modality is Modality.CT
    assert image.spacing_mm == pytest.approx((0.478515625, 0.478515625))
    assert image.source.path == "head.dcm"
    assert list(private_tmp.iterdir()) == []


def test_malformed_upload_is_one_line_input_error(private_tmp: Path) -> None:
    with pytest.raises(InputError) as err:
        logic.read_upload("broken.dcm", b"this is not a DICOM file" * 10)
    message = str(err.value)
    assert message.startswith("broken.dcm: ")
    assert "\n" not in message
    assert str(private_tmp) not in message
    assert list(private_tmp.iterdir()) == []


def test_unreadable_png_is_input_error(private_tmp: Path) -> None:
    with pytest.raises(InputError, match=r"^scan\.png: "):
        logic.read_upload("scan.png", b"\x89PNG\r\n\x1a\n garbage")
    assert list(private_tmp.iterdir()) == []


def test_size_limits_have_clear_messages() -> None:
    with pytest.raises(
        InputError, match=r"big\.dcm: the file is 3\.0 MB; the app accepts up to 2 MB"
    ):
        logic.check_upload_size("big.dcm", 3 * 2**20, 2 * 2**20)
    with pytest.raises(InputError, match="empty"):
        logic.check_upload_size("nothing.png", 0)
    with pytest.raises(InputError, match="accepts up to"):
        logic.read_upload("x.dcm", b"0" * 100, max_bytes=50)


def test_png_upload_keeps_16_bit_values() -> None:
    arr = (np.arange(32 * 24, dtype=np.uint16).reshape(32, 24) * 50).astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, format="PNG")
    image = logic.read_upload("xray.png", buffer.getvalue())
    np.testing.assert_array_equal(image.pixels, arr.astype(np.float32))
    assert image.source.format == "png"


def test_nifti_upload_keeps_affine(tmp_path: Path) -> None:
    data = np.random.default_rng(0).normal(size=(12, 10, 4)).astype(np.float32)
    affine = np.diag([0.9, 1.1, 3.0, 1.0])
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "vol.nii.gz")
    image = logic.read_upload("vol.nii.gz", (tmp_path / "vol.nii.gz").read_bytes())
    expected = read(tmp_path / "vol.nii.gz")
    np.testing.assert_array_equal(image.pixels, expected.pixels)
    np.testing.assert_allclose(image.affine, expected.affine)
    assert sorted(image.spacing_mm) == pytest.approx([0.9, 1.1, 3.0])


def _zip_folder(folder: Path, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for file in sorted(folder.iterdir()):
            archive.write(file, f"series/{file.name}")
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_zipped_series_is_read_as_a_volume(tmp_path: Path, private_tmp: Path) -> None:
    slice_image = get_sample("ct-head-693").load()
    base = MedicalImage(
        np.stack([slice_image.pixels[::8, ::8] + 10.0 * k for k in range(3)]),
        (2.5, 0.9, 0.9),
        modality=Modality.CT,
    )
    folder = write(base, tmp_path / "series")
    # a member that tries to escape the extraction folder is flattened, not followed
    data = _zip_folder(folder, {"../escape.txt": b"x", "__MACOSX/._junk": b"y"})
    image = logic.read_upload("study.zip", data)
    assert image.shape == (3, 64, 64)
    np.testing.assert_allclose(image.pixels, base.pixels, atol=1.0)
    assert image.spacing_mm == pytest.approx((2.5, 0.9, 0.9), rel=1e-4)
    assert image.source.format == "dicom-series"
    assert not (private_tmp.parent / "escape.txt").exists()
    assert list(private_tmp.iterdir()) == []


def test_bad_zip_and_empty_zip() -> None:
    with pytest.raises(InputError, match=r"^a\.zip: not a valid zip archive$"):
        logic.read_upload("a.zip", b"PK\x03\x04 truncated")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("folder/", b"")
    with pytest.raises(InputError, match="holds no files"):
        logic.read_upload("b.zip", buffer.getvalue())


# ------------------------------------------------------------------------------ limits
def test_crop_moves_the_origin() -> None:
    affine = np.array(
        [[0.0, 0.7, 0.0, -10.0], [0.5, 0.0, 0.0, 20.0], [0.0, 0.0, 2.0, 5.0], [0, 0, 0, 1]]
    )
    image = MedicalImage(np.arange(6 * 10 * 12, dtype=np.float32).reshape(6, 10, 12), affine=affine)
    part = logic.crop(image, (2, 7), (3, 11), (1, 4))
    np.testing.assert_array_equal(part.pixels, image.pixels[1:4, 2:7, 3:11])
    np.testing.assert_allclose(part.origin_mm, (affine @ np.array([3, 2, 1, 1.0]))[:3])
    np.testing.assert_allclose(part.affine[:3, :3], affine[:3, :3])


def test_limit_size_centre_crops_and_explains() -> None:
    image = MedicalImage(np.zeros((600, 520), np.float32), (0.5, 0.5))
    limited, notes = logic.limit_size(image, 512)
    assert limited.shape == (512, 512)
    assert limited.origin_mm[:2] == pytest.approx((4 * 0.5, 44 * 0.5))
    assert len(notes) == 1 and "600×520" in notes[0] and "512×512" in notes[0]
    same, none = logic.limit_size(MedicalImage(np.zeros((64, 64), np.float32)), 512)
    assert none == [] and same.shape == (64, 64)
    source = SourceInfo(format="dicom-series", datasets=[pydicom.Dataset() for _ in range(20)])
    for k, ds in enumerate(source.datasets):
        ds.InstanceNumber = k
    volume = MedicalImage(np.zeros((20, 8, 8), np.float32), (2.0, 1.0, 1.0), source=source)
    cut, notes = logic.limit_size(volume, 512, max_slices=16)
    assert cut.shape == (16, 8, 8)
    assert [ds.InstanceNumber for ds in cut.source.datasets] == list(range(2, 18))
    assert "slices 2–17" in notes[0]


def test_processing_slices_keep_the_output_budget() -> None:
    assert logic.processing_slices((256, 256), (2.0, 2.0), logic.Mode.ENHANCE) == 16
    # 480x512 at x4 is 1920x2048 = 3.9 M voxels a slice: 4 slices fit 2**24
    assert logic.processing_slices((480, 512), (4.0, 4.0), logic.Mode.ENHANCE) == 4
    assert logic.processing_slices((480, 512), (4.0, 4.0), logic.Mode.SIMULATE) == 16
    assert logic.processing_slices((5000, 5000), (1.0, 1.0), logic.Mode.ENHANCE) == 1


def test_processing_side() -> None:
    assert logic.processing_side((2.0, 2.0), logic.Mode.ENHANCE, True) == 512
    assert logic.processing_side((8.0, 8.0), logic.Mode.ENHANCE, True) == 256
    assert logic.processing_side((8.0, 8.0), logic.Mode.SIMULATE, True) == 512
    assert logic.processing_side((2.0, 2.0), logic.Mode.ENHANCE, False) == 256


# ------------------------------------------------------------------------------ modes
def test_enhance_with_bicubic_is_imresize_and_rescales_geometry() -> None:
    image = smooth_ct()
    result = logic.run(image, logic.load_model("bicubic"), (2.0, 2.0), logic.Mode.ENHANCE)
    assert result.sr.shape == (96, 80)
    assert result.sr.spacing_mm == pytest.approx((0.4, 0.4))
    norm = image.normalization()
    unit = torch.from_numpy(norm.to_unit(image.pixels))[None, None]
    expected = norm.from_unit(imresize(unit, scale=2.0, antialias=False)[0, 0].numpy())
    expected = np.clip(expected, image.pixels.min(), image.pixels.max())
    np.testing.assert_allclose(result.sr.pixels, expected, atol=1e-2)
    assert result.metrics is None and result.notes == []


def test_enhance_volume_slice_by_slice() -> None:
    volume = smooth_ct(20, 16, depth=3)
    result = logic.run(volume, logic.load_model("bilinear"), (1.5, 1.5), logic.Mode.ENHANCE)
    assert result.sr.shape == (3, 30, 24)
    assert result.sr.spacing_mm == pytest.approx((2.0, 0.8 / 1.5, 0.8 / 1.5))
    single = logic.run(
        volume.slice(1), logic.load_model("bilinear"), (1.5, 1.5), logic.Mode.ENHANCE
    )
    np.testing.assert_allclose(result.sr.pixels[1], single.sr.pixels, atol=0.05)
    assert result.fidelity.shape == (3, 20, 16)


class OffsetBicubic(Interpolation):
    """Bicubic upsampling plus 0.01 of the data range: a model that is off by a known amount."""

    def upscale(self, lr: torch.Tensor, scale: tuple[float, float]) -> torch.Tensor:
        return super().upscale(lr, scale) + 0.01


def test_fidelity_map_measures_the_offset_in_physical_units() -> None:
    flat = MedicalImage(np.full((10, 12), 100.0, np.float32), (1.0, 1.0), modality=Modality.CT)
    exact = logic.super_resolve(flat, logic.load_model("bicubic"), (2.0, 2.0))
    np.testing.assert_allclose(exact.fidelity, 0.0, atol=1e-2)
    off = logic.super_resolve(flat, OffsetBicubic("bicubic"), (2.0, 2.0))
    assert off.fidelity.shape == (10, 12)
    # D keeps constants, so |D(SR) - LR| is the offset: 0.01 * 4095 HU
    np.testing.assert_allclose(off.fidelity, 40.95, atol=0.05)
    # the displayed image is clipped to the input's range, the map is not
    np.testing.assert_allclose(off.image.pixels, 100.0)


def test_simulate_metrics_match_an_independent_computation() -> None:
    hr = smooth_ct(64, 64)
    result = logic.run(hr, logic.load_model("nearest"), (2.0, 2.0), logic.Mode.SIMULATE)
    assert result.lr.shape == (32, 32) and result.sr.shape == (64, 64)
    assert result.reference is not None and result.hr is not None
    assert result.reference_name == "bicubic"
    m = result.metrics
    assert m is not None
    assert m.data_range == 4095.0 and m.shave == 2
    assert "4095 HU" in m.range_description
    assert m.psnr_sr == pytest.approx(psnr_np(result.sr.pixels, hr.pixels, 4095.0, 2), abs=1e-6)
    assert m.ssim_reference == pytest.approx(
        ssim_np(result.reference.pixels, hr.pixels, 4095.0, 2), abs=1e-6
    )
    # a smooth image: bicubic beats nearest neighbour
    assert m.psnr_reference > m.psnr_sr + 3.0
    assert 0.0 < m.ssim_sr < m.ssim_reference <= 1.0


def test_simulate_with_bicubic_reuses_it_as_the_baseline() -> None:
    result = logic.run(
        smooth_ct(40, 40), logic.load_model("bicubic"), (2.0, 2.0), logic.Mode.SIMULATE
    )
    assert result.metrics is not None and result.model_is_reference
    assert result.metrics.psnr_sr == result.metrics.psnr_reference
    assert 30.0 < result.metrics.psnr_sr < 80.0


# ------------------------------------------------------------------------------ display
def test_to_uint8_window() -> None:
    values = np.array([-10.0, 0.0, 50.0, 100.0, 200.0], np.float32)
    np.testing.assert_array_equal(logic.to_uint8(values, (0.0, 100.0)), [0, 0, 128, 255, 255])


def test_display_windows() -> None:
    ct = smooth_ct()
    assert logic.window_presets(ct)[0] == logic.DEFAULT_CT_WINDOW
    assert logic.display_window(ct, "brain") == (0.0, 80.0)
    assert logic.describe_window((0.0, 80.0), ct) == "level 40 HU, width 80 HU"
    ramp = MedicalImage(np.linspace(0, 1000, 1001, dtype=np.float32).reshape(7, 143))
    assert logic.window_presets(ramp) == [logic.AUTO_WINDOW]
    lo, hi = logic.display_window(ramp)
    assert lo == pytest.approx(5.0) and hi == pytest.approx(995.0)


def test_zoom_shows_the_same_region_on_every_grid() -> None:
    assert logic.zoom_window((0.5, 0.5), 4.0) == (0.375, 0.625, 0.375, 0.625)
    assert logic.zoom_window((0.0, 1.0), 4.0) == (0.0, 0.25, 0.75, 1.0)
    assert logic.zoom_box((100, 200), (0.5, 0.5), 4.0) == (37, 63, 75, 125)
    rng = np.random.default_rng(1)
    lr = rng.integers(0, 255, size=(30, 40), dtype=np.uint8)
    sr = lr.repeat(3, axis=0).repeat(3, axis=1)  # the same picture on a 3x finer grid
    for centre, zoom in (((0.3, 0.7), 2.0), ((0.5, 0.5), 5.0), ((0.9, 0.1), 3.0)):
        np.testing.assert_array_equal(
            logic.zoom_crop(lr, centre, zoom, 120), logic.zoom_crop(sr, centre, zoom, 120)
        )
    arr = np.arange(100 * 200, dtype=np.uint32).reshape(100, 200)
    zoomed = logic.zoom_crop(arr, (0.5, 0.5), 4.0, out_side=100)
    assert zoomed.shape == (50, 100)
    np.testing.assert_array_equal(zoomed[::2, ::2], arr[37:62, 75:125])


def test_heatmap_and_nearest_resize() -> None:
    colours = logic.heatmap(np.array([0.0, 5.0, 10.0, 99.0]), 10.0)
    np.testing.assert_array_equal(colours[0], [0, 0, 4])
    np.testing.assert_array_equal(colours[2], [252, 255, 164])
    np.testing.assert_array_equal(colours[3], colours[2])
    assert colours[1].sum() > colours[0].sum()
    small = np.array([[1, 2], [3, 4]], np.uint8)
    np.testing.assert_array_equal(
        logic.resize_nearest(small, (4, 4)), small.repeat(2, 0).repeat(2, 1)
    )
    assert logic.fit_display(np.zeros((2000, 1000), np.uint8), 1000).shape == (1000, 500)


def test_before_after_html_is_self_contained() -> None:
    before = np.zeros((8, 10), np.uint8)
    after = np.full((8, 10), 200, np.uint8)
    html = logic.before_after_html(before, after, "Input", "Super-resolved")
    assert html.count("data:image/png;base64,") == 2
    assert 'type="range"' in html
    assert "http" not in html and "<script src" not in html
    assert "aspect-ratio: 10 / 8" in html


# ------------------------------------------------------------------------------ download
def test_download_dicom_has_derived_metadata() -> None:
    sample = get_sample("mr-siemens-484")
    image = logic.read_upload("knee.dcm", sample.path.read_bytes())
    small, _ = logic.limit_size(image, 64)
    result = logic.run(small, logic.load_model("bicubic"), (2.0, 2.0), logic.Mode.ENHANCE)
    download = logic.download_file(result.sr, "knee.dcm", "sr_x2")
    assert download.file_name == "knee_sr_x2.dcm" and download.mime == "application/dicom"
    ds = pydicom.dcmread(io.BytesIO(download.data))
    original = pydicom.dcmread(sample.path, stop_before_pixels=True)
    assert (ds.Rows, ds.Columns) == (128, 128)
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx(
        [float(v) / 2 for v in original.PixelSpacing], rel=1e-5
    )
    assert ds.SOPInstanceUID != original.SOPInstanceUID
    assert ds.StudyInstanceUID == original.StudyInstanceUID
    assert ds.ImageType[0] == "DERIVED"


def test_download_png_and_nifti_and_series(tmp_path: Path) -> None:
    arr = (np.arange(16 * 12, dtype=np.uint16).reshape(16, 12) % 200).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, format="PNG")
    png = logic.read_upload("photo.png", buffer.getvalue())
    sr = logic.run(png, logic.load_model("bicubic"), (2.0, 2.0), logic.Mode.ENHANCE).sr
    download = logic.download_file(sr, "photo.png", "sr_x2")
    back = np.asarray(Image.open(io.BytesIO(download.data)))
    assert download.file_name == "photo_sr_x2.png" and back.shape == (32, 24)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, np.rint(sr.pixels).astype(np.uint8))

    nib.save(
        nib.Nifti1Image(np.ones((6, 5, 2), np.float32), np.diag([1.0, 2.0, 3.0, 1.0])),
        tmp_path / "v.nii.gz",
    )
    vol = logic.read_upload("v.nii.gz", (tmp_path / "v.nii.gz").read_bytes())
    sr_vol = vol.with_pixels(np.ones((vol.shape[0], vol.shape[1] * 2, vol.shape[2] * 2)), "x2")
    download = logic.download_file(sr_vol, "v.nii.gz", "sr_x2")
    assert download.file_name == "v_sr_x2.nii.gz"
    (tmp_path / "out.nii.gz").write_bytes(download.data)
    assert read(tmp_path / "out.nii.gz").shape == sr_vol.shape

    base = MedicalImage(np.zeros((2, 8, 8), np.float32), (3.0, 1.0, 1.0), modality=Modality.CT)
    series = read(write(base, tmp_path / "series"))
    download = logic.download_file(series, "study.zip", "sr_x2")
    assert download.file_name == "study_sr_x2.zip"
    with zipfile.ZipFile(io.BytesIO(download.data)) as archive:
        assert len(archive.namelist()) == 2


def test_available_models_lists_the_baselines() -> None:
    from medsr.zoo.manifest import zoo_status

    names = logic.available_models()
    baselines = [n for n in names if n in logic.BASELINES]
    assert baselines == list(logic.BASELINES)
    after = names[names.index(baselines[-1]) + 1 :]
    assert all(zoo_status(n) == "experimental" for n in after)  # experimental ones last
    assert names[0] == logic.default_model()
    for name in after:
        assert "experimental" in logic.model_label(name)
    assert logic.model_label("bicubic") == "bicubic"
    choice = logic.describe_model(logic.load_model("bicubic"))
    assert choice.arbitrary_scale and choice.is_baseline
    assert "bicubic" in choice.summary


def test_fixed_scale_model_lists_its_scales() -> None:
    from medsr.models import build

    choice = logic.describe_model(build("srresnet", scale=4, num_blocks=1, channels=8))
    assert not choice.arbitrary_scale and not choice.is_baseline
    assert choice.supported_scales == ((4.0, 4.0),)
    assert choice.default_scale == (4.0, 4.0)
    assert logic.format_scale((1.0, 4.0)) == "×(1, 4)"
