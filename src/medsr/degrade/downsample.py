"""Interpolation downsampling: bicubic (the SR benchmark standard), bilinear, area.

``LR = imresize(HR, 1 / s)`` per axis with MATLAB semantics (antialiased when
shrinking), clipped to [0, 1]. Deterministic: no random parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from medsr.degrade.base import Degradation
from medsr.degrade.resize import imresize

__all__ = ["Area", "Bicubic", "Bilinear", "InterpolationDownsample"]


class InterpolationDownsample(Degradation):
    """``imresize(hr, 1 / scale, kernel)``; output ``ceil(H / sy) x ceil(W / sx)``."""

    kernel = "cubic"

    def __init__(
        self, scale: float | Sequence[float] = 4.0, antialias: bool = True, clip: bool = True
    ) -> None:
        super().__init__(scale)
        self.antialias = antialias
        self.clip = clip

    def config(self) -> dict[str, Any]:
        return {**super().config(), "antialias": self.antialias, "clip": self.clip}

    def apply(self, hr: Tensor, params: dict[str, Any]) -> Tensor:
        sy, sx = self.scale
        lr = imresize(hr, scale=(1.0 / sy, 1.0 / sx), kernel=self.kernel, antialias=self.antialias)
        return lr.clamp(0.0, 1.0) if self.clip else lr


class Bicubic(InterpolationDownsample):
    """Keys cubic (a = -0.5), antialiased: MATLAB ``imresize(hr, 1/s, 'bicubic')``."""

    name = "bicubic"
    kernel = "cubic"


class Bilinear(InterpolationDownsample):
    """Triangle kernel, antialiased: MATLAB ``imresize(hr, 1/s, 'bilinear')``."""

    name = "bilinear"
    kernel = "linear"


class Area(InterpolationDownsample):
    """Box kernel: the mean over each s x s block for integer s."""

    name = "area"
    kernel = "box"
