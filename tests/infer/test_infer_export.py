"""ONNX export: dynamic height/width, onnxruntime agrees with PyTorch within 1e-4."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from medsr.cli import main
from medsr.errors import ConfigError
from medsr.infer.export import export_onnx
from medsr.infer.weights import save_generator
from medsr.models import build


def test_onnx_matches_pytorch_at_another_size(tiny_sr, tmp_path: Path) -> None:
    report = export_onnx(tiny_sr, tmp_path / "tiny.onnx")
    assert report.static_size is None and report.check_size != (32, 32)  # traced at 32x32
    assert report.max_abs_diff is not None and report.max_abs_diff < 1e-4
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    x = torch.rand(3, 1, 19, 11, generator=torch.Generator().manual_seed(1))
    got = session.run(None, {"lr": x.numpy()})[0]
    with torch.no_grad():
        expected = tiny_sr(x).numpy()
    assert got.shape == (3, 1, 38, 22)
    assert np.abs(got - expected).max() < 1e-4


def test_export_cli_on_a_weights_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    weights = save_generator(
        build("srresnet", num_blocks=1, channels=8), tmp_path / "g.safetensors"
    )
    out = tmp_path / "g.onnx"
    assert main(["export", "--model", str(weights), "--format", "onnx", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert out.is_file() and "max abs diff" in text
    diff = float(text.rsplit("max abs diff", 1)[1].split()[0])
    assert diff < 1e-4


def test_interpolation_baselines_are_not_exported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="baseline"):
        export_onnx(build("bicubic"), tmp_path / "b.onnx")


def test_arbitrary_scale_model_exports_for_a_fixed_size(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build("miassr", num_blocks=1, channels=8, mlp_hidden=16)
    report = export_onnx(model, tmp_path / "m.onnx", scale=2.5, size=(24, 20))
    assert report.static_size == (24, 20) and "fixed 24x20" in report.describe()
    assert report.max_abs_diff is not None and report.max_abs_diff < 1e-4
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"lr": np.zeros((1, 1, 24, 20), np.float32)})[0]
    assert out.shape == (1, 1, 60, 50)


def _zoo_names() -> list[str]:
    from medsr.zoo.manifest import zoo_models

    return sorted(zoo_models())


@pytest.mark.parametrize("name", _zoo_names())
def test_every_zoo_model_exports_and_runs_in_onnxruntime(name: str, tmp_path: Path) -> None:
    """Dynamic height/width for every fixed-scale zoo generator (residual bicubic skip
    included), checked at a size other than the traced 32x32 (a multiple of 4: sisr-ct's
    space-to-depth pads other sizes by amounts fixed at trace time); MIASSR's kernels
    depend on the grid, so it exports for one size."""
    from medsr.zoo.manifest import load_zoo_model

    model = load_zoo_model(name)
    if model.grid == "dft":  # zero-fill skip: FFTs the ONNX exporter cannot write
        with pytest.raises(ConfigError, match="zero-filled k-space interpolation"):
            export_onnx(model, tmp_path / f"{name}.onnx")
        return
    arbitrary = bool(model.arbitrary_scale)
    report = export_onnx(model, tmp_path / f"{name}.onnx", size=(24, 20) if arbitrary else None)
    assert report.max_abs_diff is not None and report.max_abs_diff < 1e-4
    assert (report.static_size is None) != arbitrary
    if arbitrary:
        return
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    x = torch.rand(1, model.in_channels, 24, 20, generator=torch.Generator().manual_seed(2))
    got = session.run(None, {"lr": x.numpy()})[0]
    with torch.inference_mode():
        expected = model(x, None).numpy()
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-4
