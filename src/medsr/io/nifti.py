"""NIfTI-1/2 (.nii, .nii.gz) and Analyze 7.5 (.hdr/.img) through nibabel.

nibabel's data array is indexed (i, j, k) with a RAS affine; medsr holds
(k, j, i) = (D, H, W) with an LPS affine, so reading transposes and flips the
first two world axes, and writing does the reverse. Stored data types are kept
when the pixels still fit them (so read -> write -> read is exact); otherwise
float32 is written.

Reading checks what nibabel does not: the declared size against the decoded-pixel
bound (before any voxel is decompressed), the gzip CRC and length (a corrupt .nii.gz
is refused, not read as wrong voxels), empty dimensions, and an unusable sform (the
qform, then the voxel sizes, are used instead; with neither, the spacing is unknown).
"""

from __future__ import annotations

import gzip
import math
import os
import warnings
import zlib
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.imageglobals import LoggingOutputSuppressor

from medsr.errors import InputError
from medsr.image import MedicalImage, Modality, SourceInfo
from medsr.io.core import (
    add_note,
    atomic_path,
    check_pixel_count,
    full_suffix,
    plausible_spacing,
    scratch_dir,
)
from medsr.io.file_warnings import naming_the_file

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _guess_modality(pixels: np.ndarray) -> Modality:
    """NIfTI carries no modality: values well below zero mean HU (CT), else MR."""
    if not np.all(np.isfinite(pixels)):
        return Modality.MR  # refused later by the finite-pixel check
    return Modality.CT if float(np.percentile(pixels, 1)) < -500 else Modality.MR


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def _gunzip(path: Path, expected: int) -> bytes:
    """The whole decompressed stream, its CRC and length verified by Python's gzip.

    Reading stops with an error past ``expected`` bytes plus 16 MiB of slack, so a
    gzip bomb behind a small header cannot fill the memory.
    """
    cap = expected + (16 << 20)
    chunks: list[bytes] = []
    total = 0
    try:
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(1 << 22):
                total += len(chunk)
                if total > cap:
                    raise InputError(
                        path,
                        f"decompresses to more than the {expected:,} bytes its header declares",
                    )
                chunks.append(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(path, f"corrupt gzip data ({_short(exc)})") from None
    return b"".join(chunks)


def _usable(affine: np.ndarray | None) -> bool:
    """Finite, non-singular, with plausible voxel sizes."""
    if affine is None or not np.all(np.isfinite(affine)):
        return False
    matrix = affine[:3, :3]
    if plausible_spacing(np.linalg.norm(matrix, axis=0)) is None:
        return False
    unit = matrix / np.linalg.norm(matrix, axis=0, keepdims=True)
    return abs(float(np.linalg.det(unit))) > 1e-3


def _best_affine(img: Any) -> tuple[np.ndarray, str | None]:
    """nibabel's affine, or the qform or the voxel-size affine when it is unusable."""
    affine = np.asarray(img.affine, dtype=np.float64)
    if _usable(affine):
        return affine, None
    header = img.header
    fallbacks: list[tuple[str, Any]] = []
    if hasattr(header, "get_qform") and int(header.get("qform_code", 0)) > 0:
        fallbacks.append(("qform", header.get_qform))
    fallbacks.append(("voxel sizes", header.get_base_affine))
    for name, getter in fallbacks:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                candidate = np.asarray(getter(), dtype=np.float64)
        except Exception:  # nibabel raises several types for broken quaternions
            continue
        if _usable(candidate):
            return candidate, f"its affine (sform) is unusable; the {name} is used instead"
    return affine, None


def _load(path: Path) -> tuple[Any, np.ndarray]:
    """The nibabel image and its data array, after the size and gzip checks; nibabel's
    warnings and log lines (it logs header fixes to stderr) are kept quiet."""
    with warnings.catch_warnings(), LoggingOutputSuppressor():
        warnings.simplefilter("ignore")
        img: Any = nib.load(str(path))
        shape = tuple(int(s) for s in img.shape)
        if len(shape) < 2:
            raise InputError(path, f"header declares a {len(shape)}-D image (dim[0] is wrong)")
        check_pixel_count(path, shape[::-1])  # (..., k, j, i): the plane last
        image_file = img.file_map["image"].filename
        if image_file is not None and str(image_file).lower().endswith(".gz"):
            itemsize = np.dtype(img.header.get_data_dtype()).itemsize
            expected = int(img.header.get_data_offset()) + math.prod(shape) * itemsize
            raw = _gunzip(Path(image_file), expected)
            if os.path.samefile(image_file, path) and hasattr(type(img), "from_bytes"):
                img = type(img).from_bytes(raw)  # decompress once, from the verified bytes
        data = np.asanyarray(img.dataobj)
    return img, data


def read_nifti(
    path: str | Path,
    volume: int | None = None,
    modality: str | None = None,
    **_: Any,
) -> MedicalImage:
    """A 2-D or 3-D NIfTI/Analyze image; a 4-D file needs ``volume``."""
    path = Path(path)
    with naming_the_file(path):  # nibabel logs the header fixes it makes
        return _read_nifti_file(path, volume, modality)


def _read_nifti_file(path: Path, volume: int | None, modality: str | None) -> MedicalImage:
    img: Any
    try:
        img, data = _load(path)
        affine, affine_note = _best_affine(img)
    except InputError:
        raise
    except Exception as exc:  # nibabel raises a zoo of types for bad files
        raise InputError(path, f"unreadable NIfTI/Analyze file ({_short(exc)})") from None
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim == 4:
        if volume is None:
            raise InputError(
                path,
                f"4-D image with {data.shape[3]} volumes; medsr reads one volume at a time "
                "(volume=N in Python, --volume N for medsr info), so extract one first",
            )
        if not 0 <= volume < data.shape[3]:
            raise InputError(path, f"volume {volume} out of range (file has {data.shape[3]})")
        data = data[..., volume]
    if data.ndim > 3:
        raise InputError(path, f"{data.ndim}-D image; medsr reads 2-D and 3-D images")
    header = img.header
    try:
        slope, intercept = (
            header.get_slope_inter() if hasattr(header, "get_slope_inter") else (None, None)
        )
        with np.errstate(all="ignore"):
            pixels = np.asarray(data, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InputError(path, f"voxels cannot be read as numbers ({_short(exc)})") from None
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    # nibabel (i, j[, k]) -> medsr (rows=j, cols=i) or (k, j, i)
    pixels = pixels.T if pixels.ndim == 2 else np.transpose(pixels, (2, 1, 0))
    lps = _RAS_TO_LPS @ affine
    fmt = "analyze" if full_suffix(path) in (".hdr", ".img", ".img.gz") else "nifti"
    dtype = np.dtype(header.get_data_dtype())
    source = SourceInfo(
        format=fmt,
        path=str(path),
        dtype=dtype.name,
        rescale_slope=float(slope) if slope is not None and np.isfinite(slope) else 1.0,
        rescale_intercept=float(intercept)
        if intercept is not None and np.isfinite(intercept)
        else 0.0,
        header=header,
        bits_stored=dtype.itemsize * 8 if dtype.kind in "ui" else None,
        pixel_representation=1 if dtype.kind == "i" else 0,
    )
    mod = Modality.parse(modality) if modality else _guess_modality(pixels)
    image = MedicalImage(pixels, affine=lps, modality=mod, source=source)
    if affine_note is not None:
        add_note(image, f"{path}: {affine_note}")
    return image


def _output_dtype(image: MedicalImage) -> np.dtype:
    src = image.source
    if (
        src.format in ("nifti", "analyze")
        and src.dtype
        and src.rescale_slope == 1.0
        and src.rescale_intercept == 0.0
    ):
        dtype = np.dtype(src.dtype)
        if dtype.kind in "ui":
            info = np.iinfo(dtype)
            pixels = image.pixels
            if (
                float(pixels.min()) >= info.min
                and float(pixels.max()) <= info.max
                and np.array_equal(pixels, np.round(pixels))
            ):
                return dtype
        elif dtype.kind == "f":
            return dtype
    return np.dtype(np.float32)


def write_nifti(image: MedicalImage, path: str | Path, **_: Any) -> Path:
    """Write NIfTI-1 (or Analyze for .hdr/.img) with the affine of the (resampled) grid."""
    path = Path(path)
    pixels = image.pixels
    data = pixels.T if pixels.ndim == 2 else np.transpose(pixels, (2, 1, 0))
    dtype = _output_dtype(image)
    ras = _RAS_TO_LPS @ image.affine
    suffix = full_suffix(path)
    img: Any
    if suffix in (".hdr", ".img", ".img.gz"):
        img = nib.AnalyzeImage(np.asarray(data, dtype=dtype), ras)
    else:
        img = nib.Nifti1Image(np.asarray(data, dtype=dtype), ras)
        img.header.set_xyzt_units("mm")
        img.header["descrip"] = ("medsr: " + "; ".join(image.history))[:79].encode()
        img.set_qform(ras, code=1)
        img.set_sform(ras, code=1)
    img.header.set_data_dtype(dtype)
    if suffix in (".hdr", ".img", ".img.gz"):
        return _write_analyze_pair(img, path)
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return path


def _write_analyze_pair(img: Any, path: Path) -> Path:
    """Analyze is a .hdr/.img pair: both are written into a temporary sibling folder, then
    renamed into place, the image file first and the header last, so that a reader never
    sees a header without its complete image."""
    with scratch_dir(path) as tmp:
        nib.save(img, str(tmp / path.name))
        for file in sorted(tmp.iterdir(), key=lambda f: ".hdr" in f.name.lower()):
            os.replace(file, path.with_name(file.name))
    return path
