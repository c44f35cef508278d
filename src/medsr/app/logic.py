"""What the web app does, as plain functions that the tests call without a browser.

Reading an upload (bytes -> MedicalImage through a temporary file or folder that
is always removed), size limits, the processing cap that keeps the app
responsive, the two modes (enhance an image; simulate: degrade an HR image,
super-resolve it and compare), PSNR/SSIM against bicubic with the data range
stated, the fidelity map, display windowing to 8-bit, the synchronised zoom,
the before/after slider's HTML and the download file in the input's format.
"""

from __future__ import annotations

import base64
import copy
import enum
import functools
import io
import math
import re
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medsr.errors import ConfigError, InputError, MedsrError
from medsr.image import CT_WINDOWS, MedicalImage, Modality

if TYPE_CHECKING:
    from torch import nn

#: Largest upload the app accepts, in bytes; larger files belong to ``medsr upscale``.
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
#: Largest total size of the files inside an uploaded zip (a zip bomb guard).
MAX_UNZIPPED_BYTES = 512 * 1024 * 1024
MAX_ZIP_MEMBERS = 2000
#: A zip unpacking to more than this many times its own size, past 64 MiB, is refused
#: before anything is written: DICOM compresses 2-10 x, a bomb of zeros 1000 x.
MAX_ZIP_RATIO = 50
#: Decoded pixels the app reads from one upload, in all and per plane, checked before
#: decoding (the command line's bounds are MEDSR_MAX_PIXELS / MEDSR_MAX_PLANE_PIXELS).
APP_MAX_PIXELS = 1 << 26
APP_MAX_PLANE_PIXELS = 1 << 25
#: In-plane side the app processes: a centre crop keeps the app responsive on a CPU.
MAX_SIDE_BASELINE = 512
MAX_SIDE_NETWORK = 256
#: Largest super-resolved side per slice; the input crop shrinks for large scales.
MAX_OUTPUT_SIDE = 2048
#: Slices of a volume the app processes (the centre ones), and its output voxel budget.
MAX_SLICES = 16
MAX_OUTPUT_VOXELS = 1 << 24
#: Side of the images sent to the browser; the zoom view shows full resolution.
MAX_DISPLAY_SIDE = 1024

BASELINES: tuple[str, ...] = ("bicubic", "lanczos", "bilinear", "nearest")
#: Display window name that means "robust percentiles of the input".
AUTO_WINDOW = "auto"
DEFAULT_CT_WINDOW = "soft-tissue"

UPLOAD_TYPES: tuple[str, ...] = (
    "dcm",
    "dicom",
    "ima",
    "zip",
    "nii",
    "gz",
    "hdr",
    "img",
    "png",
    "tif",
    "tiff",
)


class Mode(str, enum.Enum):
    """Enhance: super-resolve the image as it is. Simulate: degrade it first, then compare."""

    ENHANCE = "enhance"
    SIMULATE = "simulate"


ScalePair = tuple[float, float]


# ------------------------------------------------------------------------------ models
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
    try:
        from medsr.zoo.manifest import zoo_models
    except ImportError:
        return []
    try:
        return list(zoo_models())
    except MedsrError:
        return []


def available_models() -> list[str]:
    """The zoo's default first, the other shipped zoo models, the baselines, and last the
    experimental zoo models (worse than their reference on some modality: never a default)."""
    from medsr.zoo.manifest import SHIPPED, zoo_status

    zoo = [n for n in zoo_names() if n not in BASELINES]
    shipped = [n for n in zoo if zoo_status(n) == SHIPPED]
    experimental = [n for n in zoo if n not in shipped]
    first = default_model()
    ordered = [first] if first in shipped else []
    return [*ordered, *(n for n in shipped if n != first), *BASELINES, *experimental]


def default_model() -> str:
    """The model the app opens with: the zoo's shipped default (else bicubic)."""
    from medsr.zoo.choice import default_model as zoo_default

    return zoo_default(None)


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
    """One line about a model: the zoo manifest's description, else the registry's summary."""
    try:
        from medsr.zoo.manifest import zoo_models

        entry = zoo_models().get(name, {})
    except (ImportError, MedsrError):
        entry = {}
    for key in ("description", "summary"):
        if entry.get(key):
            return str(entry[key])
    try:
        from medsr.models import info

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
    return ModelChoice(
        name=name,
        summary=model_summary(name) or model_summary(str(getattr(model, "name", ""))),
        arbitrary_scale=arbitrary,
        scale_range=tuple(float(s) for s in getattr(model, "scale_range", (1.0, 4.0))),  # type: ignore[arg-type]
        supported_scales=tuple(
            (float(a), float(b)) for a, b in getattr(model, "supported_scales", ())
        ),
        default_scale=(default[0], default[1]),
        is_baseline=bool(getattr(model, "is_baseline", False)),
    )


def format_scale(scale: ScalePair) -> str:
    """``(2, 2)`` -> ``"×2"``; ``(1, 4)`` -> ``"×(1, 4)"`` (rows, columns)."""
    sy, sx = scale
    return f"×{sy:g}" if sy == sx else f"×({sy:g}, {sx:g})"


# ------------------------------------------------------------------------------ uploads
def check_upload_size(name: str, size: int, limit: int = MAX_UPLOAD_BYTES) -> None:
    """Refuse uploads over ``limit`` bytes with a message that says what to do instead."""
    if size > limit:
        raise InputError(
            name,
            f"the file is {size / 2**20:.1f} MB; the app accepts up to {limit / 2**20:.0f} MB "
            "(use `medsr upscale` on the command line for larger files)",
        )
    if size == 0:
        raise InputError(name, "the file is empty")


def _safe_name(name: str) -> str:
    """A plain file name from an uploaded name: no folders, only harmless characters."""
    base = re.split(r"[\\/]", name)[-1]
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".")
    return base or "upload"


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (its class name when it has none)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _extract_zip(name: str, data: bytes, folder: Path) -> list[Path]:
    """Unpack a zip's files flat into ``folder`` (no member paths are trusted)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InputError(name, "not a valid zip archive") from None
    with archive:
        members = [
            m
            for m in archive.infolist()
            if not m.is_dir()
            and not m.filename.startswith("__MACOSX/")
            and not Path(m.filename).name.startswith(".")
        ]
        if not members:
            raise InputError(name, "the zip archive holds no files")
        if len(members) > MAX_ZIP_MEMBERS:
            raise InputError(
                name, f"the zip holds {len(members)} files; the app accepts {MAX_ZIP_MEMBERS}"
            )
        total = sum(m.file_size for m in members)
        if total > MAX_UNZIPPED_BYTES:
            raise InputError(
                name,
                f"the zip unpacks to {total / 2**20:.0f} MB; the app accepts "
                f"{MAX_UNZIPPED_BYTES / 2**20:.0f} MB",
            )
        if total > 64 * 2**20 and total > MAX_ZIP_RATIO * max(len(data), 1):
            raise InputError(
                name,
                f"the zip unpacks to {total / 2**20:.0f} MB from {len(data) / 2**20:.1f} MB "
                f"(more than {MAX_ZIP_RATIO}x): refused as a likely zip bomb",
            )
        paths = []
        for index, member in enumerate(members):
            target = folder / f"{index:05d}_{_safe_name(member.filename)}"
            with archive.open(member) as src:
                target.write_bytes(src.read(member.file_size + 1)[: member.file_size])
            paths.append(target)
    return paths


def read_upload(name: str, data: bytes, max_bytes: int = MAX_UPLOAD_BYTES) -> MedicalImage:
    """Read uploaded bytes as a MedicalImage; the temporary copy is removed before returning.

    A ``.zip`` holds one DICOM series (or a single image file). Every failure is an
    :class:`InputError` naming the uploaded file with a one-line reason.
    """
    from medsr.io import read
    from medsr.io.core import MAX_PIXELS_ENV, MAX_PLANE_PIXELS_ENV, pixel_limits

    check_upload_size(name, len(data), max_bytes)
    safe = _safe_name(name)
    with tempfile.TemporaryDirectory(prefix="medsr-app-") as tmp:
        folder = Path(tmp)
        limits = {MAX_PIXELS_ENV: APP_MAX_PIXELS, MAX_PLANE_PIXELS_ENV: APP_MAX_PLANE_PIXELS}
        try:
            if safe.lower().endswith(".zip"):
                series = folder / "series"
                series.mkdir()
                files = _extract_zip(name, data, series)
                target = files[0] if len(files) == 1 else series
            else:
                target = folder / safe
                target.write_bytes(data)
            with pixel_limits(**limits):
                image = read(target)
        except InputError as exc:
            raise InputError(name, exc.problem) from None
        except MedsrError as exc:
            raise InputError(name, one_line(exc)) from None
        except Exception as exc:
            raise InputError(
                name, f"cannot be read as a medical image ({type(exc).__name__}: {one_line(exc)})"
            ) from None
    source = copy.copy(image.source)
    source.path = name
    return MedicalImage(
        image.pixels,
        affine=image.affine,
        modality=image.modality,
        source=source,
        history=[*image.history, f"uploaded as {name}"],
        spacing_known=image.spacing_known,
    )


# ------------------------------------------------------------------------------ geometry
def crop(
    image: MedicalImage,
    rows: tuple[int, int],
    cols: tuple[int, int],
    slices: tuple[int, int] | None = None,
) -> MedicalImage:
    """A sub-image [r0, r1) x [c0, c1) (and slices [z0, z1)) with its origin moved to match.

    The new first voxel sits at ``affine @ (c0, r0, z0, 1)``; the spacing is unchanged.
    """
    (r0, r1), (c0, c1) = rows, cols
    z0, z1 = slices if slices is not None else (0, image.shape[0] if image.ndim == 3 else 1)
    pixels = image.pixels[..., r0:r1, c0:c1]
    if image.ndim == 3:
        pixels = pixels[z0:z1]
    affine = image.affine.copy()
    affine[:3, 3] = image.affine[:3, :3] @ np.array([c0, r0, z0], dtype=float) + image.affine[:3, 3]
    source = copy.copy(image.source)
    if image.ndim == 3 and len(image.source.datasets) == image.shape[0]:
        source.datasets = list(image.source.datasets[z0:z1])
    return MedicalImage(
        pixels.copy(),
        affine=affine,
        modality=image.modality,
        source=source,
        history=[*image.history, f"cropped rows {r0}:{r1}, columns {c0}:{c1}"],
        spacing_known=image.spacing_known,
    )


def _centre_span(length: int, keep: int) -> tuple[int, int]:
    start = max(0, (length - keep) // 2)
    return start, start + min(length, keep)


def processing_side(scale: ScalePair, mode: Mode, is_baseline: bool) -> int:
    """Largest in-plane input side the app processes for this model, scale and mode."""
    side = MAX_SIDE_BASELINE if is_baseline else MAX_SIDE_NETWORK
    if mode is Mode.ENHANCE:
        side = min(side, int(MAX_OUTPUT_SIDE / max(scale)))
    return max(side, 16)


def processing_slices(plane_shape: tuple[int, int], scale: ScalePair, mode: Mode) -> int:
    """Slices the app processes: at most MAX_SLICES, and at most MAX_OUTPUT_VOXELS of output."""
    h, w = plane_shape
    if mode is Mode.ENHANCE:
        h, w = math.ceil(h * scale[0]), math.ceil(w * scale[1])
    return max(1, min(MAX_SLICES, MAX_OUTPUT_VOXELS // max(1, h * w)))


def limit_size(
    image: MedicalImage, max_side: int, max_slices: int = MAX_SLICES
) -> tuple[MedicalImage, list[str]]:
    """Centre-crop to at most ``max_side`` pixels in plane and ``max_slices`` slices.

    Returns the image (unchanged when it fits) and one note per cut made, for the UI.
    """
    notes = []
    h, w = image.shape[-2:]
    rows, cols = _centre_span(h, max_side), _centre_span(w, max_side)
    slices = None
    if image.ndim == 3 and image.shape[0] > max_slices:
        slices = _centre_span(image.shape[0], max_slices)
        notes.append(
            f"The volume has {image.shape[0]} slices; the app processes the centre "
            f"{max_slices} (slices {slices[0]}–{slices[1] - 1})."
        )
    if h > max_side or w > max_side:
        notes.append(
            f"The image is {h}×{w}; the app processes its centre "
            f"{rows[1] - rows[0]}×{cols[1] - cols[0]} to stay responsive "
            "(the `medsr upscale` command processes whole images, tile by tile)."
        )
    if not notes:
        return image, notes
    return crop(image, rows, cols, slices), notes


# ------------------------------------------------------------------------------ inference
def _degradation(scale: ScalePair) -> Any:
    """Bicubic downsampling by ``scale`` (MATLAB imresize, antialiased, unclipped)."""
    from medsr.degrade import build

    return build("bicubic", scale=list(scale), clip=False)


def _as_batch(unit: np.ndarray) -> Any:
    """(H, W) or (D, H, W) -> a float32 (B, 1, H, W) tensor."""
    import torch

    arr = unit[None] if unit.ndim == 2 else unit
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))[:, None]


def _from_batch(batch: Any, ndim: int) -> np.ndarray:
    arr = batch[:, 0].detach().cpu().numpy().astype(np.float32)
    return arr[0] if ndim == 2 else arr


def _common_crop(*arrays: np.ndarray) -> list[np.ndarray]:
    """Crop arrays to their common top-left (…, H, W): grids that start at one corner align."""
    h = min(a.shape[-2] for a in arrays)
    w = min(a.shape[-1] for a in arrays)
    return [a[..., :h, :w] for a in arrays]


def degrade(image: MedicalImage, scale: ScalePair) -> MedicalImage:
    """The LR image of ``image``: bicubic downsampling by ``scale`` in [0, 1] units."""
    import torch

    norm = image.normalization()
    with torch.inference_mode():
        lr_unit = _degradation(scale)(_as_batch(norm.to_unit(image.pixels)))
    lr = norm.from_unit(_from_batch(lr_unit, image.ndim))
    return image.with_pixels(lr, f"bicubic downsampling {format_scale(scale)}")


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
    """PSNR (dB) and SSIM of the model and of bicubic against the original HR image."""

    psnr_sr: float
    ssim_sr: float
    psnr_bicubic: float
    ssim_bicubic: float
    data_range: float
    range_description: str
    shave: int


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


def compare(hr: MedicalImage, sr: MedicalImage, bicubic: MedicalImage, scale: ScalePair) -> Metrics:
    """PSNR/SSIM of SR and bicubic against HR, border of ceil(s) pixels shaved.

    The data range is the HR image's normalisation width in physical units; for a
    volume the figures are the mean over slices.
    """
    from medsr.metrics import psnr_np, ssim_np

    data_range, description = data_range_description(hr)
    shave = math.ceil(max(scale))
    hr_px, sr_px, bic_px = _common_crop(hr.pixels, sr.pixels, bicubic.pixels)
    if min(hr_px.shape[-2:]) - 2 * shave < 11:
        shave = 0
    hr_s = [hr_px] if hr_px.ndim == 2 else list(hr_px)
    sr_s = [sr_px] if sr_px.ndim == 2 else list(sr_px)
    bic_s = [bic_px] if bic_px.ndim == 2 else list(bic_px)

    def mean(fn: Any, est: list[np.ndarray]) -> float:
        return float(np.mean([fn(e, h, data_range, shave) for e, h in zip(est, hr_s)]))

    return Metrics(
        psnr_sr=mean(psnr_np, sr_s),
        ssim_sr=mean(ssim_np, sr_s),
        psnr_bicubic=mean(psnr_np, bic_s),
        ssim_bicubic=mean(ssim_np, bic_s),
        data_range=data_range,
        range_description=description,
        shave=shave,
    )


@dataclass
class Result:
    """Everything the views show after one run."""

    mode: Mode
    model_name: str
    scale: ScalePair
    lr: MedicalImage
    sr: MedicalImage
    fidelity: np.ndarray
    hr: MedicalImage | None = None
    bicubic: MedicalImage | None = None
    metrics: Metrics | None = None
    #: What the size cap cut away (the UI shows these as warnings).
    notes: list[str] = field(default_factory=list)
    #: What the upscale pipeline reported: fidelity figures, scale plans.
    pipeline_notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


@functools.lru_cache(maxsize=1)
def _bicubic_model() -> nn.Module:
    from medsr.models import build

    return build("bicubic")


def run(
    image: MedicalImage,
    model: nn.Module,
    scale: ScalePair,
    mode: Mode,
    max_side: int | None = None,
) -> Result:
    """One run of the app: cap the size, then enhance, or degrade-SR-compare (simulate)."""
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
    lr = degrade(image, scale)
    out = super_resolve(lr, model, scale)
    bicubic = out if choice.name == "bicubic" else super_resolve(lr, _bicubic_model(), scale)
    return Result(
        mode,
        choice.name,
        scale,
        lr=lr,
        sr=out.image,
        fidelity=out.fidelity,
        hr=image,
        bicubic=bicubic.image,
        metrics=compare(image, out.image, bicubic.image, scale),
        notes=notes,
        pipeline_notes=out.notes,
        seconds=time.perf_counter() - start,
    )


# ------------------------------------------------------------------------------ display
def window_presets(image: MedicalImage) -> list[str]:
    """Display windows offered for this image: CT presets for CT, else only ``auto``."""
    if image.modality is Modality.CT:
        return [DEFAULT_CT_WINDOW, *[w for w in CT_WINDOWS if w != DEFAULT_CT_WINDOW], AUTO_WINDOW]
    return [AUTO_WINDOW]


def display_window(image: MedicalImage, preset: str = AUTO_WINDOW) -> tuple[float, float]:
    """(low, high) in physical units mapped to black and white.

    A CT preset is a fixed HU window; ``auto`` takes the 0.5 and 99.5 percentiles of
    the image, so one outlier pixel does not wash the picture out.
    """
    if preset != AUTO_WINDOW:
        if preset not in CT_WINDOWS:
            raise ConfigError(f"unknown window {preset!r}; choose one of {', '.join(CT_WINDOWS)}")
        return CT_WINDOWS[preset]
    sample = image.pixels.ravel()
    if sample.size > 1_000_000:
        sample = sample[:: sample.size // 1_000_000]
    lo, hi = (float(v) for v in np.percentile(sample, (0.5, 99.5)))
    if hi <= lo:
        lo, hi = float(sample.min()), float(sample.max())
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def describe_window(window: tuple[float, float], image: MedicalImage) -> str:
    lo, hi = window
    units = " HU" if image.modality is Modality.CT else ""
    return f"level {(lo + hi) / 2:.4g}{units}, width {hi - lo:.4g}{units}"


def to_uint8(pixels: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """``round(255 * clip((x - low) / (high - low), 0, 1))`` as uint8."""
    lo, hi = window
    unit = np.clip((pixels.astype(np.float32) - lo) / (hi - lo), 0.0, 1.0)
    return np.rint(unit * 255.0).astype(np.uint8)


def resize_nearest(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an (H, W) or (H, W, 3) uint8 array to (rows, cols)."""
    h, w = arr.shape[:2]
    rows = np.minimum((np.arange(size[0]) + 0.5) * h / size[0], h - 1).astype(int)
    cols = np.minimum((np.arange(size[1]) + 0.5) * w / size[1], w - 1).astype(int)
    return arr[rows][:, cols]


def fit_display(arr: np.ndarray, max_side: int = MAX_DISPLAY_SIDE) -> np.ndarray:
    """Shrink (area-averaging) an 8-bit picture so its longer side is at most ``max_side``."""
    from PIL import Image

    h, w = arr.shape[:2]
    if max(h, w) <= max_side:
        return arr
    f = max_side / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return np.asarray(Image.fromarray(arr).resize(size, Image.Resampling.BOX))


def zoom_window(centre: tuple[float, float], zoom: float) -> tuple[float, float, float, float]:
    """The zoomed field of view as fractions (top, bottom, left, right) of the image.

    Its size is 1/zoom of the image per axis, centred at ``centre`` and shifted to
    stay inside. Fractions name the same physical region on the LR and SR grids,
    since both cover the same field of view.
    """
    size = 1.0 / max(1.0, float(zoom))
    top = min(max(centre[0] - size / 2, 0.0), 1.0 - size)
    left = min(max(centre[1] - size / 2, 0.0), 1.0 - size)
    return top, top + size, left, left + size


def zoom_box(
    shape: tuple[int, int], centre: tuple[float, float], zoom: float
) -> tuple[int, int, int, int]:
    """The zoom window in whole pixels (r0, r1, c0, c1) of an image of ``shape``."""
    top, bottom, left, right = zoom_window(centre, zoom)
    h, w = shape
    return math.floor(top * h), math.ceil(bottom * h), math.floor(left * w), math.ceil(right * w)


def zoom_crop(
    arr: np.ndarray, centre: tuple[float, float], zoom: float, out_side: int = 384
) -> np.ndarray:
    """The zoom window of ``arr`` sampled with nearest neighbour onto ``out_side`` pixels.

    Output pixel i samples the image at fraction ``top + (i + 0.5) / out * (bottom - top)``,
    so every image, whatever its grid, shows exactly the same region.
    """
    top, bottom, left, right = zoom_window(centre, zoom)
    h, w = arr.shape[:2]
    aspect = h / w
    out_h, out_w = (
        (out_side, max(1, round(out_side / aspect)))
        if aspect >= 1
        else (
            max(1, round(out_side * aspect)),
            out_side,
        )
    )
    fy = top + (np.arange(out_h) + 0.5) / out_h * (bottom - top)
    fx = left + (np.arange(out_w) + 0.5) / out_w * (right - left)
    rows = np.minimum((fy * h).astype(int), h - 1)
    cols = np.minimum((fx * w).astype(int), w - 1)
    return arr[rows][:, cols]


#: Anchors of a perceptually ordered black-purple-orange-yellow map (like "inferno").
_HEAT_ANCHORS = np.array(
    [
        [0, 0, 4],
        [40, 11, 84],
        [101, 21, 110],
        [159, 42, 99],
        [212, 72, 66],
        [245, 125, 21],
        [250, 193, 39],
        [252, 255, 164],
    ],
    dtype=np.float32,
)


def heatmap(values: np.ndarray, vmax: float) -> np.ndarray:
    """Values in [0, vmax] -> (H, W, 3) uint8 colours; 0 is black, vmax is pale yellow."""
    t = np.clip(values / vmax if vmax > 0 else np.zeros_like(values), 0.0, 1.0)
    pos = t * (len(_HEAT_ANCHORS) - 1)
    i = np.minimum(pos.astype(int), len(_HEAT_ANCHORS) - 2)
    frac = (pos - i)[..., None]
    rgb = _HEAT_ANCHORS[i] * (1 - frac) + _HEAT_ANCHORS[i + 1] * frac
    return np.rint(rgb).astype(np.uint8)


def colour_bar(width: int = 256, height: int = 12) -> np.ndarray:
    return heatmap(np.tile(np.linspace(0.0, 1.0, width, dtype=np.float32), (height, 1)), 1.0)


def png_bytes(arr: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, format="PNG", optimize=False, compress_level=3)
    return buffer.getvalue()


def before_after_html(
    before: np.ndarray, after: np.ndarray, before_label: str, after_label: str
) -> str:
    """A self-contained before/after slider: two stacked images and a range input.

    The ``after`` image lies under the ``before`` image, which is clipped to the
    left ``x`` percent; dragging the range sets ``x``. No external scripts.
    """
    b64_before = base64.b64encode(png_bytes(before)).decode("ascii")
    b64_after = base64.b64encode(png_bytes(after)).decode("ascii")
    h, w = after.shape[:2]
    return f"""
<style>
  body {{ margin: 0; font-family: "Source Sans Pro", sans-serif; }}
  .ba {{ position: relative; width: 100%; max-width: {w}px; margin: 0 auto;
        aspect-ratio: {w} / {h}; background: #000; border-radius: 6px; overflow: hidden; }}
  .ba img {{ position: absolute; inset: 0; width: 100%; height: 100%;
            image-rendering: pixelated; user-select: none; pointer-events: none; }}
  .ba .before {{ clip-path: inset(0 50% 0 0); }}
  .ba .line {{ position: absolute; top: 0; bottom: 0; left: 50%; width: 2px;
              background: #ff4b4b; transform: translateX(-1px); pointer-events: none; }}
  .ba .tag {{ position: absolute; top: 8px; padding: 2px 8px; border-radius: 4px;
             background: rgba(0,0,0,.6); color: #fff; font-size: 13px; pointer-events: none; }}
  .ba input {{ position: absolute; inset: 0; width: 100%; height: 100%; margin: 0;
              opacity: 0; cursor: ew-resize; }}
</style>
<div class="ba" id="ba">
  <img class="after" alt="{after_label}" src="data:image/png;base64,{b64_after}">
  <img class="before" alt="{before_label}" src="data:image/png;base64,{b64_before}">
  <div class="line"></div>
  <span class="tag" style="left:8px">{before_label}</span>
  <span class="tag" style="right:8px">{after_label}</span>
  <input type="range" min="0" max="100" step="0.1" value="50" aria-label="before/after">
</div>
<script>
  const root = document.getElementById("ba");
  const slider = root.querySelector("input");
  slider.addEventListener("input", () => {{
    const x = slider.value;
    root.querySelector(".before").style.clipPath = `inset(0 ${{100 - x}}% 0 0)`;
    root.querySelector(".line").style.left = `${{x}}%`;
  }});
</script>
"""


# ------------------------------------------------------------------------------ download
@dataclass(frozen=True)
class Download:
    file_name: str
    data: bytes
    mime: str


_MIME = {
    ".dcm": "application/dicom",
    ".nii.gz": "application/gzip",
    ".png": "image/png",
    ".tif": "image/tiff",
    ".npy": "application/octet-stream",
    ".zip": "application/zip",
}


def download_file(image: MedicalImage, input_name: str, tag: str) -> Download:
    """The result written in the input's format by ``medsr.io.write`` to a temporary path.

    DICOM and NIfTI keep their headers (new UIDs, spacing, affine); a DICOM series
    comes back as a zip of one file per slice.
    """
    from medsr.io import write
    from medsr.io.core import output_suffix_for, stem

    suffix = output_suffix_for(image)
    base = f"{_safe_name(stem(Path(input_name))) or 'image'}_{tag}"
    with tempfile.TemporaryDirectory(prefix="medsr-app-") as tmp:
        if suffix == "":
            folder = write(image, Path(tmp) / base)
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for file in sorted(folder.iterdir()):
                    archive.write(file, f"{base}/{file.name}")
            return Download(f"{base}.zip", buffer.getvalue(), _MIME[".zip"])
        path = write(image, Path(tmp) / f"{base}{suffix}")
        return Download(path.name, path.read_bytes(), _MIME.get(suffix, "application/octet-stream"))
