"""Which zoo model serves an upscale request: by the scan's acquisition, then by scale.

A low-resolution MR scan is the centre of k-space, a radiograph is binned on the
detector: a model trained for that acquisition beats its reference (zero-filled
interpolation, bicubic) where a bicubic-trained one may not. So :func:`choose_model`
looks first under the acquisition key (``"mr-kspace:x2"``; the acquisition comes from
``acquisition=`` or from the image's modality, read from DICOM or NIfTI metadata), then
under the generic scale keys (``"2"``, ``"4"``, ``"any"``), then falls back to
``bicubic``. Only shipped models are chosen. The CLI, the Python API and the app all call
it, and each says why it chose what it chose.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from medsr.image import Modality
from medsr.zoo.manifest import (
    SHIPPED,
    acquisition_key,
    manifest_defaults,
    scale_key,
    zoo_status,
)
from medsr.zoo.rule import FALLBACK

__all__ = [
    "Choice",
    "acquisition_key",
    "choose_model",
    "default_model",
    "default_model_for",
    "scale_key",
]


@dataclass(frozen=True)
class Choice:
    """A chosen model and, in one line, why."""

    name: str
    reason: str


def _shipped(name: str | None, zoo_dir: str | Path | None) -> bool:
    return bool(name) and zoo_status(str(name), zoo_dir) == SHIPPED


def _generic(key: str, zoo_dir: str | Path | None) -> str:
    defaults = manifest_defaults(zoo_dir)
    for candidate in (key, "default" if key == "default" else "any"):
        name = defaults.get(candidate)
        if _shipped(name, zoo_dir):
            return str(name)
    return FALLBACK


def choose_model(
    scale: float | Sequence[float] | None,
    *,
    modality: str | Modality | None = None,
    acquisition: str | None = None,
    spacing: float | None = None,
    zoo_dir: str | Path | None = None,
) -> Choice:
    """The shipped model for this request, and why.

    ``acquisition`` (``mr-kspace``, ``xray-binning``, ``bicubic``, ...) overrides the one
    the ``modality`` implies; with neither (a PNG) the generic default is used and the
    reason says so. ``spacing`` without ``scale`` asks for an arbitrary factor.
    """
    from medsr.degrade.acquisition import acquisition as lookup
    from medsr.degrade.acquisition import acquisition_for

    key = "any" if spacing is not None and scale is None else scale_key(scale)
    if acquisition is not None:
        acq = lookup(acquisition)
        source = f"--acquisition {acq.name}"
    elif modality is not None and Modality.parse(modality) is not Modality.OTHER:
        acq = acquisition_for(modality)
        source = f"modality {Modality.parse(modality).value} ({acq.name})"
    else:
        generic = _generic(key, zoo_dir)
        return Choice(
            generic,
            f"{generic}: the generic default (the file states no modality, so no "
            "acquisition-specific model applies; pass --acquisition to choose one)",
        )
    if acq.name != "bicubic" and scale is not None:
        name = manifest_defaults(zoo_dir).get(acquisition_key(acq.name, scale))
        if _shipped(name, zoo_dir):
            return Choice(str(name), f"{name}: trained for {source}")
    generic = _generic(key, zoo_dir)
    if acq.name == "bicubic":
        return Choice(generic, f"{generic}: the default for bicubic input ({source})")
    if acq.reference == "zero-fill":  # a bicubic-trained model is far below ZIP on k-space input
        return Choice(
            "zero-fill",
            f"zero-fill: no shipped model for {source} at this scale, and bicubic-trained "
            "models lose to the scanner's zero-filled interpolation on k-space input",
        )
    return Choice(
        generic,
        f"{generic}: no shipped model for {source} at this scale; the generic "
        "(bicubic-trained) default",
    )


def default_model(
    scale: float | Sequence[float] | None = None, zoo_dir: str | Path | None = None
) -> str:
    """The generic zoo model for ``scale`` when none is given: shipped, never experimental.

    Falls back to the ``any``-scale default for a scale without its own, then to
    ``bicubic``. A default that names a model missing from the zoo, or one that is not
    shipped, is skipped.
    """
    return _generic(scale_key(scale), zoo_dir)


def default_model_for(scale: float | Sequence[float] | None, spacing: float | None = None) -> str:
    """The generic default for an upscale request: by scale, or an arbitrary-scale model
    when a target spacing decides the factor (``any``)."""
    return _generic("any" if spacing is not None and scale is None else scale_key(scale), None)
