"""What a DICOM header says about its pixels: the modality LUT, the stored bit depth and
the geometry (pixel spacing, orientation, position, slice spacing), read from the classic
attributes or from the enhanced functional groups, with malformed values read as absent.

Spacing comes from PixelSpacing, the enhanced PixelMeasuresSequence, ImagerPixelSpacing
(radiographs) or the ultrasound region calibration, in that order.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from medsr.io.core import plausible_spacing

#: CT values below this are padding outside the field of view; they are read as this value.
CT_AIR_FLOOR_HU = -1024.0


def _get(ds: Dataset, keyword: str) -> Any:
    """``ds.get(keyword)``, or None when the stored value cannot be converted (text in a DS)."""
    try:
        return ds.get(keyword)
    except (TypeError, ValueError, OverflowError):
        return None


def _functional_item(ds: Dataset, sequence: str, frame: int = 0) -> Dataset | None:
    """The first item of ``sequence`` in the per-frame group for ``frame``, else the shared group."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and len(per_frame) > frame:
        seq = per_frame[frame].get(sequence)
        if seq:
            return seq[0]
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        seq = shared[0].get(sequence)
        if seq:
            return seq[0]
    return None


def _rescale(ds: Dataset) -> tuple[float, float]:
    if "RescaleSlope" in ds or "RescaleIntercept" in ds:
        return float(ds.get("RescaleSlope", 1.0) or 1.0), float(
            ds.get("RescaleIntercept", 0.0) or 0.0
        )
    item = _functional_item(ds, "PixelValueTransformationSequence")
    if item is not None:
        return float(item.get("RescaleSlope", 1.0) or 1.0), float(
            item.get("RescaleIntercept", 0.0) or 0.0
        )
    return 1.0, 0.0


def _bits(ds: Dataset) -> tuple[int, int]:
    return int(ds.get("BitsStored", ds.get("BitsAllocated", 16))), int(
        ds.get("PixelRepresentation", 0)
    )


def _stored_range(bits: int, signed: int) -> tuple[float, float]:
    if signed:
        return -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    return 0.0, 2.0**bits - 1


def _valid_pair(value: Any) -> tuple[float, float] | None:
    """Two plausible spacings, or None (some files carry an empty value, 0\\0, one value,
    NaN, inf or 1e-300)."""
    if value is None or isinstance(value, str | bytes) or not hasattr(value, "__len__"):
        return None
    pair = plausible_spacing(value) if len(value) == 2 else None
    return (pair[0], pair[1]) if pair is not None else None


def _pixel_spacing(ds: Dataset) -> tuple[float, float] | None:
    """(row spacing, column spacing) in mm, from whichever attribute the file carries."""
    measures = _functional_item(ds, "PixelMeasuresSequence")
    for value in (
        _get(ds, "PixelSpacing"),
        _get(measures, "PixelSpacing") if measures is not None else None,
        _get(ds, "ImagerPixelSpacing"),
    ):
        pair = _valid_pair(value)
        if pair is not None:
            return pair
    regions = ds.get("SequenceOfUltrasoundRegions")
    if regions:
        region = regions[0]
        # PhysicalUnits 3 = cm; deltas are per pixel
        if (
            region.get("PhysicalUnitsXDirection") == 3
            and region.get("PhysicalUnitsYDirection") == 3
        ):
            deltas = plausible_spacing(
                (abs(float(region.PhysicalDeltaY)) * 10.0, abs(float(region.PhysicalDeltaX)) * 10.0)
            )
            if deltas is not None:
                return deltas[0], deltas[1]
    return None


def _orientation(ds: Dataset, frame: int = 0, value: Any = None) -> np.ndarray | None:
    """Unit row and column direction cosines (2, 3), or None when absent or unusable."""
    if value is None:
        value = _get(ds, "ImageOrientationPatient")
    if value is None:
        item = _functional_item(ds, "PlaneOrientationSequence", frame)
        value = item.get("ImageOrientationPatient") if item is not None else None
    try:
        rows = np.asarray([float(v) for v in value], dtype=np.float64).reshape(2, 3)
    except (TypeError, ValueError, OverflowError):
        return None  # absent, not six values, or not numbers
    norms = np.linalg.norm(rows, axis=1)
    if not np.all(np.isfinite(rows)) or np.any(norms < 1e-3):
        return None
    rows = rows / norms[:, None]
    if abs(float(np.dot(rows[0], rows[1]))) > 1e-2:
        return None  # not orthogonal: no plane
    return rows


def _position(ds: Dataset, frame: int = 0) -> np.ndarray | None:
    try:
        position = _position_value(ds, frame)
    except (TypeError, ValueError, OverflowError):
        return None
    if position is None or position.shape != (3,) or not np.all(np.isfinite(position)):
        return None
    return position


def _position_value(ds: Dataset, frame: int = 0) -> np.ndarray | None:
    item = _functional_item(ds, "PlanePositionSequence", frame)
    if item is not None and item.get("ImagePositionPatient") is not None:
        return np.asarray([float(v) for v in item.ImagePositionPatient])
    if ds.get("ImagePositionPatient") is not None and len(ds.ImagePositionPatient) == 3:
        return np.asarray([float(v) for v in ds.ImagePositionPatient])
    return None


def _slice_thickness(ds: Dataset) -> float | None:
    for source in (ds, _functional_item(ds, "PixelMeasuresSequence")):
        if source is None:
            continue
        for key in ("SpacingBetweenSlices", "SliceThickness"):
            spacing = plausible_spacing([source.get(key)])
            if spacing is not None:
                return spacing[0]
    return None


def _unusable_geometry(ds: Dataset) -> list[str]:
    """Geometry attributes that ``ds`` carries but that are malformed (one value, NaN, inf,
    text, 1e-300, a zero or non-orthogonal orientation); they are read as absent."""
    checks: dict[str, Any] = {
        "PixelSpacing": lambda value: _valid_pair(value) is not None,
        "ImagerPixelSpacing": lambda value: _valid_pair(value) is not None,
        "ImageOrientationPatient": lambda value: _orientation(Dataset({}), 0, value) is not None,
        "ImagePositionPatient": lambda value: _plausible_position(value),
    }
    bad = []
    for keyword, usable in checks.items():
        if keyword not in ds:
            continue
        try:
            ok = bool(usable(ds[keyword].value))
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            bad.append(keyword)
    return bad


def _plausible_position(value: Any) -> bool:
    """Three finite coordinates."""
    coords = [float(v) for v in value]
    return len(coords) == 3 and all(math.isfinite(v) for v in coords)
