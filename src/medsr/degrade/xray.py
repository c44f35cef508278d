"""Digital radiography: detector blur (Gaussian MTF), pixel binning, quantum noise.

The detector's point spread is a Gaussian of ``mtf_sigma`` HR pixels (MTF
``exp(-2 pi^2 sigma^2 f^2)``); binning averages s x s HR pixels per LR pixel (the
area kernel for non-integer s); quantum noise treats the signal as proportional
to the photon count: ``LR = Poisson(dose * x) / dose`` with ``dose`` photons per
LR pixel at full intensity (relative noise ``1 / sqrt(dose * x)``). ``dose = 0``
disables the noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from medsr.degrade.base import Degradation, Range, as_range, draw_seeds, draw_uniform
from medsr.degrade.filters import gaussian_blur
from medsr.degrade.noise import add_poisson
from medsr.degrade.resize import imresize
from medsr.errors import ConfigError

__all__ = ["XRay"]


class XRay(Degradation):
    """Gaussian-MTF blur, s x s binning, Poisson noise at ``dose`` photons/pixel."""

    name = "xray"

    def __init__(
        self,
        scale: float | Sequence[float] = 2.0,
        mtf_sigma: Range = 0.5,
        dose: Range = 10000.0,
        clip: bool = True,
    ) -> None:
        super().__init__(scale)
        self.mtf_sigma = as_range(mtf_sigma, "mtf_sigma")
        self.dose = as_range(dose, "dose")
        if self.dose[0] < 0 or (self.dose[0] == 0 < self.dose[1]):
            raise ConfigError(
                f"dose must be positive photons per pixel (or 0 for none), got {dose}"
            )
        self.clip = clip

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "mtf_sigma": list(self.mtf_sigma),
            "dose": list(self.dose),
            "clip": self.clip,
        }

    def sample_params(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> dict[str, Any]:
        return {
            "mtf_sigma": draw_uniform(generator, batch_size, *self.mtf_sigma, device),
            "dose": draw_uniform(generator, batch_size, *self.dose, device),
            "noise_seed": draw_seeds(generator, batch_size, device),
        }

    def apply(self, hr: Tensor, params: dict[str, Any]) -> Tensor:
        x = hr
        if self.mtf_sigma[1] > 0:
            size = 2 * math.ceil(3.0 * self.mtf_sigma[1]) + 1
            x = gaussian_blur(x, params["mtf_sigma"], size)
        sy, sx = self.scale
        if (sy, sx) != (1.0, 1.0):
            x = imresize(x, scale=(1.0 / sy, 1.0 / sx), kernel="box")
        if self.dose[1] > 0:
            x = add_poisson(x, params["dose"], params["noise_seed"])
        return x.clamp(0.0, 1.0) if self.clip else x
