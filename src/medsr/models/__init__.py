"""The published SR architectures behind one interface, plus discriminators and baselines.

``build(name, **overrides)`` makes a generator or interpolation baseline (an
:class:`SRModel`: ``forward(lr, scale=None)``), ``build_discriminator`` a
discriminator; ``available()`` lists the names and ``info(name)`` describes one.

Attributes load on first use, so importing ``medsr.models.cli`` (for
``medsr --help``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medsr.models.base import SRModel, as_scale_pair, output_size
    from medsr.models.discriminators import Discriminator
    from medsr.models.registry import (
        available,
        available_discriminators,
        build,
        build_discriminator,
        count_parameters,
        forward_gflops,
        info,
    )

_EXPORTS = {
    "SRModel": "medsr.models.base",
    "as_scale_pair": "medsr.models.base",
    "output_size": "medsr.models.base",
    "Discriminator": "medsr.models.discriminators",
    "available": "medsr.models.registry",
    "available_discriminators": "medsr.models.registry",
    "build": "medsr.models.registry",
    "build_discriminator": "medsr.models.registry",
    "count_parameters": "medsr.models.registry",
    "forward_gflops": "medsr.models.registry",
    "info": "medsr.models.registry",
}

__all__ = [
    "Discriminator",
    "SRModel",
    "as_scale_pair",
    "available",
    "available_discriminators",
    "build",
    "build_discriminator",
    "count_parameters",
    "forward_gflops",
    "info",
    "output_size",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'medsr.models' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
