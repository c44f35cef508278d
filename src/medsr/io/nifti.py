"""NIfTI-1/2 (.nii, .nii.gz) and Analyze 7.5 (.hdr/.img) through nibabel.

nibabel's data array is indexed (i, j, k) with a RAS affine; medsr holds
(k, j, i) = (D, H, W) with an LPS affine, so reading transposes and flips the
first two world axes, and writing does the reverse. Stored data types are kept
when the pixels still fit them (so read -> write -> read is exact); otherwise
float32 is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from medsr.errors import InputError
from medsr.image import MedicalImage, Modality, SourceInfo
from medsr.io.core import atomic_path, full_suffix

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _guess_modality(pixels: np.ndarray) -> Modality:
    """NIfTI carries no modality: values well below zero mean HU (CT), else MR."""
    return Modality.CT if float(np.percentile(pixels, 1)) < -500 else Modality.MR


def read_nifti(
    path: str | Path,
    volume: int | None = None,
    modality: str | None = None,
    **_: Any,
) -> MedicalImage:
    """A 2-D or 3-D NIfTI/Analyze image; a 4-D file needs ``volume``."""
    path = Path(path)
    img: Any
    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises a zoo of types for bad files
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(path, f"unreadable NIfTI/Analyze file ({text[:160]})") from None
    affine = np.asarray(img.affine, dtype=np.float64)
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim == 4:
        if volume is None:
            raise InputError(
                path,
                f"4-D image with {data.shape[3]} volumes; choose one with volume=N (--volume N)",
            )
        if not 0 <= volume < data.shape[3]:
            raise InputError(path, f"volume {volume} out of range (file has {data.shape[3]})")
        data = data[..., volume]
    if data.ndim > 4:
        raise InputError(path, f"{data.ndim}-D image; medsr reads 2-D and 3-D images")
    header = img.header
    slope, intercept = (
        header.get_slope_inter() if hasattr(header, "get_slope_inter") else (None, None)
    )
    pixels = np.asarray(data, dtype=np.float32)
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
    return MedicalImage(pixels, affine=lps, modality=mod, source=source)


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
        # Analyze writes a pair of files; write both next to each other.
        nib.save(img, str(path))
        return path
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return path
