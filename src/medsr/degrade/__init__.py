"""Degradations: how an HR image becomes the LR image a model learns to invert.

``build(name_or_config, **params)`` makes one; ``available()`` lists the names.
Every degradation maps (B, C, H, W) in [0, 1] to an LR batch, knows its per-axis
``scale``, draws recorded random parameters with ``sample_params`` and applies
them deterministically with ``apply``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medsr.degrade.base import Degradation
    from medsr.degrade.registry import available, build, describe, register

__all__ = ["Degradation", "available", "build", "describe", "register"]

_HOMES = {
    "Degradation": "medsr.degrade.base",
    "available": "medsr.degrade.registry",
    "build": "medsr.degrade.registry",
    "describe": "medsr.degrade.registry",
    "register": "medsr.degrade.registry",
}


def __getattr__(name: str) -> Any:
    # Imported on first use so that `medsr --help` does not pay for torch.
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'medsr.degrade' has no attribute {name!r}")
