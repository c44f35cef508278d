"""Read -> write -> read reproduces pixels and geometry; resampling rescales geometry."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from medsr.image import MedicalImage, Modality
from medsr.io import read, write
from medsr.samples import get_sample, list_samples


def _upscale2(image: MedicalImage) -> MedicalImage:
    pixels = image.pixels.repeat(2, axis=-1).repeat(2, axis=-2)
    return image.with_pixels(pixels, "nearest x2 (test)")


@pytest.mark.parametrize(
    "name", ["ct-head-693", "mr-siemens-484", "cr-rg3", "us-us1", "us-ob-palette"]
)
def test_dicom_roundtrip_exact(name: str, tmp_path: Path) -> None:
    image = get_sample(name).load()
    out = write(image, tmp_path / "copy.dcm")
    again = read(out)
    np.testing.assert_array_equal(again.pixels, image.pixels)
    np.testing.assert_allclose(again.affine, image.affine, atol=1e-4)
    assert again.modality is image.modality
    ds_in = pydicom.dcmread(get_sample(name).path, stop_before_pixels=True)
    ds_out = pydicom.dcmread(out)
    assert ds_out.SOPInstanceUID != ds_in.SOPInstanceUID
    assert ds_out.SeriesInstanceUID != ds_in.SeriesInstanceUID
    assert ds_out.StudyInstanceUID == ds_in.StudyInstanceUID
    assert ds_out.PatientID == ds_in.PatientID
    assert list(ds_out.ImageType[:2]) == ["DERIVED", "SECONDARY"]
    assert "medsr" in ds_out.DerivationDescription
    assert ds_out.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian


def test_ct_in_hounsfield_units() -> None:
    image = get_sample("ct-head-693").load()
    assert image.modality is Modality.CT
    # the corner of a head CT is air: about -1000 HU
    corner = image.pixels[:40, :40]
    assert -1100 < float(np.median(corner)) < -900
    assert image.spacing_mm == pytest.approx((0.478515625, 0.478515625), rel=1e-6)


def test_monochrome1_inverted_so_bone_is_bright() -> None:
    image = get_sample("cr-rg3").load()
    ds = pydicom.dcmread(get_sample("cr-rg3").path)
    stored = ds.pixel_array.astype(np.float32)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    np.testing.assert_array_equal(image.pixels, 1023.0 - stored)
    assert image.source.bits_stored == 10


def test_dicom_upscale_halves_pixel_spacing(tmp_path: Path) -> None:
    image = get_sample("ct-head-693").load()
    up = _upscale2(image)
    out = write(up, tmp_path / "up.dcm")
    ds = pydicom.dcmread(out)
    assert (ds.Rows, ds.Columns) == (1024, 1024)
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx([0.478515625 / 2] * 2, rel=1e-6)
    # the field of view is kept: the first pixel centre moves by a quarter of an old pixel
    old = np.array(
        [float(v) for v in pydicom.dcmread(get_sample("ct-head-693").path).ImagePositionPatient]
    )
    new = np.array([float(v) for v in ds.ImagePositionPatient])
    shift = np.abs(new - old)[:2]
    np.testing.assert_allclose(shift, [0.478515625 / 4] * 2, atol=1e-4)
    back = read(out)
    np.testing.assert_array_equal(back.pixels, up.pixels)


def test_enhanced_multiframe_roundtrip(tmp_path: Path) -> None:
    image = get_sample("ct-enhanced").load()
    assert image.shape == (2, 512, 512)
    out = write(image, tmp_path / "mf.dcm")
    again = read(out)
    np.testing.assert_array_equal(again.pixels, image.pixels)
    np.testing.assert_allclose(again.spacing_mm, image.spacing_mm, rtol=1e-6)


def test_series_roundtrip_and_sorting(tmp_path: Path) -> None:
    base = get_sample("ct-head-693").load()
    slab = np.stack([base.pixels[::4, ::4] + 10 * k for k in range(4)])
    volume = MedicalImage(slab, (2.5, 1.9, 1.9), modality="CT", source=base.source)
    folder = write(volume, tmp_path / "series")
    files = sorted(folder.iterdir())
    assert len(files) == 4
    # shuffle names so sorting must come from ImagePositionPatient
    for i, f in enumerate(reversed(files)):
        f.rename(folder / f"z{i}.dcm")
    again = read(folder)
    np.testing.assert_array_equal(again.pixels, volume.pixels)
    assert again.spacing_mm == pytest.approx((2.5, 1.9, 1.9), rel=1e-6)
    uids = {pydicom.dcmread(f).SeriesInstanceUID for f in folder.iterdir()}
    assert len(uids) == 1


def test_nifti_roundtrip_and_affine_scaling(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 2000, size=(6, 20, 30)).astype(np.float32)
    affine = np.diag([0.8, 0.9, 3.0, 1.0])
    affine[:3, 3] = (10.0, -20.0, 5.0)
    image = MedicalImage(data, affine=affine, modality="MR")
    path = write(image, tmp_path / "vol.nii.gz")
    again = read(path)
    np.testing.assert_array_equal(again.pixels, data)
    np.testing.assert_allclose(again.affine, affine, atol=1e-5)
    # in-plane x2: voxel sizes halve, the field of view stays
    up = again.with_pixels(again.pixels.repeat(2, axis=1).repeat(2, axis=2), "x2 in-plane")
    out = write(up, tmp_path / "up.nii.gz")
    nii = nib.load(out)
    assert nii.header.get_zooms()[:3] == pytest.approx((0.4, 0.45, 3.0), rel=1e-5)
    assert nii.shape == (60, 40, 6)


def test_nifti_keeps_integer_dtype(tmp_path: Path) -> None:
    data = np.arange(2 * 3 * 4, dtype=np.int16).reshape(4, 3, 2) - 7
    path = tmp_path / "int.nii"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    image = read(path)
    out = write(image, tmp_path / "int2.nii")
    assert nib.load(out).get_data_dtype() == np.int16
    np.testing.assert_array_equal(read(out).pixels, image.pixels)


def test_png16_roundtrip_and_spacing(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    data = rng.integers(0, 65536, size=(33, 47)).astype(np.float32)
    image = MedicalImage(data, (0.2, 0.2), modality="XRAY")
    image.source.bits_stored = 16
    path = write(image, tmp_path / "x.png")
    again = read(path)
    assert again.source.bits_stored == 16
    np.testing.assert_array_equal(again.pixels, data)
    assert again.spacing_mm == pytest.approx((0.2, 0.2), rel=1e-3)
    up = write(_upscale2(again), tmp_path / "x2.png")
    assert read(up).spacing_mm == pytest.approx((0.1, 0.1), rel=1e-3)


def test_tiff16_and_npy_roundtrip(tmp_path: Path) -> None:
    data = (np.arange(64 * 48).reshape(64, 48) * 21 % 65536).astype(np.float32)
    image = MedicalImage(data, modality="OT")
    image.source.bits_stored = 16
    np.testing.assert_array_equal(read(write(image, tmp_path / "a.tif")).pixels, data)
    np.testing.assert_array_equal(read(write(image, tmp_path / "a.npy")).pixels, data)


def test_png_of_ct_written_through_window(tmp_path: Path) -> None:
    image = get_sample("ct-pancreas").load()
    path = write(image, tmp_path / "ct.png")
    again = read(path)
    assert again.source.bits_stored == 16
    norm = image.normalization()
    expected = np.rint(np.clip(norm.to_unit(image.pixels), 0, 1) * 65535)
    np.testing.assert_array_equal(again.pixels, expected)


def test_write_never_overwrites_input(tmp_path: Path) -> None:
    data = np.zeros((8, 8), np.float32)
    src = tmp_path / "in.npy"
    np.save(src, data)
    image = read(src)
    with pytest.raises(Exception, match="refusing to overwrite"):
        write(image, src)


def test_sample_roles_keep_copies_together() -> None:
    train = list_samples(role="train")
    test = list_samples(role="test")
    train_files = {f for s in train for f in (s.file, *s.copies)}
    test_files = {f for s in test for f in (s.file, *s.copies)}
    assert not train_files & test_files
    assert {s.modality for s in test} == {Modality.CT, Modality.MR, Modality.XRAY, Modality.US}
    assert {s.modality for s in train} == {Modality.CT, Modality.MR, Modality.XRAY, Modality.US}
    assert "693_J2KR.dcm" in test_files and "693_UNCR.dcm" in test_files


@pytest.mark.parametrize("sample", list_samples(), ids=lambda s: s.name)
def test_every_sample_loads(sample) -> None:  # type: ignore[no-untyped-def]
    image = sample.load(frame=0 if sample.frames > 1 else None)
    assert image.ndim == 2
    assert np.isfinite(image.pixels).all()
    assert image.pixels.max() > image.pixels.min()


def test_compressed_copies_decode_like_uncompressed() -> None:
    sample = get_sample("ct-head-693")
    ref = sample.load().pixels
    for path in sample.copy_paths:
        pixels = read(path).pixels
        if "J2KR" in path.name:  # reversible JPEG 2000: identical
            np.testing.assert_array_equal(pixels, ref)
        else:  # irreversible JPEG 2000 copy of the same slice
            assert np.corrcoef(pixels.ravel(), ref.ravel())[0, 1] > 0.98
