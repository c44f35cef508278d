"""The low-frequency lock: an offset costs exactly its size, texture above the LR band
costs almost nothing, the gradient reaches the output, and the preset builder knows it."""

from __future__ import annotations

import pytest
import torch

from medsr.errors import ConfigError
from medsr.losses import LowFrequencyLoss, build_generator_loss


def test_a_constant_offset_costs_its_size() -> None:
    hr = torch.rand(2, 1, 32, 32)
    loss = LowFrequencyLoss(factor=4)
    assert float(loss(hr + 0.003, hr)) == pytest.approx(0.003, rel=1e-4)
    assert float(loss(hr, hr)) == 0.0


def test_texture_above_the_lr_band_is_nearly_free() -> None:
    """A +-0.05 checkerboard (the HR Nyquist frequency) added to HR moves the x4
    low-pass by under 1% of its amplitude, while plain L1 charges all of it."""
    hr = torch.rand(1, 1, 64, 64)
    i = torch.arange(64)
    checker = 0.05 * (-1.0) ** (i[:, None] + i[None, :])
    textured = hr + checker
    assert float(torch.nn.functional.l1_loss(textured, hr)) == pytest.approx(0.05)
    assert float(LowFrequencyLoss(factor=4)(textured, hr)) < 0.05 * 0.01


def test_gradient_reaches_the_output() -> None:
    sr = torch.rand(1, 1, 16, 16, requires_grad=True)
    LowFrequencyLoss(factor=2)(sr, torch.zeros(1, 1, 16, 16)).backward()
    assert sr.grad is not None and float(sr.grad.abs().sum()) > 0


def test_built_from_a_loss_config() -> None:
    g_loss = build_generator_loss({"terms": {"mse": 1.0, "lowfreq": {"weight": 2.0, "factor": 2}}})
    hr = torch.rand(1, 1, 16, 16)
    terms = g_loss(hr + 0.01, hr)
    assert float(terms["lowfreq"]) == pytest.approx(0.02, rel=1e-4)
    with pytest.raises(ConfigError, match="factor"):
        build_generator_loss({"terms": {"lowfreq": {"weight": 1.0, "factor": 0.5}}})
