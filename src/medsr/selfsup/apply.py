"""Self-supervised SR of one image: learn (or re-apply) the network, upsample the slice
axis of every through-plane plane in both orientations, average, back to physical units."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from medsr.degrade.resize import imresize
from medsr.errors import ConfigError
from medsr.image import MedicalImage
from medsr.infer.pipeline import count_for_spacing, upscale_planes
from medsr.infer.runner import ModelRunner, ScalePlan, resolve_device
from medsr.infer.weights import save_generator
from medsr.io.core import full_suffix, stem
from medsr.selfsup.network import (
    METADATA_KEY,
    ThroughPlaneSR,
    build_network,
    fit_linear_base,
    learnt_metadata,
    load_donor,
    load_learnt_model,
)
from medsr.selfsup.pairs import AxisPairs, PairSampler
from medsr.selfsup.profiles import SliceAcquisition, slice_acquisition
from medsr.selfsup.settings import SelfSupervisedSettings
from medsr.selfsup.training import TrainingReport, train_through_plane
from medsr.zoo.manifest import zoo_models

__all__ = [
    "Log",
    "SelfSupervisedResult",
    "apply_through_plane",
    "learnt_model_path",
    "save_learnt_model",
    "upscale_self_supervised",
]

Log = Callable[[str], None]


def _resample_rows(planes: Tensor, rows: int) -> Tensor:
    """Cubic (antialiased when shrinking) resize of the row axis to ``rows``, FOV kept."""
    if planes.shape[-2] == rows:
        return planes
    return imresize(planes, size=(rows, int(planes.shape[-1])), kernel="cubic")


def apply_through_plane(
    model: torch.nn.Module,
    unit: Tensor,
    scales: tuple[float, float],
    depth: int,
    device: str | torch.device = "auto",
    batch_size: int | None = None,
    progress: bool = False,
) -> Tensor:
    """Upsample the slice axis of a [0, 1] volume (D, H, W) to ``depth`` slices.

    The network runs on every (D, W) plane at ``(scales[0], 1)`` and on every (D, H)
    plane at ``(scales[1], 1)``; both results are resampled to ``depth`` rows when the
    network's grid differs, and averaged. Returns (depth, H, W) float32 on the CPU.
    """
    runner = ModelRunner(model, device=device)
    try:
        along_w = unit.permute(1, 0, 2).unsqueeze(1)  # (H, 1, D, W)
        out = upscale_planes(
            runner,
            along_w,
            ScalePlan((scales[0], 1.0), (scales[0], 1.0)),
            None,
            None,
            batch_size,
            progress,
        )
        result = _resample_rows(out, depth)[:, 0].permute(1, 0, 2).contiguous()
        del out
        along_h = unit.permute(2, 0, 1).unsqueeze(1)  # (W, 1, D, H)
        out = upscale_planes(
            runner,
            along_h,
            ScalePlan((scales[1], 1.0), (scales[1], 1.0)),
            None,
            None,
            batch_size,
            progress,
        )
        result += _resample_rows(out, depth)[:, 0].permute(1, 2, 0)
    finally:
        runner.restore()
    return result.mul_(0.5)


@dataclass
class SelfSupervisedResult:
    """The upscaled image, the network that made it, and what was done."""

    image: MedicalImage
    model: ThroughPlaneSR
    acquisition: SliceAcquisition
    report: TrainingReport
    pixel_mm: tuple[float, float] = (1.0, 1.0)
    notes: list[str] = field(default_factory=list)
    trained: bool = True

    def metadata(self) -> dict[str, Any]:
        """What is stored beside the weights so a re-application knows its origin."""
        return {
            METADATA_KEY: {
                "acquisition": self.acquisition.as_dict(),
                "pixel_mm": list(self.pixel_mm),
                "source": self.image.source.path,
                "training": self.report.as_dict(),
            }
        }


def _target_depth(image: MedicalImage, spacing: float | None) -> tuple[int, float]:
    """(output slice count, target spacing mm): isotropic at the mean in-plane spacing by
    default; the field of view along z is kept, the count chosen as for any upscale
    (:func:`~medsr.infer.pipeline.count_for_spacing`)."""
    dz, dy, dx = image.spacing_mm
    goal = spacing if spacing is not None else 0.5 * (dy + dx)
    if dz / goal <= 1.0 + 1e-6:
        raise ConfigError(
            f"{image.source.path or 'the image'}: slices are {dz:.4g} mm apart, already at or "
            f"finer than {goal:.4g} mm; nothing to upscale through-plane"
        )
    return count_for_spacing(image.shape[0], dz, goal), goal


def _snap(scale: float) -> float:
    """``scale`` rounded to 1/1000 when within 1e-6 of it: header spacings stored in float32
    (3.0000000477 mm) should not turn a x3 into a x3.00000001."""
    snapped = round(scale * 1000.0) / 1000.0
    return snapped if abs(scale - snapped) <= 1e-6 * scale else scale


def _zoo_has(name: str | Path) -> bool:
    return str(name) in zoo_models()


def upscale_self_supervised(
    image: MedicalImage,
    settings: SelfSupervisedSettings | None = None,
    progress: bool = False,
    log: Log | None = None,
) -> SelfSupervisedResult:
    """Learn through-plane SR from ``image``'s own slices and apply it; see :mod:`medsr.selfsup`."""
    settings = settings or SelfSupervisedSettings()
    settings.check()
    notes: list[str] = []

    def note(text: str) -> None:
        notes.append(text)
        if log is not None:
            log(text)

    acquisition = slice_acquisition(image, settings.slice_thickness, settings.slice_profile)
    depth, goal = _target_depth(image, settings.spacing)
    _, dy, dx = image.spacing_mm
    device = resolve_device(settings.device)
    note(f"{acquisition.describe()}; in-plane {dy:.4g} x {dx:.4g} mm; target {goal:.4g} mm")

    scale = _snap(acquisition.spacing_mm / (0.5 * (dy + dx)))
    if abs(dy - dx) > 0.01 * max(dy, dx):
        note(
            f"pixels are {dy:.4g} x {dx:.4g} mm: both in-plane axes are treated as "
            f"{0.5 * (dy + dx):.4g} mm for the pairs"
        )
    norm = image.normalization()
    unit = torch.from_numpy(np.ascontiguousarray(norm.to_unit(image.pixels), dtype=np.float32))
    learnt = learnt_metadata(settings.model)
    if learnt is not None:
        assert settings.model is not None
        model, _ = load_learnt_model(settings.model)
        if abs(model.scale - scale) > 1e-3 * scale:
            raise ConfigError(
                f"{settings.model} was learnt for a through-plane factor {model.scale:.4g}; "
                f"this volume needs {scale:.4g} (learn a new one by leaving --model out)"
            )
        source = learnt.get("source") or "another scan"
        note(f"re-applying the network learnt from {source}; no training")
        report = TrainingReport(device=str(device))
    else:
        donor, start_from = None, "from scratch"
        source = settings.model if settings.model is not None else settings.start_from
        if source is not None and (settings.model is not None or _zoo_has(source)):
            donor = load_donor(source)
            start_from = f"starting from the features of {source}"
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            model = build_network(scale, settings, donor)
        pixel = acquisition.spacing_mm / scale  # the mean in-plane pixel, up to snapping
        axes = [
            AxisPairs(-2, acquisition.degradation(pixel)),
            AxisPairs(-1, acquisition.degradation(pixel)),
        ]
        started = time.perf_counter()
        fit_linear_base(model, unit, axes)
        note(
            f"learning from the volume's own {image.shape[0]} in-plane slices, degraded along "
            f"each in-plane axis: least-squares filter fitted in "
            f"{time.perf_counter() - started:.0f} s; network {start_from}, budget "
            f"{settings.budget_s:g} s"
        )
        generator = torch.Generator().manual_seed(settings.seed)
        sampler = PairSampler(unit, axes, settings.patch, generator)
        report = train_through_plane(model, sampler, settings, device, progress)
        note(report.describe())
        if report.pairs_psnr_model < report.pairs_psnr_cubic:
            note("warning: the learnt network is worse than cubic on its own training pairs")
    scales = (scale, scale)
    start = time.perf_counter()
    sr = apply_through_plane(model, unit, scales, depth, device, settings.inference_batch, progress)
    note(
        f"applied to {image.shape[1]} (D, W) and {image.shape[2]} (D, H) planes and averaged "
        f"in {time.perf_counter() - start:.0f} s: {image.shape[0]} -> {depth} slices"
    )
    pixels = norm.from_unit(sr.numpy()).astype(np.float32, copy=False)
    del sr
    description = (
        f"medsr self-supervised through-plane SR ({acquisition.describe()}) to "
        f"{image.spacing_mm[0] * image.shape[0] / depth:.4g} mm slices"
    )
    derived = image.with_pixels(pixels, description)
    return SelfSupervisedResult(
        derived, model, acquisition, report, (dy, dx), notes, learnt is None
    )


def learnt_model_path(output: Path) -> Path:
    """Where the learnt network goes beside an output file or series folder."""
    suffix = full_suffix(output)
    base = stem(output) if suffix else output.name
    return output.with_name(f"{base}_selfsup.safetensors")


def save_learnt_model(result: SelfSupervisedResult, path: Path) -> Path:
    """The learnt network as safetensors, re-appliable with ``--model``."""
    return save_generator(result.model, path, extra_metadata=result.metadata())
