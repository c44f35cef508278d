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


@pytest.mark.parametrize(
    ("name", "params", "grid"),
    [
        ("mr-kspace", {}, "dft"),
        ("ultrasound-lateral", {}, "sample"),
        ("ultrasound-lateral", {"mode": "cubic"}, "area"),
        ("bicubic", {}, "area"),
        ("xray", {}, "area"),
        ("thick-slice", {}, "area"),
        ("ct-sparse-view", {}, "area"),  # same size: the grid is kept either way
        ("gaussian", {}, "area"),
    ],
)
def test_lr_grid_of_each_degradation(name, params, grid):
    from medsr.degrade import build
    from medsr.degrade.cli import lr_grid

    assert lr_grid(build(name, **params)) == grid


def test_geometry_when_the_scale_does_not_divide_the_size(tmp_path):
    """48 x 41 at x2 -> 24 x 21. bicubic places LR pixel j by s (its spacing is exactly 2 dx,
    its first centre 0.5 HR pixel in); mr-kspace samples at HR index j 41 / 21 (spacing
    41 / 21 dx, first centre kept, the field of view unchanged)."""
    y, x = np.mgrid[:48, :41]
    pixels = (300.0 + 100.0 * np.cos(2 * np.pi * x / 41) * np.cos(2 * np.pi * y / 48)).astype(
        np.float32
    )
    affine = np.diag([0.5, 0.7, 1.0, 1.0])
    affine[:3, 3] = (10.0, 20.0, 0.0)
    source = write(
        MedicalImage(pixels, affine=affine, modality=Modality.MR), tmp_path / "in" / "mr.nii.gz"
    )
    out = tmp_path / "out"
    for name in ("bicubic", "mr-kspace"):
        assert main(["degrade", str(source), "-o", str(out), "-d", name, "--scale", "2"]) == 0
    bicubic = read(out / "mr_bicubic_x2.nii.gz")
    kspace = read(out / "mr_mr-kspace_x2.nii.gz")
    assert bicubic.shape == kspace.shape == (24, 21)
    np.testing.assert_allclose(bicubic.spacing_mm, (1.4, 1.0), rtol=1e-6)
    np.testing.assert_allclose(bicubic.origin_mm, (10.25, 20.35, 0.0), atol=1e-5)
    np.testing.assert_allclose(kspace.spacing_mm, (0.7 * 48 / 24, 0.5 * 41 / 21), rtol=1e-6)
    np.testing.assert_allclose(kspace.origin_mm, (10.0, 20.0, 0.0), atol=1e-5)
