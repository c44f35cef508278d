"""Format dispatch: :func:`read` picks the reader by suffix and content, :func:`write` the
writer by the suffix of the output path.

Every read passes the checks of :mod:`medsr.io.core` (a regular, readable path; finite
pixels; a usable geometry), and the warnings raised while reading name the file
(:func:`medsr.io.file_warnings.naming_the_file`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medsr.errors import InputError
from medsr.image import MedicalImage
from medsr.io.core import (
    DICOM_SUFFIXES,
    NIFTI_SUFFIXES,
    RASTER_SUFFIXES,
    _looks_like_dicom,
    check_input_path,
    full_suffix,
    validate_image,
)
from medsr.io.file_warnings import naming_the_file


def read(path: str | Path, **options: Any) -> MedicalImage:
    """Read a medical image in physical units with its geometry.

    Options are passed to the format's reader: ``volume`` (index into a 4-D
    NIfTI), ``frame`` (one frame of a multi-frame DICOM), ``modality`` (override
    the modality of a NIfTI/raster file), ``colour`` ("grey" default, how RGB is
    reduced).
    """
    path = Path(path)
    check_input_path(path)
    with naming_the_file(path):
        return validate_image(_read_format(path, **options), path)


def _read_format(path: Path, **options: Any) -> MedicalImage:
    """Dispatch on the suffix (a folder is a DICOM series)."""
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
    with naming_the_file(path):
        return _write_format(image, path, **options)


def _write_format(image: MedicalImage, path: Path, **options: Any) -> Path:
    """Dispatch on the suffix (none, for a volume: a DICOM series folder)."""
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
