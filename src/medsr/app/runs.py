"""One run of the app: cap the size, then enhance the image, or simulate (degrade it with
its acquisition, super-resolve it back and compare with the acquisition's reference),
with PSNR/SSIM on the stated data range and the fidelity map."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from medsr.app.models import describe_model
from medsr.app.modes import Mode, ScalePair
from medsr.app.simulate import Simulation, baseline, degrade, simulation_for
from medsr.app.sizing import limit_size, processing_side, processing_slices
from medsr.image import MedicalImage, Modality

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "Metrics",
    "Result",
    "SuperResolved",
    "compare",
    "data_range_description",
    "run",
    "super_resolve",
]


@dataclass
class SuperResolved:
    """The SR image, its fidelity map |D(SR) - LR| (physical units, LR grid) and notes."""

    image: MedicalImage
    fidelity: np.ndarray
    notes: list[str]


def super_resolve(image: MedicalImage, model: nn.Module, scale: ScalePair) -> SuperResolved:
    """Super-resolve in plane with the ``medsr upscale`` pipeline, fidelity map included.

    The pipeline normalises with the image's own normalisation, runs the model
    (tiled when large) and re-degrades the output with the model's training
    degradation (bicubic when unknown) for the fidelity map. The result is then
    clipped to [min, max] of the input, which removes interpolation overshoot so
    it fits the input's file format.
    """
    from medsr.infer.pipeline import UpscaleSettings, upscale_image

    result = upscale_image(image, model, UpscaleSettings(scale=scale, consistency=True))
    lo, hi = float(image.pixels.min()), float(image.pixels.max())
    sr = image.with_pixels(
        np.clip(result.image.pixels, lo, hi),
        f"{result.image.history[-1]}, clipped to the input's range",
    )
    assert result.residual is not None
    return SuperResolved(sr, result.residual.pixels, list(result.notes))


@dataclass(frozen=True)
class Metrics:
    """PSNR (dB) and SSIM of the model and of the acquisition's reference against the target."""

    psnr_sr: float
    ssim_sr: float
    psnr_reference: float
    ssim_reference: float
    data_range: float
    range_description: str
    shave: int
    #: the reference's name: zero-fill (MR k-space), bicubic, fbp (sparse-view CT)
    reference: str = "bicubic"


def data_range_description(image: MedicalImage) -> tuple[float, str]:
    """The PSNR/SSIM data range (the width of the image's normalisation) and how it was chosen."""
    norm = image.normalization()
    units = "HU" if image.modality is Modality.CT else "stored values"
    how = {
        "window": "CT window",
        "percentile": "0.5–99.5 percentile range",
        "bits": "bits stored",
        "minmax": "min–max of the image",
    }.get(norm.method.split(":")[0], norm.method)
    return norm.data_range, f"{norm.data_range:g} {units} ({how} [{norm.low:g}, {norm.high:g}])"


def _common_crop(*arrays: np.ndarray) -> list[np.ndarray]:
    """Crop arrays to their common top-left (…, H, W): grids that start at one corner align."""
    h = min(a.shape[-2] for a in arrays)
    w = min(a.shape[-1] for a in arrays)
    return [a[..., :h, :w] for a in arrays]


def compare(
    hr: MedicalImage,
    sr: MedicalImage,
    reference: MedicalImage,
    scale: ScalePair,
    reference_name: str = "bicubic",
) -> Metrics:
    """PSNR/SSIM of SR and the reference against HR, border of ceil(s) pixels shaved.

    The data range is the HR image's normalisation width in physical units; for a
    volume the figures are the mean over slices.
    """
    from medsr.metrics import psnr_np, ssim_np

    data_range, description = data_range_description(hr)
    shave = math.ceil(max(scale))
    hr_px, sr_px, ref_px = _common_crop(hr.pixels, sr.pixels, reference.pixels)
    if min(hr_px.shape[-2:]) - 2 * shave < 11:
        shave = 0
    hr_s = [hr_px] if hr_px.ndim == 2 else list(hr_px)
    sr_s = [sr_px] if sr_px.ndim == 2 else list(sr_px)
    ref_s = [ref_px] if ref_px.ndim == 2 else list(ref_px)

    def mean(fn: Any, est: list[np.ndarray]) -> float:
        return float(np.mean([fn(e, h, data_range, shave) for e, h in zip(est, hr_s)]))

    return Metrics(
        psnr_sr=mean(psnr_np, sr_s),
        ssim_sr=mean(ssim_np, sr_s),
        psnr_reference=mean(psnr_np, ref_s),
        ssim_reference=mean(ssim_np, ref_s),
        data_range=data_range,
        range_description=description,
        shave=shave,
        reference=reference_name,
    )


@dataclass
class Result:
    """Everything the views show after one run."""

    mode: Mode
    model_name: str
    #: the scale the model ran at (a simulation's, e.g. (1, r) for ultrasound scan lines)
    scale: ScalePair
    lr: MedicalImage
    sr: MedicalImage
    fidelity: np.ndarray
    #: what the result is scored against: the image, or the full-view FBP (sparse-view CT)
    hr: MedicalImage | None = None
    #: the acquisition's reference reconstruction of the LR image (zero-fill, bicubic)
    reference: MedicalImage | None = None
    metrics: Metrics | None = None
    #: the acquisition, scale and reference of a simulation
    simulation: Simulation | None = None
    #: What the size cap cut away (the UI shows these as warnings).
    notes: list[str] = field(default_factory=list)
    #: What the upscale pipeline reported: fidelity figures, scale plans.
    pipeline_notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def reference_name(self) -> str:
        """The reference's name (zero-fill, bicubic, fbp); empty outside simulate mode."""
        return self.simulation.reference if self.simulation is not None else ""

    @property
    def model_is_reference(self) -> bool:
        """True when the model run is the reference's own baseline (no second column)."""
        sim = self.simulation
        return sim is not None and self.model_name == sim.reference_model


def run(
    image: MedicalImage,
    model: nn.Module,
    scale: ScalePair,
    mode: Mode,
    max_side: int | None = None,
    acquisition: str | None = None,
) -> Result:
    """One run of the app: cap the size, then enhance, or degrade-SR-compare (simulate).

    ``acquisition`` (simulate mode): None or ``auto`` for the image's modality's, or a name
    (``bicubic``, ``mr-kspace``, ...); see :func:`medsr.app.simulate.simulation_for`.
    """
    start = time.perf_counter()
    choice = describe_model(model)
    if max_side is None:
        max_side = processing_side(scale, mode, choice.is_baseline)
    plane = (min(image.shape[-2], max_side), min(image.shape[-1], max_side))
    image, notes = limit_size(image, max_side, processing_slices(plane, scale, mode))
    if mode is Mode.ENHANCE:
        out = super_resolve(image, model, scale)
        return Result(
            mode,
            choice.name,
            scale,
            lr=image,
            sr=out.image,
            fidelity=out.fidelity,
            notes=notes,
            pipeline_notes=out.notes,
            seconds=time.perf_counter() - start,
        )
    simulation = simulation_for(image, scale, acquisition)
    sr_scale = simulation.scale
    lr, target = degrade(image, simulation)
    out = super_resolve(lr, model, sr_scale)
    reference = (
        out
        if choice.name == simulation.reference_model
        else super_resolve(lr, baseline(simulation.reference_model), sr_scale)
    )
    return Result(
        mode,
        choice.name,
        sr_scale,
        lr=lr,
        sr=out.image,
        fidelity=out.fidelity,
        hr=target,
        reference=reference.image,
        metrics=compare(target, out.image, reference.image, sr_scale, simulation.reference),
        simulation=simulation,
        notes=notes,
        pipeline_notes=out.notes,
        seconds=time.perf_counter() - start,
    )
