"""Warnings about a repaired input name the file, in one line, once; a file whose Rows or
Columns contradict its pixel data is refused in one line naming it.

Each defective file is made in tmp_path from a 64 x 64 crop of the CT sample (DICOM) or a
small synthetic volume (NIfTI), then given to ``medsr info`` and ``medsr upscale``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.tag import Tag

from medsr.cli import main
from medsr.image import MedicalImage
from medsr.io import read, write
from medsr.io.file_warnings import FileWarning
from medsr.samples import get_sample

#: Bytes of pixel data in the 64 x 64, 16-bit CT crop.
CROP_BYTES = 64 * 64 * 2


def _ct(folder: Path, name: str = "ct.dcm", frames: int = 1) -> Path:
    """A 64 x 64 crop of the CT sample as DICOM (multi-frame for ``frames`` > 1)."""
    ct = read(get_sample("ct-head-693").path)
    pixels = ct.pixels[224:288, 224:288]
    if frames > 1:
        pixels = np.stack([pixels] * frames)
    crop = MedicalImage(pixels, affine=ct.affine, modality=ct.modality, source=ct.source)
    return write(crop, folder / name)


def _raw(ds: pydicom.Dataset, keyword: str, vr: str, value: bytes) -> None:
    """Set ``keyword`` to ``value`` byte for byte, bypassing pydicom's checks."""
    tag = Tag(keyword)
    ds._dict[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)


def _number_of_frames_0(path: Path) -> None:
    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = 0
    ds.save_as(path)


def _excess_padding(path: Path) -> None:
    ds = pydicom.dcmread(path)
    ds.PixelData = ds.PixelData + b"\0" * 6
    ds.save_as(path)


def _invalid_uid(path: Path) -> None:
    ds = pydicom.dcmread(path)
    _raw(ds, "SOPInstanceUID", "UI", b"1.2.abc.3.004 ")
    ds.save_as(path)


def _value_too_long(path: Path) -> None:
    ds = pydicom.dcmread(path)
    _raw(ds, "StationName", "SH", b"X" * 64)
    ds.save_as(path)


def _implicit_vr_under_explicit_syntax(path: Path) -> None:
    """The file meta says Explicit VR Little Endian; the data set is encoded implicit VR."""
    ds = pydicom.dcmread(path)
    meta = DicomBytesIO()
    write_file_meta_info(meta, ds.file_meta, enforce_standard=True)
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, True
    write_dataset(body, ds)
    path.write_bytes(b"\0" * 128 + b"DICM" + meta.getvalue() + body.getvalue())


DICOM_REPAIRS: dict[str, tuple[Callable[[Path], None], str]] = {
    "number-of-frames-0": (_number_of_frames_0, "'Number of Frames' is invalid, assuming 1"),
    "excess-padding": (_excess_padding, "contains 6 bytes of excess padding"),
    "invalid-uid": (_invalid_uid, "Invalid value for VR UI: '1.2.abc.3.004'"),
    "value-too-long": (_value_too_long, "exceeds the maximum length of 16 allowed for VR SH"),
    "vr-mismatch": (_implicit_vr_under_explicit_syntax, "Expected explicit VR, but found implicit"),
}


def _nifti(folder: Path, offset: int, fmt: str, value: float) -> Path:
    """A 16 x 16 x 4 NIfTI-1 file with one header field overwritten."""
    path = folder / "mr.nii"
    data = np.arange(16 * 16 * 4, dtype=np.int16).reshape(16, 16, 4)
    nib.save(nib.Nifti1Image(data, np.diag([0.5, 0.5, 2.0, 1.0])), path)
    raw = bytearray(path.read_bytes())
    struct.pack_into(fmt, raw, offset, value)
    path.write_bytes(bytes(raw))
    return path


#: name: (header offset, struct format, value, what nibabel says as it repairs it)
NIFTI_REPAIRS = {
    "sizeof-hdr": (0, "<i", 300, "sizeof_hdr should be 348; set sizeof_hdr to 348"),
    "negative-pixdim": (80, "<f", -0.5, "pixdim[1,2,3] should be positive"),
    "zero-pixdim": (84, "<f", 0.0, "pixdim[1,2,3] should be non-zero"),
}


def _warnings_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The warning lines ``medsr argv`` prints; it must succeed."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 0, err
    return [line for line in err.splitlines() if line.startswith("medsr: warning: ")]


def _check_named(lines: list[str], path: Path, words: str) -> None:
    """Exactly one warning says ``words``, and every warning names ``path`` first."""
    assert sum(words in line for line in lines) == 1, lines
    for line in lines:
        assert line.startswith(f"medsr: warning: {path}: "), line


def _upscale(src: Path, out: Path) -> list[str]:
    return ["upscale", str(src), "-o", str(out), "--model", "bicubic", "--scale", "2", "--quiet"]


@pytest.mark.parametrize("kind", list(DICOM_REPAIRS))
def test_dicom_repair_warning_names_the_file(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mutate, words = DICOM_REPAIRS[kind]
    path = _ct(tmp_path, f"{kind}.dcm")
    mutate(path)
    capsys.readouterr()
    _check_named(_warnings_of(["info", str(path)], capsys), path, words)
    out = tmp_path / "out.dcm"
    _check_named(_warnings_of(_upscale(path, out), capsys), path, words)
    assert pydicom.dcmread(out).Rows == 128


@pytest.mark.parametrize("kind", list(NIFTI_REPAIRS))
def test_nifti_repair_warning_names_the_file(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    offset, fmt, value, words = NIFTI_REPAIRS[kind]
    path = _nifti(tmp_path, offset, fmt, value)
    _check_named(_warnings_of(["info", str(path)], capsys), path, words)
    _check_named(_warnings_of(_upscale(path, tmp_path / "out.nii.gz"), capsys), path, words)


def test_series_warning_names_the_slice_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    volume = MedicalImage(np.arange(3 * 16 * 16, dtype=np.float32).reshape(3, 16, 16) % 97)
    folder = write(volume, tmp_path / "series")
    bad = sorted(folder.iterdir())[1]
    _implicit_vr_under_explicit_syntax(bad)
    words = "Expected explicit VR, but found implicit"
    _check_named(_warnings_of(["info", str(folder)], capsys), bad, words)
    # upscale also looks at each header outside the reader: still one line, naming the file
    _check_named(_warnings_of(_upscale(folder, tmp_path / "out"), capsys), bad, words)


def test_read_issues_one_file_warning(tmp_path: Path) -> None:
    path = _ct(tmp_path, "uid.dcm")
    _invalid_uid(path)
    with pytest.warns(FileWarning) as caught:
        read(path)
    texts = [str(w.message) for w in caught if "VR UI" in str(w.message)]
    assert len(texts) == 1 and "\n" not in texts[0]
    assert texts[0].startswith(f"{path}: Invalid value for VR UI: '1.2.abc.3.004'")


@pytest.mark.parametrize(
    ("keyword", "value", "needs"),
    [("Rows", 1, 128), ("Columns", 1, 128), ("Rows", 32, CROP_BYTES // 2)],
)
def test_rows_or_columns_contradicting_the_pixel_data_are_refused(
    keyword: str, value: int, needs: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _ct(tmp_path, "bad.dcm")
    ds = pydicom.dcmread(path)
    setattr(ds, keyword, value)
    ds.save_as(path)
    rows, columns = (value, 64) if keyword == "Rows" else (64, value)
    expected = (
        f"medsr: error: {path}: Rows {rows} x Columns {columns} x 1 frame(s) needs "
        f"{needs:,} bytes of pixel data, it holds {CROP_BYTES:,}: "
        "Rows/Columns/NumberOfFrames contradict the pixel data"
    )
    for argv in (["info", str(path)], _upscale(path, tmp_path / "out.dcm")):
        code = main(argv)
        err = capsys.readouterr().err.strip()
        assert (code, err) == (2, expected)
    assert not (tmp_path / "out.dcm").exists()


def test_rows_1_of_a_multiframe_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _ct(tmp_path, "frames.dcm", frames=3)
    ds = pydicom.dcmread(path)
    assert ds.NumberOfFrames == 3
    ds.Rows = 1
    ds.save_as(path)
    code = main(["info", str(path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err == (
        f"medsr: error: {path}: Rows 1 x Columns 64 x 3 frame(s) needs 384 bytes of pixel "
        f"data, it holds {3 * CROP_BYTES:,}: Rows/Columns/NumberOfFrames contradict the pixel data"
    )


@pytest.mark.parametrize("extra", [2, 6, 128, CROP_BYTES - 2])
def test_padding_short_of_a_frame_is_tolerated(extra: int, tmp_path: Path) -> None:
    path = _ct(tmp_path)
    reference = read(path).pixels
    ds = pydicom.dcmread(path)
    ds.PixelData = ds.PixelData + b"\0" * extra
    ds.save_as(path)
    with pytest.warns(FileWarning, match=f"{extra} bytes of excess padding"):
        image = read(path)
    np.testing.assert_array_equal(image.pixels, reference)
