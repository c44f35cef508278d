"""Adversarial losses, generator and discriminator sides, and the WGAN gradient penalty.

With ``r = D(hr)`` and ``f = D(sr)`` the raw discriminator outputs (logits or
critic scores), means taken over all outputs:

============  ==========================================  ===============================
kind          discriminator                               generator
============  ==========================================  ===============================
vanilla       BCE(r, 1) + BCE(f, 0)                       BCE(f, 1) (non-saturating)
lsgan         mean (r - 1)^2 + mean f^2                   mean (f - 1)^2
hinge         mean relu(1 - r) + mean relu(1 + f)         -mean f
ragan         [BCE(r - E f, 1) + BCE(f - E r, 0)] / 2     [BCE(r - E f, 0) + BCE(f - E r, 1)] / 2
wgan-gp       mean f - mean r + lambda * GP               -mean f
============  ==========================================  ===============================

BCE is binary cross-entropy on logits. ``GP = E (|grad_x D(x)|_2 - 1)^2`` at
random points between real and fake samples (Gulrajani et al. 2017, lambda 10).
"""

from __future__ import annotations

import enum

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medsr.errors import ConfigError

__all__ = ["AdversarialLoss", "GanKind", "gradient_penalty"]


class GanKind(str, enum.Enum):
    """The adversarial objectives medsr implements."""

    VANILLA = "vanilla"
    LSGAN = "lsgan"
    HINGE = "hinge"
    RAGAN = "ragan"
    WGAN_GP = "wgan-gp"

    @classmethod
    def parse(cls, value: str | GanKind) -> GanKind:
        if isinstance(value, GanKind):
            return value
        key = value.strip().lower().replace("_", "-")
        aliases = {"gan": "vanilla", "bce": "vanilla", "wgan": "wgan-gp", "wgangp": "wgan-gp"}
        key = aliases.get(key, key)
        try:
            return cls(key)
        except ValueError:
            raise ConfigError(
                f"unknown GAN loss {value!r}; choose one of " + ", ".join(k.value for k in cls)
            ) from None

    @property
    def needs_real_for_generator(self) -> bool:
        """Whether the generator side needs D(hr) too (relativistic losses)."""
        return self is GanKind.RAGAN


def _bce(logits: Tensor, target: float) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


class AdversarialLoss(nn.Module):
    """Generator and discriminator objectives of one GAN kind (see the module table)."""

    def __init__(self, kind: str | GanKind = GanKind.VANILLA, real_label: float = 1.0) -> None:
        super().__init__()
        self.kind = GanKind.parse(kind)
        self.real_label = float(real_label)

    def generator_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        """Loss the generator minimises, from D's outputs on SR (and on HR for RaGAN)."""
        kind = self.kind
        if kind is GanKind.VANILLA:
            return _bce(fake, self.real_label)
        if kind is GanKind.LSGAN:
            return (fake - self.real_label).pow(2).mean()
        if kind in (GanKind.HINGE, GanKind.WGAN_GP):
            return -fake.mean()
        if real is None:
            raise ConfigError("the relativistic (ragan) generator loss needs D(hr) as well")
        real = real.detach()
        return 0.5 * (_bce(real - fake.mean(), 0.0) + _bce(fake - real.mean(), self.real_label))

    def discriminator_terms(self, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """The discriminator loss split into its real and fake parts (without any GP)."""
        kind = self.kind
        if kind is GanKind.VANILLA:
            return {"d_real": _bce(real, self.real_label), "d_fake": _bce(fake, 0.0)}
        if kind is GanKind.LSGAN:
            return {"d_real": (real - self.real_label).pow(2).mean(), "d_fake": fake.pow(2).mean()}
        if kind is GanKind.HINGE:
            return {"d_real": F.relu(1.0 - real).mean(), "d_fake": F.relu(1.0 + fake).mean()}
        if kind is GanKind.WGAN_GP:
            return {"d_real": -real.mean(), "d_fake": fake.mean()}
        return {
            "d_real": 0.5 * _bce(real - fake.mean(), self.real_label),
            "d_fake": 0.5 * _bce(fake - real.mean(), 0.0),
        }

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        """Sum of :meth:`discriminator_terms` (the gradient penalty is separate)."""
        terms = self.discriminator_terms(real, fake)
        return terms["d_real"] + terms["d_fake"]

    def extra_repr(self) -> str:
        return f"kind={self.kind.value}, real_label={self.real_label}"


def gradient_penalty(
    discriminator: nn.Module,
    real: Tensor,
    fake: Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``E (|grad D(x_hat)|_2 - 1)^2`` with ``x_hat = e real + (1 - e) fake``, e ~ U(0, 1) per sample.

    Built with ``create_graph=True`` so the penalty itself back-propagates into
    the discriminator's parameters.
    """
    if real.shape != fake.shape:
        raise ConfigError(
            f"gradient penalty needs real and fake of one shape: {real.shape} vs {fake.shape}"
        )
    shape = [real.shape[0]] + [1] * (real.ndim - 1)
    eps = torch.rand(shape, generator=generator, device="cpu", dtype=torch.float32)
    eps = eps.to(device=real.device, dtype=real.dtype)
    mixed = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    scores = discriminator(mixed)
    if isinstance(scores, tuple):
        scores = scores[0]
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)
    return (norm - 1.0).pow(2).mean()
