"""``medsr models``: the listing, its parameter and GFLOP figures, zoo detection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from medsr import models
from medsr.cli import main


def _conv_flops(cin: int, cout: int, k: int, pixels: int) -> int:
    return 2 * cin * cout * k * k * pixels


def test_srresnet_gflops_match_the_analytic_count() -> None:
    lr = 256 * 256
    blocks = 16
    expected = (
        _conv_flops(1, 64, 9, lr)
        + 2 * blocks * _conv_flops(64, 64, 3, lr)
        + _conv_flops(64, 64, 3, lr)
        + _conv_flops(64, 256, 3, lr)
        + _conv_flops(64, 256, 3, 4 * lr)
        + _conv_flops(64, 1, 9, 16 * lr)
    )
    with torch.device("meta"):
        model = models.build("srresnet")
    assert models.forward_gflops(model) == pytest.approx(expected / 1e9, rel=1e-3)


def test_miassr_meta_upscale_flops_at_x4() -> None:
    """At x4 the conv path costs exactly one 3x3 conv per HR pixel: 16 kernels at LR size."""
    with torch.device("meta"):
        model = models.build("miassr", num_blocks=0)
    lr = 256 * 256
    features = _conv_flops(1, 64, 3, lr) + _conv_flops(64, 64, 3, lr)
    upscale = _conv_flops(64, 16, 3, lr)
    mlp = 2 * 16 * (3 * 256 + 256 * 576)
    assert models.forward_gflops(model) == pytest.approx((features + upscale + mlp) / 1e9, rel=1e-3)


def test_models_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert list(rows) == models.available()
    assert 0.18e6 < rows["swift-srgan"]["parameters"] < 0.22e6
    assert rows["miassr"]["arbitrary_scale"] and rows["miassr"]["scale_range"] == [1.0, 4.0]
    assert rows["sisr-us"]["supported_scales"] == [[1.0, 4.0]]
    assert rows["bicubic"]["kind"] == "baseline" and rows["bicubic"]["parameters"] == 0
    assert rows["bicubic"]["gflops_256"] > 0
    assert rows["blimsr"]["gflops_256"] > rows["srresnet"]["gflops_256"] > 0


def test_models_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["name", "kind", "scales"]
    assert any(line.startswith("sisr-us") and "x(1,4)" in line for line in lines)


def test_zoo_rows_state_the_shipped_size_modality_and_acquisition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The zoo's srresnet is listed with its own 8 x 32 and 0.2 M parameters, not the
    published 16 x 64 (1.53 M), with the modality and acquisition it was trained for."""
    from medsr.infer.weights import save_generator
    from medsr.zoo.manifest import sha256_of

    zoo = tmp_path / "zoo"
    zoo.mkdir()
    config = {"scale": 2, "num_blocks": 8, "channels": 32, "residual": "zero-fill"}
    path = save_generator(models.build("srresnet", **config), zoo / "mr.safetensors")
    entry = {
        "file": path.name,
        "sha256": sha256_of(path),
        "architecture": "srresnet",
        "config": config,
        "scale": [2.0, 2.0],
        "degradation": {"name": "mr-kspace", "scale": 2},
        "status": "shipped",
    }
    (zoo / "manifest.json").write_text(json.dumps({"models": {"mr-x2": entry}}))
    monkeypatch.setenv("MEDSR_ZOO_DIR", str(zoo))
    assert main(["models"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("mr-x2"))
    assert "8 blocks x 32 channels" in row and "0.201 M" in row
    assert row.split()[-4:-1] == ["MR", "mr-kspace", "shipped"]
    from medsr.zoo.describe import describe_zoo_model

    text = describe_zoo_model("mr-x2") or ""
    assert "8 blocks x 32 channels, 0.20 M parameters" in text
    assert "CPU-sized; the published network has 1.53 M" in text
    assert "zero-filled k-space" in text and "mr-kspace input (MR), reference zero-fill" in text
