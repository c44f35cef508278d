"""Evaluation runs: degrade each HR image (seeded), super-resolve with every model, score.

The pipeline per image, identical for every model of a run:

1. ``hr`` in physical units, clipped to its normalisation range (CT: the HU
   window; MR: the 0.5-99.5 percentile range; X-ray/US: the bits-stored range,
   which clips nothing). For an integer
   scale the HR is cropped to a multiple of the scale (``modcrop``) so the SR
   output has the HR's size; otherwise SR and HR are cropped to their common
   top-left region.
2. ``lr = degradation(normalization.to_unit(hr))`` with a generator seeded by
   ``seed + image index``, computed once and shared by all models.
3. ``sr = normalization.from_unit(model(lr, scale))``, not clipped.
4. PSNR and SSIM (11x11 Gaussian, sigma 1.5) of ``sr`` against ``hr`` in physical
   units with ``data_range = normalization.data_range`` and a border shave of
   ``ceil(s)`` pixels per axis (as MIASSR): the CT window width in HU, the
   bits-stored range for X-ray/ultrasound/raster files, the 0.5-99.5 percentile
   range of the HR image (volume) for MR. Volumes are scored slice by slice.
   Beside them, with the same shave: the perceptual measures GMSD (lower is better)
   and HaarPSI (higher is better), which need no learned weights, computed on the
   normalised [0, 1] images as their authors' code expects [0, 255]; and the signed
   mean intensity bias ``mean(sr - hr)`` in percent of the data range.

A degradation whose ``replaces_target`` is true (``ct-sparse-view``) returns the
reference with the input (:meth:`apply_pair`): the sparse-view FBP is scored against
the full-view FBP of the same slice, the paper's target, so ``bicubic`` at scale 1
(the identity) is the FBP input and every gain is a gain over it.

Infinite PSNR (identical images) stays ``inf`` in the results; in JSON it is the
string ``"inf"`` (JSON has no infinity) and an undefined value (the spread or the
gain of infinite values) is ``null``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medsr.degrade import Degradation
from medsr.degrade.base import as_pair
from medsr.errors import ConfigError, InputError
from medsr.evaluate.results import (
    METRICS,
    PERCEPTUAL_MIN_SIZE,
    REFERENCE,
    EvalImage,
    EvalResult,
    ImageScore,
    ImageVisual,
    ModelResult,
    json_number,
)
from medsr.image import CT_WINDOWS, MedicalImage, Modality, Normalization
from medsr.infer.sinogram import SparseViews

__all__ = [
    "METRICS",
    "EvalImage",
    "EvalResult",
    "ImageScore",
    "ImageVisual",
    "ModelResult",
    "ModelSpec",
    "central_crop",
    "degradation_config",
    "json_number",
    "load_images",
    "load_models",
    "perceptual_scores",
    "prepare_images",
    "run_evaluation",
    "scale_sweep",
]


def degradation_config(text: str) -> dict[str, Any] | None:
    """A JSON ``--degradation`` (``{"name": "ct-sparse-view", "view_step": 8}``) as a dict,
    None for a plain name; a one-line ConfigError when the JSON is invalid or has no name."""
    import json

    if not text.lstrip().startswith("{"):
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--degradation {text!r} is not valid JSON ({exc})") from None
    if not isinstance(config, dict) or "name" not in config:
        raise ConfigError(f"--degradation {text!r}: a JSON config needs a name")
    return config


def reference_model(degradation: str) -> str:
    """The baseline a run on ``degradation`` reports gains over: the acquisition's reference
    model (``zero-fill`` for ``mr-kspace``), else ``bicubic`` (the identity at scale 1, so
    the FBP input for ``ct-sparse-view``)."""
    from medsr.degrade.acquisition import reference_name

    config = degradation_config(degradation)
    name = str(config["name"]) if config is not None else degradation
    return "zero-fill" if reference_name(name) == "zero-fill" else REFERENCE


# -- inputs -------------------------------------------------------------------------------


def central_crop(pixels: np.ndarray, max_size: int | None) -> np.ndarray:
    """The central ``min(H, max_size) x min(W, max_size)`` region of the last two axes."""
    if max_size is None:
        return pixels
    if max_size < 16:
        raise ConfigError(f"--max-size must be at least 16 pixels, got {max_size}")
    h, w = pixels.shape[-2:]
    ch, cw = min(h, max_size), min(w, max_size)
    top, left = (h - ch) // 2, (w - cw) // 2
    return pixels[..., top : top + ch, left : left + cw]


def _image_normalization(image: MedicalImage, ct_window: str) -> Normalization:
    if image.modality is Modality.CT:
        return image.normalization(window=ct_window)
    return image.normalization()


def prepare_images(
    named: Sequence[tuple[str, MedicalImage]],
    max_size: int | None = None,
    ct_window: str = "full",
    first_frame_only: bool = False,
) -> list[EvalImage]:
    """2-D HR images (slices of volumes) in physical units with their normalisations.

    The normalisation is computed on the whole (cropped) image or volume, so every
    slice of a volume shares one data range, and the pixels are clipped to its
    range (CT: ``ct_window``; MR: the 0.5-99.5 percentiles; bits-stored ranges
    clip nothing), so the models see [0, 1] as in training.
    """
    if ct_window not in CT_WINDOWS:
        raise ConfigError(f"unknown CT window {ct_window!r}; choose one of {', '.join(CT_WINDOWS)}")
    out: list[EvalImage] = []
    for name, image in named:
        pixels = central_crop(image.pixels, max_size)
        if first_frame_only and pixels.ndim == 3:
            pixels = pixels[:1]
        cropped = image.with_pixels(np.ascontiguousarray(pixels), "central crop")
        norm = _image_normalization(cropped, ct_window)
        pixels = np.clip(pixels, norm.low, norm.high)
        if pixels.ndim == 2:
            out.append(EvalImage(name, pixels.astype(np.float32), image.modality, norm))
            continue
        for z in range(pixels.shape[0]):
            label = name if pixels.shape[0] == 1 else f"{name}[{z}]"
            out.append(EvalImage(label, pixels[z].astype(np.float32), image.modality, norm))
    if not out:
        raise ConfigError("no images to evaluate")
    return out


def load_images(data: str | Path) -> list[tuple[str, MedicalImage]]:
    """``samples`` (the bundled test role), a file, or a folder of image files (sorted)."""
    from medsr.io import read
    from medsr.io.core import DICOM_SUFFIXES, NIFTI_SUFFIXES, RASTER_SUFFIXES, full_suffix

    if str(data) == "samples":
        from medsr.samples import list_samples

        return [(s.name, s.load()) for s in list_samples(role="test")]
    path = Path(data).expanduser()
    if not path.exists():
        raise InputError(path, "no such file or folder (give a folder of images or 'samples')")
    if path.is_file():
        return [(path.name, read(path))]
    known = (*RASTER_SUFFIXES, *NIFTI_SUFFIXES, *DICOM_SUFFIXES, ".npy")
    files = sorted(
        p
        for p in path.iterdir()
        if p.is_file() and not p.name.startswith(".") and full_suffix(p) in known
    )
    if not files:
        raise InputError(path, "holds no PNG, TIFF, JPEG, DICOM, NIfTI or .npy files")
    return [(p.name, read(p)) for p in files]


# -- models -------------------------------------------------------------------------------


@dataclass
class ModelSpec:
    """A model to evaluate and the name it is reported under."""

    name: str
    model: torch.nn.Module


def _load_one(spec: str) -> torch.nn.Module:
    """A zoo name, a weights file or a registry name (interpolation baselines) as a model."""
    import importlib

    try:  # the inference API, when this build has it, knows every kind of name
        api = importlib.import_module("medsr.infer.api")
    except ImportError:
        api = None
    if api is not None and hasattr(api, "load_model"):
        model: torch.nn.Module = api.load_model(spec)
        return model
    from medsr.infer.weights import WEIGHT_SUFFIXES, load_generator
    from medsr.zoo.manifest import zoo_models

    looks_like_file = Path(spec).suffix.lower() in WEIGHT_SUFFIXES or Path(spec).exists()
    if looks_like_file or spec in zoo_models():
        return load_generator(spec)
    from medsr.models import build

    return build(spec)


def zoo_names() -> list[str]:
    """Names of the zoo models with shipped weights (empty when none are shipped)."""
    from medsr.zoo.manifest import zoo_models

    return list(zoo_models())


def load_models(
    names: Sequence[str], baselines: Sequence[str] = (REFERENCE,), reference: str = REFERENCE
) -> list[ModelSpec]:
    """Baselines first (the run's ``reference`` and ``bicubic`` always included), then the
    models."""
    wanted: list[str] = []
    for name in [reference, REFERENCE, *baselines, *names]:
        name = name.strip()
        if name and name not in wanted:
            wanted.append(name)
    specs: list[ModelSpec] = []
    for name in wanted:
        model = _load_one(name).eval()
        specs.append(ModelSpec(_unique_label(name, {s.name for s in specs}), model))
    return specs


def _unique_label(name: str, taken: set[str]) -> str:
    """A file's stem (a zoo or registry name as is); ``folder/stem`` when two files share a
    stem (runs/a/best_ema.safetensors, runs/b/best_ema.safetensors), so their scores are
    never merged under one name."""
    path = Path(name)
    label = path.stem if path.suffix else name
    if label in taken and path.suffix:
        label = f"{path.parent.name}/{path.stem}"
    base, count = label, 2
    while label in taken:
        label, count = f"{base} ({count})", count + 1
    return label


# -- the run ------------------------------------------------------------------------------


def build_degradation(name: str, scale: float | tuple[float, float]) -> Degradation:
    """``medsr.degrade.build(name, scale=scale)``, or an acquisition by name
    (``xray-binning``, see :mod:`medsr.degrade.acquisition`); same-size degradations take
    no scale."""
    from medsr.degrade import build
    from medsr.degrade.acquisition import ACQUISITIONS

    config = degradation_config(name)
    if config is not None:
        if config["name"] not in ("ct-sparse-view",) and "scale" not in config:
            config["scale"] = scale
        return build(config)
    if name in ACQUISITIONS and name not in ("bicubic", "mr-kspace"):
        acq = ACQUISITIONS[name]
        return acq.build(None if acq.same_size else max(as_pair(scale)))

    try:
        return build(name, scale=scale)
    except ConfigError as exc:
        if "does not take scale" not in str(exc):
            raise
        return build(name)


def _modcrop(hr: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """Crop the bottom/right so each axis is a multiple of an integer scale."""
    h, w = hr.shape
    sy, sx = scale
    if float(sy).is_integer():
        h -= h % int(sy)
    if float(sx).is_integer():
        w -= w % int(sx)
    return hr[:h, :w]


def _common_crop(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = min(a.shape[0], b.shape[0])
    w = min(a.shape[1], b.shape[1])
    return a[:h, :w], b[:h, :w]


def _forward(
    model: torch.nn.Module,
    lr: torch.Tensor,
    scale: tuple[float, float],
    data_consistency: bool | None = None,
    views: SparseViews | None = None,
) -> torch.Tensor:
    """Grey (B, 1, h, w) -> grey SR through ``medsr upscale``'s execution path.

    :class:`~medsr.infer.runner.ModelRunner` (BatchNorm folded, channels-last,
    inference mode, grey repeated for colour models) on the model's own device,
    tiled only when the forward would exceed the memory budget; then, as
    ``medsr upscale`` does, the data-consistency projection when ``data_consistency``
    asks for it or (None) by default for GAN-trained zoo models, with the imresize
    kernel of the model's training degradation; for a sparse-view CT restorer, the
    sinogram-domain step with the run's acquisition geometry ``views`` (the model's
    training geometry when None).
    """
    from medsr.infer.consistency import (
        degradation_kernel,
        project_consistent,
        wants_data_consistency,
    )
    from medsr.infer.pipeline import upscale_planes
    from medsr.infer.runner import ModelRunner, ScalePlan
    from medsr.infer.sinogram import project_views, sparse_views_of

    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    runner = ModelRunner(model, device=device)
    sr = upscale_planes(runner, lr.float(), ScalePlan(scale, scale))
    if getattr(model, "is_baseline", False) or not wants_data_consistency(model, data_consistency):
        return sr
    restorer = sparse_views_of(model)
    if restorer is not None:
        return project_views(sr, lr.float().to(sr.device), views or restorer)
    return project_consistent(sr, lr.float().to(sr.device), degradation_kernel(model)[0])


def score_pair(
    sr: np.ndarray,
    hr: np.ndarray,
    data_range: float,
    shave: tuple[int, int],
    with_ssim: bool = True,
) -> tuple[float, float]:
    """PSNR (dB) and SSIM of two 2-D physical-unit arrays with the given range and shave.

    SSIM is NaN when ``with_ssim`` is False or the shaved image is under 11 pixels.
    """
    from medsr.metrics import psnr, ssim

    x = torch.from_numpy(np.ascontiguousarray(sr, dtype=np.float64))[None, None]
    y = torch.from_numpy(np.ascontiguousarray(hr, dtype=np.float64))[None, None]
    sh = [min(s, (n - 1) // 2) for s, n in zip(shave, x.shape[2:])]
    p = float(psnr(x, y, data_range, shave=sh)[0])
    s = (
        float(ssim(x, y, data_range, shave=sh)[0])
        if with_ssim and min(x.shape[2:]) - 2 * max(sh) >= 11
        else math.nan
    )
    return p, s


def perceptual_scores(
    sr: np.ndarray, hr: np.ndarray, norm: Normalization, shave: tuple[int, int]
) -> tuple[float, float, float]:
    """GMSD, HaarPSI and the mean bias (percent of the data range) of two 2-D physical-unit
    arrays. GMSD and HaarPSI see the normalised images (their filters pad with zeros, as
    the authors' code does for [0, 255] images) and are NaN below
    ``PERCEPTUAL_MIN_SIZE`` pixels after the shave."""
    from medsr.metrics import gmsd, haarpsi, mean_bias

    x = torch.from_numpy(np.ascontiguousarray(norm.to_unit(sr), dtype=np.float64))[None, None]
    y = torch.from_numpy(np.ascontiguousarray(norm.to_unit(hr), dtype=np.float64))[None, None]
    sh = [min(s, (n - 1) // 2) for s, n in zip(shave, x.shape[2:])]
    bias = 100.0 * float(mean_bias(x, y, 1.0, shave=sh)[0])
    if min(x.shape[2:]) - 2 * max(sh) < PERCEPTUAL_MIN_SIZE:
        return math.nan, math.nan, bias
    return float(gmsd(x, y, 1.0, shave=sh)[0]), float(haarpsi(x, y, 1.0, shave=sh)[0]), bias


def _degrade(
    deg: Degradation, hr_unit: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(LR, the reference that replaces HR or None) for one (1, 1, H, W) image."""
    if getattr(deg, "replaces_target", False):
        params = deg.sample_params(hr_unit.shape[0], generator, hr_unit.device)
        lr, target = deg.apply_pair(hr_unit, params)  # type: ignore[attr-defined]
        return lr, target
    return deg(hr_unit, generator=generator), None


def run_evaluation(
    models: Sequence[ModelSpec],
    images: Sequence[EvalImage],
    scale: float | tuple[float, float],
    degradation: str = "bicubic",
    seed: int = 0,
    keep_visuals: bool = False,
    progress: Callable[[str], None] | None = None,
    with_ssim: bool = True,
    data_consistency: bool | None = None,
) -> EvalResult:
    """Score every model on every image at one scale; see the module docstring for the rules.

    ``keep_visuals`` keeps LR, SR and HR pixels for a report; ``with_ssim=False`` skips
    SSIM, GMSD, HaarPSI and the bias (NaN) where only PSNR is wanted. ``data_consistency``
    is ``medsr upscale``'s option of that name (None: on for GAN-trained zoo models only),
    so a GAN is scored as users get it.
    """
    deg = build_degradation(degradation, scale)
    views = SparseViews.of_degradation(deg)  # a sparse-view CT run: its geometry
    sr_scale = (float(deg.scale[0]), float(deg.scale[1]))
    shave = (math.ceil(sr_scale[0] - 1e-9), math.ceil(sr_scale[1] - 1e-9))
    results = {
        m.name: ModelResult(
            m.name,
            bool(getattr(m.model, "arbitrary_scale", False)),
            bool(getattr(m.model, "is_baseline", False)),
        )
        for m in models
    }
    visuals: list[ImageVisual] = []
    with torch.inference_mode():
        for m in models:  # warm-up: kernel caches and lazy initialisation stay out of timings
            _forward(m.model, torch.full((1, 1, 24, 24), 0.5), sr_scale)
        for index, item in enumerate(images):
            hr = _modcrop(item.hr, sr_scale)
            norm = item.normalization
            hr_unit = torch.from_numpy(np.ascontiguousarray(norm.to_unit(hr), dtype=np.float32))
            generator = torch.Generator().manual_seed(seed + index)
            lr, target = _degrade(deg, hr_unit[None, None], generator)
            if target is not None:  # e.g. the full-view FBP: the reference of the run
                hr = norm.from_unit(target[0, 0].double().numpy()).astype(np.float32)
            srs: dict[str, np.ndarray] = {}
            for m in models:
                start = time.perf_counter()
                out = _forward(m.model, lr, sr_scale, data_consistency, views)
                results[m.name].seconds += time.perf_counter() - start
                sr_phys = norm.from_unit(out[0, 0].double().numpy())
                sr_c, hr_c = _common_crop(sr_phys, hr.astype(np.float64))
                p, s = score_pair(sr_c, hr_c, norm.data_range, shave, with_ssim)
                g = h = b = math.nan
                if with_ssim:
                    g, h, b = perceptual_scores(sr_c, hr_c, norm, shave)
                results[m.name].scores.append(
                    ImageScore(item.name, item.modality.value, norm.data_range, p, s, g, h, b)
                )
                if keep_visuals:
                    srs[m.name] = sr_c.astype(np.float32)
                if progress is not None:
                    progress(
                        f"{item.name} {m.name}: PSNR {p:.2f} dB, SSIM {s:.4f}, GMSD {g:.4f}, "
                        f"HaarPSI {h:.4f}, bias {b:+.3f}%"
                    )
            if keep_visuals:
                lr_phys = norm.from_unit(lr[0, 0].double().numpy()).astype(np.float32)
                visuals.append(ImageVisual(item.name, item.modality, norm, hr, lr_phys, srs))
    baseline = reference_model(degradation)
    reference = results.get(baseline)
    for r in results.values():
        if reference is None:
            continue
        for metric in METRICS:
            diffs = [
                getattr(a, metric) - getattr(b, metric) for a, b in zip(r.scores, reference.scores)
            ]
            with np.errstate(invalid="ignore"):
                r.gain[metric] = float(np.mean(diffs)) if diffs else math.nan
    config = deg.config()
    scored_against = "HR image"
    if getattr(deg, "replaces_target", False):
        scored_against = (
            "the full-view FBP (ct-sparse-view's target)"
            if deg.name == "ct-sparse-view"
            else f"the {degradation} degradation's target"
        )
    return EvalResult(
        scale=(sr_scale[0], sr_scale[1]),
        degradation=degradation,
        degradation_config=dict(config),
        seed=seed,
        shave=shave,
        models=results,
        visuals=visuals,
        reference=scored_against,
        baseline=baseline if reference is not None else REFERENCE,
    )


def scale_sweep(
    models: Sequence[ModelSpec],
    images: Sequence[EvalImage],
    scales: Sequence[float],
    degradation: str = "bicubic",
    seed: int = 0,
) -> dict[str, list[tuple[float, float, float]]]:
    """Mean PSNR per scale for the arbitrary-scale models: name -> [(s, psnr, ssim)].

    SSIM is not computed (NaN): the sweep feeds the PSNR-against-scale plot only.
    """
    arbitrary = [m for m in models if getattr(m.model, "arbitrary_scale", False)]
    curves: dict[str, list[tuple[float, float, float]]] = {m.name: [] for m in arbitrary}
    if not arbitrary:
        return curves
    for s in scales:
        run = run_evaluation(arbitrary, images, float(s), degradation, seed, with_ssim=False)
        for name, r in run.models.items():
            curves[name].append((float(s), r.mean("psnr"), r.mean("ssim")))
    return curves
