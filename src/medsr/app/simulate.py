"""Simulate mode's low-resolution input and what it is compared with.

The image is taken as the high-resolution truth and degraded the way its modality's
scanner makes a low-resolution image (:func:`medsr.degrade.acquisition.acquisition_for`:
``mr-kspace`` for MR, ``xray-binning`` for X-ray, ``ultrasound-lateral`` for ultrasound,
``bicubic`` for an image that states no modality), or by an acquisition chosen by name.
The baseline shown beside the super-resolved image is that acquisition's reference, as in
``medsr eval``: zero-filled k-space interpolation for ``mr-kspace``, else bicubic.

CT's acquisition, ``ct-sparse-view``, keeps the image size (a restoration): it is used at
scale 1, scored against the full-view FBP as the sparse-view CT papers do; at a larger
scale the simulation falls back to bicubic and says so.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from medsr.app.modes import ScalePair, format_scale
from medsr.image import MedicalImage, Modality

if TYPE_CHECKING:
    from torch import nn

    from medsr.degrade.acquisition import Acquisition
    from medsr.degrade.base import Degradation

__all__ = [
    "AUTO_ACQUISITION",
    "NOISE_SEED",
    "Simulation",
    "acquisition_options",
    "degrade",
    "reference_model",
    "simulation_for",
]

#: The acquisition choice that means "the image's own modality's".
AUTO_ACQUISITION = "auto"
#: Seed of the acquisition's random parts (X-ray quantum noise), so a run repeats exactly.
NOISE_SEED = 0


@dataclass(frozen=True)
class Simulation:
    """The acquisition a simulation uses, at which scale, its reference, and why."""

    acquisition: Acquisition
    #: the scale the LR image is made at and super-resolved back by (rows, columns)
    scale: ScalePair
    #: the reference reconstruction the model is compared with (zero-fill, bicubic, fbp)
    reference: str
    #: the baseline model that computes the reference (fbp: bicubic at x1, the input itself)
    reference_model: str
    #: one sentence: why this acquisition (the image's modality, a choice, a fallback)
    why: str

    @property
    def line(self) -> str:
        """``Simulated acquisition: mr-kspace (MR at a coarser matrix: ...); reference: zero-fill``."""
        acq = self.acquisition
        return f"Simulated acquisition: {acq.name} ({acq.description}); reference: {self.reference}"

    @property
    def text(self) -> str:
        """The line and why, as the page shows them."""
        return f"{self.line}. {self.why}."

    @property
    def target_label(self) -> str:
        """What the result is scored against: the image, or the full-view FBP for sparse-view CT."""
        return "Full-view FBP" if self.acquisition.same_size else "Original"

    def degradation(self) -> Degradation:
        """The acquisition's degradation at :attr:`scale`, unclipped in [0, 1] units (values
        past the display normalisation's percentiles are kept, not cut)."""
        from medsr.degrade.registry import build

        config = {**self.acquisition.degradation, "clip": False}
        if not self.acquisition.same_size:
            config["scale"] = list(self.scale)  # ultrasound-lateral: (1, r)
        return build(config)


def acquisition_options() -> list[str]:
    """What the acquisition control offers: ``auto`` (the image's own), then every
    acquisition by name (``medsr degrade --list``)."""
    from medsr.degrade.acquisition import ACQUISITIONS

    return [AUTO_ACQUISITION, *ACQUISITIONS]


def reference_model(acquisition_name: str) -> str:
    """The baseline model for an acquisition's reference: ``medsr eval``'s rule."""
    from medsr.evaluate.runner import reference_model as eval_reference

    return eval_reference(acquisition_name)


def simulation_for(
    image: MedicalImage, scale: ScalePair, acquisition: str | None = None
) -> Simulation:
    """How simulate mode degrades ``image`` at ``scale``: the acquisition of the image's
    modality (``acquisition`` None or ``auto``), or the named one.

    A same-size acquisition (CT sparse-view) runs at scale 1 only; at a larger scale the
    simulation falls back to bicubic. ``ultrasound-lateral`` keeps every row, so its scale
    is ``(1, columns)``.
    """
    from medsr.degrade.acquisition import acquisition as lookup
    from medsr.degrade.acquisition import acquisition_for

    own = acquisition_for(image.modality)
    modality = image.modality.value
    if acquisition in (None, AUTO_ACQUISITION):
        acq = own
        if image.modality is Modality.OTHER:
            why = "The image states no modality, so the generic bicubic shrink"
        elif own.name == "bicubic":
            why = f"{modality} has no acquisition of its own, so the generic bicubic shrink"
        else:
            why = f"The acquisition of {modality} images, chosen by the image's modality"
    else:
        acq = lookup(str(acquisition))
        why = f"Chosen in the sidebar ({modality} images' own is {own.name})"
    if acq.same_size and max(scale) > 1.0:
        why = (
            f"{acq.name} keeps the image size (a restoration, not a coarser matrix), so the "
            f"{format_scale(scale)} simulation falls back to bicubic"
        )
        acq = lookup("bicubic")
    run_scale: ScalePair = (1.0, 1.0) if acq.same_size else scale
    if acq.name == "ultrasound-lateral":
        run_scale = (1.0, scale[1])
        if scale[0] != 1.0:
            why += f"; it keeps every row, so the simulation is {format_scale(run_scale)}"
    return Simulation(acq, run_scale, acq.reference, reference_model(acq.name), why)


def _as_batch(unit: np.ndarray) -> Any:
    """(H, W) or (D, H, W) -> a float32 (B, 1, H, W) tensor."""
    import torch

    arr = unit[None] if unit.ndim == 2 else unit
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))[:, None]


def _from_batch(batch: Any, ndim: int) -> np.ndarray:
    arr = batch[:, 0].detach().cpu().numpy().astype(np.float32)
    return arr[0] if ndim == 2 else arr


def degrade(image: MedicalImage, simulation: Simulation) -> tuple[MedicalImage, MedicalImage]:
    """(LR image, the target it is scored against) of ``image`` under ``simulation``.

    The degradation runs in the image's [0, 1] units with noise seeded by
    :data:`NOISE_SEED`; a k-space acquisition (``dft`` grid) takes its magnitude about
    physical zero (no signal), not about the normalisation's low percentile. The LR
    geometry is written on the acquisition's grid (``dft`` for k-space, ``sample`` for
    kept scan lines, ``area`` for shrinks), its values clipped to the image's [min, max]
    (a scanner's image stays in its stored range, so the result fits the input's format).
    The target is the image itself, or the full-view FBP for sparse-view CT.
    """
    import torch

    acq = simulation.acquisition
    deg = simulation.degradation()
    norm = image.normalization()
    zero = float(norm.to_unit(0.0)) if acq.grid == "dft" else 0.0
    hr_unit = _as_batch(norm.to_unit(image.pixels) - zero)
    generator = torch.Generator().manual_seed(NOISE_SEED)
    with torch.inference_mode():
        params = deg.sample_params(hr_unit.shape[0], generator)
        if getattr(deg, "replaces_target", False):
            lr_unit, target_unit = deg.apply_pair(hr_unit, params)  # type: ignore[attr-defined]
        else:
            lr_unit, target_unit = deg.apply(hr_unit, params), None
    label = f"{acq.name} acquisition {format_scale(simulation.scale)}"
    lr_pixels = norm.from_unit(_from_batch(lr_unit, image.ndim) + zero)
    lr_pixels = np.clip(lr_pixels, float(image.pixels.min()), float(image.pixels.max()))
    lr = image.with_pixels(lr_pixels, label, acq.grid)
    if target_unit is None:
        return lr, image
    target_pixels = norm.from_unit(_from_batch(target_unit, image.ndim) + zero)
    target = image.with_pixels(target_pixels, f"{acq.name} full-view target", "same")
    return lr, target


@functools.lru_cache(maxsize=4)
def baseline(name: str) -> nn.Module:
    """An interpolation baseline by name (bicubic, zero-fill), built once."""
    from medsr.models import build

    return build(name)
