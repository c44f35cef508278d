"""Derived DICOM that validators and viewers accept (issue 13).

``medsr upscale`` outputs of every pydicom-data image kind are checked with dciodvfy
(Debian dicom3tools): no error the input does not have. Series and enhanced CT outputs
are converted with dcm2niix, and their affines compared with the input's. Both tools
are Debian packages that ``bash dev.sh test`` installs; without them those tests skip.
The header-level fixes (positions, ImageType, provenance, regions, names) are checked
with pydicom alone.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medsr.cli import main
from medsr.io import read, write
from medsr.samples import data_root

DCIODVFY = shutil.which("dciodvfy")
DCM2NIIX = shutil.which("dcm2niix")
needs_dciodvfy = pytest.mark.skipif(
    DCIODVFY is None,
    reason="dciodvfy missing: apt-get install dicom3tools (bash dev.sh test installs it)",
)
needs_dcm2niix = pytest.mark.skipif(
    DCM2NIIX is None,
    reason="dcm2niix missing: apt-get install dcm2niix (bash dev.sh test installs it)",
)


# ----------------------------------------------------------------------------- helpers
def _upscale(source: Path, output: Path, *options: str) -> int:
    """``medsr upscale SOURCE -o OUTPUT --model bicubic [--scale 2] OPTIONS``."""
    scale = [] if {"--scale", "--spacing"} & set(options) else ["--scale", "2"]
    args = ["upscale", str(source), "-o", str(output), "--model", "bicubic", "--quiet"]
    return main([*args, *scale, *options])


def _errors(path: Path) -> set[str]:
    """dciodvfy's error lines for one file."""
    assert DCIODVFY is not None
    run = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=120)
    lines = (run.stdout + run.stderr).splitlines()
    return {line.strip() for line in lines if line.startswith("Error")}


def _drop_group_lengths(ds: Dataset) -> None:
    for tag in [elem.tag for elem in ds if elem.tag.element == 0]:
        del ds[tag]


def _crop(source: Path, target: Path, top: int, left: int, size: int) -> Path:
    """A size x size crop of an uncompressed single-frame file, its position moved to match."""
    ds = pydicom.dcmread(source)
    pixels = np.ascontiguousarray(ds.pixel_array[top : top + size, left : left + size])
    ds.PixelData = pixels.tobytes()
    ds.Rows, ds.Columns = pixels.shape
    if "ImagePositionPatient" in ds and "PixelSpacing" in ds:
        row_dir, col_dir = np.asarray(ds.ImageOrientationPatient, float).reshape(2, 3)
        dy, dx = (float(v) for v in ds.PixelSpacing)
        origin = np.asarray(ds.ImagePositionPatient, float)
        origin = origin + left * dx * row_dir + top * dy * col_dir
        ds.ImagePositionPatient = [f"{v:.6f}" for v in origin]
    _drop_group_lengths(ds)
    ds.save_as(target, enforce_file_format=True)
    return target


def _build_series(folder: Path, slices: int, spacing: float, tilt_deg: float = 0.0) -> Path:
    """A series of ``slices`` 64 x 64 crops of the head CT (skull edge), ``spacing`` mm apart,
    its slice normal tilted by ``tilt_deg`` about the patient x axis."""
    folder.mkdir(parents=True)
    full = pydicom.dcmread(data_root() / "693_UNCR.dcm").pixel_array
    angle = np.deg2rad(tilt_deg)
    row_dir = np.array([1.0, 0.0, 0.0])
    col_dir = np.array([0.0, np.cos(angle), np.sin(angle)])
    normal = np.cross(row_dir, col_dir)
    origin = np.array([-20.0, 30.0, 40.0])
    series_uid, frame_uid = generate_uid(), generate_uid()
    top, left = 416, 256
    for k in range(slices):
        ds = pydicom.dcmread(data_root() / "693_UNCR.dcm")
        _drop_group_lengths(ds)
        pixels = np.ascontiguousarray(full[top + 2 * k : top + 2 * k + 64, left : left + 64])
        ds.PixelData = pixels.tobytes()
        ds.Rows, ds.Columns = pixels.shape
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.InstanceNumber = k + 1
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*row_dir, *col_dir)]
        position = origin + k * spacing * normal
        ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
        ds.SliceLocation = f"{float(np.dot(position, normal)):.6f}"
        ds.SliceThickness = f"{spacing:g}"
        ds.SpacingBetweenSlices = f"{spacing:g}"
        ds.save_as(folder / f"slice{k:02d}.dcm", enforce_file_format=True)
    return folder


def _assert_no_new_errors(source_files: list[Path], output_files: list[Path]) -> None:
    allowed = set().union(*(_errors(f) for f in source_files))
    for out in output_files:
        new = _errors(out) - allowed
        assert not new, f"{out.name}: dciodvfy errors the input does not have: {sorted(new)}"


# ----------------------------------------------------------------------------- dciodvfy
#: (pydicom-data file, crop (top, left, size) or None for the whole image)
KINDS = {
    "ct": ("693_UNCR.dcm", None),
    "mr": ("MR-SIEMENS-DICOM-WithOverlays.dcm", (150, 150, 128)),
    "cr": ("RG3_UNCR.dcm", (700, 700, 256)),
    "us-rgb": ("US1_UNCR.dcm", None),
    "us-rgb-bad-uid-root": ("color-px.dcm", None),  # 999.* UIDs: never referenced
    "us-palette": ("OBXXXX1A.dcm", None),
    "enhanced-ct": ("eCT_Supplemental.dcm", None),
    "enhanced-mr": ("emri_small.dcm", None),
}


@needs_dciodvfy
@pytest.mark.parametrize("kind", list(KINDS))
def test_upscaled_files_add_no_validator_errors(kind: str, tmp_path: Path) -> None:
    name, crop = KINDS[kind]
    source = data_root() / name
    if crop is not None:
        source = _crop(source, tmp_path / name, *crop)
    out = tmp_path / "out.dcm"
    assert _upscale(source, out) == 0
    _assert_no_new_errors([source], [out])


@needs_dciodvfy
@pytest.mark.parametrize("tilt", [0.0, 20.0], ids=["axial", "oblique"])
def test_upscaled_series_adds_no_validator_errors(tilt: float, tmp_path: Path) -> None:
    series = _build_series(tmp_path / "in", 4, 2.5, tilt)
    assert _upscale(series, tmp_path / "out") == 0
    outputs = sorted((tmp_path / "out" / "in_sr-x2").iterdir())
    assert len(outputs) == 4
    _assert_no_new_errors(sorted(series.iterdir()), outputs)
    assert _upscale(series, tmp_path / "z", "--plane", "through", "--scale", "2") == 0
    through = sorted((tmp_path / "z" / "in_sr-x2-z").iterdir())
    assert len(through) == 8
    _assert_no_new_errors(sorted(series.iterdir()), through)


# ----------------------------------------------------------------------------- dcm2niix
def _dcm2niix(folder: Path, out: Path) -> nib.Nifti1Image:
    assert DCM2NIIX is not None
    out.mkdir()
    run = subprocess.run(
        [DCM2NIIX, "-z", "n", "-b", "n", "-f", "volume", "-o", str(out), str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    files = sorted(out.glob("*.nii"))
    assert len(files) == 1, run.stdout
    return nib.load(files[0])


def _box(image: nib.Nifti1Image) -> np.ndarray:
    """The 8 outer corners (voxel edges, not centres) of the volume in world mm, sorted."""
    shape = np.asarray(image.shape[:3], float)
    corners = np.array(list(itertools.product(*[(-0.5, n - 0.5) for n in shape])))
    world = nib.affines.apply_affine(image.affine, corners)
    return world[np.lexsort(np.round(world, 1).T[::-1])]


def _assert_x2_in_plane(source: nib.Nifti1Image, derived: nib.Nifti1Image) -> None:
    """Voxel size halved in-plane (slice spacing kept), same bounding box within half a voxel."""
    zoom_in = np.asarray(source.header.get_zooms()[:3])
    zoom_out = np.asarray(derived.header.get_zooms()[:3])
    np.testing.assert_allclose(zoom_out[:2], zoom_in[:2] / 2, rtol=1e-4)
    np.testing.assert_allclose(zoom_out[2], zoom_in[2], rtol=1e-4)
    assert derived.shape[:2] == (2 * source.shape[0], 2 * source.shape[1])
    assert derived.shape[2] == source.shape[2]
    np.testing.assert_allclose(source.affine[:3, :3], derived.affine[:3, :3] * [2, 2, 1], atol=1e-3)
    assert np.abs(_box(source) - _box(derived)).max() < 0.5 * zoom_out.min()


@needs_dcm2niix
@pytest.mark.parametrize("tilt", [0.0, 20.0], ids=["axial", "oblique"])
def test_dcm2niix_series_affines_agree(tilt: float, tmp_path: Path) -> None:
    series = _build_series(tmp_path / "in", 5, 2.5, tilt)
    assert _upscale(series, tmp_path / "out") == 0
    source = _dcm2niix(series, tmp_path / "nii_in")
    derived = _dcm2niix(tmp_path / "out" / "in_sr-x2", tmp_path / "nii_out")
    _assert_x2_in_plane(source, derived)


@needs_dcm2niix
def test_dcm2niix_enhanced_ct_frames_agree(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    shutil.copy(data_root() / "eCT_Supplemental.dcm", tmp_path / "in" / "ect.dcm")
    (tmp_path / "out").mkdir()
    assert _upscale(tmp_path / "in" / "ect.dcm", tmp_path / "out" / "ect_x2.dcm") == 0
    source = _dcm2niix(tmp_path / "in", tmp_path / "nii_in")
    derived = _dcm2niix(tmp_path / "out", tmp_path / "nii_out")
    _assert_x2_in_plane(source, derived)


# ----------------------------------------------------------------------------- headers
def test_enhanced_frames_keep_their_true_positions(tmp_path: Path) -> None:
    """eCT_Supplemental: normal -z, frames at z = -159 then -149 (against the normal)."""
    image = read(data_root() / "eCT_Supplemental.dcm")
    centres = [image.affine @ np.array([0.0, 0.0, k, 1.0]) for k in (0, 1)]
    assert [round(float(c[2]), 4) for c in centres] == [-159.0, -149.0]
    assert image.spacing_mm[0] == pytest.approx(10.0)

    plain = pydicom.dcmread(write(image, tmp_path / "plain.dcm"))
    z = [float(f.PlanePositionSequence[0].ImagePositionPatient[2]) for f in _frames(plain)]
    assert z == [-159.0, -149.0]

    assert _upscale(data_root() / "eCT_Supplemental.dcm", tmp_path / "x2.dcm") == 0
    x2 = pydicom.dcmread(tmp_path / "x2.dcm")
    z = [float(f.PlanePositionSequence[0].ImagePositionPatient[2]) for f in _frames(x2)]
    assert z == [-159.0, -149.0]

    nifti = nib.load(write(image, tmp_path / "ect.nii.gz"))
    ras = nib.affines.apply_affine(nifti.affine, [[0, 0, 0], [0, 0, 1]])
    assert ras[:, 2].tolist() == pytest.approx([-159.0, -149.0])  # z is the same in RAS and LPS


def _frames(ds: Dataset) -> list[Dataset]:
    return list(ds.PerFrameFunctionalGroupsSequence)


def test_enhanced_ct_header_fits_its_iod(tmp_path: Path) -> None:
    source = pydicom.dcmread(data_root() / "eCT_Supplemental.dcm")
    assert _upscale(data_root() / "eCT_Supplemental.dcm", tmp_path / "x2.dcm") == 0
    ds = pydicom.dcmread(tmp_path / "x2.dcm")
    assert list(ds.ImageType) == ["DERIVED", "PRIMARY", "PERFUSION", "RCBF"]
    shared = ds.SharedFunctionalGroupsSequence[0]
    assert list(shared.CTImageFrameTypeSequence[0].FrameType)[:2] == ["DERIVED", "PRIMARY"]
    assert ds.PixelPresentation == "COLOR"  # and the supplemental palette that goes with it
    assert ds.RedPaletteColorLookupTableData == source.RedPaletteColorLookupTableData
    assert "PixelSpacing" not in ds and "DerivationDescription" not in ds
    spacing = [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing]
    assert spacing == pytest.approx([0.388672 / 2] * 2)
    derivation = shared.DerivationImageSequence[0]
    assert "x2 in-plane" in derivation.DerivationDescription
    assert derivation.DerivationCodeSequence[0].CodeValue == "113085"
    reference = derivation.SourceImageSequence[0]
    assert reference.ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert reference.PurposeOfReferenceCodeSequence[0].CodeValue == "121322"
    evidence = ds.SourceImageEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID


def test_enhanced_mr_drops_attributes_of_original_images(tmp_path: Path) -> None:
    assert _upscale(data_root() / "emri_small.dcm", tmp_path / "x2.dcm") == 0
    ds = pydicom.dcmread(tmp_path / "x2.dcm")
    assert list(ds.ImageType) == ["DERIVED", "PRIMARY", "T1", "NONE"]
    assert "PulseSequenceName" not in ds and "MRAcquisitionType" not in ds
    assert (ds.NumberOfFrames, ds.Rows, ds.Columns) == (10, 128, 128)


def test_classic_provenance_replaces_full_fidelity(tmp_path: Path) -> None:
    source = pydicom.dcmread(data_root() / "693_UNCR.dcm", stop_before_pixels=True)
    assert source.DerivationCodeSequence[0].CodeValue == "121327"  # "Full fidelity image"
    assert _upscale(data_root() / "693_UNCR.dcm", tmp_path / "x2.dcm") == 0
    ds = pydicom.dcmread(tmp_path / "x2.dcm")
    assert list(ds.ImageType) == ["DERIVED", "SECONDARY", "AXIAL"]
    assert [c.CodeValue for c in ds.DerivationCodeSequence] == ["113085"]
    assert ds.DerivationCodeSequence[0].CodeMeaning == "Spatial resampling"
    assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert ds.SourceImageSequence[0].ReferencedSOPClassUID == source.SOPClassUID
    assert ds.DerivationDescription.startswith("medsr: medsr upscale x2 in-plane (512x512 -> ")
    # a lossy-compressed input keeps that step on record
    assert _upscale(data_root() / "693_UNCI.dcm", tmp_path / "lossy.dcm") == 0
    lossy = pydicom.dcmread(tmp_path / "lossy.dcm")
    assert [c.CodeValue for c in lossy.DerivationCodeSequence] == ["113040", "113085"]


def test_ct_clipped_to_input_range_and_stale_padding_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = pydicom.dcmread(data_root() / "693_UNCR.dcm", stop_before_pixels=True)
    assert int(source.PixelPaddingValue) == -2000  # stored; -3024 HU, read as -1024 HU
    assert _upscale(data_root() / "693_UNCR.dcm", tmp_path / "x2.dcm") == 0
    assert "CT clipped to the input's range [-1024," in capsys.readouterr().out
    ds = pydicom.dcmread(tmp_path / "x2.dcm")
    assert "PixelPaddingValue" not in ds
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    original = read(data_root() / "693_UNCR.dcm").pixels
    assert hu.min() == original.min() == -1024.0
    assert hu.max() <= original.max()
    assert "CT clipped to the input's range" in ds.DerivationDescription


def _physical(region: Dataset, axis: str, pixel: float) -> float:
    """Physical coordinate of pixel centre ``pixel`` (absolute index) in a US region."""
    low = int(region[f"RegionLocationMin{axis}0"].value)
    reference = int(region[f"ReferencePixel{axis}0"].value)
    value = float(region[f"ReferencePixelPhysicalValue{axis}"].value)
    return value + (pixel - low - reference) * float(region[f"PhysicalDelta{axis}"].value)


def test_ultrasound_regions_map_edges_and_calibration(tmp_path: Path) -> None:
    source = pydicom.dcmread(data_root() / "OBXXXX1A.dcm", stop_before_pixels=True)
    assert _upscale(data_root() / "OBXXXX1A.dcm", tmp_path / "x2.dcm") == 0
    ds = pydicom.dcmread(tmp_path / "x2.dcm", stop_before_pixels=True)
    assert "PixelSpacing" not in ds  # the US Image IOD keeps calibration in the regions
    old, new = source.SequenceOfUltrasoundRegions[0], ds.SequenceOfUltrasoundRegions[0]
    assert (old.RegionLocationMinY0, old.RegionLocationMaxY1) == (60, 518)
    assert (new.RegionLocationMinY0, new.RegionLocationMaxY1) == (120, 1037)
    assert (new.RegionLocationMinX0, new.RegionLocationMaxX1) == (240, 1599)  # clipped to 1600
    for axis in ("X", "Y"):
        for pixel in (130.0, 333.0, 517.0):  # an old centre lands at new index 2 p + 0.5
            assert _physical(new, axis, 2 * pixel + 0.5) == pytest.approx(
                _physical(old, axis, pixel), abs=1e-9
            )


def test_through_plane_series_sets_thickness_and_spacing(tmp_path: Path) -> None:
    series = _build_series(tmp_path / "in", 4, 3.0)
    assert _upscale(series, tmp_path / "out", "--plane", "through", "--scale", "3") == 0
    files = sorted((tmp_path / "out" / "in_sr-x3-z").iterdir())
    assert len(files) == 12
    sources = {pydicom.dcmread(f).SOPInstanceUID: i for i, f in enumerate(sorted(series.iterdir()))}
    for k, file in enumerate(files):
        ds = pydicom.dcmread(file)
        assert float(ds.SliceThickness) == float(ds.SpacingBetweenSlices) == pytest.approx(1.0)
        # the input slices either side of this one (new slice k sits at old (k + 0.5) / 3 - 0.5)
        refs = sorted(sources[r.ReferencedSOPInstanceUID] for r in ds.SourceImageSequence)
        position = (k + 0.5) / 3 - 0.5
        expected = sorted({min(max(int(np.floor(position)), 0), 3), min(int(np.ceil(position)), 3)})
        assert refs == expected
    in_plane = pydicom.dcmread(next(iter(sorted(series.iterdir()))))
    assert _upscale(series, tmp_path / "plane") == 0
    first = pydicom.dcmread(sorted((tmp_path / "plane" / "in_sr-x2").iterdir())[0])
    assert float(first.SliceThickness) == float(in_plane.SliceThickness) == 3.0
    assert first.SourceImageSequence[0].ReferencedSOPInstanceUID == in_plane.SOPInstanceUID


def test_enhanced_through_plane_frames_restacked(tmp_path: Path) -> None:
    """x2 along the frames: 4 frames 5 mm apart over the same 20 mm, numbered along the stack
    the way the input was (In-Stack Position 2, 1 for z = -159, -149), 5 mm thick."""
    out = tmp_path / "z.dcm"
    assert _upscale(data_root() / "eCT_Supplemental.dcm", out, "--plane", "through") == 0
    ds = pydicom.dcmread(out)
    contents = [f.FrameContentSequence[0] for f in _frames(ds)]
    z = [float(f.PlanePositionSequence[0].ImagePositionPatient[2]) for f in _frames(ds)]
    assert z == [-161.5, -156.5, -151.5, -146.5]
    assert [int(c.InStackPositionNumber) for c in contents] == [4, 3, 2, 1]
    assert [list(c.DimensionIndexValues) for c in contents] == [[1, 4], [1, 3], [1, 2], [1, 1]]
    measures = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert float(measures.SliceThickness) == 5.0
    if DCIODVFY is not None:
        _assert_no_new_errors([data_root() / "eCT_Supplemental.dcm"], [out])
