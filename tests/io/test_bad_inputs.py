"""Each bad input ends in one line naming the file and the problem, with exit code 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from medsr.cli import main
from medsr.image import MedicalImage
from medsr.io import write
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
