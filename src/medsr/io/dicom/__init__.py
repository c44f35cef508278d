"""DICOM: single files, multi-frame files and series folders, read and written as derived images.

:mod:`~medsr.io.dicom.reading` reads pixels in physical units (CT in HU) with their
geometry, from the header values :mod:`~medsr.io.dicom.attributes` interprets;
:mod:`~medsr.io.dicom.writing` writes derived files on the new grid, marked as derived
images by :mod:`~medsr.io.dicom.derivation`.
"""

from __future__ import annotations

from medsr.io.dicom.attributes import CT_AIR_FLOOR_HU
from medsr.io.dicom.derivation import (
    FULL_FIDELITY_CODE,
    SOURCE_FOR_PROCESSING_CODE,
    SPATIAL_RESAMPLING_CODE,
)
from medsr.io.dicom.reading import read_dicom, read_dicom_series
from medsr.io.dicom.writing import (
    SECONDARY_CAPTURE,
    encode_stored,
    write_dicom,
    write_dicom_series,
)

__all__ = [
    "CT_AIR_FLOOR_HU",
    "FULL_FIDELITY_CODE",
    "SECONDARY_CAPTURE",
    "SOURCE_FOR_PROCESSING_CODE",
    "SPATIAL_RESAMPLING_CODE",
    "encode_stored",
    "read_dicom",
    "read_dicom_series",
    "write_dicom",
    "write_dicom_series",
]
