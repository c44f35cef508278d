"""``medsr degrade``: write LR versions of medical image files, in their own format.

Each input is normalised to [0, 1] with its modality's default mapping
(``MedicalImage.normalization``), degraded, mapped back to physical units and
written as a derived image (DICOM stays DICOM, PixelSpacing multiplied by the
scale) into OUTDIR, with a side-by-side gallery PNG (HR | LR upsampled by
nearest neighbour, 8-bit in the display window). Volumes are degraded slice by
slice in-plane; ``thick-slice`` acts through-plane.

The LR geometry is written on the degradation's grid (:func:`lr_grid`, after
:mod:`medsr.degrade.acquisition`): ``mr-kspace`` keeps the first pixel centre (DFT
sampling, spacing ``H / h`` HR pixels), ``ultrasound-lateral`` keeps every r-th
column's centre, area shrinks (bicubic, binning, thick slices) keep the field-of-view
edges, and same-size degradations keep the grid.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from medsr.degrade.base import Degradation
    from medsr.image import MedicalImage

#: Degradations whose output keeps the input size; ``--scale`` sets their strength instead.
SAME_SIZE_SCALE_PARAM = {"ct-sparse-view": "view_step"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "degrade",
        help="make LR images from HR files with a chosen degradation",
        description="Degrade medical image files (DICOM, NIfTI, PNG/TIFF, .npy) and write the LR "
        "images in the input's format with geometry updated, plus a gallery PNG. INPUT may be "
        "'samples' for every bundled sample. For ct-sparse-view, --scale is the view step.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    parser.add_argument("--degradation", "-d", default="bicubic", help="name, or a YAML config")
    parser.add_argument(
        "--scale", default=None, help="factor, or 'sy,sx' per axis (e.g. 4, 2.5 or 1,4)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="degradation parameter; VALUE is YAML (0.5, [0.1, 0.3], true)",
    )
    parser.add_argument(
        "--pairs",
        action="store_true",
        help="also write the matching HR crop (for ct-sparse-view: the full-view FBP)",
    )
    parser.add_argument("--window", default=None, help="CT window name for the normalisation")
    parser.add_argument(
        "--allow-input-dir", action="store_true", help="allow OUTDIR to be an input's folder"
    )
    parser.set_defaults(handler=run_degrade)


def _parse_scale(text: str) -> float | tuple[float, float]:
    from medsr.errors import ConfigError

    try:
        values = [float(v) for v in text.replace("x", ",").split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--scale takes a number or 'sy,sx', got {text!r}") from None
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise ConfigError(f"--scale takes a number or 'sy,sx', got {text!r}")


def _parse_params(items: list[str]) -> dict[str, Any]:
    import yaml

    from medsr.errors import ConfigError

    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param takes KEY=VALUE, got {item!r}")
        try:
            params[key.strip().replace("-", "_")] = _numbers(yaml.safe_load(value))
        except yaml.YAMLError:
            raise ConfigError(f"--param {key}: cannot parse value {value!r}") from None
    return params


def _numbers(value: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` (no dot) as a string: such strings, also inside lists, become
    floats; other values are kept."""
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _check_values(config: dict[str, Any], name: str) -> None:
    """Refuse non-finite numbers anywhere and negative noise or blur widths (``*sigma*``):
    they would silently give NaN images or noise of the opposite meaning."""
    import math

    from medsr.errors import ConfigError

    for key, value in config.items():
        values = value if isinstance(value, list | tuple) else [value]
        numbers = [
            float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        if any(not math.isfinite(v) for v in numbers):
            raise ConfigError(f"{name}: {key} must be finite, got {value!r}")
        if "sigma" in key and any(v < 0 for v in numbers):
            raise ConfigError(f"{name}: {key} must be >= 0, got {value!r}")


def _inputs(paths: list[str]) -> list[tuple[str, Path]]:
    """(output stem, path) pairs: 'samples' is every bundled sample; a folder is searched as
    ``upscale`` does (image files of any format, and DICOM series folders)."""
    from medsr.infer.files import collect_inputs
    from medsr.samples import list_samples

    out: list[tuple[str, Path]] = []
    for p in paths:
        if p == "samples":
            out.extend((s.name, s.path) for s in list_samples())
            continue
        for item in collect_inputs([p]):
            path = item.path
            out.append((path.name if item.series else path.name.split(".")[0], path))
    return out


def _scale_label(scale: tuple[float, float]) -> str:
    def fmt(v: float) -> str:
        return f"{v:g}"

    return fmt(scale[0]) if scale[0] == scale[1] else f"{fmt(scale[0])}x{fmt(scale[1])}"


def _gallery(hr_unit: np.ndarray, lr_unit: np.ndarray, path: Path) -> None:
    """HR | LR (nearest-upsampled to the HR size), 8-bit, side by side."""
    import numpy as np
    from PIL import Image

    h, w = hr_unit.shape
    rows = np.minimum((np.arange(h) * lr_unit.shape[0]) // h, lr_unit.shape[0] - 1)
    cols = np.minimum((np.arange(w) * lr_unit.shape[1]) // w, lr_unit.shape[1] - 1)
    up = lr_unit[rows][:, cols]
    gap = np.ones((h, max(2, w // 64)))
    panel = np.concatenate([hr_unit, gap, up], axis=1)
    pixels = np.round(np.clip(panel, 0.0, 1.0) * 255.0).astype(np.uint8)
    Image.fromarray(pixels).save(path)


def lr_grid(degradation: Degradation) -> str:
    """Where the LR pixel centres of ``degradation`` sit on its input's grid: ``dft`` for
    ``mr-kspace``, ``sample`` for ``ultrasound-lateral`` decimation, ``area`` for the rest
    (interpolation, binning, slice profiles, blind pipelines; a same-size result is the
    same grid either way)."""
    from medsr.degrade.acquisition import acquisition_of_degradation

    config = degradation.config()
    if config.get("name") == "ultrasound-lateral" and config.get("mode") == "cubic":
        return "area"  # resized along x, not decimated
    found = acquisition_of_degradation(config)
    if found is None or found.grid == "same":
        return "area"
    return found.grid


def degraded_image(
    image: MedicalImage, pixels: np.ndarray, degradation: Degradation, description: str
) -> MedicalImage:
    """``image``'s degraded ``pixels`` with geometry on the degradation's grid.

    DFT sampling (``mr-kspace``) puts LR pixel ``j`` at HR index ``j H / h``: the ratio of
    the sizes. The others sample at the nominal factor ``s`` per axis (imresize and
    decimation place LR pixel ``j`` by ``s``, also when ``H / s`` is not whole), so their
    spacing is exactly ``s`` times the input's.
    """
    from medsr.degrade.resize import output_size
    from medsr.degrade.volume import ThickSlice

    grid = lr_grid(degradation)
    if grid == "dft":
        return image.with_pixels(pixels, description, grid=grid)
    sy, sx = degradation.scale
    if isinstance(degradation, ThickSlice):  # its (s, 1) acts along the slices
        factors: tuple[float, ...] = (1.0 / sy, 1.0, 1.0)
    else:
        factors = (*([1.0] * (image.ndim - 2)), 1.0 / sy, 1.0 / sx)
    expected = tuple(output_size(n, 1, (f, 1.0))[0] for n, f in zip(image.shape, factors))
    if tuple(pixels.shape) != expected:  # a degradation that sizes its output otherwise
        return image.with_pixels(pixels, description, grid=grid)
    return image.rescaled(pixels, factors, description, grid=grid)


def _crop_for_pairs(image: MedicalImage, scale: tuple[float, float]) -> MedicalImage:
    """Top-left crop whose in-plane size is a whole number of LR pixels times the scale."""
    from medsr.image import MedicalImage

    h, w = image.shape[-2:]
    ch = max(1, int(int(h / scale[0]) * scale[0]))
    cw = max(1, int(int(w / scale[1]) * scale[1]))
    if (ch, cw) == (h, w):
        return image
    return MedicalImage(
        image.pixels[..., :ch, :cw],
        affine=image.affine,
        modality=image.modality,
        source=image.source,
        history=[*image.history, f"cropped to {ch}x{cw} for LR/HR pairs"],
        spacing_known=image.spacing_known,
    )


def run_degrade(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from medsr.degrade import build
    from medsr.degrade.ct import CTSparseView
    from medsr.degrade.volume import ThickSlice
    from medsr.errors import ConfigError, InputError
    from medsr.io import read, write
    from medsr.io.core import output_suffix_for

    params = _parse_params(args.param)
    name = args.degradation
    if args.scale is not None:
        scale = _parse_scale(args.scale)
        key = SAME_SIZE_SCALE_PARAM.get(name.strip().lower(), "scale")
        if key == "view_step":
            if isinstance(scale, tuple) or scale != int(scale):
                raise ConfigError("ct-sparse-view: --scale is the view step, a whole number")
            scale = int(scale)
        params.setdefault(key, scale)
    degradation = build(name, **params)
    _check_values(degradation.config(), degradation.name)
    outdir = Path(args.output)
    inputs = _inputs(args.inputs)
    if not args.allow_input_dir:
        for _, path in inputs:
            folder = path if path.is_dir() else path.parent
            if outdir.exists() and outdir.resolve() == folder.resolve():
                raise InputError(
                    outdir, "is an input's folder; choose another OUTDIR or --allow-input-dir"
                )
    outdir.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(args.seed)
    label = f"{degradation.name}_x{_scale_label(degradation.scale)}"
    strength = SAME_SIZE_SCALE_PARAM.get(degradation.name)
    if strength is not None:
        label = f"{degradation.name}_{strength.replace('_', '')}{degradation.config()[strength]}"
    thick = isinstance(degradation, ThickSlice)
    for stem, path in inputs:
        image = read(path)
        if thick and image.ndim != 3:
            raise InputError(path, "thick-slice needs a volume (D, H, W); this image is 2-D")
        axes = image.shape[:1] if thick else image.shape[-2:]
        factors = degradation.scale[:1] if thick else degradation.scale
        if any(size / factor < 1 for size, factor in zip(axes, factors)):
            raise InputError(
                path,
                f"scale {_scale_label(degradation.scale)} leaves less than one pixel of its "
                f"{' x '.join(map(str, image.shape))} pixels",
            )
        if args.pairs and not thick:
            image = _crop_for_pairs(image, degradation.scale)
        norm = image.normalization(window=args.window)
        unit = np.asarray(norm.to_unit(image.pixels, clip=True), dtype=np.float32)
        hr = torch.from_numpy(unit)
        target: np.ndarray | None = None  # an HR image the degradation defines (full-view FBP)
        if isinstance(degradation, ThickSlice):
            lr = degradation.apply_volume(hr)
        else:
            batch = hr.reshape(-1, 1, *hr.shape[-2:])
            if args.pairs and isinstance(degradation, CTSparseView):  # replaces_target
                drawn = degradation.sample_params(batch.shape[0], generator, batch.device)
                out, paired = degradation.apply_pair(batch, drawn)
                target = paired.reshape(hr.shape).numpy()
                unit = target
            else:
                out = degradation(batch, generator=generator)
            lr = out.reshape(*hr.shape[:-2], *out.shape[-2:])
        lr_unit = lr.numpy()
        description = f"medsr degrade {degradation!r} seed {args.seed}"
        lr_pixels = norm.from_unit(lr_unit).astype(np.float32)
        lr_image = degraded_image(image, lr_pixels, degradation, description)
        suffix = output_suffix_for(image)
        written = write(lr_image, outdir / f"{stem}_{label}{suffix}")
        if args.pairs:
            hr_image = image
            if target is not None:
                hr_pixels = norm.from_unit(target).astype(np.float32)
                hr_image = image.with_pixels(hr_pixels, f"medsr degrade {degradation!r} target")
            write(hr_image, outdir / f"{stem}_hr{suffix}")
        if thick:
            hr_view, lr_view = unit[:, unit.shape[1] // 2], lr_unit[:, lr_unit.shape[1] // 2]
        else:
            middle = unit.shape[0] // 2 if unit.ndim == 3 else None
            hr_view = unit[middle] if middle is not None else unit
            lr_view = lr_unit[middle] if middle is not None else lr_unit
        _gallery(hr_view, lr_view, outdir / f"{stem}_{label}_gallery.png")
        shape = " x ".join(str(s) for s in lr_image.shape)
        spacing = " x ".join(f"{s:.4g}" for s in lr_image.spacing_mm) + " mm"
        if not lr_image.spacing_known:
            spacing = "unknown"
        print(f"{path} -> {written} ({shape}, spacing {spacing})")
    return 0
