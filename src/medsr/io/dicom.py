"""DICOM: single files, multi-frame files and series folders, read and written as derived images.

Reading applies the modality LUT (RescaleSlope/Intercept, so CT is in HU),
inverts MONOCHROME1 in the stored domain (so bright means dense), and reduces
RGB, YBR and palette colour (ultrasound) to grey by luminance
0.299 R + 0.587 G + 0.114 B, rounded to integers. Geometry comes from
ImagePositionPatient/ImageOrientationPatient/PixelSpacing, from the enhanced
functional groups, from ImagerPixelSpacing (radiographs) or from the
ultrasound region calibration. Multi-frame slices keep their true positions,
also when frames advance against the slice normal.

Writing encodes pixels back to the stored representation (inverse rescale,
MONOCHROME1 re-inverted, clipped to the stored range) as uncompressed
Explicit VR Little Endian, with new SOP Instance and Series UIDs and the
geometry of the new grid in the attributes the IOD has (PixelSpacing, or
ImagerPixelSpacing, the functional groups, the ultrasound regions). Outputs are
derived images that dciodvfy accepts as it accepts the input: ImageType
DERIVED\\SECONDARY (enhanced IODs: DERIVED\\PRIMARY, FrameType to match), the
derivation code 113085 "Spatial resampling" and a SourceImageSequence that
references the input instance(s). Patient and study are kept.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from medsr.errors import InputError
from medsr.image import MedicalImage, Modality, SourceInfo
from medsr.io.core import atomic_dir, atomic_path, check_pixel_count, plausible_spacing

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
#: CT values below this are padding outside the field of view; they are read as this value.
CT_AIR_FLOOR_HU = -1024.0


# ----------------------------------------------------------------------------- reading
def _dcmread(path: Path, stop_before_pixels: bool = False) -> FileDataset:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
            _drop_unparseable(ds)
            return ds
    except InvalidDicomError:
        raise InputError(path, "not a DICOM file (no DICM preamble and no valid header)") from None
    except Exception as exc:  # pydicom raises many types for malformed files (zlib.error...)
        raise InputError(path, f"unreadable DICOM file ({_short(exc)})") from None


def _drop_unparseable(dataset: Dataset) -> None:
    """Parse every element now and delete those pydicom cannot (an unknown VR, a value of
    the wrong length, a file-meta group in the data set), so that a damaged tag neither
    fails late in the writer nor stops an otherwise readable image; a damaged Rows or
    PixelData is then reported as missing."""
    for tag in list(dataset.keys()):
        if tag.group in (0x0000, 0x0002):  # command and file-meta groups belong elsewhere
            del dataset[tag]
            continue
        try:
            elem = dataset[tag]
            if elem.VR == "SQ":
                for item in elem.value:
                    _drop_unparseable(item)
        except Exception:  # pydicom raises many types for damaged elements
            del dataset[tag]


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


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


def _check_rescale(ds: Dataset, path: Path) -> None:
    """Refuse a modality LUT that is not two finite numbers: a NaN or infinite slope would
    turn every pixel into NaN (and write "nan" into the output header)."""
    try:
        pair = _rescale(ds)
    except (TypeError, ValueError, OverflowError):
        raise InputError(path, "RescaleSlope/RescaleIntercept are not numbers") from None
    if not all(math.isfinite(v) for v in pair):
        raise InputError(
            path, f"RescaleSlope {pair[0]:g} / RescaleIntercept {pair[1]:g} are not finite numbers"
        )


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


def _decode(ds: Dataset, path: Path) -> np.ndarray:
    """Stored pixel values, colour reduced to grey; (frames, H, W) or (H, W)."""
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        sop = ds.get("SOPClassUID")
        kind = f" ({sop.name})" if sop is not None else ""
        raise InputError(path, f"DICOM file has no pixel data{kind}")
    _check_rescale(ds, path)
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        check_pixel_count(path, (frames, int(ds.Rows), int(ds.Columns)))
    except (AttributeError, TypeError, ValueError):
        raise InputError(path, "Rows, Columns or NumberOfFrames missing or not numbers") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = ds.pixel_array
    except NotImplementedError as exc:
        ts = ds.file_meta.get("TransferSyntaxUID")
        name = ts.name if ts is not None else "unknown"
        raise InputError(
            path,
            f"cannot decode transfer syntax {name}: install the codecs extra "
            f"(pip install 'medsr[codecs]') ({_short(exc)})",
        ) from None
    except (
        ValueError,
        RuntimeError,
        AttributeError,
        KeyError,
        TypeError,
        OSError,
        EOFError,
    ) as exc:
        raise InputError(
            path, f"pixel data cannot be decoded, the file may be truncated ({_short(exc)})"
        ) from None
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    samples = int(ds.get("SamplesPerPixel", 1))
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        # Palettes are display colours: bring 16-bit LUT entries to 8 bits (v / 257).
        try:
            arr = apply_color_lut(arr, ds).astype(np.float64)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise InputError(
                path, f"PALETTE COLOR without a usable lookup table ({_short(exc)})"
            ) from None
        if arr.max() > 255:
            arr = arr / 257.0
        samples = 3
    if samples == 3 or (
        arr.ndim >= 3 and arr.shape[-1] == 3 and photometric not in ("MONOCHROME1", "MONOCHROME2")
    ):
        rgb = arr.astype(np.float64)
        grey = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
        arr = np.rint(grey)
    return np.asarray(arr)


def _bits(ds: Dataset) -> tuple[int, int]:
    return int(ds.get("BitsStored", ds.get("BitsAllocated", 16))), int(
        ds.get("PixelRepresentation", 0)
    )


def _stored_range(bits: int, signed: int) -> tuple[float, float]:
    if signed:
        return -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    return 0.0, 2.0**bits - 1


def _to_physical(stored: np.ndarray, ds: Dataset) -> np.ndarray:
    values = stored.astype(np.float64)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "MONOCHROME1":
        lo, hi = _stored_range(*_bits(ds))
        values = (lo + hi) - values
    slope, intercept = _rescale(ds)
    physical = values * slope + intercept
    if Modality.from_dicom(ds.get("Modality")) is Modality.CT:
        # Below -1024 HU lies padding outside the reconstruction circle, not tissue.
        physical = np.maximum(physical, CT_AIR_FLOOR_HU)
    return physical.astype(np.float32)


def _source_info(
    ds: Dataset, path: Path, fmt: str, datasets: list[Dataset], pixels: np.ndarray
) -> SourceInfo:
    bits, signed = _bits(ds)
    slope, intercept = _rescale(ds)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):  # colour reduced to grey
        bits = 8 if float(pixels.max()) <= 255 else 16
    return SourceInfo(
        format=fmt,
        path=str(path),
        bits_stored=bits,
        photometric=photometric,
        dtype=f"{'int' if signed else 'uint'}{int(ds.get('BitsAllocated', 16))}",
        rescale_slope=slope,
        rescale_intercept=intercept,
        pixel_representation=signed,
        datasets=datasets,
        patient_id=str(ds.get("PatientID", "")) or None,
    )


def _strip_pixels(ds: Dataset) -> Dataset:
    """A header-only copy of ``ds`` kept as the template for writing, without the geometry
    attributes that cannot be used (so a derived file never repeats "inf" or "nan")."""
    header = copy.copy(ds)
    header._dict = dict(ds._dict)  # its own element table: the deletions leave ``ds`` whole
    for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData", *_unusable_geometry(ds)):
        if keyword in header:
            del header[keyword]
    header = copy.deepcopy(header)  # nested items are cleaned below, the input's are kept
    _drop_non_numbers(header)
    return header


def _drop_non_numbers(dataset: Dataset) -> None:
    """Delete decimal and float elements holding NaN, inf or text, at any depth, so the
    writer, which copies the header, never repeats them."""
    for elem in list(dataset):
        if elem.VR == "SQ":
            for item in elem.value:
                _drop_non_numbers(item)
            continue
        if elem.VR not in ("DS", "FD", "FL") or elem.value is None or elem.value == "":
            continue
        values = elem.value if elem.VM > 1 else [elem.value]
        try:
            finite = all(math.isfinite(float(v)) for v in values)
        except (TypeError, ValueError, OverflowError):
            finite = False
        if not finite:
            del dataset[elem.tag]


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


def _geometry_notes(ds: Dataset, path: Path) -> list[str]:
    """One note per unusable geometry attribute of ``ds``, for ``medsr info``/``upscale``."""
    return [
        f"{path}: {keyword} is malformed (missing values, NaN, inf or implausible); "
        "read as absent" + (", spacing unknown" if keyword.endswith("PixelSpacing") else "")
        for keyword in _unusable_geometry(ds)
    ]


def _affine_2d(ds: Dataset, frame: int = 0) -> tuple[np.ndarray, bool]:
    spacing = _pixel_spacing(ds)
    known = spacing is not None
    dy, dx = spacing if spacing is not None else (1.0, 1.0)
    orient = _orientation(ds, frame)
    row_dir, col_dir = (
        (orient[0], orient[1]) if orient is not None else (np.eye(3)[0], np.eye(3)[1])
    )
    normal = np.cross(row_dir, col_dir)
    position = _position(ds, frame)
    affine = np.eye(4)
    affine[:3, 0] = row_dir * dx
    affine[:3, 1] = col_dir * dy
    affine[:3, 2] = normal
    affine[:3, 3] = position if position is not None else 0.0
    return affine, known


def _frame_step(ds: Dataset) -> float:
    """Signed distance in mm from frame 0 to frame 1 along the slice normal (row x column).

    Frames may advance against the normal (eCT_Supplemental: normal -z, frames +z); the
    sign keeps each frame at its true position. Without two positions: SpacingBetweenSlices,
    else SliceThickness, else 1.
    """
    orient = _orientation(ds, 0)
    p0, p1 = _position(ds, 0), _position(ds, 1)
    if orient is not None and p0 is not None and p1 is not None:
        step = float(np.dot(p1 - p0, np.cross(orient[0], orient[1])))
        if abs(step) > 1e-6:
            return step
    return _slice_thickness(ds) or 1.0


def read_dicom(
    path: str | Path,
    frame: int | None = None,
    modality: str | None = None,
    **_: Any,
) -> MedicalImage:
    """One DICOM file: (H, W), or (D, H, W) for a multi-frame file unless ``frame`` is given."""
    path = Path(path)
    ds = _dcmread(path)
    stored = _decode(ds, path)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames == 1 and stored.ndim == 3:
        stored = stored[0]
    pixels = _to_physical(stored, ds)
    affine, known = _affine_2d(ds, 0)
    if pixels.ndim == 3:
        if frame is not None:
            if not 0 <= frame < pixels.shape[0]:
                raise InputError(
                    path, f"frame {frame} out of range (file has {pixels.shape[0]} frames)"
                )
            pixels = pixels[frame]
            affine, known = _affine_2d(ds, frame)
        else:
            affine[:3, 2] = affine[:3, 2] * _frame_step(ds)
    source = _source_info(ds, path, "dicom", [_strip_pixels(ds)], pixels)
    source.extra["notes"] = _geometry_notes(ds, path)
    if pixels.ndim == 3:
        source.extra["slice_spacing_mm"] = abs(float(np.linalg.norm(affine[:3, 2])))
    mod = Modality.parse(modality) if modality else Modality.from_dicom(ds.get("Modality"))
    return MedicalImage(pixels, affine=affine, modality=mod, source=source, spacing_known=known)


def _dicom_files(folder: Path) -> list[Path]:
    files = []
    for candidate in sorted(folder.iterdir()):
        if (
            candidate.is_file()
            and not candidate.name.startswith(".")
            and candidate.name.upper() != "DICOMDIR"
        ):
            files.append(candidate)
    return files


def read_dicom_series(
    folder: str | Path, modality: str | None = None, **options: Any
) -> MedicalImage:
    """A folder holding one DICOM series, stacked into (D, H, W).

    Slices are sorted by ImagePositionPatient projected on the slice normal,
    falling back to InstanceNumber; the slice spacing comes from the positions.
    """
    folder = Path(folder)
    headers: list[tuple[Path, Dataset]] = []
    for file in _dicom_files(folder):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(file, stop_before_pixels=True)
        except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError):
            continue
        headers.append((file, ds))
    if not headers:
        raise InputError(folder, "folder holds no DICOM files")
    series = {str(ds.get("SeriesInstanceUID", "")) for _, ds in headers}
    if len(series) > 1:
        raise InputError(
            folder,
            f"folder mixes {len(series)} DICOM series; point medsr at a folder holding one series",
        )
    if len(headers) == 1:
        return read_dicom(headers[0][0], modality=modality, **options)
    sizes = {(int(ds.get("Rows", 0)), int(ds.get("Columns", 0))) for _, ds in headers}
    if len(sizes) > 1:
        raise InputError(folder, f"series slices differ in size: {sorted(sizes)}")
    check_pixel_count(folder, (len(headers), *next(iter(sizes))))

    first = headers[0][1]
    orient = _orientation(first)
    positions = [_position(ds) for _, ds in headers]
    if orient is not None and all(p is not None for p in positions):
        normal = np.cross(orient[0], orient[1])
        keys = [float(np.dot(p, normal)) for p in positions]  # type: ignore[arg-type]
        order = np.argsort(keys, kind="stable")
        sorted_keys = np.asarray(keys)[order]
        gaps = np.diff(sorted_keys)
        if np.any(gaps <= 1e-6):
            raise InputError(
                folder, "two slices share one position; the folder may hold duplicates"
            )
        dz = float(np.median(gaps))
    else:
        order = np.argsort(
            [int(ds.get("InstanceNumber", i)) for i, (_, ds) in enumerate(headers)], kind="stable"
        )
        dz = _slice_thickness(first) or 1.0

    slices, datasets = [], []
    for index in order:
        file, _ = headers[int(index)]
        ds = _dcmread(file)
        stored = _decode(ds, file)
        if stored.ndim != 2:
            raise InputError(file, "a series folder must hold single-frame files")
        slices.append(_to_physical(stored, ds))
        datasets.append(_strip_pixels(ds))
    pixels = np.stack(slices)
    affine, known = _affine_2d(datasets[0])
    affine[:3, 2] = affine[:3, 2] * dz
    source = _source_info(datasets[0], folder, "dicom-series", datasets, pixels)
    source.extra["slice_spacing_mm"] = dz
    source.extra["notes"] = _geometry_notes(headers[int(order[0])][1], folder)
    mod = Modality.parse(modality) if modality else Modality.from_dicom(datasets[0].get("Modality"))
    return MedicalImage(pixels, affine=affine, modality=mod, source=source, spacing_known=known)


# ----------------------------------------------------------------------------- writing
def _ds_number(value: float) -> str:
    """A Decimal String of at most 16 characters."""
    for digits in range(12, 4, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    return f"{value:.4g}"


def _fresh_dataset(image: MedicalImage) -> Dataset:
    """A minimal Secondary Capture header for an image that did not come from DICOM."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(SECONDARY_CAPTURE)
    ds.SOPClassUID = UID(SECONDARY_CAPTURE)
    ds.PatientName = "Anonymous"
    ds.PatientID = image.source.patient_id or "medsr"
    ds.StudyInstanceUID = generate_uid()
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.ConversionType = "WSD"
    codes = {Modality.CT: "CT", Modality.MR: "MR", Modality.XRAY: "DX", Modality.US: "US"}
    ds.Modality = codes.get(image.modality, "OT")
    return ds


def _encoding(
    image: MedicalImage, template: Dataset | None
) -> tuple[int, int, int, float, float, bool]:
    """(bits_allocated, bits_stored, signed, slope, intercept, monochrome1) for the output."""
    src = image.source
    if template is not None and src.photometric in ("MONOCHROME1", "MONOCHROME2"):
        bits, signed = _bits(template)
        allocated, bits = _writable_depth(int(template.get("BitsAllocated", 16)), bits)
        slope, intercept = _rescale(template)
        return allocated, bits, signed, slope, intercept, src.photometric == "MONOCHROME1"
    if template is not None:  # colour source, written as grey
        bits = 8 if (src.bits_stored or 8) <= 8 else 16
        return bits, bits, 0, 1.0, 0.0, False
    lo, hi = float(image.pixels.min()), float(image.pixels.max())
    if lo >= 0 and hi <= 255 and src.bits_stored in (None, 8):
        return 8, 8, 0, 1.0, 0.0, False
    if lo >= 0 and hi <= 65535:
        return 16, 16, 0, 1.0, 0.0, False
    return 16, 16, 1, 1.0, 0.0, False


def _writable_depth(allocated: int, bits: int) -> tuple[int, int]:
    """(BitsAllocated, BitsStored) the writer can encode: 8 or 16 bits allocated.

    1-bit (segmentations, bitmaps) becomes 8-bit, values kept; 32-bit becomes 16-bit,
    stored values clipped to 16 bits (a note for such rare files is not worth a rescale).
    """
    if allocated < 8:
        return 8, 8
    if allocated in (8, 16):
        return allocated, min(max(bits, 1), allocated)
    return 16, 16


def _as_little_endian(ds: Dataset) -> None:
    """Make ``ds`` (copied from a possibly big-endian file) encode as uncompressed Explicit
    VR Little Endian, the one syntax the writer produces.

    pydicom neither sets pixel data on nor saves a big-endian dataset as little-endian, so
    every element is converted to its value (numbers lose their byte order) and the binary
    OW/OF/OD/OL/OV/UN elements, whose byte order pydicom cannot know, are dropped.
    """
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if ds.original_encoding[1] is not False:
        return

    def drop_binary(dataset: Dataset) -> None:
        for elem in list(dataset):
            if elem.VR in ("OW", "OF", "OD", "OL", "OV", "UN"):
                del dataset[elem.tag]
            elif elem.VR == "SQ":
                for item in elem.value:
                    drop_binary(item)

    drop_binary(ds)
    ds.set_original_encoding(False, True, ds.original_character_set)


def encode_stored(
    image: MedicalImage, pixels: np.ndarray, template: Dataset | None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Physical values -> stored integers (inverse rescale, MONOCHROME1, clip to the stored range)."""
    allocated, bits, signed, slope, intercept, mono1 = _encoding(image, template)
    stored = (pixels.astype(np.float64) - intercept) / slope
    lo, hi = _stored_range(bits, signed)
    if mono1:
        stored = (lo + hi) - stored
    stored = np.clip(np.rint(stored), lo, hi)
    dtype = np.dtype(f"{'int' if signed else 'uint'}{allocated}")
    return stored.astype(dtype), {
        "BitsAllocated": allocated,
        "BitsStored": bits,
        "HighBit": bits - 1,
        "PixelRepresentation": signed,
        "PhotometricInterpretation": "MONOCHROME1" if mono1 else "MONOCHROME2",
    }


#: Derived-image provenance codes (DICOM DCM scheme): CID 7203 "Image Derivation" and
#: CID 7202 "Source Image Purposes of Reference".
SPATIAL_RESAMPLING_CODE = ("113085", "DCM", "Spatial resampling")
SOURCE_FOR_PROCESSING_CODE = ("121322", "DCM", "Source image for image processing operation")
FULL_FIDELITY_CODE = "121327"

#: Palette tables that describe colour pixels; a supplemental palette of a MONOCHROME
#: image (Enhanced CT/MR "PixelPresentation COLOR") stays valid and is kept.
_PALETTE = (
    "RedPaletteColorLookupTableDescriptor",
    "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor",
    "RedPaletteColorLookupTableData",
    "GreenPaletteColorLookupTableData",
    "BluePaletteColorLookupTableData",
    "SegmentedRedPaletteColorLookupTableData",
    "SegmentedGreenPaletteColorLookupTableData",
    "SegmentedBluePaletteColorLookupTableData",
    "PaletteColorLookupTableUID",
)

#: The MR Pulse Sequence module (and bulk motion technique) of the enhanced MR IODs is
#: conditional on ImageType value 1 ORIGINAL or MIXED: a DERIVED image must not carry it.
_MR_ORIGINAL_ONLY = (
    "PulseSequenceName",
    "MRAcquisitionType",
    "EchoPulseSequence",
    "MultipleSpinEcho",
    "MultiPlanarExcitation",
    "PhaseContrast",
    "VelocityEncodingAcquisitionSequence",
    "TimeOfFlightContrast",
    "ArterialSpinLabelingContrast",
    "SteadyStatePulseSequence",
    "EchoPlanarPulseSequence",
    "SaturationRecovery",
    "SpectrallySelectedSuppression",
    "OversamplingPhase",
    "GeometryOfKSpaceTraversal",
    "RectilinearPhaseEncodeReordering",
    "SegmentedKSpaceTraversal",
    "CoverageOfKSpace",
    "NumberOfKSpaceTrajectories",
    "BulkMotionCompensationTechnique",
)

_PROVENANCE = ("DerivationDescription", "DerivationCodeSequence", "SourceImageSequence")


def _is_enhanced(ds: Dataset) -> bool:
    """An enhanced multi-frame IOD (functional groups; ImageType value 2 must stay PRIMARY)."""
    if "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds:
        return True
    sop = ds.get("SOPClassUID")
    return sop is not None and "Enhanced" in UID(str(sop)).name


def _functional_groups(ds: Dataset) -> list[Dataset]:
    """The shared item and every per-frame item."""
    groups = list(ds.get("SharedFunctionalGroupsSequence") or [])
    return groups + list(ds.get("PerFrameFunctionalGroupsSequence") or [])


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _valid_uid(value: Any) -> bool:
    """A well-formed UID under one of the three roots (0, 1, 2) UIDs may start with."""
    if not value:
        return False
    uid = UID(str(value))
    return uid.is_valid and uid.split(".")[0] in ("0", "1", "2")


def _source_reference(source: Dataset) -> Dataset | None:
    """A SourceImageSequence item pointing at the instance the pixels were derived from."""
    if not source.get("SOPClassUID") or not _valid_uid(source.get("SOPInstanceUID")):
        return None  # a reference that is not a UID would only carry the input's error on
    item = Dataset()
    item.ReferencedSOPClassUID = source.SOPClassUID
    item.ReferencedSOPInstanceUID = source.SOPInstanceUID
    item.PurposeOfReferenceCodeSequence = [_code(*SOURCE_FOR_PROCESSING_CODE)]
    return item


def _mark_derived(ds: Dataset, enhanced: bool) -> None:
    """ImageType value 1 DERIVED: DERIVED\\SECONDARY for the classic IODs; for the enhanced
    IODs value 2 is kept (PRIMARY is the only one they allow) and every FrameType agrees."""
    image_type = [str(v) for v in ds.get("ImageType", [])]
    if not enhanced:
        ds.ImageType = ["DERIVED", "SECONDARY", *image_type[2:]]
        return
    second = image_type[1] if len(image_type) > 1 else "PRIMARY"
    ds.ImageType = ["DERIVED", second, *image_type[2:]]
    for group in _functional_groups(ds):
        for element in group:
            if element.keyword.endswith("FrameTypeSequence") and element.VR == "SQ":
                for item in element.value:
                    frame_type = [str(v) for v in item.get("FrameType", [])]
                    if frame_type:
                        item.FrameType = ["DERIVED", *frame_type[1:]]
    if str(ds.get("Modality", "")).upper() == "MR":
        for keyword in _MR_ORIGINAL_ONLY:
            if keyword in ds:
                del ds[keyword]


def _record_provenance(
    ds: Dataset, description: str, sources: Sequence[Dataset], enhanced: bool
) -> None:
    """Derivation code "Spatial resampling", a description and references to the sources.

    The classic IODs carry them in the General Image module; the enhanced IODs only in the
    Derivation Image functional group, placed in the shared group.
    """
    references = [ref for ref in (_source_reference(s) for s in sources) if ref is not None]
    text = ("medsr: " + description)[:1024]
    if not enhanced:
        ds.DerivationDescription = text
        # earlier steps (lossy compression) stay on record; "full fidelity" no longer holds
        earlier = [
            item
            for item in ds.get("DerivationCodeSequence") or []
            if item.get("CodeValue") not in (FULL_FIDELITY_CODE, SPATIAL_RESAMPLING_CODE[0])
        ]
        ds.DerivationCodeSequence = [*earlier, _code(*SPATIAL_RESAMPLING_CODE)]
        if references:
            ds.SourceImageSequence = references
        elif "SourceImageSequence" in ds:
            del ds["SourceImageSequence"]
        return
    for keyword in _PROVENANCE:
        if keyword in ds:
            del ds[keyword]
    derivation = Dataset()
    derivation.DerivationDescription = text
    derivation.DerivationCodeSequence = [_code(*SPATIAL_RESAMPLING_CODE)]
    derivation.SourceImageSequence = references
    shared = ds.get("SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    if shared:
        shared[0].DerivationImageSequence = [derivation]
        for item in per_frame:
            if "DerivationImageSequence" in item:
                del item["DerivationImageSequence"]
    elif per_frame:  # no shared group: in every frame's group
        for item in per_frame:
            item.DerivationImageSequence = [copy.deepcopy(derivation)]
    else:  # no functional groups at all (a damaged file): nowhere the IOD allows
        return
    evidence = _evidence(sources)  # required with SourceImageSequence in the groups
    if evidence and references:
        ds.SourceImageEvidenceSequence = evidence


def _evidence(sources: Sequence[Dataset]) -> list[Dataset]:
    """SourceImageEvidenceSequence: the sources by study and series (hierarchical reference)."""
    studies: dict[tuple[str, str], list[Dataset]] = {}
    for source in sources:
        reference = _source_reference(source)
        if reference is None or not source.get("StudyInstanceUID"):
            continue
        del reference["PurposeOfReferenceCodeSequence"]
        key = (str(source.StudyInstanceUID), str(source.get("SeriesInstanceUID", "")))
        studies.setdefault(key, []).append(reference)
    items = []
    for (study_uid, series_uid), references in studies.items():
        series = Dataset()
        series.SeriesInstanceUID = series_uid
        series.ReferencedSOPSequence = references
        item = Dataset()
        item.StudyInstanceUID = study_uid
        item.ReferencedSeriesSequence = [series]
        items.append(item)
    return items


def _drop_stale_padding(ds: Dataset) -> None:
    """CT padding below -1024 HU is read (and so written) as -1024 HU: the stored padding
    value no longer marks any pixel, so PixelPaddingValue and its range limit go."""
    if str(ds.get("Modality", "")).upper() != "CT" or "PixelPaddingValue" not in ds:
        return
    slope, intercept = _rescale(ds)
    if float(ds.PixelPaddingValue) * slope + intercept < CT_AIR_FLOOR_HU:
        for keyword in ("PixelPaddingValue", "PixelPaddingRangeLimit"):
            if keyword in ds:
                del ds[keyword]


def _derive_header(
    image: MedicalImage,
    template: Dataset | None,
    pixels: np.ndarray,
    series_uid: str,
    frame_index: int | None,
    sources: Sequence[Dataset] = (),
) -> Dataset:
    """Copy ``template`` and update identity, provenance, geometry and pixel module for
    ``pixels``; ``sources`` are the input instances the pixels were derived from."""
    ds = copy.deepcopy(template) if template is not None else _fresh_dataset(image)
    colour_source = image.source.photometric not in (None, "MONOCHROME1", "MONOCHROME2")
    for keyword in (
        *(_PALETTE if colour_source else ()),
        "PlanarConfiguration",
        "IconImageSequence",
    ):
        if keyword in ds:
            del ds[keyword]
    overlay_tags = [elem.tag for elem in ds if 0x6000 <= elem.tag.group <= 0x60FF]
    for tag in overlay_tags:  # overlays no longer fit the new grid
        del ds[tag]

    stored, pixel_module = encode_stored(image, pixels, template)
    photometric = pixel_module.pop("PhotometricInterpretation")
    _as_little_endian(ds)
    ds.set_pixel_data(stored, photometric, pixel_module["BitsStored"], generate_instance_uid=True)
    if "RescaleSlope" in ds or "RescaleIntercept" in ds:
        slope, intercept = _rescale(ds)
        ds.RescaleSlope = _ds_number(slope)
        ds.RescaleIntercept = _ds_number(intercept)
    _drop_stale_padding(ds)

    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.SeriesInstanceUID = series_uid
    enhanced = _is_enhanced(ds)
    _mark_derived(ds, enhanced)
    description = "; ".join(image.history) or "processed by medsr"
    _record_provenance(ds, description, sources, enhanced)
    if "SeriesDescription" in ds:
        ds.SeriesDescription = (str(ds.SeriesDescription) + " medsr")[:64]
    else:
        ds.SeriesDescription = "medsr derived"

    _write_geometry(ds, image, template, frame_index)
    return ds


def _scale_ultrasound_regions(
    regions: Sequence[Dataset], scale_y: float, scale_x: float, rows: int, columns: int
) -> None:
    """Map each calibrated region onto the new grid, which covers the same field of view.

    Old pixel edge e (continuous index) lands on new edge e * s; so an old region of pixels
    [lo, hi] becomes [ceil(lo s - 1/2), ceil((hi + 1) s - 1/2) - 1], and an old reference
    pixel centre r (relative to the region) lands at (lo + r + 1/2) s - 1/2 - lo'. The
    reference pixel is an integer: its physical value is shifted by the rounding, so the
    calibration stays exact.
    """
    for region in regions:
        for axis, scale, size in (("X", scale_x, columns), ("Y", scale_y, rows)):
            low_key, high_key = f"RegionLocationMin{axis}0", f"RegionLocationMax{axis}1"
            old_low = int(region[low_key].value) if low_key in region else 0
            new_low = max(0, math.ceil(old_low * scale - 0.5 - 1e-9))
            if low_key in region:
                region[low_key].value = new_low
            if high_key in region:
                old_high = int(region[high_key].value)
                new_high = math.ceil((old_high + 1) * scale - 0.5 - 1e-9) - 1
                region[high_key].value = min(size - 1, max(new_low, new_high))
            delta_key = f"PhysicalDelta{axis}"
            if delta_key in region:
                region[delta_key].value = float(region[delta_key].value) / scale
            ref_key = f"ReferencePixel{axis}0"
            if ref_key in region:
                exact = (old_low + int(region[ref_key].value) + 0.5) * scale - 0.5 - new_low
                region[ref_key].value = round(exact)
                value_key = f"ReferencePixelPhysicalValue{axis}"
                if value_key in region and delta_key in region:
                    shift = (round(exact) - exact) * float(region[delta_key].value)
                    region[value_key].value = float(region[value_key].value) + shift


def _set_slice_measures(item: Dataset, image: MedicalImage) -> None:
    """SpacingBetweenSlices (and SliceThickness when the slice spacing changed) of a volume.

    A through-plane output holds contiguous slices at the new spacing: both attributes
    say so. An in-plane output keeps the acquired SliceThickness.
    """
    if image.ndim != 3:
        return
    dz = image.spacing_mm[0]
    if "SpacingBetweenSlices" in item:
        item.SpacingBetweenSlices = _ds_number(dz)
    old_dz = image.source.extra.get("slice_spacing_mm")
    if old_dz and abs(dz - float(old_dz)) > 1e-4 * float(old_dz) and "SliceThickness" in item:
        item.SliceThickness = _ds_number(dz)


def _write_geometry(
    ds: Dataset, image: MedicalImage, template: Dataset | None, frame_index: int | None
) -> None:
    dy, dx = image.spacing_mm[-2:]
    affine = image.affine
    old_spacing = _pixel_spacing(template) if template is not None else None
    scale_y = old_spacing[0] / dy if old_spacing else 1.0
    scale_x = old_spacing[1] / dx if old_spacing else 1.0

    # PixelSpacing only where the IOD has it: not for enhanced (functional groups),
    # radiographs (ImagerPixelSpacing) or ultrasound (region calibration).
    template_has_spacing = template is not None and _valid_pair(template.get("PixelSpacing"))
    if image.spacing_known and (template_has_spacing or template is None):
        ds.PixelSpacing = [_ds_number(dy), _ds_number(dx)]
    elif "PixelSpacing" in ds and not template_has_spacing:
        del ds["PixelSpacing"]  # unusable in the input (0\\0, NaN, one value): not carried on
    if ds.get("ImagerPixelSpacing") and old_spacing:
        ips = ds.ImagerPixelSpacing
        ds.ImagerPixelSpacing = [
            _ds_number(float(ips[0]) / scale_y),
            _ds_number(float(ips[1]) / scale_x),
        ]
    regions = ds.get("SequenceOfUltrasoundRegions")
    if regions and template is not None and template.get("Rows") and template.get("Columns"):
        rows, columns = image.shape[-2:]
        _scale_ultrasound_regions(
            regions, rows / int(template.Rows), columns / int(template.Columns), rows, columns
        )

    has_position = template is None or _position(template) is not None
    slice_offset = float(frame_index or 0)
    origin = affine[:3, :3] @ np.array([0.0, 0.0, slice_offset]) + affine[:3, 3]
    if has_position and "PerFrameFunctionalGroupsSequence" not in ds:
        ds.ImagePositionPatient = [_ds_number(v) for v in origin]
        direction = image.direction
        ds.ImageOrientationPatient = [_ds_number(v) for v in (*direction[:, 0], *direction[:, 1])]
        if "SliceLocation" in ds:
            ds.SliceLocation = _ds_number(float(np.dot(origin, direction[:, 2])))
    _set_slice_measures(ds, image)

    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        measures = shared[0].get("PixelMeasuresSequence")
        if measures:
            measures[0].PixelSpacing = [_ds_number(dy), _ds_number(dx)]
            _set_slice_measures(measures[0], image)


def _fix_frames(ds: Dataset, image: MedicalImage) -> None:
    """Resize the per-frame functional groups to the new frame count and positions."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is None:
        return
    frames = image.shape[0] if image.ndim == 3 else 1
    items = list(per_frame)
    old_count = len(items)
    while len(items) < frames:
        items.append(copy.deepcopy(items[-1]))
    items = items[:frames]
    if frames != old_count:
        _renumber_stack(ds, items)
    for index, item in enumerate(items):
        measures = item.get("PixelMeasuresSequence")
        if measures:
            dy, dx = image.spacing_mm[-2:]
            measures[0].PixelSpacing = [_ds_number(dy), _ds_number(dx)]
            _set_slice_measures(measures[0], image)
        position = item.get("PlanePositionSequence")
        if position:
            origin = image.affine[:3, :3] @ np.array([0.0, 0.0, float(index)]) + image.affine[:3, 3]
            position[0].ImagePositionPatient = [_ds_number(v) for v in origin]
    ds.PerFrameFunctionalGroupsSequence = items
    ds.NumberOfFrames = frames


def _renumber_stack(ds: Dataset, items: list[Dataset]) -> None:
    """In-Stack Position Numbers (and the dimension index that points at them) for a new
    frame count, running the same way along the frames as the input's did."""
    contents = [item.FrameContentSequence[0] for item in items if item.get("FrameContentSequence")]
    if len(contents) != len(items) or "InStackPositionNumber" not in contents[0]:
        return
    descending = int(contents[0].InStackPositionNumber) > int(contents[-1].InStackPositionNumber)
    pointers = [
        int(d.get("DimensionIndexPointer", 0)) for d in ds.get("DimensionIndexSequence", [])
    ]
    in_stack = 0x00209057
    for index, content in enumerate(contents):
        number = len(contents) - index if descending else index + 1
        content.InStackPositionNumber = number
        raw = content.get("DimensionIndexValues")
        if raw is None:
            continue
        values = [int(v) for v in (raw if isinstance(raw, list | MultiValue) else [raw])]
        for position, pointer in enumerate(pointers):
            if pointer == in_stack and position < len(values):
                values[position] = number
        content.DimensionIndexValues = values


def _template(image: MedicalImage, index: int = 0) -> Dataset | None:
    datasets: Sequence[Dataset] = image.source.datasets
    if not datasets:
        return None
    return datasets[index] if index < len(datasets) else datasets[0]


def _slice_sources(image: MedicalImage, index: int) -> list[Dataset]:
    """The input instances slice ``index`` of a series output was derived from.

    One per slice when the slice count is kept; after a through-plane upscale, the input
    slices on either side of the new slice's position along the normal.
    """
    datasets: Sequence[Dataset] = image.source.datasets
    if len(datasets) == image.shape[0] or len(datasets) <= 1:
        return [datasets[index if len(datasets) > 1 else 0]] if datasets else []
    normal = image.direction[:, 2]
    here = float(
        np.dot(image.affine[:3, :3] @ np.array([0.0, 0.0, index]) + image.affine[:3, 3], normal)
    )
    keyed = sorted(
        (float(np.dot(position, normal)), i)
        for i, position in enumerate(_position(ds) for ds in datasets)
        if position is not None
    )
    if not keyed:
        return [datasets[0]]
    tolerance = 1e-4
    below = [i for key, i in keyed if key <= here + tolerance]
    above = [i for key, i in keyed if key >= here - tolerance]
    chosen = sorted({*below[-1:], *above[:1]})
    return [datasets[i] for i in chosen]


def write_dicom(image: MedicalImage, path: str | Path, **_: Any) -> Path:
    """One derived DICOM file: (H, W), or multi-frame for a (D, H, W) volume."""
    path = Path(path)
    template = _template(image)
    ds = _derive_header(image, template, image.pixels, generate_uid(), None, image.source.datasets)
    if image.ndim == 3 or ("NumberOfFrames" in ds and "PerFrameFunctionalGroupsSequence" in ds):
        _fix_frames(ds, image)
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return path


def write_dicom_series(image: MedicalImage, folder: str | Path, **_: Any) -> Path:
    """A derived series: one file per slice, with positions along the slice normal."""
    folder = Path(folder)
    if image.ndim != 3:
        raise InputError(folder, "a DICOM series needs a (D, H, W) volume")
    series_uid = generate_uid()
    same_count = len(image.source.datasets) == image.shape[0]
    with atomic_dir(folder) as tmp:
        for index in range(image.shape[0]):
            template = _template(image, index if same_count else 0)
            if template is not None and "PerFrameFunctionalGroupsSequence" in template:
                template = None  # enhanced multi-frame headers do not describe one slice
            sources = _slice_sources(image, index)
            ds = _derive_header(image, template, image.pixels[index], series_uid, index, sources)
            ds.InstanceNumber = index + 1
            if "NumberOfFrames" in ds:
                del ds["NumberOfFrames"]
            ds.save_as(tmp / f"IM{index + 1:05d}.dcm", enforce_file_format=True)
    return folder
