"""What a zoo model is, in the words users see (``medsr models``, the app): the shipped
network's own size (blocks, channels, parameters), how it compares with the published
network (``CPU-sized`` where it is smaller), its scale and skip, and the acquisition it
was trained for with that acquisition's reference."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from medsr.zoo.manifest import entry_acquisition, entry_modality, zoo_models

__all__ = ["describe_entry", "describe_zoo_model", "parameter_count", "size_text"]

#: config keys that say how big a network is, in the order they are told
_SIZE_KEYS = (
    ("num_groups", "groups"),
    ("num_blocks", "blocks"),
    ("channels", "channels"),
)


#: how each architecture is named to users
NAMES = {
    "srresnet": "SRResNet",
    "swift-srgan": "Swift-SRGAN",
    "blimsr": "BliMSR",
    "blimsr-lite": "BliMSR",
    "miassr": "MIASSR",
    "sisr-us": "SISR-US (SRResNet upsampling along x only)",
    "sisr-ct": "SISR-CT (same-size SRResNet with space-to-depth)",
}
#: the registry entry that holds the published size of an architecture
PUBLISHED = {"blimsr-lite": "blimsr"}


@lru_cache(maxsize=64)
def _parameters(architecture: str, config_items: tuple[tuple[str, Any], ...]) -> int:
    import torch

    from medsr.models import registry

    with torch.device("meta"):
        model = registry.build(architecture, **dict(config_items))
    return sum(p.numel() for p in model.parameters())


def parameter_count(architecture: str, config: dict[str, Any] | None = None) -> int:
    """Parameters of ``architecture`` built with ``config`` (the published size without)."""
    items = tuple(sorted((k, v) for k, v in (config or {}).items() if not isinstance(v, list)))
    return _parameters(architecture, items)


def size_text(config: dict[str, Any]) -> str:
    """``8 blocks x 32 channels`` (``2 groups x 2 blocks x 32 channels`` for BliMSR)."""
    parts = [
        f"{config[key]} {word if config[key] != 1 else word[:-1]}"
        for key, word in _SIZE_KEYS
        if key in config
    ]
    return " x ".join(parts)


def describe_entry(name: str, entry: dict[str, Any]) -> str:
    """One line about a zoo entry, from its own config (never the published defaults)."""
    from medsr.degrade.acquisition import acquisition

    architecture = str(entry["architecture"])
    config = dict(entry.get("config") or {})
    summary = NAMES.get(architecture, architecture)
    params = parameter_count(architecture, config)
    published = parameter_count(PUBLISHED.get(architecture, architecture))
    size = size_text(config)
    text = f"{summary}, {size + ', ' if size else ''}{params / 1e6:.2f} M parameters"
    if params < 0.8 * published:
        text += f" (CPU-sized; the published network has {published / 1e6:.2f} M)"
    scale = entry.get("scale")
    if scale is None:
        text += ", any scale in (1, 4]"
    elif len(set(scale)) == 1:
        text += f", x{float(scale[0]):g}"
    else:
        text += ", x(" + ", ".join(f"{float(s):g}" for s in scale) + ")"
    residual = config.get("residual")
    if residual:
        base = "zero-filled k-space" if residual == "zero-fill" else "bicubic"
        if architecture == "sisr-ct":
            base = "its FBP input"
        text += f", adds its output to {base}"
    acq = acquisition(entry_acquisition(entry))
    modality = entry_modality(entry)
    kind = " (GAN)" if str(entry.get("kind", "")).lower() == "gan" else ""
    where = "any modality" if modality == "any" else modality
    text += f"; trained{kind} for {acq.name} input ({where}), reference {acq.reference}"
    return text


def describe_zoo_model(name: str, zoo_dir: str | Path | None = None) -> str | None:
    """:func:`describe_entry` for a zoo name; None for a name not in the zoo."""
    entry = zoo_models(zoo_dir).get(name)
    return describe_entry(name, entry) if entry is not None else None
