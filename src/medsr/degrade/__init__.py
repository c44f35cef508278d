"""Degradations: how an HR image becomes the LR image a model learns to invert.

``build(name_or_config, **params)`` makes one; ``available()`` lists the names.
Every degradation maps (B, C, H, W) in [0, 1] to an LR batch, knows its per-axis
``scale``, draws recorded random parameters with ``sample_params`` and applies
them deterministically with ``apply``.
"""

from __future__ import annotations

from medsr.degrade.base import Degradation
from medsr.degrade.registry import available, build, describe, register

__all__ = ["Degradation", "available", "build", "describe", "register"]
