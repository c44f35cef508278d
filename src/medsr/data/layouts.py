"""On-disk layouts of the public data sets, and of a plain folder, as image records.

Each function walks a root folder and returns :class:`ImageRecord` s with the
patient id the layout encodes (for a patient-level split), the modality and the
value transform to physical units:

* ``folder``: any PNG/TIFF/JPEG/DICOM/NIfTI/Analyze files below a root; a
  folder of several DICOM files is read as one series; patient from the DICOM
  header when there is one.
* ``chestxray14`` (NIH): ``images*/.../*.png`` and ``Data_Entry_2017*.csv``
  (``Image Index``, ``Patient ID``); X-ray.
* ``deeplesion``: ``Images_png/<patient>_<study>_<series>/<slice>.png``,
  16-bit with ``HU = value - 32768``; CT.
* ``lidc-idri``: ``LIDC-IDRI-<nnnn>/<study>/<series>/*.dcm``; one record per
  series folder, patient from the top folder.
* ``oasis1``: ``OAS1_<nnnn>_MR<k>/PROCESSED/MPRAGE/T88_111/*_masked_gfc.hdr``
  (skull-stripped, Analyze); per-subject min-max normalisation as in MIASSR.
* ``brats``: ``<subject>/<subject>_{t1,t1ce,t2,flair}.nii.gz``; MR, the
  segmentation left out.
* ``samples``: the bundled pydicom-data images of one role.
* ``corpus``: a training corpus built by ``medsr corpus build`` (its manifest gives
  subject, modality and role of every image).
"""

from __future__ import annotations

import csv
import fnmatch
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from medsr.data.records import ImageRecord, ValueTransform
from medsr.errors import ConfigError, InputError
from medsr.image import Modality

RASTER_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
VOLUME_SUFFIXES = (".nii", ".nii.gz", ".hdr")
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")

#: DeepLesion stores HU + 32768 in unsigned 16-bit PNG.
DEEPLESION_TRANSFORM = ValueTransform(slope=1.0, intercept=-32768.0)
BRATS_SEQUENCES: tuple[str, ...] = ("t1", "t1ce", "t2", "flair")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _require_dir(root: str | Path, layout: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, f"not a folder (the {layout} layout needs its root folder)")
    return root


def _none_found(root: Path, layout: str, what: str) -> InputError:
    return InputError(root, f"no {what} found for the {layout} layout")


def _is_dicom(path: Path) -> bool:
    if _suffix(path) in DICOM_SUFFIXES:
        return True
    if path.suffix:
        return False
    try:
        with path.open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _dicom_patient(path: Path) -> str | None:
    """PatientID from a DICOM header (pixels not read), or None."""
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception:
        return None
    value = str(ds.get("PatientID", "") or "").strip()
    return value or None


def folder_records(
    root: str | Path, modality: str | Modality | None = None, series: bool = True
) -> list[ImageRecord]:
    """Every image file below ``root``; folders with several DICOM files become series."""
    root = _require_dir(root, "folder")
    mod = Modality.parse(modality) if modality is not None else None
    records: list[ImageRecord] = []
    dicom_by_dir: dict[Path, list[Path]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        suffix = _suffix(path)
        if suffix in RASTER_SUFFIXES or suffix in VOLUME_SUFFIXES:
            read_options = {"modality": mod.value} if mod is not None else {}
            records.append(ImageRecord(path, modality=mod, read_options=read_options))
        elif _is_dicom(path):
            dicom_by_dir.setdefault(path.parent, []).append(path)
    for folder, files in sorted(dicom_by_dir.items()):
        targets: list[Path] = [folder] if series and len(files) > 1 else files
        for target in targets:
            probe = files[0] if target == folder else target
            records.append(ImageRecord(target, patient_id=_dicom_patient(probe), modality=mod))
    if not records:
        raise _none_found(root, "folder", "PNG, TIFF, JPEG, DICOM or NIfTI files")
    return sorted(records, key=lambda r: str(r.path))


def chestxray14_records(root: str | Path) -> list[ImageRecord]:
    """NIH ChestX-ray14: PNG radiographs, patient ids from ``Data_Entry_2017*.csv``."""
    root = _require_dir(root, "chestxray14")
    tables = sorted(root.rglob("Data_Entry_2017*.csv"))
    if not tables:
        raise InputError(root, "no Data_Entry_2017.csv (it maps Image Index to Patient ID)")
    patients: dict[str, str] = {}
    with tables[0].open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"Image Index", "Patient ID"} - set(reader.fieldnames or ())
        if missing:
            raise InputError(tables[0], f"missing column(s) {', '.join(sorted(missing))}")
        for row in reader:
            patients[row["Image Index"].strip()] = row["Patient ID"].strip()
    records = [
        ImageRecord(
            path,
            patient_id=patients.get(path.name),
            modality=Modality.XRAY,
            read_options={"modality": "XRAY"},
        )
        for path in sorted(root.rglob("*.png"))
        if any(part.startswith("images") for part in path.relative_to(root).parts[:-1])
    ]
    if not records:
        raise _none_found(root, "chestxray14", "images*/*.png files")
    return records


def deeplesion_records(root: str | Path) -> list[ImageRecord]:
    """DeepLesion: one 16-bit PNG per CT slice; patient = folder name before the first '_'."""
    root = _require_dir(root, "deeplesion")
    records = []
    for path in sorted(root.rglob("*.png")):
        folder = path.parent.name
        if not re.fullmatch(r"\d+_\d+_\d+", folder):
            continue
        records.append(
            ImageRecord(
                path,
                patient_id=folder.split("_", 1)[0],
                modality=Modality.CT,
                transform=DEEPLESION_TRANSFORM,
            )
        )
    if not records:
        raise _none_found(root, "deeplesion", "<patient>_<study>_<series>/*.png slices")
    return records


def lidc_idri_records(root: str | Path) -> list[ImageRecord]:
    """LIDC-IDRI: one record per DICOM series folder; patient = the ``LIDC-IDRI-nnnn`` folder."""
    root = _require_dir(root, "lidc-idri")
    records = []
    for patient_dir in sorted(p for p in root.rglob("LIDC-IDRI-*") if p.is_dir()):
        series_dirs = {f.parent for f in patient_dir.rglob("*") if f.is_file() and _is_dicom(f)}
        for series in sorted(series_dirs):
            n = sum(1 for f in series.iterdir() if f.is_file() and _is_dicom(f))
            target = series if n > 1 else next(f for f in series.iterdir() if _is_dicom(f))
            records.append(ImageRecord(target, patient_id=patient_dir.name))
    if not records:
        raise _none_found(root, "lidc-idri", "LIDC-IDRI-*/.../*.dcm series")
    return records


def oasis1_records(root: str | Path, pattern: str = "*_masked_gfc.hdr") -> list[ImageRecord]:
    """OASIS-1 skull-stripped Analyze volumes; patient = ``OAS1_nnnn``; per-subject min-max."""
    root = _require_dir(root, "oasis1")
    records = []
    for path in sorted(root.rglob(pattern)):
        match = re.search(r"(OAS1_\d{4})", str(path))
        records.append(
            ImageRecord(
                path,
                patient_id=match.group(1) if match else None,
                modality=Modality.MR,
                normalization="minmax",
                read_options={"modality": "MR"},
            )
        )
    if not records:
        raise _none_found(root, "oasis1", f"{pattern} Analyze volumes")
    return records


def brats_records(
    root: str | Path, sequences: Sequence[str] = BRATS_SEQUENCES
) -> list[ImageRecord]:
    """BraTS: per-subject folders of NIfTI volumes, one record per MR sequence."""
    root = _require_dir(root, "brats")
    wanted = {s.lower() for s in sequences}
    records = []
    for path in sorted(root.rglob("*.nii*")):
        name = path.name.lower().removesuffix(".gz").removesuffix(".nii")
        sequence = name.rsplit("_", 1)[-1] if "_" in name else name
        if sequence == "seg" or sequence not in wanted:
            continue
        records.append(
            ImageRecord(
                path,
                patient_id=path.parent.name,
                modality=Modality.MR,
                read_options={"modality": "MR"},
            )
        )
    if not records:
        raise _none_found(root, "brats", "<subject>/<subject>_<sequence>.nii.gz volumes")
    return records


def sample_records(
    role: str = "train",
    modality: str | Modality | None = None,
    exclude: Iterable[str] = (),
) -> list[ImageRecord]:
    """The bundled samples of one role; ``exclude`` holds glob patterns on names or files.

    Patient ids come from the DICOM headers (file-level split where a file has none).
    """
    from medsr.samples import list_samples

    patterns = list(exclude)
    records = []
    for sample in list_samples(role=role, modality=modality):
        if any(
            fnmatch.fnmatch(sample.name, p) or fnmatch.fnmatch(sample.file, p) for p in patterns
        ):
            continue
        records.append(
            ImageRecord(
                sample.path,
                patient_id=_dicom_patient(sample.path),
                modality=sample.modality,
                name=sample.name,
            )
        )
    if not records:
        raise ConfigError(
            f"no bundled {role} samples left (modality {modality}, exclude {patterns})"
        )
    return records


def corpus_records(
    root: str | Path,
    role: str | Sequence[str] = "train",
    modality: str | Modality | Sequence[str] | None = None,
    exclude: Iterable[str] = (),
) -> list[ImageRecord]:
    """Images of a built training corpus (``medsr corpus build``) of one or more roles.

    Subjects come from the manifest, so a split keeps each subject on one side;
    ``exclude`` holds glob patterns on item ids.
    """
    from medsr.data.corpus import read_manifest

    root = _require_dir(root, "corpus")
    roles = {role} if isinstance(role, str) else set(role)
    if modality is None:
        modalities = None
    elif isinstance(modality, (str, Modality)):
        modalities = {Modality.parse(modality)}
    else:
        modalities = {Modality.parse(m) for m in modality}
    patterns = list(exclude)
    records = []
    for row in read_manifest(root):
        mod = Modality.parse(row["modality"])
        if row["role"] not in roles or (modalities is not None and mod not in modalities):
            continue
        if any(fnmatch.fnmatch(row["id"], p) for p in patterns):
            continue
        path = root / row["path"]
        # NIfTI and raster files carry no modality; DICOM files do.
        is_dicom = _suffix(path) not in (*VOLUME_SUFFIXES, *RASTER_SUFFIXES)
        read_options = {} if is_dicom else {"modality": mod.value}
        records.append(
            ImageRecord(
                path,
                patient_id=row["subject"],
                modality=mod,
                name=row["id"],
                read_options=read_options,
            )
        )
    if not records:
        raise _none_found(root, "corpus", f"{'/'.join(sorted(roles))} images")
    return records


LAYOUTS: dict[str, Callable[..., list[ImageRecord]]] = {
    "corpus": corpus_records,
    "folder": folder_records,
    "chestxray14": chestxray14_records,
    "deeplesion": deeplesion_records,
    "lidc-idri": lidc_idri_records,
    "oasis1": oasis1_records,
    "brats": brats_records,
    "samples": sample_records,
}


def records_for(layout: str, root: str | Path | None = None, **options: Any) -> list[ImageRecord]:
    """Records of a named layout; ``root`` is required except for ``samples``."""
    key = layout.strip().lower().replace("_", "-")
    if key not in LAYOUTS:
        raise ConfigError(f"unknown data layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if key == "samples":
        return sample_records(**options)
    if root is None:
        raise ConfigError(f"data.root is required for the {key} layout")
    return LAYOUTS[key](root, **options)
