"""Format dispatch for :func:`read` and :func:`write`, and atomic file output."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from medsr.errors import InputError
from medsr.image import MedicalImage

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
NIFTI_SUFFIXES = (".nii", ".nii.gz", ".hdr", ".img", ".img.gz")
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")


def full_suffix(path: Path) -> str:
    """Lower-case suffix, with .gz kept attached (``scan.nii.gz`` -> ``.nii.gz``)."""
    name = path.name.lower()
    for double in (".nii.gz", ".img.gz"):
        if name.endswith(double):
            return double
    return path.suffix.lower()


def stem(path: Path) -> str:
    """File name without its (possibly double) suffix."""
    suffix = full_suffix(path)
    return path.name[: len(path.name) - len(suffix)] if suffix else path.name


def _looks_like_dicom(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def read(path: str | Path, **options: Any) -> MedicalImage:
    """Read a medical image in physical units with its geometry.

    Options are passed to the format's reader: ``volume`` (index into a 4-D
    NIfTI), ``frame`` (one frame of a multi-frame DICOM), ``modality`` (override
    the modality of a NIfTI/raster file), ``colour`` ("grey" default, how RGB is
    reduced).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    if path.is_dir():
        from medsr.io.dicom import read_dicom_series

        return read_dicom_series(path, **options)
    suffix = full_suffix(path)
    if suffix in NIFTI_SUFFIXES:
        from medsr.io.nifti import read_nifti

        return read_nifti(path, **options)
    if suffix in RASTER_SUFFIXES:
        from medsr.io.raster import read_raster

        return read_raster(path, **options)
    if suffix == ".npy":
        from medsr.io.raster import read_npy

        return read_npy(path, **options)
    if suffix in DICOM_SUFFIXES or suffix == "" or _looks_like_dicom(path):
        from medsr.io.dicom import read_dicom

        return read_dicom(path, **options)
    raise InputError(
        path,
        f"unsupported file type {suffix!r}; medsr reads DICOM, NIfTI (.nii, .nii.gz), "
        "Analyze (.hdr/.img), PNG, JPEG, TIFF and .npy",
    )


def write(image: MedicalImage, path: str | Path, **options: Any) -> Path:
    """Write ``image`` as a derived file in the format ``path`` names.

    ``.dcm`` writes one DICOM file (multi-frame for a volume); a path without a
    suffix, for a volume, writes a DICOM series into that folder. The file
    appears atomically (written to a temporary name, then renamed), and an
    existing input is never overwritten: writing onto the image's own source
    path is refused.
    """
    path = Path(path)
    if image.source.path is not None:
        try:
            same = path.exists() and path.resolve() == Path(image.source.path).resolve()
        except OSError:
            same = False
        if same:
            raise InputError(path, "refusing to overwrite the input file; choose another output")
    suffix = full_suffix(path)
    if suffix in NIFTI_SUFFIXES:
        from medsr.io.nifti import write_nifti

        return write_nifti(image, path, **options)
    if suffix in RASTER_SUFFIXES:
        from medsr.io.raster import write_raster

        return write_raster(image, path, **options)
    if suffix == ".npy":
        from medsr.io.raster import write_npy

        return write_npy(image, path)
    if suffix in DICOM_SUFFIXES:
        from medsr.io.dicom import write_dicom

        return write_dicom(image, path, **options)
    if suffix == "" and image.ndim == 3:
        from medsr.io.dicom import write_dicom_series

        return write_dicom_series(image, path, **options)
    raise InputError(
        path,
        f"cannot tell the output format from {suffix or 'no suffix'!r}; use .dcm, .nii.gz, "
        ".png, .tif or .npy (or a folder name for a DICOM series)",
    )


def output_suffix_for(image: MedicalImage) -> str:
    """The suffix a derived file of ``image`` should carry to keep the input's format."""
    fmt = image.source.format
    if fmt in ("dicom", "dicom-series"):
        return "" if fmt == "dicom-series" else ".dcm"
    if fmt in ("nifti", "analyze"):
        return ".nii.gz"
    if fmt == "png":
        return ".png"
    if fmt == "tiff":
        return ".tif"
    if fmt == "jpeg":
        return ".png"  # never re-encode lossily
    return ".npy"


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``path`` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = full_suffix(path)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{stem(path)}.", suffix=f".part{suffix}", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; move it to ``path`` only if the block succeeds.

    An existing ``path`` is replaced only after the new folder is complete.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
