"""Every generator and baseline exports to ONNX at a tiny size and runs in onnxruntime."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch

from medsr import models

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

TINY: dict[str, dict] = {
    "srresnet": {"num_blocks": 1, "channels": 8},
    "swift-srgan": {"num_blocks": 1, "channels": 8},
    "blimsr": {"num_groups": 1, "num_blocks": 1, "channels": 8},
    "blimsr-lite": {"num_blocks": 1, "channels": 8},
    "miassr": {"num_blocks": 1, "channels": 8, "mlp_hidden": 8},
    "sisr-us": {"num_blocks": 1, "channels": 8},
    "sisr-ct": {"num_blocks": 1, "channels": 8},
}


class AtScale(torch.nn.Module):
    """Fixes the scale argument, so the exported graph takes the image only."""

    def __init__(self, model: models.SRModel, scale: float | tuple[float, float] | None) -> None:
        super().__init__()
        self.model, self.scale = model, scale

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.model(lr, self.scale)


CASES = [(name, None) for name in TINY] + [
    ("miassr", 2.7),
    ("miassr", (1.0, 4.0)),
]


@pytest.mark.parametrize(("name", "scale"), CASES)
def test_onnx_export_matches_torch(name: str, scale: float | tuple[float, float] | None) -> None:
    torch.manual_seed(0)
    model = AtScale(models.build(name, **TINY[name]), scale).eval()
    lr = torch.rand(1, 1, 6, 5)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (lr,), buffer, dynamo=False, input_names=["lr"], opset_version=17)
        expected = model(lr).numpy()
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"lr": lr.numpy()})
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["nearest", "bilinear", "bicubic", "lanczos"])
def test_baselines_torch_export(name: str) -> None:
    model = AtScale(models.build(name), 2.5).eval()
    lr = torch.rand(1, 1, 6, 5)
    expected = model(lr)
    program = torch.export.export(model, (lr,))
    torch.testing.assert_close(program.module()(lr), expected)
    # eager calls after export still get real weights, not export's fake tensors
    torch.testing.assert_close(model(lr), expected)


@pytest.mark.parametrize("name", ["bilinear", "bicubic", "lanczos"])
def test_baselines_onnx_export(name: str) -> None:
    model = AtScale(models.build(name), 2.0).eval()
    lr = torch.rand(1, 1, 6, 5)
    expected = model(lr).numpy()
    buffer = io.BytesIO()
    torch.onnx.export(model, (lr,), buffer, input_names=["lr"], dynamo=False)
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"lr": lr.numpy()})
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(model(lr).numpy(), expected)
