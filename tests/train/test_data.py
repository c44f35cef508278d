"""Data: public layouts on tiny fake folders, patient-level splits, slices and patches."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from medsr.data import (
    Augment,
    ImageRecord,
    SliceDataset,
    brats_records,
    chestxray14_records,
    deeplesion_records,
    dihedral,
    folder_records,
    lidc_idri_records,
    load_record,
    oasis1_records,
    records_for,
    sample_records,
    split_records,
)
from medsr.errors import ConfigError, InputError
from medsr.image import Modality

RNG = np.random.default_rng(0)


def _png16(path: Path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values.astype(np.uint16)).save(path)


def _png8(path: Path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values.astype(np.uint8)).save(path)


def _dicom_ct(path: Path, patient: str, series_uid: str, z: float, pixels: np.ndarray) -> None:
    from pydicom import Dataset
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientID = patient
    ds.Modality = "CT"
    ds.SeriesInstanceUID = series_uid
    ds.StudyInstanceUID = series_uid + ".1"
    ds.ImagePositionPatient = [0.0, 0.0, z]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [0.7, 0.7]
    ds.SliceThickness = 1.0
    ds.InstanceNumber = int(z) + 1
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleSlope = 1.0
    ds.RescaleIntercept = -1024.0
    ds.PixelData = pixels.astype(np.int16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


# -- layouts ------------------------------------------------------------------------------
def test_chestxray14_reads_patient_ids_from_csv(tmp_path: Path) -> None:
    for name in ("00000001_000.png", "00000001_001.png", "00000002_000.png"):
        _png8(tmp_path / "images_001" / "images" / name, RNG.integers(0, 255, (16, 16)))
    (tmp_path / "Data_Entry_2017_v2020.csv").write_text(
        "Image Index,Finding Labels,Follow-up #,Patient ID\n"
        "00000001_000.png,Cardiomegaly,0,1\n"
        "00000001_001.png,No Finding,1,1\n"
        "00000002_000.png,No Finding,0,2\n"
    )
    records = chestxray14_records(tmp_path)
    assert [r.path.name for r in records] == [
        "00000001_000.png",
        "00000001_001.png",
        "00000002_000.png",
    ]
    assert [r.patient_id for r in records] == ["1", "1", "2"]
    assert all(r.modality is Modality.XRAY for r in records)
    assert load_record(records[0]).modality is Modality.XRAY


def test_chestxray14_without_csv_is_an_input_error(tmp_path: Path) -> None:
    _png8(tmp_path / "images" / "a.png", np.zeros((4, 4)))
    with pytest.raises(InputError, match=r"Data_Entry_2017"):
        chestxray14_records(tmp_path)


def test_deeplesion_hu_offset_and_patient_prefix(tmp_path: Path) -> None:
    stored = np.full((8, 8), 32768 - 1000, dtype=np.uint16)  # air
    stored[2:6, 2:6] = 32768 + 40  # soft tissue
    _png16(tmp_path / "Images_png" / "000001_01_01" / "103.png", stored)
    _png16(tmp_path / "Images_png" / "000002_03_01" / "010.png", stored)
    _png8(tmp_path / "Images_png" / "notes" / "x.png", np.zeros((4, 4)))  # not a slice folder
    records = deeplesion_records(tmp_path)
    assert [r.patient_id for r in records] == ["000001", "000002"]
    image = load_record(records[0])
    assert image.modality is Modality.CT
    assert image.pixels.min() == -1000.0 and image.pixels.max() == 40.0
    # through the paper's window [-1024, 200]: -1000 HU -> 24/1224, 40 HU -> 1064/1224
    ds = SliceDataset(records[:1], window="deeplesion", min_std=0.0)
    assert ds[0][0, 0] == pytest.approx(24 / 1224, abs=1e-6)
    assert ds[0][3, 3] == pytest.approx(1064 / 1224, abs=1e-6)


def test_lidc_idri_series_folders_per_patient(tmp_path: Path) -> None:
    for patient in ("LIDC-IDRI-0001", "LIDC-IDRI-0002"):
        series_dir = tmp_path / "LIDC-IDRI" / patient / "1.1" / "1.1.1"
        uid = f"1.2.3.{patient[-1]}"
        for z in range(3):
            pixels = RNG.integers(0, 2000, (12, 12))
            _dicom_ct(series_dir / f"{z}.dcm", patient, uid, float(z), pixels)
    records = lidc_idri_records(tmp_path)
    assert [r.patient_id for r in records] == ["LIDC-IDRI-0001", "LIDC-IDRI-0002"]
    assert all(r.path.is_dir() for r in records)
    volume = load_record(records[0])
    assert volume.shape == (3, 12, 12) and volume.modality is Modality.CT
    ds = SliceDataset(records, min_std=0.0)
    assert len(ds) == 6


def test_oasis1_analyze_minmax(tmp_path: Path) -> None:
    data = np.zeros((10, 12, 4), dtype=np.int16)
    data[2:8, 3:9, 1:3] = RNG.integers(100, 900, (6, 6, 2))
    folder = tmp_path / "OAS1_0001_MR1" / "PROCESSED" / "MPRAGE" / "T88_111"
    folder.mkdir(parents=True)
    hdr = folder / "OAS1_0001_MR1_mpr_n4_anon_111_t88_masked_gfc.hdr"
    nib.save(nib.AnalyzeImage(data, np.eye(4)), str(hdr))
    nib.save(nib.AnalyzeImage(data, np.eye(4)), str(folder / "OAS1_0001_MR1_t88_gfc.hdr"))
    records = oasis1_records(tmp_path)
    assert len(records) == 1 and records[0].patient_id == "OAS1_0001"
    ds = SliceDataset(records, min_std=0.01)
    # slices 0 and 3 along the last NIfTI axis are empty and dropped
    assert len(ds) == 2 and ds.dropped == 2
    assert max(float(ds[i].max()) for i in range(len(ds))) == pytest.approx(1.0)
    assert min(float(ds[i].min()) for i in range(len(ds))) == pytest.approx(0.0)


def test_brats_sequences_without_segmentation(tmp_path: Path) -> None:
    for subject in ("BraTS2021_00000", "BraTS2021_00002"):
        for seq in ("t1", "t1ce", "t2", "flair", "seg"):
            vol = RNG.random((6, 6, 3)).astype(np.float32) * 500
            path = tmp_path / subject / f"{subject}_{seq}.nii.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(vol, np.eye(4)), str(path))
    records = brats_records(tmp_path)
    assert len(records) == 8
    assert {r.patient_id for r in records} == {"BraTS2021_00000", "BraTS2021_00002"}
    assert not any("seg" in r.path.name for r in records)
    assert len(brats_records(tmp_path, sequences=["flair"])) == 2


def test_folder_layout_mixes_formats_and_groups_dicom_series(tmp_path: Path) -> None:
    _png8(tmp_path / "a" / "x.png", RNG.integers(0, 255, (8, 8)))
    for z in range(2):
        _dicom_ct(
            tmp_path / "series" / f"s{z}.dcm",
            "P7",
            "1.2.3.9",
            float(z),
            RNG.integers(0, 99, (8, 8)),
        )
    nib.save(
        nib.Nifti1Image(RNG.random((8, 8, 2)).astype(np.float32), np.eye(4)),
        str(tmp_path / "v.nii.gz"),
    )
    records = folder_records(tmp_path)
    kinds = sorted((r.path.name, r.patient_id) for r in records)
    assert kinds == [("series", "P7"), ("v.nii.gz", None), ("x.png", None)]
    with pytest.raises(InputError, match="not a folder"):
        folder_records(tmp_path / "missing")


def test_records_for_rejects_unknown_layout_and_missing_root() -> None:
    with pytest.raises(ConfigError, match="unknown data layout"):
        records_for("imagenet")
    with pytest.raises(ConfigError, match=r"data\.root is required"):
        records_for("brats")


def test_bundled_samples_train_role() -> None:
    records = sample_records(role="train", modality="CT")
    names = [r.name for r in records]
    assert "ct-head-693" not in names  # a test image
    assert set(names) == {"ct-pancreas", "ct-enhanced", "ct-bad-sequence"}
    assert len({r.patient_id for r in records}) == 3
    ds = SliceDataset(records)
    assert len(ds) == 4  # the enhanced CT has 2 frames


# -- splits -------------------------------------------------------------------------------
def _fake_records(n_patients: int, per_patient: int) -> list[ImageRecord]:
    return [
        ImageRecord(Path(f"/p{p}/img{i}.png"), patient_id=f"P{p}")
        for p in range(n_patients)
        for i in range(per_patient)
    ]


def test_split_is_patient_level_fixed_and_seed_dependent() -> None:
    records = _fake_records(20, 3)
    train, val = split_records(records, 0.2, seed=0)
    assert len(val) == 4 * 3 and len(train) == 16 * 3
    assert not {r.patient_id for r in train} & {r.patient_id for r in val}
    again = split_records(list(reversed(records)), 0.2, seed=0)[1]
    assert {r.patient_id for r in again} == {r.patient_id for r in val}
    other = {r.patient_id for r in split_records(records, 0.2, seed=1)[1]}
    assert other != {r.patient_id for r in val}


def test_split_falls_back_to_files_and_to_no_validation() -> None:
    records = [ImageRecord(Path(f"/f{i}.png")) for i in range(4)]
    train, val = split_records(records, 0.5, seed=3)
    assert len(val) == 2 and len(train) == 2
    assert split_records(records[:1], 0.5)[1] == []
    with pytest.raises(ConfigError, match="val_fraction"):
        split_records(records, 1.0)


# -- slices and patches -------------------------------------------------------------------
def _dataset(tmp_path: Path) -> SliceDataset:
    vol = np.zeros((6, 40, 50), dtype=np.float32)
    vol[1:5] = RNG.random((4, 40, 50)).astype(np.float32) * 100
    vol[3] = 7.0  # constant slice
    path = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(np.transpose(vol, (2, 1, 0)), np.eye(4)), str(path))
    return SliceDataset([ImageRecord(path, modality=Modality.MR, normalization="minmax")])


def test_slice_dataset_drops_constant_slices(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    assert len(ds) == 3 and ds.dropped == 3
    assert [ref.index for ref in ds.refs] == [1, 2, 4]
    assert ds[0].dtype == np.float32 and ds[0].shape == (40, 50)


def test_dihedral_codes_and_augment_sets() -> None:
    x = np.arange(6.0).reshape(2, 3)
    assert np.array_equal(dihedral(x, 1), np.rot90(x))
    assert np.array_equal(dihedral(x, 4), x[:, ::-1])
    assert np.array_equal(dihedral(x, 6), x[::-1, :])
    assert Augment(True, False, False).codes().tolist() == [0, 4]
    assert Augment(True, True, False).codes().tolist() == [0, 2, 4, 6]
    assert Augment(True, True, True).codes().tolist() == list(range(8))
    assert Augment(False, False, False).codes().tolist() == [0]


def test_patches_are_deterministic_crops_of_the_slices(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    size = (16, 24)
    draw = ds.draw(np.random.default_rng(5), 8, size, Augment())
    a = ds.patches(draw, size)
    b = ds.patches(ds.draw(np.random.default_rng(5), 8, size, Augment()), size)
    assert a.shape == (8, 1, 16, 24) and np.array_equal(a, b)
    for j in range(8):
        code = int(draw.codes[j])
        crop = (24, 16) if code % 2 else size
        src = ds[int(draw.slices[j])]
        top = min(int(draw.tops[j]), src.shape[0] - crop[0])
        left = min(int(draw.lefts[j]), src.shape[1] - crop[1])
        want = dihedral(src[top : top + crop[0], left : left + crop[1]], code)
        assert np.array_equal(a[j, 0], want)


def test_small_slices_are_padded_to_the_patch(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    out = ds.patches(ds.draw(np.random.default_rng(0), 2, (64, 64)), (64, 64))
    assert out.shape == (2, 1, 64, 64)
    assert float(out.std()) > 0
