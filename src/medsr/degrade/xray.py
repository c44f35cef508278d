"""Digital radiography: detector blur (Gaussian MTF), pixel binning, quantum noise.

The detector's point spread is a Gaussian of ``mtf_sigma`` HR pixels (MTF
``exp(-2 pi^2 sigma^2 f^2)``); binning averages s x s HR pixels per LR pixel (the
area kernel for non-integer s); quantum noise treats the signal as proportional
to the photon count: ``LR = Poisson(dose * x) / dose`` with ``dose`` photons per
LR pixel at full intensity (relative noise ``1 / sqrt(dose * x)``). ``dose = 0``
disables the noise. ``read_noise`` adds the detector's electronic (Gaussian) noise of that
standard deviation in [0, 1] units after the quantum noise: Poisson-Gaussian noise, the
standard model of a flat-panel or CR reader.

Grid: s x s binning keeps the field-of-view edges (an area shrink): LR pixel ``j`` is the
mean of HR pixels ``j s .. j s + s - 1``, its centre at HR index ``j s + (s - 1) / 2``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from medsr.degrade.base import Degradation, Range, as_range, draw_seeds, draw_uniform
from medsr.degrade.filters import gaussian_blur
from medsr.degrade.noise import add_poisson, normal
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
        read_noise: Range = 0.0,
    ) -> None:
        super().__init__(scale)
        self.mtf_sigma = as_range(mtf_sigma, "mtf_sigma")
        self.dose = as_range(dose, "dose")
        if self.dose[0] < 0 or (self.dose[0] == 0 < self.dose[1]):
            raise ConfigError(
                f"dose must be positive photons per pixel (or 0 for none), got {dose}"
            )
        self.clip = clip
        self.read_noise = as_range(read_noise, "read_noise")
        if self.read_noise[0] < 0:
            raise ConfigError(f"read_noise must be >= 0, got {read_noise}")

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "mtf_sigma": list(self.mtf_sigma),
            "dose": list(self.dose),
            "clip": self.clip,
            "read_noise": list(self.read_noise),
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
            "read_noise": draw_uniform(generator, batch_size, *self.read_noise, device),
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
        if self.read_noise[1] > 0:
            sigma = params["read_noise"].reshape(-1, 1, 1, 1).to(x.dtype)
            x = x + sigma * normal(params["noise_seed"], tuple(x.shape[1:]), stream=40).to(x.dtype)
        return x.clamp(0.0, 1.0) if self.clip else x
