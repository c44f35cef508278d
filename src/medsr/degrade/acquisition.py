"""Acquisitions: how each modality's scanner really makes a low-resolution image, and the
reference reconstruction a model has to beat on it (SPEC section 6).

| acquisition          | modality | degradation                                  | reference   | grid   |
|----------------------|----------|----------------------------------------------|-------------|--------|
| ``mr-kspace``        | MR       | centre of k-space, Rician noise              | zero-fill   | dft    |
| ``xray-binning``     | XRAY     | s x s detector binning, Poisson-Gaussian     | bicubic     | area   |
| ``ct-sparse-view``   | CT       | every r-th of 1000 views, FBP (same size)    | fbp         | same   |
| ``ultrasound-lateral`` | US     | every r-th scan line                         | bicubic (x) | sample |
| ``bicubic``          | any      | antialiased bicubic shrink (MATLAB imresize) | bicubic     | area   |

``grid`` says which pixel centres the low-resolution image holds: ``area`` keeps the
field-of-view edges (LR centre ``j`` at HR index ``(j + 0.5) s - 0.5``), ``dft`` and
``sample`` keep the first pixel centre (LR centre ``j`` at HR index ``j s``), ``same``
keeps the grid. :func:`medsr.image.MedicalImage.with_pixels` writes geometry for either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medsr.errors import ConfigError
from medsr.image import Modality

if TYPE_CHECKING:
    from medsr.degrade.base import Degradation

__all__ = [
    "ACQUISITIONS",
    "Acquisition",
    "acquisition",
    "acquisition_for",
    "acquisition_of_degradation",
]


@dataclass(frozen=True)
class Acquisition:
    """One way a scanner makes a low-resolution image, with its reference reconstruction."""

    name: str
    modality: str  # Modality value, or "any"
    degradation: dict[str, Any]  # build() config without the scale
    reference: str  # "zero-fill", "bicubic", "fbp"
    grid: str  # "dft", "sample", "area", "same"
    description: str
    same_size: bool = False  # a restoration (CT sparse-view): scale 1

    def build(self, scale: float | None = None, **overrides: Any) -> Degradation:
        """The degradation at ``scale`` (ignored by same-size acquisitions)."""
        from medsr.degrade.registry import build

        config = dict(self.degradation)
        if not self.same_size:
            if scale is None:
                raise ConfigError(f"acquisition {self.name} needs a scale")
            config["scale"] = float(scale)  # ultrasound-lateral: the lateral factor
        config.update(overrides)
        return build(config)


ACQUISITIONS: dict[str, Acquisition] = {
    a.name: a
    for a in (
        Acquisition(
            "mr-kspace",
            Modality.MR.value,
            {"name": "mr-kspace"},
            "zero-fill",
            "dft",
            "MR at a coarser matrix: the centre of k-space (same field of view, Gibbs ringing)",
        ),
        Acquisition(
            "xray-binning",
            Modality.XRAY.value,
            {"name": "xray", "mtf_sigma": 0.0, "dose": 20000.0, "read_noise": 0.002},
            "bicubic",
            "area",
            "CR/DR detector binning (s x s box average) with Poisson-Gaussian noise",
        ),
        Acquisition(
            "ct-sparse-view",
            Modality.CT.value,
            {"name": "ct-sparse-view", "n_angles": 1000, "view_step": 16},
            "fbp",
            "same",
            "CT from every 16th of 1000 views, FBP (streaks; same size)",
            same_size=True,
        ),
        Acquisition(
            "ultrasound-lateral",
            Modality.US.value,
            {"name": "ultrasound-lateral"},
            "bicubic",
            "sample",
            "ultrasound with fewer scan lines: every r-th column kept",
        ),
        Acquisition(
            "bicubic",
            "any",
            {"name": "bicubic"},
            "bicubic",
            "area",
            "antialiased bicubic shrink (MATLAB imresize): no scanner's, the benchmarks' own",
        ),
    )
}

#: the acquisition a modality's low-resolution images come from (others: bicubic)
BY_MODALITY = {
    Modality.MR.value: "mr-kspace",
    Modality.XRAY.value: "xray-binning",
    Modality.CT.value: "ct-sparse-view",
    Modality.US.value: "ultrasound-lateral",
}


def acquisition(name: str) -> Acquisition:
    """The acquisition called ``name`` (see :data:`ACQUISITIONS`)."""
    try:
        return ACQUISITIONS[name]
    except KeyError:
        known = ", ".join(ACQUISITIONS)
        raise ConfigError(f"unknown acquisition {name!r}; known: {known}") from None


def acquisition_for(modality: str | Modality | None) -> Acquisition:
    """The acquisition that makes a modality's low-resolution images (bicubic for others)."""
    if modality is None:
        return ACQUISITIONS["bicubic"]
    value = Modality.parse(modality).value if not isinstance(modality, Modality) else modality.value
    return ACQUISITIONS[BY_MODALITY.get(value, "bicubic")]


def acquisition_of_degradation(config: dict[str, Any] | str) -> Acquisition | None:
    """The acquisition a degradation config is (``{"name": "mr-kspace", ...}`` -> mr-kspace),
    or None for a degradation that is no scanner's (gaussian, blind, ...)."""
    name = config if isinstance(config, str) else str(config.get("name", ""))
    if name == "xray":
        return ACQUISITIONS["xray-binning"]
    return ACQUISITIONS.get(name)


def reference_name(config: dict[str, Any] | str) -> str:
    """The reference a model trained or scored on this degradation must beat."""
    found = acquisition_of_degradation(config)
    return found.reference if found is not None else "bicubic"
