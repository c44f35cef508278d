"""Ultrasound lateral degradation: resolution lost along x only, as B-mode scan lines are.

``LR[:, j] = HR[:, floor(j * r)]`` for ``j < ceil(W / r)`` (column decimation, as in
the SRGAN-ultrasound paper; r may be non-integer), optionally after a lateral
Gaussian beam blur of ``beam_sigma`` HR pixels and multiplicative speckle
``x * (1 + k (R / sqrt(pi/2) - 1))`` with R Rayleigh-distributed (fully developed
speckle amplitude, mean 1) and strength k. Rows are never mixed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from medsr.degrade.base import Degradation, Range, as_range, draw_seeds, draw_uniform
from medsr.degrade.filters import gaussian_blur
from medsr.degrade.noise import uniform
from medsr.degrade.resize import imresize
from medsr.errors import ConfigError

__all__ = ["UltrasoundLateral"]


class UltrasoundLateral(Degradation):
    """Keep every r-th column (``mode='decimate'``) or cubic-resize x only (``mode='cubic'``)."""

    name = "ultrasound-lateral"

    def __init__(
        self,
        scale: float | Sequence[float] = 4.0,
        beam_sigma: Range = 0.0,
        speckle: Range = 0.0,
        mode: str = "decimate",
        clip: bool = True,
    ) -> None:
        pair = [float(scale)] if isinstance(scale, int | float) else [float(v) for v in scale]
        lateral = pair[-1]
        if len(pair) == 2 and pair[0] != 1.0:
            raise ConfigError("ultrasound-lateral keeps every row: its scale is (1, r)")
        super().__init__((1.0, lateral))
        if mode not in ("decimate", "cubic"):
            raise ConfigError(f"unknown ultrasound-lateral mode {mode!r}; choose decimate or cubic")
        self.mode = mode
        self.beam_sigma = as_range(beam_sigma, "beam_sigma")
        self.speckle = as_range(speckle, "speckle")
        self.clip = clip

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scale": self.scale[1],
            "beam_sigma": list(self.beam_sigma),
            "speckle": list(self.speckle),
            "mode": self.mode,
            "clip": self.clip,
        }

    def sample_params(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> dict[str, Any]:
        return {
            "beam_sigma": draw_uniform(generator, batch_size, *self.beam_sigma, device),
            "speckle": draw_uniform(generator, batch_size, *self.speckle, device),
            "speckle_seed": draw_seeds(generator, batch_size, device),
        }

    def apply(self, hr: Tensor, params: dict[str, Any]) -> Tensor:
        x = hr
        if self.beam_sigma[1] > 0:
            size = 2 * math.ceil(3.0 * self.beam_sigma[1]) + 1
            x = gaussian_blur(x, params["beam_sigma"], size, axes="x")
        if self.speckle[1] > 0:
            u = uniform(params["speckle_seed"], tuple(x.shape[1:]))
            rayleigh = torch.sqrt(-2.0 * torch.log(u)) / math.sqrt(math.pi / 2)
            strength = params["speckle"].reshape(-1, 1, 1, 1)
            x = x * (1.0 + strength * (rayleigh.to(x.dtype) - 1.0))
        r = self.scale[1]
        if self.mode == "cubic":
            x = imresize(x, scale=(1.0, 1.0 / r), kernel="cubic")
        else:
            width = self.lr_size(x.shape[-2], x.shape[-1])[1]
            columns = torch.floor(torch.arange(width, dtype=torch.float64) * r).long()
            x = x[..., columns.clamp_max(x.shape[-1] - 1).to(x.device)]
        return x.clamp(0.0, 1.0) if self.clip else x
