"""Training data: image records from folders and public data-set layouts, patient-level
splits, and normalised 2-D slices with random, augmented HR patches."""

from __future__ import annotations

from medsr.data.datasets import (
    Augment,
    PatchDraw,
    SliceDataset,
    as_patch_size,
    dihedral,
)
from medsr.data.layouts import (
    LAYOUTS,
    brats_records,
    chestxray14_records,
    deeplesion_records,
    folder_records,
    lidc_idri_records,
    oasis1_records,
    records_for,
    sample_records,
)
from medsr.data.records import ImageRecord, ValueTransform, load_record, normalisation_for
from medsr.data.splits import split_records

__all__ = [
    "LAYOUTS",
    "Augment",
    "ImageRecord",
    "PatchDraw",
    "SliceDataset",
    "ValueTransform",
    "as_patch_size",
    "brats_records",
    "chestxray14_records",
    "deeplesion_records",
    "dihedral",
    "folder_records",
    "lidc_idri_records",
    "load_record",
    "normalisation_for",
    "oasis1_records",
    "records_for",
    "sample_records",
    "split_records",
]
