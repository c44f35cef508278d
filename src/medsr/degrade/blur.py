"""Gaussian blur + downsampling + additive Gaussian noise: the classic BD and DN settings.

``LR = down_s(HR * G_sigma) + n``, ``n ~ N(0, noise_sigma**2)`` in [0, 1] units
(so 30 grey levels of 8 bits is ``30/255``). Presets: ``bd`` (7x7 Gaussian,
sigma 1.6, then bicubic) and ``dn`` (bicubic, then noise sigma 30/255). Either
sigma may be a [low, high] interval, drawn per sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from medsr.degrade.base import Degradation, Range, as_range, draw_seeds, draw_uniform
from medsr.degrade.filters import gaussian_blur
from medsr.degrade.noise import add_gaussian
from medsr.degrade.resize import imresize
from medsr.errors import ConfigError

__all__ = ["GaussianBlurNoise"]

PRESETS: dict[str, dict[str, Any]] = {
    "bd": {"blur_sigma": 1.6, "kernel_size": 7, "noise_sigma": 0.0},
    "dn": {"blur_sigma": 0.0, "kernel_size": 7, "noise_sigma": 30.0 / 255.0},
}
_DOWNSAMPLERS = {"bicubic": "cubic", "bilinear": "linear", "area": "box", "nearest": "nearest"}


class GaussianBlurNoise(Degradation):
    """Blur with a Gaussian (``blur_sigma`` px, ``kernel_size`` taps), downsample, add noise."""

    name = "gaussian"

    def __init__(
        self,
        scale: float | Sequence[float] = 4.0,
        blur_sigma: Range | None = None,
        kernel_size: int | None = None,
        noise_sigma: Range | None = None,
        downsample: str = "bicubic",
        preset: str | None = None,
        clip: bool = True,
    ) -> None:
        super().__init__(scale)
        base = dict(PRESETS["bd"])
        if preset is not None:
            if preset not in PRESETS:
                raise ConfigError(f"unknown gaussian preset {preset!r}; choose bd or dn")
            base = dict(PRESETS[preset])
        self.preset = preset
        self.blur_sigma = as_range(
            blur_sigma if blur_sigma is not None else base["blur_sigma"], "blur_sigma"
        )
        self.noise_sigma = as_range(
            noise_sigma if noise_sigma is not None else base["noise_sigma"], "noise_sigma"
        )
        if kernel_size is None:
            kernel_size = (
                base["kernel_size"]
                if blur_sigma is None
                else 2 * math.ceil(3 * self.blur_sigma[1]) + 1
            )
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size must be a positive odd number, got {kernel_size}")
        self.kernel_size = int(kernel_size)
        if downsample not in _DOWNSAMPLERS:
            raise ConfigError(
                f"unknown downsample {downsample!r}; choose one of {', '.join(_DOWNSAMPLERS)}"
            )
        self.downsample = downsample
        self.clip = clip

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "blur_sigma": list(self.blur_sigma),
            "kernel_size": self.kernel_size,
            "noise_sigma": list(self.noise_sigma),
            "downsample": self.downsample,
            "clip": self.clip,
        }

    def sample_params(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> dict[str, Any]:
        return {
            "blur_sigma": draw_uniform(generator, batch_size, *self.blur_sigma, device),
            "noise_sigma": draw_uniform(generator, batch_size, *self.noise_sigma, device),
            "noise_seed": draw_seeds(generator, batch_size, device),
        }

    def apply(self, hr: Tensor, params: dict[str, Any]) -> Tensor:
        x = hr
        if self.blur_sigma[1] > 0:
            x = gaussian_blur(x, params["blur_sigma"], self.kernel_size)
        sy, sx = self.scale
        if (sy, sx) != (1.0, 1.0):
            x = imresize(x, scale=(1.0 / sy, 1.0 / sx), kernel=_DOWNSAMPLERS[self.downsample])
        if self.noise_sigma[1] > 0:
            x = add_gaussian(x, params["noise_sigma"], params["noise_seed"])
        return x.clamp(0.0, 1.0) if self.clip else x
