"""Build a degradation by name from a name, a dict or a YAML file.

A config is ``{"name": "blind", "preset": "blimsr", "scale": 4}``: ``name`` picks
the class and every other key is a constructor argument.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from medsr.degrade.base import Degradation
from medsr.degrade.blind import BlindDegradation
from medsr.degrade.blur import GaussianBlurNoise
from medsr.degrade.ct import CTSparseView
from medsr.degrade.downsample import Area, Bicubic, Bilinear
from medsr.degrade.mr import MRKSpace
from medsr.degrade.ultrasound import UltrasoundLateral
from medsr.degrade.volume import ThickSlice
from medsr.degrade.xray import XRay
from medsr.errors import ConfigError

__all__ = ["REGISTRY", "available", "build", "describe", "register"]

REGISTRY: dict[str, type[Degradation]] = {}


def register(cls: type[Degradation]) -> type[Degradation]:
    """Add a Degradation subclass under its ``name`` (usable as a decorator)."""
    REGISTRY[cls.name] = cls
    return cls


for _cls in (
    Bicubic,
    Bilinear,
    Area,
    GaussianBlurNoise,
    BlindDegradation,
    UltrasoundLateral,
    CTSparseView,
    MRKSpace,
    XRay,
    ThickSlice,
):
    register(_cls)


def available() -> list[str]:
    """Registered degradation names, sorted."""
    return sorted(REGISTRY)


def describe(name: str) -> str:
    """The first line of a degradation's docstring."""
    doc = inspect.getdoc(_lookup(name)) or ""
    return doc.splitlines()[0] if doc else ""


def _lookup(name: str) -> type[Degradation]:
    key = name.strip().lower().replace("_", "-")
    if key not in REGISTRY:
        raise ConfigError(f"unknown degradation {name!r}; choose one of {', '.join(available())}")
    return REGISTRY[key]


def build(name_or_config: str | dict[str, Any] | Path, **params: Any) -> Degradation:
    """A degradation from a name, a ``{"name": ..., **params}`` dict or a YAML file path.

    Keyword ``params`` override the config's. Unknown parameters raise ConfigError.
    """
    if isinstance(name_or_config, Path) or (
        isinstance(name_or_config, str) and name_or_config.endswith((".yaml", ".yml"))
    ):
        import yaml

        path = Path(name_or_config)
        try:
            loaded = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read degradation config ({exc})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: a degradation config is a mapping with a 'name'")
        name_or_config = loaded
    if isinstance(name_or_config, dict):
        config = dict(name_or_config)
        if "name" not in config:
            raise ConfigError(f"a degradation config needs a 'name', got keys {sorted(config)}")
        name = str(config.pop("name"))
    else:
        name, config = str(name_or_config), {}
    config.update(params)
    cls = _lookup(name)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(config) - accepted)
    if unknown:
        raise ConfigError(
            f"{cls.name} does not take {', '.join(unknown)}; it takes {', '.join(sorted(accepted))}"
        )
    try:
        return cls(**config)
    except TypeError as exc:
        raise ConfigError(f"{cls.name}: {exc}") from None
