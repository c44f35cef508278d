"""Choosing the model for a scan: by its modality's acquisition, then by scale; only
shipped models; a file without a modality gets the generic default and is told so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medsr.errors import ConfigError
from medsr.image import MedicalImage, Modality
from medsr.zoo.choice import acquisition_key, choose_model


def test_acquisition_keys() -> None:
    assert acquisition_key("mr-kspace", 2) == "mr-kspace:x2"
    assert acquisition_key("ultrasound-lateral", (1.0, 4.0)) == "ultrasound-lateral:x4"


def test_mr_gets_the_k_space_model_and_others_the_generic_one(tiny_zoo: Path) -> None:
    mr = choose_model(2, modality="MR")
    assert mr.name == "mr-kspace-x2"
    assert "modality MR (mr-kspace)" in mr.reason
    ct = choose_model(2, modality=Modality.CT)
    assert ct.name == "generic-x2"
    assert "no shipped model for modality CT (ct-sparse-view)" in ct.reason


def test_acquisition_overrides_the_modality(tiny_zoo: Path) -> None:
    assert choose_model(2, modality="MR", acquisition="bicubic").name == "generic-x2"
    assert choose_model(2, modality="CT", acquisition="mr-kspace").name == "mr-kspace-x2"
    with pytest.raises(ConfigError, match="unknown acquisition 'kspace'"):
        choose_model(2, acquisition="kspace")


def test_a_file_without_modality_falls_back_and_says_so(tiny_zoo: Path) -> None:
    choice = choose_model(2, modality=None)
    assert choice.name == "generic-x2"
    assert "generic default" in choice.reason and "--acquisition" in choice.reason
    assert choose_model(2, modality="OT").name == "generic-x2"


def test_experimental_models_are_never_chosen(tiny_zoo: Path) -> None:
    choice = choose_model(4, modality="MR")
    # mr-kspace-x4 is experimental: MR falls back to its reference, zero-filled interpolation
    assert choice.name == "zero-fill"
    assert "no shipped model for modality MR (mr-kspace)" in choice.reason


def test_the_api_chooses_the_same_way(tiny_zoo: Path) -> None:
    import medsr

    rng = np.random.default_rng(0)
    image = MedicalImage(
        rng.random((16, 16), dtype=np.float32) * 100, (1.0, 1.0), modality=Modality.MR
    )
    out = medsr.upscale(image, scale=2)
    assert out.shape == (32, 32)
    assert any("model mr-kspace-x2: trained for modality MR" in h for h in out.history)
    png_like = MedicalImage(image.pixels, (1.0, 1.0), modality=Modality.OTHER)
    out = medsr.upscale(png_like, scale=2)
    assert any("model generic-x2: the generic default" in h for h in out.history)
    out = medsr.upscale(image, scale=2, acquisition="bicubic")
    assert any("model generic-x2" in h for h in out.history)


def _mr_dicom(path: Path) -> Path:
    from medsr.io import write

    rng = np.random.default_rng(1)
    pixels = (rng.random((32, 32)) * 400).astype(np.float32)
    return write(MedicalImage(pixels, (0.9, 0.9), modality=Modality.MR), path)


def test_an_mr_dicom_upscaled_without_model_uses_the_k_space_model(
    tiny_zoo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from medsr.cli import main
    from medsr.io import read

    source = _mr_dicom(tmp_path / "mr.dcm")
    assert main(["upscale", str(source), "-o", str(tmp_path / "out.dcm"), "--scale", "2"]) == 0
    printed = capsys.readouterr().out
    assert f"{source}: model mr-kspace-x2: trained for modality MR (mr-kspace)" in printed
    out = read(tmp_path / "out.dcm")
    assert out.shape == (64, 64)
    # the k-space model's output is on the DFT grid: the first pixel centre is kept
    np.testing.assert_allclose(out.affine[:3, 3], read(source).affine[:3, 3], atol=1e-4)
    np.testing.assert_allclose(out.spacing_mm, (0.45, 0.45), atol=1e-6)


def test_acquisition_flag_and_a_png_choose_the_generic_model(
    tiny_zoo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    from medsr.cli import main

    source = _mr_dicom(tmp_path / "mr.dcm")
    args = ["upscale", str(source), "-o", str(tmp_path / "a.dcm"), "--scale", "2"]
    assert main([*args, "--acquisition", "bicubic"]) == 0
    assert "model generic-x2: the default for bicubic input" in capsys.readouterr().out
    png = tmp_path / "slice.png"
    Image.fromarray((np.arange(256).reshape(16, 16) % 255).astype(np.uint8)).save(png)
    assert main(["upscale", str(png), "-o", str(tmp_path / "b.png"), "--scale", "2"]) == 0
    printed = capsys.readouterr().out
    assert "model generic-x2: the generic default (the file states no modality" in printed
    assert main([*args, "--model", "bicubic", "--acquisition", "mr-kspace"]) == 2
    assert "--acquisition chooses a zoo model" in capsys.readouterr().err
