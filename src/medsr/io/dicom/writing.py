"""Writing DICOM: derived single files, multi-frame files and series folders.

Writing encodes pixels back to the stored representation (inverse rescale,
MONOCHROME1 re-inverted, clipped to the stored range) as uncompressed
Explicit VR Little Endian, with new SOP Instance and Series UIDs and the
geometry of the new grid in the attributes the IOD has (PixelSpacing, or
ImagerPixelSpacing, the functional groups, the ultrasound regions), and the
derived-image marks of :mod:`medsr.io.dicom.derivation`. Enhanced multi-frame
outputs get one per-frame functional group per new frame. Patient and study are kept.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from medsr.errors import InputError
from medsr.image import MedicalImage, Modality
from medsr.io.core import atomic_dir, atomic_path
from medsr.io.dicom.attributes import (
    CT_AIR_FLOOR_HU,
    _bits,
    _pixel_spacing,
    _position,
    _rescale,
    _stored_range,
    _valid_pair,
)
from medsr.io.dicom.derivation import _is_enhanced, _mark_derived, _record_provenance
from medsr.io.file_warnings import naming_the_file, silenced_library_messages

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


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


def _input_copy(dataset: Dataset) -> Dataset:
    """A deep copy of (part of) an input header. pydicom validates every value again as it
    copies; the input's invalid values were reported, naming the input, when it was read."""
    with silenced_library_messages():
        return copy.deepcopy(dataset)


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
    ds = _input_copy(template) if template is not None else _fresh_dataset(image)
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
        items.append(_input_copy(items[-1]))
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
    with naming_the_file(path):
        return _write_dicom_file(image, path)


def _write_dicom_file(image: MedicalImage, path: Path) -> Path:
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
    with naming_the_file(folder):
        return _write_series_folder(image, folder)


def _write_series_folder(image: MedicalImage, folder: Path) -> Path:
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
