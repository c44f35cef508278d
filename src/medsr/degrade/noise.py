"""Counter-based random noise: a pure function of (per-sample seed, pixel index).

Noise drawn this way is part of a degradation's recorded parameters (one int64
seed per sample), is identical on CPU and CUDA, and never synchronises with the
host. Uniforms come from two rounds of the 32-bit ``lowbias32`` integer hash
(Wellons) on the pixel counter keyed by the seed, computed in int64 without
overflow; Gaussians from Box-Muller; Poisson counts by inverse-CDF search for
small means and a skew-corrected normal (Cornish-Fisher) above.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["add_gaussian", "add_poisson", "normal", "poisson", "rician", "uniform"]

_MASK32 = 0xFFFFFFFF
#: Below this mean Poisson counts are drawn exactly by inverse-CDF search.
POISSON_EXACT_BELOW = 12.0
_POISSON_STEPS = 40  # P(X > 40 | mean 12) < 1e-9


def _mul32(x: Tensor, c: int) -> Tensor:
    """(x * c) mod 2**32 for 0 <= x < 2**32, without int64 overflow."""
    low = (x & 0xFFFF) * c
    high = (((x >> 16) * c) & 0xFFFF) << 16
    return (low + high) & _MASK32


def _hash32(x: Tensor) -> Tensor:
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def uniform(seeds: Tensor, shape: tuple[int, ...], stream: int = 0) -> Tensor:
    """(B, *shape) float32 uniforms in (0, 1), one independent field per seed."""
    device = seeds.device
    count = math.prod(shape)
    counter = _hash32(torch.arange(count, device=device, dtype=torch.int64))
    key = _hash32((seeds.to(torch.int64) * 0x9E3779B1 + stream * 0x85EBCA77 + 1) & _MASK32)
    bits = _hash32(counter[None, :] ^ key[:, None])
    values = ((bits >> 8).to(torch.float32) + 0.5) * (1.0 / 2**24)
    return values.reshape(seeds.shape[0], *shape)


def normal(seeds: Tensor, shape: tuple[int, ...], stream: int = 0) -> Tensor:
    """(B, *shape) standard normal float32 (Box-Muller on paired uniforms)."""
    count = math.prod(shape)
    half = (count + 1) // 2
    u = uniform(seeds, (2, half), stream)
    radius = torch.sqrt(-2.0 * torch.log(u[:, 0]))
    angle = (2.0 * math.pi) * u[:, 1]
    z = torch.cat([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
    return z[:, :count].reshape(seeds.shape[0], *shape)


def _per_sample(value: Tensor | float, like: Tensor) -> Tensor:
    """A scalar or (B,) value broadcastable against a (B, ...) tensor."""
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    return t.reshape(-1, *([1] * (like.ndim - 1))) if t.ndim == 1 else t


def poisson(mean: Tensor, seeds: Tensor, stream: int = 0) -> Tensor:
    """Poisson counts with the given (B, ...) means (exact below 12, Cornish-Fisher above)."""
    shape = tuple(mean.shape[1:])
    lam = mean.clamp_min(0.0)
    u = uniform(seeds, shape, stream)
    small = lam.clamp_max(POISSON_EXACT_BELOW)
    term = torch.exp(-small)
    cdf = term.clone()
    count = torch.zeros_like(lam)
    for k in range(1, _POISSON_STEPS + 1):
        below = u > cdf
        count = count + below.to(lam.dtype)
        term = term * small / k
        cdf = cdf + term
    z = normal(seeds, shape, stream + 1)
    approx = torch.floor(lam + torch.sqrt(lam) * z + (z * z - 1.0) / 6.0 + 0.5).clamp_min(0.0)
    return torch.where(lam < POISSON_EXACT_BELOW, count, approx)


def add_gaussian(
    x: Tensor, sigma: Tensor | float, seeds: Tensor, gray: Tensor | None = None, stream: int = 10
) -> Tensor:
    """x + sigma * N(0, 1); where ``gray`` (B,) is true, one field shared by all channels."""
    noise = normal(seeds, tuple(x.shape[1:]), stream).to(x.dtype)
    if gray is not None:
        shared = noise[:, :1].expand_as(noise)
        noise = torch.where(_per_sample(gray, noise) > 0, shared, noise)
    return x + _per_sample(sigma, x) * noise


def add_poisson(x: Tensor, peak: Tensor | float, seeds: Tensor, stream: int = 20) -> Tensor:
    """Shot noise: ``Poisson(x * peak) / peak`` for x >= 0 (peak = counts at x = 1)."""
    p = _per_sample(peak, x)
    return poisson(x.clamp_min(0.0) * p, seeds, stream) / p


def rician(x: Tensor, sigma: Tensor | float, seeds: Tensor, stream: int = 30) -> Tensor:
    """Magnitude of x plus complex Gaussian noise: ``|x + sigma * (n1 + i n2)|``."""
    s = _per_sample(sigma, x)
    real = x + s * normal(seeds, tuple(x.shape[1:]), stream).to(x.dtype)
    imag = s * normal(seeds, tuple(x.shape[1:]), stream + 1).to(x.dtype)
    return torch.sqrt(real * real + imag * imag)
