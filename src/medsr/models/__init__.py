"""The published SR architectures behind one interface, plus discriminators and baselines.

``build(name, **overrides)`` makes a generator or interpolation baseline (an
:class:`SRModel`: ``forward(lr, scale=None)``), ``build_discriminator`` a
discriminator; ``available()`` lists the names and ``info(name)`` describes one.
"""

from __future__ import annotations

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
