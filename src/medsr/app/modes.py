"""The app's two modes and the per-axis scales they run at."""

from __future__ import annotations

import enum

__all__ = ["Mode", "ScalePair", "format_scale"]

#: A scale per in-plane axis, (rows, columns).
ScalePair = tuple[float, float]


class Mode(str, enum.Enum):
    """Enhance: super-resolve the image as it is. Simulate: degrade it first, then compare."""

    ENHANCE = "enhance"
    SIMULATE = "simulate"


def format_scale(scale: ScalePair) -> str:
    """``(2, 2)`` -> ``"×2"``; ``(1, 4)`` -> ``"×(1, 4)"`` (rows, columns)."""
    sy, sx = scale
    return f"×{sy:g}" if sy == sx else f"×({sy:g}, {sx:g})"
