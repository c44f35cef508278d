"""Pixel and structure losses: known values, agreement with the SSIM metric, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from medsr.errors import ConfigError
from medsr.losses import (
    CharbonnierLoss,
    DSSIMLoss,
    FeatureMatchingLoss,
    GradientLoss,
    L1Loss,
    MSELoss,
    SSIMLoss,
    TotalVariationLoss,
)
from medsr.metrics import ssim


def test_pixel_losses_on_known_values() -> None:
    sr = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    hr = torch.tensor([[[[1.0, 1.0], [0.0, 3.0]]]])
    assert float(L1Loss()(sr, hr)) == pytest.approx(3.0 / 4)
    assert float(MSELoss()(sr, hr)) == pytest.approx(5.0 / 4)
    eps = 0.5
    expected = (math.sqrt(1 + eps**2) + 2 * eps + math.sqrt(4 + eps**2)) / 4
    assert float(CharbonnierLoss(eps)(sr, hr)) == pytest.approx(expected)


def test_total_variation_matches_the_srgan_formula() -> None:
    x = torch.tensor([[[[0.0, 1.0, 3.0], [1.0, 1.0, 1.0]]]])
    # vertical diffs: 1, 0, -2 (mean sq 5/3); horizontal: 1, 2, 0, 0 (mean sq 5/4)
    assert float(TotalVariationLoss()(x)) == pytest.approx(2 * (5 / 3 + 5 / 4))
    assert float(TotalVariationLoss("l1")(x)) == pytest.approx(3 / 3 + 3 / 4)
    with pytest.raises(ConfigError):
        TotalVariationLoss("cubic")


def test_gradient_loss_known_value_and_volume_support() -> None:
    hr = torch.zeros(1, 1, 3, 3)
    sr = torch.zeros(1, 1, 3, 3)
    sr[0, 0, 1, 1] = 1.0
    # d/dy of sr: entries (0,1)->+1, (1,1)->-1 out of 6; same for d/dx.
    assert float(GradientLoss()(sr, hr)) == pytest.approx(2 / 6)
    assert float(GradientLoss()(hr + 5.0, hr)) == 0.0
    vol = torch.rand(1, 1, 4, 5, 5)
    assert float(GradientLoss()(vol, vol)) == 0.0
    assert float(GradientLoss()(2 * vol, vol)) > 0.0


def test_dssim_agrees_with_the_metric_and_has_a_gradient() -> None:
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(2, 1, 24, 24, generator=g, dtype=torch.float64)
    sr = (hr + 0.1 * torch.randn(hr.shape, generator=g, dtype=torch.float64)).requires_grad_()
    metric = float(ssim(sr.detach(), hr, 1.0).mean())
    assert SSIMLoss()(sr, hr).item() == pytest.approx(1 - metric, abs=1e-6)
    loss = DSSIMLoss()(sr, hr)
    assert loss.item() == pytest.approx((1 - metric) / 2, abs=1e-6)
    loss.backward()
    assert sr.grad is not None and float(sr.grad.abs().sum()) > 0
    assert float(DSSIMLoss()(hr, hr.clone())) == pytest.approx(0.0, abs=1e-9)


def test_feature_matching_is_the_mean_layer_l1() -> None:
    fake = [torch.ones(1, 2, 4, 4, requires_grad=True), torch.zeros(1, 3, 2, 2, requires_grad=True)]
    real = [torch.zeros(1, 2, 4, 4), torch.full((1, 3, 2, 2), 3.0)]
    loss = FeatureMatchingLoss()(fake, real)
    assert loss.item() == pytest.approx((1.0 + 3.0) / 2)
    loss.backward()
    assert all(f.grad is not None and float(f.grad.abs().sum()) > 0 for f in fake)
    with pytest.raises(ConfigError, match="feature lists"):
        FeatureMatchingLoss()(fake, real[:1])
