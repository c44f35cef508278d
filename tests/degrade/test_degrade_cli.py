"""``medsr degrade`` on small synthetic DICOM and PNG files, read back with medsr.io."""

from __future__ import annotations

import numpy as np
import pytest

from medsr.cli import main
from medsr.image import MedicalImage, Modality, SourceInfo
from medsr.io import read, write


def _ct(tmp_path):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:48, :40]
    hu = np.where((y - 24) ** 2 + (x - 20) ** 2 < 300, 40.0, -1000.0) + rng.normal(0, 5, (48, 40))
    image = MedicalImage(hu.astype(np.float32), (0.7, 0.5), modality=Modality.CT)
    return write(image, tmp_path / "in" / "ct.dcm")


@pytest.mark.parametrize(
    ("degradation", "scale", "shape", "factor"),
    [("bicubic", "4", (12, 10), (4, 4)), ("ultrasound-lateral", "2", (48, 20), (1, 2))],
)
def test_degrade_dicom_updates_shape_and_spacing(tmp_path, degradation, scale, shape, factor):
    (tmp_path / "in").mkdir()
    source = _ct(tmp_path)
    out = tmp_path / "out"
    args = [str(source), "-o", str(out), "--degradation", degradation, "--scale", scale]
    assert main(["degrade", *args]) == 0
    written = sorted(out.glob("*.dcm"))
    assert len(written) == 1
    lr = read(written[0])
    assert lr.shape == shape and lr.modality is Modality.CT
    np.testing.assert_allclose(lr.spacing_mm, (0.7 * factor[0], 0.5 * factor[1]), rtol=1e-4)
    assert lr.pixels.min() > -1030 and lr.pixels.max() < 100
    assert len(list(out.glob("*_gallery.png"))) == 1


def test_degrade_png_pairs_seed_and_params(tmp_path):
    rng = np.random.default_rng(1)
    pixels = (rng.random((30, 26)) * 65535).astype(np.float32)
    source = write(
        MedicalImage(pixels, (1.0, 1.0), source=SourceInfo(bits_stored=16)), tmp_path / "x.png"
    )
    common = [str(source), "--degradation", "gaussian", "--scale", "3", "--pairs"]
    common += ["--param", "noise_sigma=0.05", "--seed", "5"]
    assert main(["degrade", *common, "-o", str(tmp_path / "a")]) == 0
    assert main(["degrade", *common, "-o", str(tmp_path / "b")]) == 0
    lr_a = read(tmp_path / "a" / "x_gaussian_x3.png")
    lr_b = read(tmp_path / "b" / "x_gaussian_x3.png")
    hr = read(tmp_path / "a" / "x_hr.png")
    assert hr.shape == (30, 24) and lr_a.shape == (10, 8)
    np.testing.assert_array_equal(lr_a.pixels, lr_b.pixels)
    np.testing.assert_allclose(
        lr_a.spacing_mm, (3.0, 3.0), rtol=2e-3
    )  # PNG stores whole dots per metre


def test_degrade_refuses_input_folder_and_bad_params(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    source = _ct(tmp_path)
    assert main(["degrade", str(source), "-o", str(tmp_path / "in")]) == 2
    assert "input's folder" in capsys.readouterr().err
    assert main(["degrade", str(source), "-o", str(tmp_path / "o"), "--param", "sigma=1"]) == 2
    assert "does not take" in capsys.readouterr().err
    bad = ["degrade", str(source), "-o", str(tmp_path / "o"), "-d", "ct-sparse-view"]
    assert main([*bad, "--scale", "2.5"]) == 2
