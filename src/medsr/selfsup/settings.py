"""The options of a self-supervised run: CLI flags and API keywords, checked in one place."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from medsr.errors import ConfigError
from medsr.selfsup.profiles import PROFILES

__all__ = ["DEFAULT_BUDGET_S", "MAX_ITERATIONS", "SelfSupervisedSettings"]

#: Training seconds by default: with inference, a 256x256x40 volume takes a few minutes
#: on two CPU cores.
DEFAULT_BUDGET_S = 120.0
#: Iterations at most, whatever the budget (a GPU reaches it in well under the budget).
MAX_ITERATIONS = 5000


@dataclass
class SelfSupervisedSettings:
    """Options of a self-supervised run (CLI flags and API keywords)."""

    #: target slice spacing in mm (default: the mean in-plane spacing, isotropic voxels)
    spacing: float | None = None
    slice_thickness: float | None = None
    slice_profile: str = "box"
    #: training seconds of the correction network; 0: the least-squares filter alone
    budget_s: float = DEFAULT_BUDGET_S
    max_iterations: int = MAX_ITERATIONS
    #: a learnt model to re-apply, or a MIASSR (zoo name or file) to start from
    model: str | Path | None = None
    #: without ``model``: the zoo MIASSR whose features the network starts from, when the
    #: zoo ships it (None: from scratch, at ``num_blocks`` x ``channels``)
    start_from: str | None = "miassr"
    num_blocks: int = 4
    channels: int = 24
    patch: int = 96
    batch_size: int = 8
    learning_rate: float = 1e-3
    seed: int = 0
    device: str = "auto"
    inference_batch: int | None = None

    def check(self) -> None:
        if self.spacing is not None and not (math.isfinite(self.spacing) and self.spacing > 0):
            raise ConfigError(f"target spacing must be positive mm, got {self.spacing}")
        if self.slice_thickness is not None and not (
            math.isfinite(self.slice_thickness) and self.slice_thickness > 0
        ):
            raise ConfigError(f"--slice-thickness must be positive mm, got {self.slice_thickness}")
        if self.slice_profile not in PROFILES:
            raise ConfigError(
                f"unknown slice profile {self.slice_profile!r}; choose box or gaussian"
            )
        if not (math.isfinite(self.budget_s) and self.budget_s >= 0):
            raise ConfigError(
                f"--budget-s must be a non-negative number of seconds, got {self.budget_s}"
            )
        if self.patch < 16 or self.batch_size < 1 or self.max_iterations < 0:
            raise ConfigError("patch must be >= 16 pixels, batch size >= 1, iterations >= 0")
