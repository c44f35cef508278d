"""The zoo's manifest and its files: ``manifest.json`` beside the weights::

    {"models": {"<zoo-name>": {"file": "<name>.safetensors", "sha256": "<hex>",
       "architecture": "<registry name>", "config": {...}, "scale": [sy, sx] | null,
       "degradation": {...}, "modality": "MR" | "any", "acquisition": "mr-kspace",
       "kind": "psnr" | "gan", "status": "shipped" | "experimental",
       "card": "<name>.md", "training": {...}}},
     "defaults": {"2": name, "4": name, "any": name, "default": name,
                  "MR:mr-kspace:2": name, ...}}

Every file's SHA-256 is checked before its bytes are parsed. A missing folder or
manifest means no weights are shipped. ``$MEDSR_ZOO_DIR`` points at another zoo folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from medsr.errors import ConfigError, InputError
from medsr.models.base import SRModel

__all__ = [
    "EXPERIMENTAL",
    "SHIPPED",
    "ZOO_ENV",
    "acquisition_key",
    "entry_acquisition",
    "entry_modality",
    "load_zoo_model",
    "manifest_defaults",
    "scale_key",
    "sha256_of",
    "weights_hint",
    "zoo_folder",
    "zoo_manifest",
    "zoo_models",
    "zoo_status",
]

ZOO_ENV = "MEDSR_ZOO_DIR"
SHIPPED = "shipped"
EXPERIMENTAL = "experimental"


def zoo_folder(override: str | Path | None = None) -> Path:
    """The zoo folder: ``override``, else ``$MEDSR_ZOO_DIR``, else this package's folder."""
    if override is not None:
        return Path(override)
    env = os.environ.get(ZOO_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parent


def zoo_manifest(override: str | Path | None = None) -> dict[str, Any]:
    """The zoo's whole ``manifest.json`` (models, defaults); empty when no zoo is shipped."""
    manifest = zoo_folder(override) / "manifest.json"
    if not manifest.is_file():
        return {}
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(manifest, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(manifest, 'expected {"models": {name: entry}}')
    return data


def zoo_models(override: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The manifest's models by zoo name; empty when no zoo is shipped."""
    data = zoo_manifest(override)
    if not data:
        return {}
    manifest = zoo_folder(override) / "manifest.json"
    entries = data.get("models")
    if not isinstance(entries, dict):
        raise InputError(manifest, 'expected {"models": {name: entry}}')
    for name, entry in entries.items():
        if not isinstance(entry, dict) or not {"file", "sha256", "architecture"} <= set(entry):
            raise InputError(manifest, f"entry {name!r} needs file, sha256 and architecture")
    return entries


def zoo_status(name: str, zoo_dir: str | Path | None = None) -> str | None:
    """``shipped`` or ``experimental`` for a zoo model; None for a name not in the zoo.

    An entry without a status (older manifests) counts as experimental.
    """
    entry = zoo_models(zoo_dir).get(name)
    if entry is None:
        return None
    return SHIPPED if entry.get("status") == SHIPPED else EXPERIMENTAL


def manifest_defaults(zoo_dir: str | Path | None = None) -> dict[str, str]:
    """The manifest's ``defaults`` mapping (choice key -> zoo name); empty when absent."""
    defaults = zoo_manifest(zoo_dir).get("defaults", {})
    if not isinstance(defaults, dict):
        path = zoo_folder(zoo_dir) / "manifest.json"
        raise InputError(path, '"defaults" must map a scale to a zoo model name')
    return {str(k): str(v) for k, v in defaults.items()}


def scale_key(scale: float | Sequence[float] | None) -> str:
    """A generic default key: ``2`` -> ``"2"``, ``(4, 4)`` -> ``"4"``, ``2.5`` or ``(1, 4)`` -> ``"any"``, None -> ``"default"``."""
    if scale is None:
        return "default"
    if isinstance(scale, (int, float)):
        pair = (float(scale), float(scale))
    else:
        values = [float(s) for s in scale]
        pair = (values[0], values[-1])
    if pair[0] == pair[1] and float(pair[0]).is_integer() and pair[0] in (2.0, 4.0):
        return str(int(pair[0]))
    return "any"


def acquisition_key(acquisition: str, scale: float | Sequence[float] | None) -> str:
    """``("mr-kspace", 2)`` -> ``"mr-kspace:x2"``; ``(1, 4)`` -> ``x4`` (the larger factor)."""
    if scale is None:
        return f"{acquisition}:x?"
    values = [float(scale)] if isinstance(scale, (int, float)) else [float(s) for s in scale]
    return f"{acquisition}:x{max(values):g}"


def entry_acquisition(entry: dict[str, Any]) -> str:
    """The acquisition a zoo entry was trained for: its ``acquisition``, else the one its
    degradation is (``bicubic`` for degradations that are no scanner's)."""
    if entry.get("acquisition"):
        return str(entry["acquisition"])
    from medsr.degrade.acquisition import acquisition_of_degradation

    found = acquisition_of_degradation(entry.get("degradation") or {})
    return found.name if found is not None else "bicubic"


def entry_modality(entry: dict[str, Any]) -> str:
    """The modality a zoo entry serves (``any`` for the generic, bicubic-trained models)."""
    if entry.get("modality"):
        return str(entry["modality"])
    from medsr.degrade.acquisition import acquisition

    return acquisition(entry_acquisition(entry)).modality


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def load_zoo_model(
    name: str, device: str | torch.device = "cpu", zoo_dir: str | Path | None = None
) -> SRModel:
    """A zoo model: verify the file's SHA-256 against the manifest, then build and load it."""
    from medsr.infer.weights import build_generator, read_weights, tag_model

    entries = zoo_models(zoo_dir)
    if name not in entries:
        shipped = ", ".join(entries) or "none shipped"
        raise ConfigError(f"no zoo model named {name!r}; zoo models: {shipped}")
    entry = entries[name]
    path = zoo_folder(zoo_dir) / str(entry["file"])
    if not path.is_file():
        raise InputError(
            path, f"zoo model {name!r} is listed in the manifest but its file is missing"
        )
    expected = str(entry["sha256"]).lower()
    actual = sha256_of(path)
    if actual != expected:
        raise InputError(
            path,
            f"SHA-256 checksum mismatch for zoo model {name!r}: the manifest expects "
            f"{expected}, the file has {actual}; the weights are corrupted or were replaced, "
            "refusing to load them",
        )
    weights = read_weights(path)
    config = entry.get("config")
    # no "config" in the entry: fall back to the file's own medsr.config metadata
    model = build_generator(
        path, weights, str(entry["architecture"]), dict(config) if config is not None else None
    )
    tag_model(model, zoo_name=name, acquisition=entry_acquisition(entry))
    if entry.get("degradation") is not None:
        tag_model(model, degradation=entry["degradation"])
    if entry.get("kind") is not None:  # gan or psnr: whether data consistency is the default
        tag_model(model, kind=entry["kind"])
    if entry.get("window") is not None:  # the CT window it was trained in (HU)
        tag_model(model, window=entry["window"])
    return model.to(device)


def weights_hint() -> str:
    """What to tell a user who named an architecture that has no shipped weights."""
    shipped = ", ".join(zoo_models()) or "none in this build"
    return (
        f"zoo models with weights: {shipped}; or pass a weights file "
        "(--model PATH.safetensors, or a .pt/.pth written by `medsr train`)"
    )
