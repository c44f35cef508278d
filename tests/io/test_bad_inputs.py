"""Each bad input ends in one line naming the file and the problem, with exit code 2."""

from __future__ import annotations

import math
import os
import shutil
import struct
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataelem import RawDataElement
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.tag import Tag
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

from medsr.cli import main
from medsr.image import MedicalImage
from medsr.io import read, write
from medsr.samples import get_sample


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


def _assert_one_line(code: int, err: str, path: Path, words: str) -> None:
    assert code == 2
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith("medsr: error: ")
    assert str(path) in err
    assert words in err


def test_truncated_dicom(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = get_sample("ct-head-693").path.read_bytes()
    bad = tmp_path / "truncated.dcm"
    bad.write_bytes(src[: len(src) // 2])
    code, err = _run(capsys, "info", str(bad))
    _assert_one_line(code, err, bad, "truncated")


def test_text_file_named_dcm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "notes.dcm"
    bad.write_text("this is not an image\n")
    code, err = _run(capsys, "info", str(bad))
    _assert_one_line(code, err, bad, "not a DICOM file")


def test_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    code, err = _run(capsys, "info", str(folder))
    _assert_one_line(code, err, folder, "no DICOM files")


def test_folder_mixing_two_series(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(get_sample("ct-head-693").path, folder / "a.dcm")
    shutil.copy(get_sample("ct-pancreas").path, folder / "b.dcm")
    code, err = _run(capsys, "info", str(folder))
    _assert_one_line(code, err, folder, "mixes 2 DICOM series")


def test_dicom_without_pixel_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = pydicom.dcmread(get_sample("ct-head-693").path)
    del ds.PixelData
    bad = tmp_path / "header-only.dcm"
    ds.save_as(bad)
    code, err = _run(capsys, "info", str(bad))
    _assert_one_line(code, err, bad, "no pixel data")


def test_4d_nifti_needs_a_volume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "fmri.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6, 3), np.float32), np.eye(4)), bad)
    code, err = _run(capsys, "info", str(bad))
    _assert_one_line(code, err, bad, "4-D image with 3 volumes")
    assert main(["info", str(bad), "--volume", "1"]) == 0


def test_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.dcm"
    code, err = _run(capsys, "info", str(missing))
    _assert_one_line(code, err, missing, "no such file")


def test_unknown_extension(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "scan.xyz"
    bad.write_text("x")
    code, err = _run(capsys, "info", str(bad))
    _assert_one_line(code, err, bad, "unsupported file type")


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    image = MedicalImage(np.full((4, 4), -5.0, np.float32), modality="MR")
    with pytest.raises(Exception, match="do not fit a 16-bit image"):
        write(image, tmp_path / "neg.png")
    assert list(tmp_path.iterdir()) == []


def test_info_prints_hu_and_spacing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(get_sample("ct-head-693").path)]) == 0
    out = capsys.readouterr().out
    assert "CT 512 x 512" in out
    assert "0.4785 x 0.4785 mm" in out
    assert "HU" in out


def test_samples_command_lists_roles(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["samples", "--role", "test"]) == 0
    out = capsys.readouterr().out
    assert "ct-head-693" in out and "train" not in out.split("\n", 1)[1]


# ----------------------------------------------------------------------------- round 2
def _small_ct(tmp_path: Path, name: str = "ct.dcm", **fields: bytes) -> Path:
    """A 32x32 crop of the CT sample as DICOM, with DS fields set to raw bytes."""
    ct = read(get_sample("ct-head-693").path)
    crop = MedicalImage(
        ct.pixels[240:272, 240:272], affine=ct.affine, modality=ct.modality, source=ct.source
    )
    path = write(crop, tmp_path / name)
    if fields:
        ds = pydicom.dcmread(path)
        for keyword, raw in fields.items():
            tag = Tag(keyword)
            raw += b" " * (len(raw) % 2)
            ds._dict[tag] = RawDataElement(tag, "DS", len(raw), raw, 0, False, True)
        ds.save_as(path)
    return path


def _upscale(capsys: pytest.CaptureFixture[str], src: Path, out: Path) -> tuple[int, str]:
    code = main(["upscale", str(src), "-o", str(out), "--model", "bicubic", "--scale", "2"])
    return code, capsys.readouterr().err.strip()


def _finite_header(path: Path) -> pydicom.Dataset:
    """The output's header, after checking that none of its numbers is NaN or inf."""
    ds = pydicom.dcmread(path)
    for elem in ds.iterall():
        if elem.VR == "DS" and elem.value not in (None, ""):
            values = elem.value if elem.VM > 1 else [elem.value]
            assert all(math.isfinite(float(v)) for v in values), elem
    return ds


@pytest.mark.parametrize("where", ["crc", "stream"])
def test_corrupt_gzip_nifti_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    good = tmp_path / "good.nii.gz"
    nib.save(
        nib.Nifti1Image(np.arange(8 * 9 * 5, dtype=np.int16).reshape(8, 9, 5), np.eye(4)), good
    )
    data = bytearray(good.read_bytes())
    data[-6 if where == "crc" else len(data) // 2] ^= 0x10
    bad = tmp_path / f"{where}.nii.gz"
    bad.write_bytes(data)
    code, err = _run(capsys, "info", str(bad))
    _assert_one_line(code, err, bad, "corrupt gzip data")
    code, err = _upscale(capsys, bad, tmp_path / "out")
    _assert_one_line(code, err, bad, "corrupt gzip data")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("slope", [b"NaN", b"inf", b"-inf"])
def test_non_finite_rescale_slope_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], slope: bytes
) -> None:
    bad = _small_ct(tmp_path, RescaleSlope=slope)
    code, err = _run(capsys, "info", str(bad))
    _assert_one_line(code, err, bad, "are not finite numbers")
    code, err = _upscale(capsys, bad, tmp_path / "out")
    _assert_one_line(code, err, bad, "RescaleSlope")


@pytest.mark.parametrize(
    "spacing", [b"inf\\inf", b"NaN\\1", b"0.5", b"1e-300\\1e-300", b"abc\\1", b"-1\\-1"]
)
def test_malformed_pixel_spacing_is_unknown_and_never_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spacing: bytes
) -> None:
    bad = _small_ct(tmp_path, PixelSpacing=spacing)
    assert main(["info", str(bad)]) == 0
    out = capsys.readouterr().out
    assert "(unknown, 1 assumed)" in out and "note:" in out and "PixelSpacing" in out
    code, err = _upscale(capsys, bad, tmp_path / "out.dcm")
    assert code == 0, err
    ds = _finite_header(tmp_path / "out.dcm")
    assert "PixelSpacing" not in ds and ds.Rows == 64
    assert np.isfinite(read(tmp_path / "out.dcm").affine).all()


@pytest.mark.parametrize(
    "orientation", [b"a\\b\\c\\d\\e\\f", b"0\\0\\0\\0\\0\\0", b"1\\0\\0\\1\\0\\0"]
)
def test_unusable_orientation_is_read_as_absent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], orientation: bytes
) -> None:
    bad = _small_ct(tmp_path, ImageOrientationPatient=orientation)
    assert main(["info", str(bad)]) == 0
    assert "ImageOrientationPatient is malformed" in capsys.readouterr().out
    code, err = _upscale(capsys, bad, tmp_path / "out.dcm")
    assert code == 0, err
    ds = _finite_header(tmp_path / "out.dcm")
    assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx([0.2392578, 0.2392578], rel=1e-5)


def test_palette_colour_without_lookup_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _small_ct(tmp_path, "palette.dcm")
    ds = pydicom.dcmread(bad)
    ds.PhotometricInterpretation = "PALETTE COLOR"
    ds.save_as(bad)
    code, err = _run(capsys, "info", str(bad))
    _assert_one_line(code, err, bad, "PALETTE COLOR without a usable lookup table")


def test_deflate_claimed_on_undeflated_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _small_ct(tmp_path, "plain.dcm")
    raw = good.read_bytes()
    group_length = struct.unpack("<I", raw[140:144])[0]
    meta = pydicom.dcmread(good).file_meta
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    buffer = DicomBytesIO()
    write_file_meta_info(buffer, meta, enforce_standard=True)
    bad = tmp_path / "deflate.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + buffer.getvalue() + raw[144 + group_length :])
    code, err = _run(capsys, "info", str(bad))
    _assert_one_line(code, err, bad, "unreadable DICOM file")


def test_big_endian_dicom_is_upscaled_as_little_endian(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = Path(get_testdata_file("MR_small_bigendian.dcm"))
    little = Path(get_testdata_file("MR_small.dcm"))
    for src in (big, little):
        code, err = _upscale(capsys, src, tmp_path / f"{src.stem}_x2.dcm")
        assert code == 0, err
    out = pydicom.dcmread(tmp_path / "MR_small_bigendian_x2.dcm")
    assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert (out.Rows, out.BitsAllocated, out.PixelRepresentation) == (128, 16, 1)
    assert out.PatientName == pydicom.dcmread(big).PatientName
    from_big = read(tmp_path / "MR_small_bigendian_x2.dcm").pixels
    assert np.array_equal(from_big, read(tmp_path / "MR_small_x2.dcm").pixels)


def test_one_bit_dicom_is_upscaled_as_eight_bit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _upscale(capsys, Path(get_testdata_file("liver.dcm")), tmp_path / "seg.dcm")
    assert code == 0, err
    out = pydicom.dcmread(tmp_path / "seg.dcm")
    assert (out.BitsAllocated, out.BitsStored, out.NumberOfFrames, out.Rows) == (8, 8, 3, 1024)
    assert set(np.unique(out.pixel_array).tolist()) == {0, 1}


@pytest.mark.parametrize("field", [0, 1, 3])
def test_nifti_with_a_zero_dimension(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: int
) -> None:
    good = tmp_path / "good.nii"
    nib.save(nib.Nifti1Image(np.ones((8, 9, 5), np.int16), np.eye(4)), good)
    data = bytearray(good.read_bytes())
    struct.pack_into("<h", data, 40 + 2 * field, 0)
    bad = tmp_path / f"dim{field}.nii"
    bad.write_bytes(data)
    code, err = _run(capsys, "info", str(bad))
    _assert_one_line(code, err, bad, "header declares")


def test_nifti_with_an_all_zero_sform_uses_the_voxel_sizes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    img = nib.Nifti1Image(np.ones((8, 9, 5), np.int16), np.diag([2.0, 3.0, 4.0, 1.0]))
    img.set_sform(np.zeros((4, 4)), code=1)
    img.set_qform(None, code=0)
    bad = tmp_path / "sform0.nii"
    nib.save(img, bad)
    assert main(["info", str(bad)]) == 0
    out = capsys.readouterr().out
    assert "4 x 3 x 2 mm" in out and "affine (sform) is unusable" in out
    code, err = _upscale(capsys, bad, tmp_path / "out")
    assert code == 0, err
    assert read(next((tmp_path / "out").iterdir())).spacing_mm == pytest.approx((4, 1.5, 1))


def test_nan_voxels_are_refused_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = np.ones((8, 9, 5), np.float32)
    data[2, 3, 1] = np.nan
    bad = tmp_path / "nan.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), bad)
    code, err = _run(capsys, "info", str(bad))
    _assert_one_line(code, err, bad, "1 of 360 pixel values are NaN or infinite")


def test_4d_nifti_message_does_not_offer_upscale_an_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "fmri.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6, 3), np.float32), np.eye(4)), bad)
    code, err = _upscale(capsys, bad, tmp_path / "out")
    _assert_one_line(code, err, bad, "--volume N for medsr info")
    assert "(--volume N)" not in err


def _png_with_size(width: int, height: int) -> bytes:
    """A 16-bit grey PNG header declaring ``width`` x ``height``, with a few rows of zeros."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    rows = zlib.compress(bytes(4 * (2 * width + 1)))
    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def test_png_declaring_9000_squared_is_refused_before_decoding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bomb.png"
    bad.write_bytes(_png_with_size(9000, 9000))
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded"))
    code, err = _run(capsys, "info", str(bad))
    _assert_one_line(code, err, bad, "above the limit of 67,108,864; set MEDSR_MAX_PLANE_PIXELS")
    monkeypatch.setenv("MEDSR_MAX_PLANE_PIXELS", "1e9")
    monkeypatch.setenv("MEDSR_MAX_PIXELS", "1e9")
    bad.write_bytes(_png_with_size(20000, 20000))  # beyond Pillow's own bomb limit
    code, err = _run(capsys, "info", str(bad))
    _assert_one_line(code, err, bad, "decompression bomb")


def test_pixel_limits_are_configurable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dicom = _small_ct(tmp_path)
    monkeypatch.setenv("MEDSR_MAX_PIXELS", "1000")
    code, err = _run(capsys, "info", str(dicom))
    _assert_one_line(code, err, dicom, "32 x 32 = 1,024 pixels in all, above the limit of 1,000")
    monkeypatch.setenv("MEDSR_MAX_PIXELS", "1024")
    assert main(["info", str(dicom)]) == 0
    monkeypatch.setenv("MEDSR_MAX_PIXELS", "lots")
    code, err = _run(capsys, "info", str(dicom))
    assert code == 2 and "MEDSR_MAX_PIXELS='lots' is not a whole number" in err


def test_png_resolution_of_0xffffffff_is_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "phys.png"
    Image.fromarray(np.full((20, 20), 7, np.uint8)).save(path, dpi=(100, 100))
    data = bytearray(path.read_bytes())
    at = data.find(b"pHYs")
    data[at + 4 : at + 12] = b"\xff" * 8
    data[at + 13 : at + 17] = struct.pack(">I", zlib.crc32(bytes(data[at : at + 13])))
    path.write_bytes(data)
    assert main(["info", str(path)]) == 0
    assert "is not plausible; spacing unknown" in capsys.readouterr().out
    code, err = _upscale(capsys, path, tmp_path / "out.png")
    assert code == 0, err
    assert read(tmp_path / "out.png").shape == (40, 40)


def test_named_pipe_is_refused_without_hanging(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipe = tmp_path / "scan.dcm"
    os.mkfifo(pipe)
    code, err = _run(capsys, "info", str(pipe))
    _assert_one_line(code, err, pipe, "not a regular file or folder")


def test_unreadable_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _small_ct(tmp_path)
    if os.geteuid() != 0:  # root reads anything: simulate what chmod 000 does to others
        path.chmod(0)
    else:
        monkeypatch.setattr("medsr.io.core.os.access", lambda p, mode: False)
    code, err = _run(capsys, "info", str(path))
    _assert_one_line(code, err, path, "permission denied")
