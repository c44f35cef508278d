"""MR k-space truncation: keep the central 1/s of k-space, as a lower-resolution acquisition.

``K = fftshift(fft2(x))``; the LR image is ``|ifft2(ifftshift(K_c))| * (h w) / (H W)``
with ``K_c`` the centred (h, w) = (ceil(H/sy), ceil(W/sx)) block, so a constant keeps
its value and band-limited content is sampled exactly; sharp edges ring (Gibbs).
Options: partial Fourier (keep only a fraction >= 0.5 of the phase-encode rows,
zero-filled) and Rician noise (complex Gaussian noise of ``noise_sigma`` per
channel, in [0, 1] units, before the magnitude).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from medsr.degrade.base import Degradation, Range, as_range, draw_seeds, draw_uniform
from medsr.degrade.noise import normal
from medsr.errors import ConfigError

__all__ = ["MRKSpace", "kspace_crop"]


def kspace_crop(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Centred k-space block of the last two axes: (..., H, W) real -> (..., h, w) complex."""
    h, w = x.shape[-2:]
    k = torch.fft.fftshift(torch.fft.fft2(x.to(torch.float32)), dim=(-2, -1))
    top, left = h // 2 - size[0] // 2, w // 2 - size[1] // 2
    return k[..., top : top + size[0], left : left + size[1]]


class MRKSpace(Degradation):
    """Central k-space crop (Gibbs ringing), optional partial Fourier and Rician noise."""

    name = "mr-kspace"

    def __init__(
        self,
        scale: float | Sequence[float] = 2.0,
        partial_fourier: float = 1.0,
        noise_sigma: Range = 0.0,
        clip: bool = True,
    ) -> None:
        super().__init__(scale)
        if not 0.5 <= partial_fourier <= 1.0:
            raise ConfigError(f"partial_fourier must lie in [0.5, 1], got {partial_fourier}")
        self.partial_fourier = float(partial_fourier)
        self.noise_sigma = as_range(noise_sigma, "noise_sigma")
        self.clip = clip

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "partial_fourier": self.partial_fourier,
            "noise_sigma": list(self.noise_sigma),
            "clip": self.clip,
        }

    def sample_params(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> dict[str, Any]:
        return {
            "noise_sigma": draw_uniform(generator, batch_size, *self.noise_sigma, device),
            "noise_seed": draw_seeds(generator, batch_size, device),
        }

    def apply(self, hr: Tensor, params: dict[str, Any]) -> Tensor:
        h, w = hr.shape[-2:]
        size = self.lr_size(int(h), int(w))
        k = kspace_crop(hr, size)
        if self.partial_fourier < 1.0:
            kept = round(size[0] * self.partial_fourier)
            mask = (torch.arange(size[0], device=hr.device) < kept).to(k.real.dtype)
            k = k * mask.reshape(-1, 1)
        image = torch.fft.ifft2(torch.fft.ifftshift(k, dim=(-2, -1)))
        image = image * (size[0] * size[1] / (int(h) * int(w)))
        if self.noise_sigma[1] > 0:
            sigma = params["noise_sigma"].reshape(-1, 1, 1, 1)
            shape = tuple(image.shape[1:])
            real = image.real + sigma * normal(params["noise_seed"], shape, stream=0)
            imag = image.imag + sigma * normal(params["noise_seed"], shape, stream=1)
            magnitude = torch.sqrt(real * real + imag * imag)
        else:
            magnitude = image.abs()
        magnitude = magnitude.to(hr.dtype)
        return magnitude.clamp(0.0, 1.0) if self.clip else magnitude
