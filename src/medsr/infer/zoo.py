"""Moved to :mod:`medsr.zoo` (rule, choice, manifest); this module goes once every
importer has moved."""

from __future__ import annotations

from medsr.zoo.choice import default_model, default_model_for, scale_key
from medsr.zoo.manifest import EXPERIMENTAL, SHIPPED, manifest_defaults, zoo_status
from medsr.zoo.rule import (
    FALLBACK,
    GAN_PSNR_FLOOR_DB,
    MAX_MEAN_BIAS,
    choose_defaults,
    shipping_verdict,
)

__all__ = [
    "EXPERIMENTAL",
    "FALLBACK",
    "GAN_PSNR_FLOOR_DB",
    "MAX_MEAN_BIAS",
    "SHIPPED",
    "choose_defaults",
    "default_model",
    "default_model_for",
    "manifest_defaults",
    "scale_key",
    "shipping_verdict",
    "zoo_status",
]
