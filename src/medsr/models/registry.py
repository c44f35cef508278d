"""Name -> model registry: ``build("miassr", num_blocks=8)``, ``available()``, ``info(name)``.

Generators and interpolation baselines share :class:`~medsr.models.base.SRModel`;
discriminators have their own ``build_discriminator``. Overrides are checked
against the constructor's parameters so a typo in a YAML config is a one-line
:class:`~medsr.errors.ConfigError`, not a TypeError deep in a trainer.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch

from medsr.errors import ConfigError
from medsr.models.base import SRModel, format_scale
from medsr.models.blimsr import BliMSR
from medsr.models.discriminators import (
    Discriminator,
    ResNetSNDiscriminator,
    UNetSNDiscriminator,
    VGGDiscriminator,
)
from medsr.models.interpolation import Interpolation, ZeroFill
from medsr.models.miassr import MIASSR
from medsr.models.sisr import SISRCT, SISRUltrasound
from medsr.models.srresnet import SRResNet
from medsr.models.swift_srgan import SwiftSRGAN


@dataclass(frozen=True)
class ModelEntry:
    """One registered name: its class, default overrides (``preset``), the constructor
    arguments it pins (``fixed``), and a one-line summary."""

    name: str
    kind: str  # "generator", "baseline" or "discriminator"
    cls: type
    summary: str
    preset: dict[str, Any] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)

    def parameters(self) -> list[str]:
        """The options a user may override."""
        names = list(inspect.signature(self.cls).parameters)
        return [p for p in names if p not in self.fixed]

    def build(self, overrides: dict[str, Any]) -> Any:
        allowed = self.parameters()
        unknown = sorted(set(overrides) - set(allowed))
        if unknown:
            raise ConfigError(
                f"{self.name}: unknown option(s) {', '.join(unknown)}; "
                f"valid: {', '.join(allowed) or 'none'}"
            )
        factory: Callable[..., Any] = partial(
            self.cls, **{**self.preset, **overrides, **self.fixed}
        )
        return factory()


_GENERATORS: dict[str, ModelEntry] = {
    e.name: e
    for e in (
        ModelEntry(
            "srresnet",
            "generator",
            SRResNet,
            "SRResNet (SRGAN generator), published: 16 residual blocks x 64 channels",
        ),
        ModelEntry(
            "swift-srgan", "generator", SwiftSRGAN, "Swift-SRGAN: depthwise-separable SRResNet"
        ),
        ModelEntry(
            "blimsr",
            "generator",
            BliMSR,
            "BliMSR: 8x16 residual attention blocks with MHCA",
            fixed={"name": "blimsr"},
        ),
        ModelEntry(
            "blimsr-lite",
            "generator",
            BliMSR,
            "BliMSR, CPU-trainable preset: 2 groups x 2 blocks x 32 channels",
            {"num_groups": 2, "num_blocks": 2, "channels": 32},
            {"name": "blimsr-lite"},
        ),
        ModelEntry("miassr", "generator", MIASSR, "MIASSR: EDSR-lite + Meta-Upscale, any scale"),
        ModelEntry(
            "sisr-us",
            "generator",
            SISRUltrasound,
            "SRResNet upsampling x only (ultrasound lateral)",
        ),
        ModelEntry(
            "sisr-ct", "generator", SISRCT, "SRResNet, same size, space-to-depth (CT sparse view)"
        ),
        *(
            ModelEntry(
                m, "baseline", Interpolation, f"{m} interpolation (imresize)", fixed={"method": m}
            )
            for m in ("nearest", "bilinear", "bicubic", "lanczos")
        ),
        ModelEntry(
            "zero-fill",
            "baseline",
            ZeroFill,
            "zero-filled k-space interpolation (ZIP; MR scanners' own, the MR reference)",
        ),
    )
}

_DISCRIMINATORS: dict[str, ModelEntry] = {
    e.name: e
    for e in (
        ModelEntry(
            "srgan-vgg",
            "discriminator",
            VGGDiscriminator,
            "SRGAN VGG-style, 8 convs",
            fixed={"separable": False, "name": "srgan-vgg"},
        ),
        ModelEntry(
            "swift",
            "discriminator",
            VGGDiscriminator,
            "Swift-SRGAN: VGG-style with separable convs",
            fixed={"separable": True, "name": "swift"},
        ),
        ModelEntry(
            "resnet-sn", "discriminator", ResNetSNDiscriminator, "BliMSR: spectral-norm ResNet"
        ),
        ModelEntry(
            "unet-sn", "discriminator", UNetSNDiscriminator, "Real-ESRGAN per-pixel U-Net, SN"
        ),
    )
}


def available() -> list[str]:
    """Names of the generators and interpolation baselines, in registry order."""
    return list(_GENERATORS)


def available_discriminators() -> list[str]:
    return list(_DISCRIMINATORS)


def _entry(name: str, table: dict[str, ModelEntry], what: str) -> ModelEntry:
    try:
        return table[name]
    except KeyError:
        raise ConfigError(f"unknown {what} {name!r}; choose one of {', '.join(table)}") from None


def build(name: str, **overrides: Any) -> SRModel:
    """A generator or baseline by registry name; ``overrides`` are its constructor options."""
    model = _entry(name, _GENERATORS, "model").build(overrides)
    assert isinstance(model, SRModel)
    return model


def build_discriminator(name: str, **overrides: Any) -> Discriminator:
    model = _entry(name, _DISCRIMINATORS, "discriminator").build(overrides)
    assert isinstance(model, Discriminator)
    return model


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def info(name: str, **overrides: Any) -> dict[str, Any]:
    """What ``medsr models`` shows for one name: kind, scales, channels, parameter count.

    The model is built on the meta device, so even the 19 M-parameter BliMSR
    costs no memory.
    """
    entry = _entry(name, _GENERATORS, "model")
    with torch.device("meta"):
        model = build(name, **overrides)
    return {
        "name": name,
        "kind": entry.kind,
        "summary": entry.summary,
        "in_channels": model.in_channels,
        "out_channels": model.out_channels,
        "default_scale": list(model.default_scale),
        "arbitrary_scale": model.arbitrary_scale,
        "scale_range": list(model.scale_range) if model.arbitrary_scale else None,
        "supported_scales": [list(s) for s in model.supported_scales],
        "scales": describe_scales(model),
        "parameters": count_parameters(model),
        "receptive_field": model.receptive_field,
        "options": entry.parameters(),
        "config": dict(model.config),
    }


def describe_scales(model: SRModel) -> str:
    if model.arbitrary_scale:
        lo, hi = model.scale_range
        return f"any in [{lo:g}, {hi:g}] per axis"
    return ", ".join(format_scale(s) for s in model.supported_scales)


def forward_gflops(model: SRModel, height: int = 256, width: int = 256) -> float:
    """GFLOPs (2 x multiply-adds of convs, matmuls and linears) of one forward at the
    default scale for a (1, C, height, width) input, counted by FlopCounterMode on the
    meta device when the model is there, else on the CPU. Interpolation baselines,
    which resize by gather and weighted sum, report their analytic count."""
    from torch.utils.flop_counter import FlopCounterMode

    if isinstance(model, Interpolation | ZeroFill):
        return model.flops(height, width) / 1e9
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    lr = torch.zeros(1, model.in_channels, height, width, device=device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(lr)
    return counter.get_total_flops() / 1e9
