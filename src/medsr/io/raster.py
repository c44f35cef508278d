"""PNG, JPEG and TIFF at 8 and 16 bits through Pillow, and raw .npy arrays.

16-bit files stay 16-bit. Colour is reduced to grey (luminance, rounded).
Pixel spacing is read from the file's resolution tag when it has one
(PNG pHYs, TIFF/JPEG dpi) and written back the same way; without one the
spacing is 1 mm and marked unknown (also when the tag holds an implausible value).

The size a file declares is checked against the decoded-pixel bound
(``MEDSR_MAX_PIXELS``) before Pillow decodes anything.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from medsr.errors import InputError
from medsr.image import MedicalImage, Modality, SourceInfo
from medsr.io.core import (
    add_note,
    atomic_path,
    check_pixel_count,
    full_suffix,
    plausible_spacing,
)

_MM_PER_INCH = 25.4


def _format_of(path: Path) -> str:
    suffix = full_suffix(path)
    return {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff"}[suffix]


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def read_raster(path: str | Path, modality: str | None = None, **_: Any) -> MedicalImage:
    """A PNG/JPEG/TIFF image as grey pixels, with its spacing from the resolution tag."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's DecompressionBombWarning and friends
            arr, bits, dpi = _decode_raster(path)
    except Image.DecompressionBombError as exc:
        raise InputError(
            path, f"Pillow refuses it as a decompression bomb ({_short(exc)})"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, zlib.error, EOFError) as exc:
        raise InputError(path, f"not a readable image file ({_short(exc)})") from None
    except (TypeError, IndexError, KeyError, struct.error) as exc:
        raise InputError(path, f"malformed image file ({_short(exc)})") from None
    if arr.ndim != 2:
        raise InputError(path, f"unexpected image shape {arr.shape}")
    spacing, note = _spacing_from_dpi(dpi, path)
    source = SourceInfo(
        format=_format_of(path),
        path=str(path),
        bits_stored=bits or None,
        dtype="uint16" if bits == 16 else ("uint8" if bits == 8 else str(arr.dtype)),
    )
    image = MedicalImage(
        arr.astype(np.float32),
        spacing,
        modality=Modality.parse(modality) if modality else Modality.OTHER,
        source=source,
        spacing_known=spacing is not None,
    )
    if note is not None:
        add_note(image, note)
    return image


def _spacing_from_dpi(dpi: Any, path: Path) -> tuple[tuple[float, float] | None, str | None]:
    """(row, column) spacing in mm from an (x, y) dpi tag, and a note when the tag is not
    plausible (zero, 0xFFFFFFFF per metre...). Tags of 1 dpi or less only state an aspect
    ratio and mean "unknown" without a note."""
    if not dpi:
        return None, None
    try:
        x_dpi, y_dpi = float(dpi[0]), float(dpi[1])
    except (TypeError, ValueError, IndexError):
        return None, f"{path}: resolution tag {dpi!r} is not a number; spacing unknown"
    if 0 < x_dpi <= 1 and 0 < y_dpi <= 1:
        return None, None
    spacing = plausible_spacing(
        (_MM_PER_INCH / y_dpi if y_dpi > 0 else 0.0, _MM_PER_INCH / x_dpi if x_dpi > 0 else 0.0)
    )
    if spacing is None:
        return (
            None,
            f"{path}: resolution tag of {x_dpi:.6g} x {y_dpi:.6g} dpi is not plausible; spacing unknown",
        )
    return (spacing[0], spacing[1]), None


def _decode_raster(path: Path) -> tuple[np.ndarray, int, Any]:
    """(grey pixels, bits, dpi or None); the declared size is checked before decoding."""
    with Image.open(path) as im:
        check_pixel_count(path, (im.size[1], im.size[0]))
        im.load()
        dpi = im.info.get("dpi")
        mode = im.mode
        if mode in ("RGB", "RGBA", "P", "LA", "CMYK", "YCbCr"):
            rgb = np.asarray(im.convert("RGB"), dtype=np.float64)
            arr = np.rint(rgb @ np.array([0.299, 0.587, 0.114]))
            bits = 8
        elif mode in ("I;16", "I;16B", "I;16L", "I;16N"):
            arr = np.asarray(im, dtype=np.uint16)
            bits = 16
        elif mode == "I":
            arr = np.asarray(im)
            bits = 16 if arr.min() >= 0 and arr.max() <= 65535 else 32
        elif mode == "F":
            arr = np.asarray(im, dtype=np.float32)
            bits = 0
        elif mode == "1":
            arr = np.asarray(im.convert("L"))
            bits = 8
        else:
            arr = np.asarray(im.convert("L"))
            bits = 8
    return arr, bits, dpi


def _raster_array(image: MedicalImage, path: Path) -> np.ndarray:
    """Pixels as the file's integer type: 16-bit when the source was or the values need it."""
    if image.ndim != 2:
        raise InputError(
            path, f"PNG/JPEG/TIFF hold 2-D images; this one is {image.shape} (use .nii.gz or .dcm)"
        )
    pixels = image.pixels
    bits = image.source.bits_stored
    lo, hi = float(pixels.min()), float(pixels.max())
    if image.modality is not Modality.CT and lo >= 0 and hi <= 65535:
        want16 = (bits or 8) > 8 or hi > 255
        return np.rint(pixels).astype(np.uint16 if want16 else np.uint8)
    if image.modality is Modality.CT:
        # HU -> 16-bit through the CT window; the window is recorded in the history.
        norm = image.normalization()
        unit = np.clip(norm.to_unit(pixels), 0.0, 1.0)
        return np.rint(unit * 65535.0).astype(np.uint16)
    raise InputError(
        path, f"values [{lo:.6g}, {hi:.6g}] do not fit a 16-bit image; write .nii.gz, .dcm or .npy"
    )


def write_raster(image: MedicalImage, path: str | Path, **_: Any) -> Path:
    path = Path(path)
    arr = _raster_array(image, path)
    fmt = _format_of(path)
    if fmt == "jpeg" and arr.dtype == np.uint16:
        raise InputError(path, "JPEG holds 8-bit images only; write .png or .tif to keep 16 bits")
    im = Image.fromarray(arr)
    params: dict[str, Any] = {}
    if image.spacing_known:
        dy, dx = image.spacing_mm
        params["dpi"] = (_MM_PER_INCH / dx, _MM_PER_INCH / dy)
    if fmt == "jpeg":
        params["quality"] = 95
    pil_format = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF"}[fmt]
    with atomic_path(path) as tmp:
        im.save(tmp, format=pil_format, **params)
    return path


def read_npy(path: str | Path, modality: str | None = None, **_: Any) -> MedicalImage:
    path = Path(path)
    try:
        mapped = np.load(path, allow_pickle=False, mmap_mode="r")
        check_pixel_count(path, mapped.shape if mapped.ndim else (0,))
        arr = np.array(mapped)
    except (ValueError, OSError, EOFError, TypeError) as exc:
        raise InputError(
            path, f"not a readable .npy array ({str(exc).splitlines()[0][:160]})"
        ) from None
    if arr.ndim not in (2, 3) or not np.issubdtype(arr.dtype, np.number):
        raise InputError(path, f"expected a numeric 2-D or 3-D array, got {arr.dtype} {arr.shape}")
    source = SourceInfo(format="npy", path=str(path), dtype=str(arr.dtype))
    mod = Modality.parse(modality) if modality else Modality.OTHER
    return MedicalImage(arr.astype(np.float32), modality=mod, source=source)


def write_npy(image: MedicalImage, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        np.save(fh, image.pixels)
    return path
