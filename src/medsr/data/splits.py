"""Train/validation split by patient (or by file where no patient id is known), seeded.

Every slice of a patient lands on one side, so a model is never validated on
the patient it trained on. The split is a fixed function of the sorted group
names and the seed: the same folder and seed give the same split on every
machine and every rank.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from medsr.data.records import ImageRecord
from medsr.errors import ConfigError


def split_records(
    records: Sequence[ImageRecord], val_fraction: float, seed: int = 0
) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """``(train, val)``: about ``val_fraction`` of the groups (at least one) go to validation.

    With a single group nothing can be held out: the validation list is empty and
    the caller decides what to do (the trainer then validates on training images
    and says so).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"data.val_fraction must be in [0, 1); got {val_fraction}")
    groups = sorted({r.group for r in records})
    if val_fraction == 0.0 or len(groups) < 2:
        return list(records), []
    n_val = min(len(groups) - 1, max(1, math.floor(len(groups) * val_fraction + 0.5)))
    order = np.random.default_rng(seed).permutation(len(groups))
    val_groups = {groups[i] for i in order[:n_val]}
    train = [r for r in records if r.group not in val_groups]
    val = [r for r in records if r.group in val_groups]
    return train, val
