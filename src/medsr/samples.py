"""The bundled sample images: real DICOM files shipped by the ``pydicom-data`` package.

Each *image* has one fixed role, ``train`` or ``test``. pydicom-data stores
several images more than once in different encodings (693_UNCI, 693_UNCR and
693_J2KR are one CT slice), so roles are assigned per image and every copy of
an image shares it: no image is in both roles. Secondary-capture test patterns,
segmentations and nuclear-medicine captures are not medical images of our four
modalities and are left out.

The file loaded is the uncompressed copy of the original (``*_UNCR``), so the
samples work without the optional codecs; the other encodings are listed as
``copies``: ``*_J2KR`` decodes to identical pixels, ``*_J2KI``/``*_UNCI`` hold a
lossy JPEG 2000 version of the same image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from medsr.errors import ConfigError
from medsr.image import MedicalImage, Modality

ROLES = ("train", "test")


@dataclass(frozen=True)
class Sample:
    """One bundled image: a name, its file, modality and role."""

    name: str
    file: str
    modality: Modality
    role: str
    description: str
    copies: tuple[str, ...] = field(default_factory=tuple)
    frames: int = 1

    @property
    def path(self) -> Path:
        return data_root() / self.file

    @property
    def copy_paths(self) -> tuple[Path, ...]:
        return tuple(data_root() / c for c in self.copies)

    def load(self, frame: int | None = None) -> MedicalImage:
        """Read as a MedicalImage: (H, W), or (D, H, W) for a multi-frame file."""
        from medsr.io import read

        return read(self.path, frame=frame)


_CATALOGUE: tuple[Sample, ...] = (
    # --- CT ---------------------------------------------------------------------------
    Sample(
        "ct-head-693",
        "693_UNCR.dcm",
        Modality.CT,
        "test",
        "head CT slice, 512x512 (CQ500)",
        ("693_UNCI.dcm", "693_J2KR.dcm"),
    ),
    Sample(
        "ct-pancreas", "explicit_VR-UN.dcm", Modality.CT, "train", "abdominal CT slice, 512x512"
    ),
    Sample(
        "ct-enhanced",
        "eCT_Supplemental.dcm",
        Modality.CT,
        "train",
        "enhanced CT, 2 frames of 512x512",
        frames=2,
    ),
    Sample(
        "ct-bad-sequence",
        "bad_sequence.dcm",
        Modality.CT,
        "train",
        "CT slice, 512x512 (JPEG lossless)",
    ),
    # --- MR ---------------------------------------------------------------------------
    Sample(
        "mr-siemens-484",
        "MR-SIEMENS-DICOM-WithOverlays.dcm",
        Modality.MR,
        "test",
        "MR slice, 484x484",
    ),
    Sample(
        "mr2-1024",
        "MR2_UNCR.dcm",
        Modality.MR,
        "train",
        "MR slice, 1024x1024",
        ("MR2_UNCI.dcm", "MR2_J2KR.dcm", "MR2_J2KI.dcm"),
    ),
    Sample(
        "mr-enhanced-small",
        "emri_small.dcm",
        Modality.MR,
        "train",
        "enhanced MR, 10 frames of 64x64",
        (
            "emri_small_RLE.dcm",
            "emri_small_big_endian.dcm",
            "emri_small_jpeg_2k_lossless.dcm",
            "emri_small_jpeg_ls_lossless.dcm",
        ),
        frames=10,
    ),
    # --- X-ray (computed radiography) -------------------------------------------------
    Sample(
        "cr-rg3",
        "RG3_UNCR.dcm",
        Modality.XRAY,
        "test",
        "computed radiograph, 1760x1760, 10-bit MONOCHROME1",
        ("RG3_UNCI.dcm", "RG3_J2KR.dcm", "RG3_J2KI.dcm"),
    ),
    Sample(
        "cr-rg1",
        "RG1_UNCR.dcm",
        Modality.XRAY,
        "train",
        "computed radiograph, 1955x1841, 15-bit MONOCHROME1",
        ("RG1_UNCI.dcm", "RG1_J2KR.dcm", "RG1_J2KI.dcm"),
    ),
    # --- Ultrasound -------------------------------------------------------------------
    Sample(
        "us-us1",
        "US1_UNCR.dcm",
        Modality.US,
        "test",
        "ultrasound, 480x640 RGB",
        ("US1_UNCI.dcm", "US1_J2KR.dcm", "US1_J2KI.dcm"),
    ),
    Sample(
        "us-ob-palette",
        "OBXXXX1A.dcm",
        Modality.US,
        "train",
        "obstetric ultrasound, 600x800 palette",
        (
            "OBXXXX1A_expb.dcm",
            "OBXXXX1A_rle.dcm",
            "OBXXXX1A_2frame.dcm",
            "OBXXXX1A_expb_2frame.dcm",
            "OBXXXX1A_rle_2frame.dcm",
        ),
    ),
    Sample(
        "us-aloka",
        "gdcm-US-ALOKA-16.dcm",
        Modality.US,
        "train",
        "ultrasound, 480x640 16-bit palette",
        ("gdcm-US-ALOKA-16_big.dcm",),
    ),
    Sample(
        "us-jpeg-lossless",
        "JPGLosslessP14SV1_1s_1f_8b.dcm",
        Modality.US,
        "train",
        "ultrasound, 768x1024 8-bit (JPEG lossless)",
    ),
    Sample(
        "us-colour-small",
        "color-px.dcm",
        Modality.US,
        "train",
        "ultrasound, 120x256 RGB",
        ("color-pl.dcm",),
    ),
    Sample(
        "us-cine",
        "color3d_jpeg_baseline.dcm",
        Modality.US,
        "train",
        "ultrasound cine, 120 frames of 480x640 (JPEG baseline)",
        frames=120,
    ),
)


def data_root() -> Path:
    """Folder holding pydicom-data's DICOM files."""
    try:
        import data_store  # the import name of the pydicom-data package
    except ImportError:
        raise ConfigError(
            "the bundled samples need the pydicom-data package: pip install pydicom-data"
        ) from None
    return Path(data_store.__file__).parent / "data"


def list_samples(role: str | None = None, modality: Modality | str | None = None) -> list[Sample]:
    """Bundled samples, optionally only one role and/or one modality."""
    if role is not None and role not in ROLES:
        raise ConfigError(f"unknown sample role {role!r}; choose train or test")
    mod = Modality.parse(modality) if modality is not None else None
    return [
        s
        for s in _CATALOGUE
        if (role is None or s.role == role) and (mod is None or s.modality is mod)
    ]


def get_sample(name: str) -> Sample:
    for sample in _CATALOGUE:
        if sample.name == name:
            return sample
    raise ConfigError(f"no bundled sample named {name!r}; `medsr samples` lists them")


def role_of_file(file_name: str) -> str | None:
    """The role of a pydicom-data file name, counting every stored copy of an image."""
    for sample in _CATALOGUE:
        if file_name == sample.file or file_name in sample.copies:
            return sample.role
    return None
