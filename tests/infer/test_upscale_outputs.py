"""Output names keep the full factor, outputs are never replaced silently, and a target
spacing picks the nearest pixel count within a small tolerance (issue 13, items 4-5)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from medsr.cli import main
from medsr.image import MedicalImage
from medsr.infer.pipeline import count_for_spacing
from medsr.io import read, write


def _series(folder: Path, slices: int = 6, spacing: float = 2.50008) -> Path:
    """A small MR series, ``slices`` slices of 24 x 20 at 0.8 mm, ``spacing`` mm apart."""
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 1000, size=(slices, 24, 20)).astype(np.float32)
    affine = np.diag([0.8, 0.8, spacing, 1.0])
    affine[:3, 3] = (-10.0, 5.0, 30.0)
    return write(MedicalImage(pixels, affine=affine, modality="MR"), folder)


def _upscale(source: Path, output: Path, *options: str) -> int:
    return main(
        ["upscale", str(source), "-o", str(output), "--model", "bicubic", "--quiet", *options]
    )


def test_count_for_spacing_rounds_within_tolerance() -> None:
    assert count_for_spacing(512, 0.478516, 0.2) == 1225  # 1225.04, not 1226
    assert count_for_spacing(6, 2.50008, 1.0) == 15  # 15.0005, not 16
    assert count_for_spacing(64, 0.5, 0.3) == 107  # 106.67: the next count up
    assert count_for_spacing(10, 1.0, 1.0) == 10


def test_through_plane_spacing_gives_nearest_count_and_real_factor(tmp_path: Path) -> None:
    series = _series(tmp_path / "ser")
    assert _upscale(series, tmp_path / "out", "--plane", "through", "--spacing", "1") == 0
    out = tmp_path / "out" / "ser_sr-1mm-z"
    files = sorted(out.iterdir())
    assert len(files) == 15
    result = read(out)
    assert result.spacing_mm[0] == pytest.approx(6 * 2.50008 / 15, rel=1e-5)
    ds = pydicom.dcmread(files[0])
    assert "x2.5 through-plane (6 -> 15 slices)" in ds.DerivationDescription
    assert _upscale(series, tmp_path / "vol.nii.gz", "--plane", "through", "--spacing", "1") == 0
    descrip = nib.load(tmp_path / "vol.nii.gz").header["descrip"].tobytes().decode()
    assert "x2.5 through-plane" in descrip


def test_in_plane_spacing_factor_recorded(tmp_path: Path) -> None:
    series = _series(tmp_path / "ser")
    assert _upscale(series, tmp_path / "out", "--spacing", "0.3") == 0
    ds = pydicom.dcmread(sorted((tmp_path / "out" / "ser_sr-0.3mm").iterdir())[0])
    assert (ds.Rows, ds.Columns) == (64, 54)  # 24 x 0.8 / 0.3 = 64; 20 x 0.8 / 0.3 = 53.3 -> 54
    assert "x2.66667,2.7 in-plane (24x20 -> 64x54 px)" in ds.DerivationDescription


def test_names_keep_the_full_factor_and_never_replace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    series = _series(tmp_path / "ser")
    out = tmp_path / "out"
    assert _upscale(series, out, "--scale", "2.5") == 0
    assert len(list((out / "ser_sr-x2.5").iterdir())) == 6
    assert _upscale(series, out, "--plane", "through", "--spacing", "1.25") == 0
    first = out / "ser_sr-1.25mm-z"
    assert len(list(first.iterdir())) == 12
    assert _upscale(series, out, "--plane", "through", "--spacing", "1") == 0
    assert len(list(first.iterdir())) == 12  # another spacing, another folder
    assert len(list((out / "ser_sr-1mm-z").iterdir())) == 15

    before = sorted(p.name for p in first.iterdir())
    stamp = pydicom.dcmread(first / before[0]).SOPInstanceUID
    capsys.readouterr()
    assert _upscale(series, out, "--plane", "through", "--spacing", "1.25") == 2
    err = capsys.readouterr().err
    assert "ser_sr-1.25mm-z" in err and "--overwrite" in err and len(err.splitlines()) == 1
    assert pydicom.dcmread(first / before[0]).SOPInstanceUID == stamp  # untouched
    assert _upscale(series, out, "--plane", "through", "--spacing", "1.25", "--overwrite") == 0
    assert pydicom.dcmread(first / before[0]).SOPInstanceUID != stamp

    single = tmp_path / "single"
    slice_file = sorted(series.iterdir())[0]
    assert _upscale(slice_file, single, "--scale", "2.5") == 0
    assert (single / f"{slice_file.stem}_sr-x2.5.dcm").is_file()
    assert _upscale(slice_file, single, "--scale", "2.5") == 2
