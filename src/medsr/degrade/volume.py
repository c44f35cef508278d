"""Thick-slice degradation: through-plane slice-profile averaging of a volume.

LR slice ``j`` is centred at HR slice coordinate ``c_j = (j + 0.5) s - 0.5`` and
averages the HR slices under its slice profile, integrated over each HR slice's
extent: a box of width ``thickness`` or a Gaussian of FWHM ``thickness`` (default
``s``, contiguous slices), normalised per slice. Volumes are (D, H, W) or
(B, C, D, H, W), averaged along D; a 2-D batch (B, C, H, W) is averaged along H
(a reformatted sagittal or coronal plane), so its scale is (s, 1).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import Tensor

from medsr.degrade.base import Degradation
from medsr.degrade.resize import output_size
from medsr.errors import ConfigError

__all__ = ["ThickSlice", "slice_profile_weights"]


@lru_cache(maxsize=64)
def slice_profile_weights(depth: int, scale: float, thickness: float, profile: str) -> np.ndarray:
    """(ceil(depth / scale), depth) averaging weights, rows summing to 1."""
    out_depth = output_size(depth, 1, (1.0 / scale, 1.0))[0]
    centres = (np.arange(out_depth) + 0.5) * scale - 0.5
    lo = np.arange(depth)[None, :] - 0.5 - centres[:, None]
    hi = lo + 1.0
    if profile == "box":
        half = thickness / 2.0
        weights = np.clip(np.minimum(hi, half) - np.maximum(lo, -half), 0.0, None)
    else:
        sigma = thickness / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        erf = np.vectorize(math.erf)
        weights = 0.5 * (erf(hi / (sigma * math.sqrt(2))) - erf(lo / (sigma * math.sqrt(2))))
    sums = weights.sum(axis=1, keepdims=True)
    return weights / np.where(sums > 0, sums, 1.0)


class ThickSlice(Degradation):
    """Average ``scale`` HR slices per LR slice under a box or Gaussian slice profile."""

    name = "thick-slice"

    def __init__(
        self,
        scale: float = 4.0,
        thickness: float | None = None,
        profile: str = "box",
        clip: bool = True,
    ) -> None:
        if not isinstance(scale, int | float):
            raise ConfigError("thick-slice takes one through-plane factor")
        super().__init__((float(scale), 1.0))
        if profile not in ("box", "gaussian"):
            raise ConfigError(f"unknown slice profile {profile!r}; choose box or gaussian")
        self.profile = profile
        self.thickness = float(thickness) if thickness is not None else float(scale)
        if self.thickness <= 0:
            raise ConfigError(f"slice thickness must be positive, got {thickness}")
        self.clip = clip

    @property
    def through_plane(self) -> float:
        return self.scale[0]

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scale": self.through_plane,
            "thickness": self.thickness,
            "profile": self.profile,
            "clip": self.clip,
        }

    def _average(self, x: Tensor, dim: int) -> Tensor:
        weights = slice_profile_weights(
            int(x.shape[dim]), self.through_plane, self.thickness, self.profile
        )
        w = torch.from_numpy(weights).to(device=x.device, dtype=x.dtype)
        out = torch.tensordot(x.movedim(dim, -1), w, dims=([-1], [1])).movedim(-1, dim)
        return out.clamp(0.0, 1.0) if self.clip else out

    def apply(self, hr: Tensor, params: dict[str, Any]) -> Tensor:
        if hr.ndim == 4:
            return self._average(hr, -2)
        return self.apply_volume(hr)

    def __call__(self, hr: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.apply(hr, {})

    def apply_volume(self, volume: Tensor) -> Tensor:
        """(D, H, W) or (B, C, D, H, W) -> the same with ceil(D / s) slices."""
        if volume.ndim not in (3, 5):
            raise ConfigError(
                f"thick-slice takes (D, H, W), (B, C, D, H, W) or (B, C, H, W), "
                f"got shape {tuple(volume.shape)}"
            )
        return self._average(volume, -3)
