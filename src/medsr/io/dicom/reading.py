"""Reading DICOM: single files, multi-frame files and series folders.

Reading applies the modality LUT (RescaleSlope/Intercept, so CT is in HU),
inverts MONOCHROME1 in the stored domain (so bright means dense), and reduces
RGB, YBR and palette colour (ultrasound) to grey by luminance
0.299 R + 0.587 G + 0.114 B, rounded to integers. Geometry comes from
ImagePositionPatient/ImageOrientationPatient/PixelSpacing, from the enhanced
functional groups, from ImagerPixelSpacing (radiographs) or from the
ultrasound region calibration. Multi-frame slices keep their true positions,
also when frames advance against the slice normal.
"""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset
from pydicom.errors import InvalidDicomError

from medsr.errors import InputError
from medsr.image import MedicalImage, Modality, SourceInfo
from medsr.io.core import check_pixel_count
from medsr.io.dicom.attributes import (
    CT_AIR_FLOOR_HU,
    _bits,
    _orientation,
    _pixel_spacing,
    _position,
    _rescale,
    _slice_thickness,
    _stored_range,
    _unusable_geometry,
)
from medsr.io.file_warnings import naming_the_file, silenced_library_messages


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


def _decode(ds: Dataset, path: Path) -> np.ndarray:
    """Stored pixel values, colour reduced to grey; (frames, H, W) or (H, W)."""
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        sop = ds.get("SOPClassUID")
        kind = f" ({sop.name})" if sop is not None else ""
        raise InputError(path, f"DICOM file has no pixel data{kind}")
    _check_rescale(ds, path)
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        rows, columns = int(ds.Rows), int(ds.Columns)
        check_pixel_count(path, (frames, rows, columns))
    except (AttributeError, TypeError, ValueError):
        raise InputError(path, "Rows, Columns or NumberOfFrames missing or not numbers") from None
    _check_pixel_data_length(ds, path, rows, columns, frames)
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


def _check_pixel_data_length(ds: Dataset, path: Path, rows: int, columns: int, frames: int) -> None:
    """Refuse uncompressed pixel data holding a whole frame more than Rows x Columns x
    NumberOfFrames need (a Rows of 1 over 64 full rows): read as declared it would be a
    sliver of the image. Padding shorter than one frame (an odd byte, a few trailing
    bytes) is tolerated; pydicom drops it with a warning.

    Bytes needed: ceil(Rows x Columns x SamplesPerPixel x BitsAllocated x frames / 8),
    two thirds of that for YBR_FULL_422.
    """
    meta = getattr(ds, "file_meta", None)
    transfer_syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    data = ds.get("PixelData")
    if transfer_syntax is None or transfer_syntax.is_encapsulated:
        return
    if not isinstance(data, bytes | bytearray):
        return
    try:
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        allocated = int(ds.get("BitsAllocated", 16) or 16)
    except (TypeError, ValueError):
        return  # pydicom's decoder says what is wrong
    frame_bits = rows * columns * samples * allocated
    if str(ds.get("PhotometricInterpretation", "")).upper() == "YBR_FULL_422":
        frame_bits = frame_bits * 2 // 3
    if frame_bits <= 0 or len(data) * 8 < frame_bits * (frames + 1):
        return
    needed = math.ceil(frame_bits * frames / 8)
    raise InputError(
        path,
        f"Rows {rows} x Columns {columns} x {frames} frame(s) needs {needed:,} bytes of "
        f"pixel data, it holds {len(data):,}: Rows/Columns/NumberOfFrames contradict the "
        "pixel data",
    )


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
    with naming_the_file(path):
        return _read_dicom_file(path, frame, modality)


def _read_dicom_file(path: Path, frame: int | None, modality: str | None) -> MedicalImage:
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
            with silenced_library_messages():  # reported when the file is read in full
                ds = pydicom.dcmread(file, stop_before_pixels=True)
                _drop_unparseable(ds)
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
        with naming_the_file(file):
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
