"""Which model the app runs: the list it offers, how each is described, and the one it
suggests for an image (:func:`medsr.zoo.choice.choose_model`, as ``medsr upscale`` and
:func:`medsr.upscale` choose).

A zoo model is described from its own shipped config (:func:`medsr.zoo.describe.describe_zoo_model`:
blocks, channels, parameters, the acquisition it was trained for), never from the published
architecture's summary, which only describes baselines and bare architectures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from medsr.app.modes import ScalePair
from medsr.errors import MedsrError

if TYPE_CHECKING:
    from torch import nn

    from medsr.image import MedicalImage
    from medsr.zoo.choice import Choice

__all__ = [
    "BASELINES",
    "ModelChoice",
    "available_models",
    "default_model",
    "describe_model",
    "load_model",
    "model_for_image",
    "model_label",
    "model_summary",
    "zoo_names",
]

#: Interpolation baselines the app offers (no weights); zero-fill is the MR reference.
BASELINES: tuple[str, ...] = ("bicubic", "lanczos", "bilinear", "nearest", "zero-fill")


@dataclass(frozen=True)
class ModelChoice:
    """What the sidebar needs to know about a model: its name and which scales it runs."""

    name: str
    summary: str
    arbitrary_scale: bool
    scale_range: tuple[float, float]
    supported_scales: tuple[ScalePair, ...]
    default_scale: ScalePair
    is_baseline: bool


def zoo_names() -> list[str]:
    """Model names in the zoo manifest (``medsr/zoo/manifest.json``); none when no zoo ships."""
    from medsr.zoo.manifest import zoo_models

    try:
        return list(zoo_models())
    except MedsrError:
        return []


def default_model() -> str:
    """The model the app opens with before there is an image: the zoo's shipped default
    (else bicubic)."""
    from medsr.zoo.choice import default_model as zoo_default

    return zoo_default(None)


def model_for_image(image: MedicalImage | None, scale: float | ScalePair | None) -> Choice:
    """The shipped model ``medsr upscale`` would choose for ``image`` at ``scale``, and why.

    By the image's modality (an MR image gets the MR k-space model when one ships; a PNG,
    which states none, the generic default); with no image, the zoo's default.
    """
    from medsr.zoo.choice import Choice, choose_model

    if image is None:
        name = default_model()
        return Choice(name, f"{name}: the zoo's default")
    return choose_model(scale, modality=image.modality)


def available_models(first: str | None = None) -> list[str]:
    """``first`` (default: the zoo's default) when shipped or a baseline, the other shipped
    zoo models, the baselines, and last the experimental zoo models (worse than their
    reference on some modality: never a default)."""
    from medsr.zoo.manifest import SHIPPED, zoo_status

    zoo = [n for n in zoo_names() if n not in BASELINES]
    shipped = [n for n in zoo if zoo_status(n) == SHIPPED]
    experimental = [n for n in zoo if n not in shipped]
    lead = first if first is not None else default_model()
    ordered = [lead] if lead in shipped or lead in BASELINES else []
    rest = [n for n in (*shipped, *BASELINES) if n not in ordered]
    return [*ordered, *rest, *experimental]


def model_label(name: str) -> str:
    """How the model list shows a name: experimental zoo models are flagged."""
    from medsr.zoo.manifest import EXPERIMENTAL, zoo_status

    if zoo_status(name) == EXPERIMENTAL:
        return f"{name} (experimental: worse than its reference on some modality)"
    return name


def load_model(name: str) -> nn.Module:
    """A ready generator by zoo or baseline name (:func:`medsr.infer.api.load_model`)."""
    from medsr.infer.api import load_model as api_load_model

    return api_load_model(name)


def model_summary(name: str) -> str:
    """One line about a model: a zoo model's own shipped network (its blocks, channels,
    parameters, acquisition and reference), else the registry's summary of a baseline or
    architecture; empty for an unknown name."""
    from medsr.zoo.describe import describe_zoo_model

    try:
        described = describe_zoo_model(name)
    except (MedsrError, KeyError):  # an unreadable zoo or a malformed entry
        described = None
    if described:
        return described
    from medsr.models import info

    try:
        return str(info(name)["summary"])
    except MedsrError:
        return ""


def describe_model(model: nn.Module) -> ModelChoice:
    """The scale options of a loaded model, from the shared SRModel attributes."""
    arbitrary = bool(getattr(model, "arbitrary_scale", False))
    default = tuple(float(s) for s in getattr(model, "default_scale", (2.0, 2.0)))
    name = str(
        getattr(model, "medsr_zoo_name", None) or getattr(model, "name", type(model).__name__)
    )
    low, high = (float(s) for s in getattr(model, "scale_range", (1.0, 4.0)))
    return ModelChoice(
        name=name,
        summary=model_summary(name) or model_summary(str(getattr(model, "name", ""))),
        arbitrary_scale=arbitrary,
        scale_range=(low, high),
        supported_scales=tuple(
            (float(a), float(b)) for a, b in getattr(model, "supported_scales", ())
        ),
        default_scale=(default[0], default[1]),
        is_baseline=bool(getattr(model, "is_baseline", False)),
    )
