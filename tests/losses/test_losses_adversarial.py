"""Adversarial losses against hand-computed values on fixed logits; the gradient penalty."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from medsr.errors import ConfigError
from medsr.losses import AdversarialLoss, GanKind, gradient_penalty

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def bce(logits: list[float], target: float) -> float:
    """Mean binary cross-entropy with logits: target 1 -> softplus(-x), 0 -> softplus(x)."""
    return sum(target * softplus(-x) + (1 - target) * softplus(x) for x in logits) / len(logits)


def test_vanilla() -> None:
    loss = AdversarialLoss("vanilla")
    assert float(loss.generator_loss(FAKE)) == pytest.approx(bce([0.5, -3.0], 1))
    expected = bce([2.0, -1.0], 1) + bce([0.5, -3.0], 0)
    assert float(loss.discriminator_loss(REAL, FAKE)) == pytest.approx(expected)


def test_vanilla_with_label_smoothing() -> None:
    loss = AdversarialLoss("gan", real_label=0.9)
    assert float(loss.discriminator_terms(REAL, FAKE)["d_real"]) == pytest.approx(
        bce([2.0, -1.0], 0.9)
    )


def test_lsgan() -> None:
    loss = AdversarialLoss("lsgan")
    assert float(loss.generator_loss(FAKE)) == pytest.approx((0.25 + 16.0) / 2)
    assert float(loss.discriminator_loss(REAL, FAKE)) == pytest.approx(
        (1.0 + 4.0) / 2 + (0.25 + 9.0) / 2
    )


def test_hinge() -> None:
    loss = AdversarialLoss("hinge")
    assert float(loss.generator_loss(FAKE)) == pytest.approx(1.25)
    # relu(1 - r): 0, 2 -> 1 ; relu(1 + f): 1.5, 0 -> 0.75
    assert float(loss.discriminator_loss(REAL, FAKE)) == pytest.approx(1.75)


def test_wgan() -> None:
    loss = AdversarialLoss("wgan-gp")
    assert float(loss.generator_loss(FAKE)) == pytest.approx(1.25)
    assert float(loss.discriminator_loss(REAL, FAKE)) == pytest.approx(-1.25 - 0.5)


def test_relativistic_average() -> None:
    loss = AdversarialLoss("ragan")
    mean_r, mean_f = 0.5, -1.25
    real_rel = [2.0 - mean_f, -1.0 - mean_f]
    fake_rel = [0.5 - mean_r, -3.0 - mean_r]
    g = 0.5 * (bce(real_rel, 0) + bce(fake_rel, 1))
    d = 0.5 * (bce(real_rel, 1) + bce(fake_rel, 0))
    assert float(loss.generator_loss(FAKE, REAL)) == pytest.approx(g)
    assert float(loss.discriminator_loss(REAL, FAKE)) == pytest.approx(d)
    with pytest.raises(ConfigError, match="D\\(hr\\)"):
        loss.generator_loss(FAKE)


def test_generator_side_gradients_flow_to_fake_logits_only() -> None:
    for kind in GanKind:
        fake = FAKE.clone().requires_grad_()
        real = REAL.clone().requires_grad_()
        AdversarialLoss(kind).generator_loss(fake, real).backward()
        assert fake.grad is not None and float(fake.grad.abs().sum()) > 0, kind
        assert real.grad is None, kind


def test_unknown_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="wgan-gp"):
        GanKind.parse("minimax")
    assert GanKind.parse("WGAN_GP") is GanKind.WGAN_GP


class LinearCritic(nn.Module):
    """D(x) = <w, x>: its input gradient is w everywhere, so GP = (|w| - 1)^2 exactly."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(dim=1)


def test_gradient_penalty_known_value_and_differentiable() -> None:
    w = torch.full((1, 2, 2), 1.0)  # |w| = 2
    critic = LinearCritic(w)
    real, fake = torch.rand(3, 1, 2, 2), torch.rand(3, 1, 2, 2)
    gp = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0))
    assert gp.item() == pytest.approx(1.0)
    gp.backward()
    # d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w| = 2 * 1 * 1 / 2 = 1 per entry
    assert critic.w.grad is not None
    assert torch.allclose(critic.w.grad, torch.full_like(w, 1.0))


def test_gradient_penalty_on_a_conv_critic_reaches_its_weights() -> None:
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3))
    gp = gradient_penalty(critic, torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8))
    assert gp.item() > 0
    gp.backward()
    for layer in (critic[0], critic[2]):
        assert isinstance(layer, nn.Conv2d)
        assert layer.weight.grad is not None and float(layer.weight.grad.abs().sum()) > 0
