"""Image records: one file or series folder to train on, with what is known before reading it.

A record names a path and, where the layout tells us, the patient, the modality,
a linear value transform from stored to physical units (DeepLesion stores
``HU + 32768`` in 16-bit PNG) and how to normalise the image to [0, 1].
:func:`load_record` reads it into a :class:`~medsr.image.MedicalImage` in
physical units.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medsr.errors import ConfigError
from medsr.image import MedicalImage, Modality, Normalization

#: How a record's image is mapped to [0, 1]: the modality default, per-image min/max.
NORMALISATIONS: tuple[str, ...] = ("default", "minmax")


@dataclass(frozen=True)
class ValueTransform:
    """Stored value -> physical unit: ``physical = slope * stored + intercept``."""

    slope: float = 1.0
    intercept: float = 0.0

    def __call__(self, values: np.ndarray) -> np.ndarray:
        if self.slope == 1.0 and self.intercept == 0.0:
            return values
        return (values * np.float32(self.slope) + np.float32(self.intercept)).astype(np.float32)


@dataclass(frozen=True)
class ImageRecord:
    """A file or DICOM series folder to read, with its patient and modality when known.

    ``patient_id`` None means "unknown": splits then fall back to the file.
    ``modality`` None keeps what the reader found. ``read_options`` go to
    :func:`medsr.io.read` (``frame``, ``volume``).
    """

    path: Path
    patient_id: str | None = None
    modality: Modality | None = None
    transform: ValueTransform = field(default_factory=ValueTransform)
    normalization: str = "default"
    name: str | None = None
    read_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.normalization not in NORMALISATIONS:
            raise ConfigError(
                f"unknown normalisation {self.normalization!r}; "
                f"choose one of {', '.join(NORMALISATIONS)}"
            )

    @property
    def label(self) -> str:
        """A short name for messages: the sample name, else the path."""
        return self.name or str(self.path)

    @property
    def group(self) -> str:
        """What a train/validation split keeps together: the patient, else the file."""
        return f"patient:{self.patient_id}" if self.patient_id else f"file:{self.path}"

    def with_patient(self, patient_id: str | None) -> ImageRecord:
        return dataclasses.replace(self, patient_id=patient_id)


def load_record(record: ImageRecord) -> MedicalImage:
    """Read a record as a MedicalImage in physical units (transform and modality applied)."""
    from medsr.io import read

    image = read(record.path, **record.read_options)
    transformed = record.transform(image.pixels)
    if transformed is image.pixels and record.modality in (None, image.modality):
        return image
    out = MedicalImage(
        transformed,
        affine=image.affine,
        modality=record.modality or image.modality,
        source=image.source,
        history=image.history,
        spacing_known=image.spacing_known,
    )
    if transformed is not image.pixels:
        out.source.bits_stored = None  # stored-bit ranges no longer describe the values
    return out


def normalisation_for(
    image: MedicalImage, record: ImageRecord, window: str | tuple[float, float] | None
) -> Normalization:
    """The [0, 1] map for one image: a configured CT window, min/max, or the modality default."""
    if record.normalization == "minmax":
        low, high = float(image.pixels.min()), float(image.pixels.max())
        return Normalization(low, high if high > low else low + 1.0, "minmax")
    if window is not None and image.modality is Modality.CT:
        return image.normalization(window=window)
    return image.normalization()
