"""The upscale pipeline: a MedicalImage (or files) in, a MedicalImage (or files) out.

Intensities go ``physical -> [0, 1]`` with the image's own
:meth:`~medsr.image.MedicalImage.normalization`, through the model, and back
with its exact inverse, so CT stays in HU and 16-bit data stays 16-bit.
Geometry follows :meth:`~medsr.image.MedicalImage.with_pixels` on the model's
``grid`` (:func:`model_grid`): the output covers the same field of view with spacing
divided by the scale, its first centre where the input's was for a model on the DFT
grid (zero-fill skip: an ``mr-kspace`` input comes back on the original grid), its
field-of-view edges where the input's were otherwise (interpolation, other models).

Volumes are upscaled in-plane (each (H, W) slice, batched) or through-plane
(each (D, W) plane with the scale on D only, to approach isotropic voxels).
Finding inputs, naming and writing outputs: :mod:`medsr.infer.files`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from medsr.degrade.resize import output_size
from medsr.errors import ConfigError
from medsr.image import MedicalImage, Modality, Normalization
from medsr.infer.consistency import (
    KSPACE,
    Residual,
    degradation_kernel,
    downscale,
    kspace_downscale,
    project_consistent,
    residual_of,
    wants_data_consistency,
)
from medsr.infer.files import (
    IMAGE_SUFFIXES,
    OUTPUT_FILE_SUFFIXES,
    InputItem,
    check_output,
    collect_inputs,
    fit_to_source,
    format_suffix,
    keep_format,
    output_paths,
    write_output,
    write_residual,
)
from medsr.infer.files import _keep_format as _keep_format  # the pre-split private name
from medsr.infer.runner import ModelRunner, ScalePair, ScalePlan, format_scale, plan_scale
from medsr.infer.sinogram import SparseViews, project_views, redegrade, sparse_views_of
from medsr.infer.tiling import default_memory_budget, memory_tile, plan_tiles, tiled_upscale
from medsr.io.core import check_output_pixels, notes_of

__all__ = [
    "IMAGE_SUFFIXES",
    "OUTPUT_FILE_SUFFIXES",
    "InputItem",
    "UpscaleResult",
    "UpscaleSettings",
    "auto_tile",
    "collect_inputs",
    "count_for_spacing",
    "fit_to_source",
    "format_suffix",
    "keep_format",
    "model_grid",
    "output_paths",
    "run_files",
    "upscale_image",
    "upscale_planes",
    "write_output",
    "write_residual",
]

PLANES = ("in", "through")
DEFAULT_OVERLAP = 32
#: A target spacing may be missed by this fraction to keep the nearest pixel count.
SPACING_TOLERANCE = 1e-3

Log = Callable[[str], None]


@dataclass
class UpscaleSettings:
    """Options of one upscale run (CLI flags and API keywords)."""

    scale: float | tuple[float, float] | None = None
    spacing: float | None = None
    tile: int | None = None
    overlap: int | None = None
    batch_size: int | None = None
    plane: str = "in"
    consistency: bool = False
    #: None: on for GAN-trained models (zoo kind "gan"), off otherwise
    data_consistency: bool | None = None
    #: bytes a forward may use before tiling (None: :func:`default_memory_budget`)
    max_memory: int | None = None
    #: sparse-view CT restorers: the input kept every N-th of the model's views (None: the
    #: model's training step), the geometry of the sinogram-domain consistency step
    view_step: int | None = None

    def check(self) -> None:
        if self.scale is not None and self.spacing is not None:
            raise ConfigError("give either a scale or a target spacing, not both")
        if self.spacing is not None and not (math.isfinite(self.spacing) and self.spacing > 0):
            raise ConfigError(f"target spacing must be a positive number of mm, got {self.spacing}")
        if self.scale is not None:
            scales = [self.scale] if isinstance(self.scale, int | float) else list(self.scale)
            if not all(math.isfinite(float(s)) and float(s) > 0 for s in scales):
                raise ConfigError(f"scale must be a positive number, got {self.scale}")
        if self.plane not in PLANES:
            raise ConfigError(f"unknown plane {self.plane!r}; choose in or through")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {self.batch_size}")
        if self.overlap is not None and self.tile is None:
            raise ConfigError("--overlap needs --tile")
        if self.view_step is not None and self.view_step < 1:
            raise ConfigError(f"--view-step must be at least 1, got {self.view_step}")


@dataclass
class UpscaleResult:
    """The upscaled image, what was done, and the fidelity figures when asked for."""

    image: MedicalImage
    notes: list[str] = field(default_factory=list)
    residual: MedicalImage | None = None
    residual_summary: Residual | None = None
    #: max |degrade(SR) - LR| after the data-consistency projection, % of the data range
    projected_residual_percent: float | None = None


# ----------------------------------------------------------------------------- scales
def _in_plane_target(
    image: MedicalImage, settings: UpscaleSettings, notes: list[str]
) -> ScalePair | None:
    if settings.scale is not None:
        s = settings.scale
        return (float(s), float(s)) if isinstance(s, int | float) else (float(s[0]), float(s[1]))
    if settings.spacing is None:
        return None
    _require_spacing(image)
    dy, dx = image.spacing_mm[-2:]
    h, w = image.shape[-2:]
    target = (
        count_for_spacing(h, dy, settings.spacing) / h,
        count_for_spacing(w, dx, settings.spacing) / w,
    )
    if any(t < 1.0 for t in target):
        notes.append(f"axes already at or finer than {settings.spacing:g} mm are kept (scale 1)")
    return (max(target[0], 1.0), max(target[1], 1.0))


def _through_target(image: MedicalImage, settings: UpscaleSettings) -> float:
    dz, dy, dx = image.spacing_mm
    if settings.scale is not None:
        if not isinstance(settings.scale, int | float):
            raise ConfigError("through-plane upscaling takes one scale (along the slice axis)")
        return float(settings.scale)
    _require_spacing(image)
    goal = settings.spacing if settings.spacing is not None else 0.5 * (dy + dx)
    depth = image.shape[0]
    target = count_for_spacing(depth, dz, goal) / depth
    if target <= 1.0 + 1e-6:
        raise ConfigError(
            f"slices are {dz:.4g} mm apart, already at or finer than {goal:.4g} mm; "
            "nothing to upscale through-plane"
        )
    return target


def count_for_spacing(count: int, spacing_mm: float, target_mm: float) -> int:
    """Pixels that cover the field of ``count`` pixels of ``spacing_mm`` at ``target_mm``.

    The nearest count when its spacing is within ``SPACING_TOLERANCE`` of the target
    (512 x 0.478516 / 0.2 = 1225.04 -> 1225 px; 6 x 2.50008 / 1 = 15.0005 -> 15 slices),
    else the next count up, so the spacing is never much coarser than asked.
    """
    exact = count * spacing_mm / target_mm
    nearest = max(1, round(exact))
    if abs(exact / nearest - 1.0) <= SPACING_TOLERANCE:
        return nearest
    return math.ceil(exact)


def _require_spacing(image: MedicalImage) -> None:
    if not image.spacing_known:
        raise ConfigError(
            f"{image.source.path or 'the image'} has no known pixel spacing; give --scale instead"
        )


def model_grid(model: nn.Module) -> str:
    """The grid of ``model``'s output relative to its input: ``dft`` (first centre kept:
    zero-fill-skip models) or ``area`` (field-of-view edges kept: the rest, interpolation
    baselines included); see :mod:`medsr.degrade.acquisition`."""
    grid = str(getattr(model, "grid", "area"))
    return grid if grid in ("dft", "sample") else "area"


# ----------------------------------------------------------------------------- planes
def auto_tile(
    runner: ModelRunner, lr_size: tuple[int, int], scale: ScalePair, tile: int | None, budget: int
) -> tuple[int | None, int]:
    """(tile, overlap): the given tile; else no tiling when the whole forward fits ``budget``
    bytes (the model's measured bytes per pixel), else the largest tile that fits."""
    if tile is not None:
        return tile, DEFAULT_OVERLAP if tile > 2 * DEFAULT_OVERLAP else tile // 4
    size = memory_tile(lr_size, runner.bytes_per_pixel(scale), budget, DEFAULT_OVERLAP)
    return (size, DEFAULT_OVERLAP) if size is not None else (None, 0)


def upscale_planes(
    runner: ModelRunner,
    planes: Tensor,
    plan: ScalePlan,
    tile: int | None = None,
    overlap: int | None = None,
    batch_size: int | None = None,
    progress: bool = False,
    log: Log | None = None,
    max_memory: int | None = None,
) -> Tensor:
    """Upscale grey [0, 1] planes (N, 1, h, w) on the CPU to (N, 1, H', W') at ``plan.target``.

    Tiles only when a forward of the whole plane would exceed ``max_memory`` bytes. When
    the model runs at a larger scale than the target, its output is resampled down with
    antialiased cubic imresize, or by k-space truncation for a model on the DFT grid.
    """
    n, _, h, w = planes.shape
    final = output_size(h, w, plan.target)
    dft = model_grid(runner.model) == "dft"
    source = planes.transpose(-1, -2) if plan.transpose else planes
    sh, sw = int(source.shape[-2]), int(source.shape[-1])
    run_size = output_size(sh, sw, plan.run)
    budget = max_memory or default_memory_budget(runner.device)
    chosen_tile, chosen_overlap = auto_tile(runner, (sh, sw), plan.run, tile, budget)
    if overlap is not None:
        chosen_overlap = overlap
    if tile is None and chosen_tile is not None and log is not None:
        log(f"tiling automatically: tiles of {chosen_tile} px, overlap {chosen_overlap}")
    rf = runner.info.receptive_field
    tile_plan = plan_tiles((sh, sw), run_size, plan.run, chosen_tile, chosen_overlap, rf)
    if chosen_tile is not None and not tile_plan.exact_alignment and log is not None:
        log(
            f"scale {format_scale(plan.run)} has no small rational form: tiles are placed "
            "to the nearest output pixel"
        )
    per_item = min(chosen_tile or sh, sh) * min(chosen_tile or sw, sw)  # LR pixels per forward
    per_item_bytes = runner.bytes_per_pixel(plan.run) * per_item
    batch = batch_size or max(1, min(64, int(budget // max(per_item_bytes, 1.0))))
    chunk = max(1, batch // tile_plan.count)
    from tqdm import tqdm

    unit = "slice" if tile_plan.count == 1 else "tile"
    bar = tqdm(total=n * tile_plan.count, unit=unit, disable=not progress, leave=False)
    out: Tensor | None = None
    try:
        for first in range(0, n, chunk):
            part = tiled_upscale(
                lambda x: runner(x, plan.run),
                source[first : first + chunk],
                plan.run,
                run_size,
                chosen_tile,
                chosen_overlap,
                rf,
                batch,
                bar.update,
            )
            if plan.transpose:
                part = part.transpose(-1, -2)
            if plan.resample and dft:  # Fourier resampling keeps the DFT grid
                part = kspace_downscale(part, final, magnitude=False)
            elif plan.resample:
                part = downscale(part, final, "cubic")  # antialiased imresize, sparse
            if first == 0 and first + chunk >= n:
                out = part.contiguous()
                break
            if out is None:
                out = torch.empty(n, 1, *final, dtype=torch.float32)
            out[first : first + chunk] = part
    finally:
        bar.close()
    assert out is not None
    return out


def _to_planes(unit: np.ndarray, plane: str) -> Tensor:
    """(H, W) -> (1, 1, H, W); (D, H, W) in-plane -> (D, 1, H, W); through -> (H, 1, D, W)."""
    t = torch.from_numpy(np.ascontiguousarray(unit, dtype=np.float32))
    if t.ndim == 2:
        return t[None, None]
    if plane == "through":
        return t.permute(1, 0, 2).unsqueeze(1).contiguous()
    return t.unsqueeze(1)


def _from_planes(planes: Tensor, ndim: int, plane: str) -> np.ndarray:
    if ndim == 2:
        return planes[0, 0].numpy()
    if plane == "through":
        return planes[:, 0].permute(1, 0, 2).contiguous().numpy()
    return planes[:, 0].numpy()


# ----------------------------------------------------------------------------- image
def upscale_image(
    image: MedicalImage,
    model: nn.Module | ModelRunner,
    settings: UpscaleSettings | None = None,
    progress: bool = False,
    log: Log | None = None,
) -> UpscaleResult:
    """Super-resolve one image; see :class:`UpscaleSettings` for the options."""
    settings = settings or UpscaleSettings()
    settings.check()
    runner = model if isinstance(model, ModelRunner) else ModelRunner(model)
    notes: list[str] = []
    plane = settings.plane
    if plane == "through":
        if image.ndim != 3 or image.shape[0] < 2:
            raise ConfigError("--plane through needs a volume of at least 2 slices")
        target: ScalePair | None = (_through_target(image, settings), 1.0)
    else:
        target = _in_plane_target(image, settings, notes)
    plan = plan_scale(runner.info, target, allow_transpose=plane == "through")
    if plane == "through" and plan.run[0] == plan.run[1] and plan.run[0] > 1:
        notes.append(
            f"{runner.info.name} is isotropic ({format_scale(plan.run)}): applied to each "
            "(D, W) plane, then the W axis is resampled back to its size"
        )
    grid = model_grid(runner.model)
    plan_notes = list(plan.notes)
    if grid == "dft":  # upscale_planes resamples a DFT-grid output in k-space, not cubic
        plan_notes = [
            t.replace("antialiased cubic imresize", "k-space truncation") for t in plan_notes
        ]
    notes.extend(plan_notes)
    for text in notes:
        if log is not None:
            log(text)

    def note(text: str) -> None:
        notes.append(text)
        if log is not None:
            log(text)

    views = sparse_views_of(runner.model, settings.view_step)
    if settings.view_step is not None and views is None:
        raise ConfigError(
            f"--view-step applies to sparse-view CT restorers; {_model_label(runner.model)} "
            "is not one"
        )
    restores_ct = views is not None and image.modality is Modality.CT
    window = getattr(runner.model, "medsr_window", None) if restores_ct else None
    if window is not None:
        # the restorer's training window: its input clipped to it as in training; pixels
        # outside it keep their input values (below)
        norm = image.normalization(window=window)
        lr = _to_planes(np.clip(norm.to_unit(image.pixels), 0.0, 1.0), plane)
        note(f"CT in the restorer's training window {window} ({norm.low:g} to {norm.high:g} HU)")
    else:
        norm = image.normalization()
        lr = _to_planes(norm.to_unit(image.pixels), plane)
    out_plane = output_size(int(lr.shape[-2]), int(lr.shape[-1]), plan.target)
    check_output_pixels(image.source.path or "the image", (int(lr.shape[0]), *out_plane))
    try:
        sr = upscale_planes(
            runner,
            lr,
            plan,
            settings.tile,
            settings.overlap,
            settings.batch_size,
            progress,
            log,
            settings.max_memory,
        )
    finally:
        if not isinstance(model, ModelRunner):
            runner.restore()

    result = UpscaleResult(image)
    project = wants_data_consistency(runner.model, settings.data_consistency)
    if views is not None:  # a sparse-view CT restorer: the sinogram-domain step
        sr = _sinogram_fidelity(sr, lr, views, project, settings.consistency, result, note)
    else:
        sr = _resize_fidelity(sr, lr, norm, runner.model, project, settings, result, note)
    if settings.consistency and result.residual_summary is not None:
        residual_pixels = _from_planes(
            torch.from_numpy(result.residual_summary.map), image.ndim, plane
        )
        forward = "sparse-view FBP" if views is not None else _forward_name(runner.model)
        result.residual = image.with_pixels(
            (residual_pixels * norm.data_range).astype(np.float32),
            f"medsr consistency residual |{forward}(SR) - LR| ({norm.method})",
        )

    pixels = norm.from_unit(_from_planes(sr, image.ndim, plane)).astype(np.float32, copy=False)
    del sr  # the output can be large: keep one copy
    if window is not None:
        outside = (image.pixels < norm.low) | (image.pixels > norm.high)
        pixels = np.where(outside, image.pixels, pixels).astype(np.float32, copy=False)
        if outside.any():
            note(
                f"{100 * float(outside.mean()):.2g}% of the pixels lie outside the window and "
                "keep their input values"
            )
    description = _describe(image.shape, pixels.shape, plane, _model_label(runner.model))
    if image.modality is Modality.CT:
        pixels, clip_note = _clip_to_input_range(pixels, image.pixels)
        if clip_note:
            note(clip_note)
            description += f"; {clip_note}"
    result.image = image.with_pixels(pixels, description, grid=grid)
    result.notes = notes
    return result


def _forward_name(model: nn.Module) -> str:
    return "mr-kspace" if degradation_kernel(model)[0] == KSPACE else "degrade"


def _sinogram_fidelity(
    sr: Tensor,
    lr: Tensor,
    views: SparseViews,
    project: bool,
    consistency: bool,
    result: UpscaleResult,
    note: Callable[[str], None],
) -> Tensor:
    """The sinogram-domain step of a sparse-view CT restorer (:mod:`medsr.infer.sinogram`)
    and, when asked, the residual ``|sparse-view FBP(SR) - LR|``."""
    if project:
        sr = project_views(sr, lr, views)
        note(
            f"data consistency: one step towards the input's {views.describe()} "
            "(sinogram domain, medsr.infer.sinogram); --no-data-consistency turns it off"
        )
    if consistency:
        summary = residual_of(redegrade(sr, views), lr)
        result.residual_summary = summary
        note(f"{summary.describe()} (re-projected at {views.describe()})")
    return sr


def _resize_fidelity(
    sr: Tensor,
    lr: Tensor,
    norm: Normalization,
    model: nn.Module,
    project: bool,
    settings: UpscaleSettings,
    result: UpscaleResult,
    note: Callable[[str], None],
) -> Tensor:
    """The resize or k-space projection and residual of the other models."""
    lr_size = (int(lr.shape[-2]), int(lr.shape[-1]))
    kernel, degrade_note = degradation_kernel(model)  # KSPACE for DFT-grid models
    forward = "mr-kspace" if kernel == KSPACE else "degrade"
    zero = float(norm.to_unit(0.0))  # no signal: where a k-space magnitude is taken
    if project:
        if degrade_note:
            note(degrade_note)
        sr = project_consistent(sr, lr, kernel, zero)
        left = (downscale(sr, lr_size, kernel, zero) - lr).abs().max()
        result.projected_residual_percent = 100.0 * float(left)
        note(
            f"data consistency: projected so the output re-degrades ({forward}) to the input; "
            f"remaining max residual {result.projected_residual_percent:.2g}% of the data range"
        )
    if settings.consistency:
        if degrade_note and not project:
            note(degrade_note)
        redegraded = downscale(sr, lr_size, kernel, zero)
        summary = residual_of(redegraded, lr)
        result.residual_summary = summary
        note(f"{summary.describe()}; data range {norm.data_range:.6g} ({norm.method})")
    return sr


def _describe(before: tuple[int, ...], after: tuple[int, ...], plane: str, model: str) -> str:
    """``medsr upscale x2.39258 in-plane (512x512 -> 1225x1225 px) with bicubic``: the real
    factor, from the sizes, which a rounded pixel count makes differ from the one asked."""
    if plane == "through":
        factors: tuple[float, ...] = (after[0] / before[0],)
        sizes = f"{before[0]} -> {after[0]} slices"
    else:
        factors = tuple(a / b for a, b in zip(after[-2:], before[-2:]))
        sizes = f"{'x'.join(map(str, before[-2:]))} -> {'x'.join(map(str, after[-2:]))} px"
    text = "x" + ",".join(dict.fromkeys(f"{f:.6g}" for f in factors))
    where = "through-plane" if plane == "through" else "in-plane"
    return f"medsr upscale {text} {where} ({sizes}) with {model}"


def _clip_to_input_range(pixels: np.ndarray, source: np.ndarray) -> tuple[np.ndarray, str | None]:
    """CT clipped to the HU range of its input: interpolation and SR ringing at skull/air
    edges reach below -1024 HU, which is not tissue, and above the input's densest value."""
    low, high = float(source.min()), float(source.max())
    outside = float(np.mean((pixels < low) | (pixels > high)))
    if outside == 0:
        return pixels, None
    clipped = np.clip(pixels, low, high)
    return clipped, (
        f"CT clipped to the input's range [{low:g}, {high:g}] HU "
        f"({100 * outside:.2g}% of the pixels were outside)"
    )


def _model_label(model: nn.Module) -> str:
    from medsr.infer.weights import describe_weights

    return describe_weights(model)


def run_files(
    inputs: Sequence[str | Path],
    output: str | Path,
    model: nn.Module | Callable[[MedicalImage], nn.Module],
    settings: UpscaleSettings,
    device: str = "auto",
    precision: str = "fp32",
    compile: bool = False,
    tag: str = "_sr",
    progress: bool = True,
    log: Log = print,
    overwrite: bool = False,
) -> list[Path]:
    """Upscale every input into ``output`` in its own format; returns the written paths.

    ``model`` is one network for every input, or a function that chooses one per image
    (by its modality: :func:`medsr.zoo.choice.choose_model`). An existing file named by
    ``output`` is replaced only with ``overwrite``."""
    from medsr.io import read

    settings.check()
    output = Path(output)
    items = collect_inputs(inputs)
    outs = output_paths(items, output, tag, overwrite)
    runners: dict[int, ModelRunner] = {}

    def runner_for(image: MedicalImage) -> ModelRunner:
        chosen = model if isinstance(model, nn.Module) else model(image)
        if id(chosen) not in runners:
            runners[id(chosen)] = ModelRunner(
                chosen, device=device, precision=precision, compile=compile
            )
        return runners[id(chosen)]

    written: list[Path] = []
    try:
        for item, out in zip(items, outs):
            image = read(item.path)
            for text in notes_of(image):
                log(f"note: {text}")
            out = keep_format(out, image, explicit=len(items) == 1 and out == output)
            check_output(out, item.path, overwrite)
            runner = runner_for(image)
            result = upscale_image(image, runner, settings, progress=progress, log=log)
            fitted, note = fit_to_source(result.image)
            if note:
                log(note)
            path = write_output(fitted, out)
            written.append(path)
            sp_in = " x ".join(f"{s:.4g}" for s in image.spacing_mm)
            sp_out = " x ".join(f"{s:.4g}" for s in result.image.spacing_mm)
            log(
                f"{item.path} {image.shape} @ {sp_in} mm -> {path} "
                f"{result.image.shape} @ {sp_out} mm"
            )
            if result.residual is not None:
                for extra in write_residual(result.residual, path):
                    written.append(extra)
                    log(f"  residual map: {extra}")
    finally:
        for runner in runners.values():
            runner.restore()
    return written
