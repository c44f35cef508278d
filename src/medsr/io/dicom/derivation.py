"""What makes a written DICOM a derived image that dciodvfy accepts as it accepts the input.

ImageType DERIVED\\SECONDARY (enhanced IODs: DERIVED\\PRIMARY, FrameType to match), the
derivation code 113085 "Spatial resampling" and a SourceImageSequence that references
the input instance(s): in the General Image module of the classic IODs, in the shared
Derivation Image functional group of the enhanced ones.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from pydicom import config
from pydicom.dataset import Dataset
from pydicom.uid import UID

#: Derived-image provenance codes (DICOM DCM scheme): CID 7203 "Image Derivation" and
#: CID 7202 "Source Image Purposes of Reference".
SPATIAL_RESAMPLING_CODE = ("113085", "DCM", "Spatial resampling")


SOURCE_FOR_PROCESSING_CODE = ("121322", "DCM", "Source image for image processing operation")


FULL_FIDELITY_CODE = "121327"


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
    return sop is not None and "Enhanced" in UID(str(sop), validation_mode=config.IGNORE).name


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
    uid = UID(str(value), validation_mode=config.IGNORE)  # the check, not pydicom's warning
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
