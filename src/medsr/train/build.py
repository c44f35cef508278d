"""What a config describes, built and checked before training starts: the training and
validation images, and the networks (the generator with its degradation or its scale
sampling, the discriminator)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from medsr import degrade, models
from medsr.data.datasets import SliceDataset
from medsr.data.layouts import records_for
from medsr.data.splits import split_records
from medsr.errors import ConfigError
from medsr.models.base import SRModel
from medsr.train.config import Config

__all__ = ["Networks", "build_datasets", "build_networks"]

log = logging.getLogger("medsr.train")


def build_datasets(data: Mapping[str, Any]) -> tuple[SliceDataset, SliceDataset, bool]:
    """(training slices, validation slices, whether validation reuses the training images).

    Validation images come from ``data.val_options`` (their own role, sharing no subject
    with training) or from a patient-level split of the records; with one patient group
    the run validates on its training images.
    """
    records = records_for(data["layout"], data.get("root"), **dict(data["options"]))
    if data["val_options"] is not None:
        # Held-out validation images of their own (the corpus's val role): no split.
        val_opts = {**dict(data["options"]), **dict(data["val_options"])}
        train = records
        val = records_for(data["layout"], data.get("root"), **val_opts)
        shared = {r.group for r in train} & {r.group for r in val}
        if shared:
            raise ConfigError(
                f"config key data.val_options: {len(shared)} subject(s) are in both the "
                f"training and validation images (e.g. {sorted(shared)[0]})"
            )
    else:
        train, val = split_records(records, float(data["val_fraction"]), int(data["split_seed"]))
    shares_training = not val
    if not val:
        log.warning(
            "only one patient/file group: validating on training images (scores are optimistic)"
        )
        val = train
    window = data["window"]
    if isinstance(window, list):
        window = (float(window[0]), float(window[1]))
    opts = {
        "window": window,
        "min_std": float(data["min_std"]),
        "max_slices_per_record": data["max_slices_per_file"],
        "cache": bool(data["cache"]),
    }
    train_data = SliceDataset(train, balance=str(data["balance"]), **opts)
    val_data = (
        train_data if val is train else SliceDataset(val, balance=str(data["balance"]), **opts)
    )
    return train_data, val_data, shares_training


@dataclass
class Networks:
    """The networks of a run and the degradation that makes the generator's LR."""

    generator: SRModel
    #: None for arbitrary-scale models (``scale_sampling`` makes their LR)
    degradation: Any
    #: the degradation's (sy, sx); None for arbitrary-scale models
    scale: tuple[float, float] | None
    discriminator: nn.Module | None


def build_networks(cfg: Config, scales: list[float] | None, device: torch.device) -> Networks:
    """The generator (checked against the scales it is trained at), the degradation and the
    discriminator, on ``device``."""
    mcfg = dict(cfg["model"])
    name = mcfg.pop("name")
    generator = models.build(name, **mcfg).to(device)
    if generator.is_baseline:
        raise ConfigError(f"model.name {name!r} is an interpolation baseline: nothing to train")
    if generator.in_channels != 1 or generator.out_channels != 1:
        raise ConfigError(
            "config key model: training slices are single-channel; "
            f"{name} has in/out channels {generator.in_channels}/"
            f"{generator.out_channels}"
        )
    degradation: Any = None
    scale: tuple[float, float] | None = None
    if scales is not None:
        if not generator.arbitrary_scale:
            raise ConfigError(
                f"config key scale_sampling: {name} is a fixed-scale model; "
                "remove scale_sampling or choose an arbitrary-scale model (miassr)"
            )
        lo, hi = generator.scale_range
        if min(scales) < lo or max(scales) > hi:
            raise ConfigError(
                f"config key scale_sampling: scales {min(scales)}-{max(scales)} "
                f"outside {name}'s range [{lo}, {hi}]"
            )
    else:
        degradation = degrade.build(dict(cfg["degradation"]))
        if isinstance(degradation, nn.Module):
            degradation = degradation.to(device)
        scale = tuple(float(s) for s in degradation.scale)  # type: ignore[assignment]
        supported = generator.supported_scales or (generator.default_scale,)
        if not generator.arbitrary_scale and not any(
            abs(s[0] - scale[0]) < 1e-6 and abs(s[1] - scale[1]) < 1e-6  # type: ignore[index]
            for s in supported
        ):
            raise ConfigError(
                f"config key degradation: its scale {scale} does not match "
                f"{name}'s scale(s) {list(supported)}"
            )
    discriminator: nn.Module | None = None
    if cfg.get("discriminator"):
        dcfg = dict(cfg["discriminator"])
        dname = dcfg.pop("name")
        dcfg.setdefault("in_channels", 1)
        discriminator = models.build_discriminator(dname, **dcfg).to(device)
    return Networks(generator, degradation, scale, discriminator)
