"""Files for ``medsr upscale`` (and ``medsr degrade``): which inputs a path names, where
each output goes, and how a derived image is written in its source's format.

Inputs: a file, or a folder searched recursively, where a folder of one single-frame
DICOM series is one item. Outputs mirror the input folders, never overwrite an input or
land inside an input folder, and keep the input's format and bit depth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medsr.errors import ConfigError, InputError
from medsr.image import MedicalImage

__all__ = [
    "IMAGE_SUFFIXES",
    "OUTPUT_FILE_SUFFIXES",
    "InputItem",
    "collect_inputs",
    "fit_to_source",
    "format_suffix",
    "keep_format",
    "output_paths",
    "write_output",
    "write_residual",
]


@dataclass(frozen=True)
class InputItem:
    """One thing to upscale: a file, or a folder read as one DICOM series."""

    path: Path
    series: bool = False
    #: where the output goes relative to the output folder (mirrors input folders)
    relative: Path = Path()
    #: the folder given on the command line that this item was found in
    root: Path | None = None


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".nii", ".nii.gz", ".hdr", ".npy")


def _is_dicom_file(path: Path) -> bool:
    from medsr.io.core import DICOM_SUFFIXES, _looks_like_dicom, full_suffix

    return full_suffix(path) in DICOM_SUFFIXES or _looks_like_dicom(path)


def _series_uid(path: Path) -> tuple[str, int] | None:
    import warnings

    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:
        return None
    return str(ds.get("SeriesInstanceUID", "")), int(ds.get("NumberOfFrames", 1) or 1)


def collect_inputs(paths: Sequence[str | Path]) -> list[InputItem]:
    """Files, and folders expanded: a folder of one single-frame DICOM series is one item;
    other image files are items of their own; sub-folders are searched too."""
    from medsr.io.core import full_suffix

    items: list[InputItem] = []

    def walk(folder: Path, relative: Path, root: Path) -> None:
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        dicoms = [p for p in files if full_suffix(p) not in IMAGE_SUFFIXES and _is_dicom_file(p)]
        headers = {p: _series_uid(p) for p in dicoms}
        uids = {h[0] for h in headers.values() if h is not None}
        single_frame = all(h is not None and h[1] == 1 for h in headers.values())
        if len(dicoms) > 1 and len(uids) == 1 and single_frame:
            items.append(InputItem(folder, True, relative, root))
        else:
            items.extend(InputItem(p, False, relative, root) for p in dicoms if headers[p])
        items.extend(
            InputItem(p, False, relative, root) for p in files if full_suffix(p) in IMAGE_SUFFIXES
        )
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            walk(sub, relative / sub.name, root)

    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise InputError(path, "no such file or folder")
        if path.is_file():
            items.append(InputItem(path))
            continue
        before = len(items)
        walk(path, Path(), path)
        if len(items) == before:
            raise InputError(path, "folder holds no images medsr can read")
        if len(items) == before + 1 and items[-1].series and items[-1].path == path:
            items[-1] = InputItem(path, True)  # a series folder given directly
    return items


def _predicted_suffix(item: InputItem) -> str:
    from medsr.io.core import NIFTI_SUFFIXES, full_suffix

    if item.series:
        return ""
    suffix = full_suffix(item.path)
    if suffix in NIFTI_SUFFIXES:
        return ".nii.gz"
    if suffix in (".png", ".jpg", ".jpeg"):
        return ".png"
    if suffix in (".tif", ".tiff"):
        return ".tif"
    if suffix == ".npy":
        return ".npy"
    return ".dcm"


OUTPUT_FILE_SUFFIXES = (".dcm", ".nii", ".nii.gz", ".png", ".tif", ".tiff", ".npy")


def output_paths(
    items: Sequence[InputItem], output: Path, tag: str, overwrite: bool = False
) -> list[Path]:
    """Where each item's result goes; refuses to overwrite inputs or write inside input folders,
    and to replace an existing file named by ``output`` unless ``overwrite``."""
    from medsr.io.core import full_suffix, stem

    single_file = (
        len(items) == 1 and full_suffix(output) in OUTPUT_FILE_SUFFIXES and not output.is_dir()
    )
    if single_file and output.exists() and not overwrite:
        raise InputError(output, "already exists; refusing to replace it (add --overwrite)")
    if not single_file and output.exists() and not output.is_dir():
        raise InputError(output, "is a file; give a folder for the outputs (or one input)")
    outs: list[Path] = []
    for item in items:
        if single_file:
            outs.append(output)
            continue
        name = item.path.name if item.series else stem(item.path)
        outs.append(output / item.relative / f"{name}{tag}{_predicted_suffix(item)}")
    resolved_inputs = {item.path.resolve() for item in items}
    folders = {item.path.resolve() for item in items if item.series}
    folders |= {item.root.resolve() for item in items if item.root is not None}
    out_root = output.resolve()
    for folder in folders:
        if out_root == folder or folder in out_root.parents:
            raise InputError(
                output, f"lies inside the input folder {folder}; choose an output outside it"
            )
    seen: dict[Path, Path] = {}
    for item, out in zip(items, outs):
        target = out.resolve()
        if target in resolved_inputs:
            raise InputError(out, "is one of the inputs; refusing to overwrite an input")
        if out.exists() and not overwrite:
            raise InputError(out, "already exists; refusing to replace it (add --overwrite)")
        if target in seen:
            raise ConfigError(
                f"{seen[target]} and {item.path} would both be written to {out}; "
                "give them different names or separate runs"
            )
        seen[target] = item.path
    return outs


def write_residual(residual: MedicalImage, out: Path) -> list[Path]:
    """A residual map in the format of the output ``out`` beside it, plus a PNG (max over
    slices), as ``<name>_residual<suffix>`` and ``<name>_residual.png``."""
    from PIL import Image

    from medsr.io.core import atomic_path

    suffix = format_suffix(out)
    base = out.name[: len(out.name) - len(suffix)]
    written = [write_output(residual, out.with_name(f"{base}_residual{suffix}"))]
    pixels = residual.pixels
    view = pixels.max(axis=0) if pixels.ndim == 3 else pixels
    top = float(np.percentile(view, 99.9)) or float(view.max()) or 1.0
    grey = np.clip(np.rint(view / top * 255.0), 0, 255).astype(np.uint8)
    png = out.with_name(f"{base}_residual.png")
    with atomic_path(png) as tmp:
        Image.fromarray(grey).save(tmp, format="PNG")
    written.append(png)
    return written


def fit_to_source(image: MedicalImage) -> tuple[MedicalImage, str | None]:
    """Round and clip pixels to what the source's integer file format stores, so the output
    keeps its bit depth: 8/16-bit PNG/TIFF, integer NIfTI. DICOM's writer does this itself."""
    src = image.source
    bounds: tuple[float, float] | None = None
    if src.format in ("png", "tiff", "jpeg") and src.bits_stored in (8, 16):
        bounds = (0.0, 2.0**src.bits_stored - 1)
    elif (
        src.format in ("nifti", "analyze")
        and src.dtype
        and np.dtype(src.dtype).kind in "ui"
        and src.rescale_slope == 1.0
        and src.rescale_intercept == 0.0
    ):
        info = np.iinfo(np.dtype(src.dtype))
        bounds = (float(info.min), float(info.max))
    if bounds is None:
        return image, None
    lo, hi = bounds
    outside = float(np.mean((image.pixels < lo) | (image.pixels > hi)))
    image.pixels = np.clip(np.rint(image.pixels), lo, hi).astype(np.float32)
    note = f"rounded to the input's {src.dtype or src.format} values in [{lo:g}, {hi:g}]"
    if outside > 0:
        note += f"; {100 * outside:.2g}% of the pixels were outside and were clipped"
    return image, note


def check_output(out: Path, source: Path, overwrite: bool) -> None:
    """Refuse to write over the input, or over an existing file without ``overwrite``."""
    if out.resolve() == source.resolve():
        raise InputError(out, "is the input; refusing to overwrite it")
    if out.exists() and not overwrite:
        raise InputError(out, "already exists; refusing to replace it (add --overwrite)")


def keep_format(out: Path, image: MedicalImage, explicit: bool) -> Path:
    """``out`` with the suffix of the image's own format, unless the user named the file."""
    from medsr.io.core import full_suffix, output_suffix_for

    if explicit and full_suffix(out) in OUTPUT_FILE_SUFFIXES:
        return out
    suffix = output_suffix_for(image)
    if image.ndim == 2 and suffix == "":
        suffix = ".dcm"
    current = full_suffix(out)
    if current == suffix:
        return out
    base = out.name[: len(out.name) - len(format_suffix(out))]
    return out.with_name(base + suffix)


def format_suffix(path: Path) -> str:
    """The suffix that names a file format, else "" (``ct_sr-x2.5`` is a series folder)."""
    from medsr.io.core import DICOM_SUFFIXES, NIFTI_SUFFIXES, RASTER_SUFFIXES, full_suffix

    suffix = full_suffix(path)
    known = (*DICOM_SUFFIXES, *NIFTI_SUFFIXES, *RASTER_SUFFIXES, ".npy")
    return suffix if suffix in known else ""


def write_output(image: MedicalImage, out: Path) -> Path:
    """:func:`medsr.io.write`, where a volume under a name without a format suffix is a
    DICOM series folder even when the name holds a dot (``ct_sr-x2.5``, ``_sr-1.25mm-z``)."""
    from medsr.io import write

    if image.ndim == 3 and format_suffix(out) == "":
        from medsr.io.dicom import write_dicom_series

        return write_dicom_series(image, out)
    return write(image, out)


#: the name :mod:`medsr.infer.selfsup` imports
_keep_format = keep_format
