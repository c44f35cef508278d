"""MedicalImage: pixels in physical units with their geometry and modality.

Pixels are float32 in the modality's physical units: CT in Hounsfield units
(RescaleSlope/Intercept applied), MONOCHROME1 inverted so that bright means
dense everywhere, otherwise the stored values. The array is (H, W) or
(D, H, W); ``spacing_mm`` follows the array axes, so a DICOM PixelSpacing
[row, column] is ``spacing_mm[-2:]``.

Geometry is a 4x4 ``affine`` mapping a voxel index (column, row, slice, 1)
to patient coordinates in mm, in the DICOM/ITK LPS convention. NIfTI's RAS
affine is converted on read and back on write.
"""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medsr.errors import ConfigError


class Modality(str, enum.Enum):
    """Imaging modality; decides the default intensity normalisation."""

    CT = "CT"
    MR = "MR"
    XRAY = "XRAY"  # CR, DX, MG, RF
    US = "US"
    OTHER = "OT"

    @classmethod
    def from_dicom(cls, code: str | None) -> Modality:
        code = (code or "").upper()
        if code == "CT":
            return cls.CT
        if code == "MR":
            return cls.MR
        if code in ("CR", "DX", "MG", "RF", "XA", "PX", "IO"):
            return cls.XRAY
        if code in ("US", "IVUS"):
            return cls.US
        return cls.OTHER

    @classmethod
    def parse(cls, value: str | Modality) -> Modality:
        if isinstance(value, Modality):
            return value
        text = value.strip().upper()
        aliases = {"CR": "XRAY", "DX": "XRAY", "X-RAY": "XRAY", "XR": "XRAY", "OTHER": "OT"}
        text = aliases.get(text, text)
        try:
            return cls(text)
        except ValueError:
            raise ConfigError(
                f"unknown modality {value!r}; choose one of CT, MR, XRAY, US, OT"
            ) from None


#: CT display/normalisation windows in HU as (low, high).
CT_WINDOWS: dict[str, tuple[float, float]] = {
    "full": (-1024.0, 3071.0),
    "lung": (-1350.0, 150.0),  # level -600, width 1500
    "mediastinum": (-125.0, 225.0),  # level 50, width 350
    "soft-tissue": (-160.0, 240.0),  # level 40, width 400
    "brain": (0.0, 80.0),  # level 40, width 80
    "bone": (-450.0, 1050.0),  # level 300, width 1500
    "deeplesion": (-1024.0, 200.0),  # the window of the SRGAN-CT paper
}


@dataclass(frozen=True)
class Normalization:
    """A linear map between physical units and the [0, 1] range the networks see.

    ``unit = (value - low) / (high - low)``; the inverse is exact for every value
    (clipping, when asked for, is the only lossy step and is optional).
    """

    low: float
    high: float
    method: str

    def __post_init__(self) -> None:
        if not np.isfinite(self.low) or not np.isfinite(self.high) or self.high <= self.low:
            raise ConfigError(
                f"normalisation range must satisfy low < high, got [{self.low}, {self.high}]"
            )

    @property
    def data_range(self) -> float:
        """Width of the range in physical units (the PSNR/SSIM data_range)."""
        return self.high - self.low

    def to_unit(self, values: Any, clip: bool = False) -> Any:
        """Physical units -> [0, 1]. Works on NumPy arrays and torch tensors."""
        out = (values - self.low) / (self.high - self.low)
        if clip:
            out = out.clip(0.0, 1.0)
        return out

    def from_unit(self, unit: Any) -> Any:
        """[0, 1] -> physical units; the exact inverse of :meth:`to_unit`."""
        return unit * (self.high - self.low) + self.low

    def as_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "method": self.method}


@dataclass
class SourceInfo:
    """Where an image came from, kept so a writer can produce a faithful derived file."""

    format: str = "array"  # dicom, dicom-series, nifti, analyze, png, tiff, jpeg, npy, array
    path: str | None = None
    bits_stored: int | None = None
    photometric: str | None = None  # DICOM PhotometricInterpretation as read
    dtype: str | None = None  # stored dtype (uint16, int16, ...)
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    pixel_representation: int = 0  # DICOM: 0 unsigned, 1 signed
    #: pydicom Datasets (one per slice for a series, one for a file); not deep-copied.
    datasets: list[Any] = field(default_factory=list)
    #: nibabel header for NIfTI/Analyze sources.
    header: Any = None
    patient_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


#: Where a derived image's pixel centres sit relative to its source's (``with_pixels``):
#: ``area`` keeps the field-of-view edges, ``dft`` and ``sample`` keep the first centre,
#: ``same`` keeps the grid.
GRIDS = ("area", "dft", "sample", "same")


def _default_affine(spacing: tuple[float, ...]) -> np.ndarray:
    """Axis-aligned affine for (D,H,W)/(H,W) spacing: column -> x, row -> y, slice -> z."""
    affine = np.eye(4)
    sp = list(spacing)
    if len(sp) == 2:
        sp = [1.0, *sp]
    dz, dy, dx = sp
    affine[0, 0], affine[1, 1], affine[2, 2] = dx, dy, dz
    return affine


class MedicalImage:
    """Pixels in physical units (float32) with geometry, modality and source metadata."""

    def __init__(
        self,
        pixels: np.ndarray,
        spacing_mm: tuple[float, ...] | None = None,
        *,
        affine: np.ndarray | None = None,
        modality: Modality | str = Modality.OTHER,
        source: SourceInfo | None = None,
        history: list[str] | None = None,
        spacing_known: bool = True,
    ) -> None:
        pixels = np.asarray(pixels)
        if pixels.ndim not in (2, 3):
            raise ConfigError(f"a MedicalImage is (H, W) or (D, H, W); got shape {pixels.shape}")
        self.pixels: np.ndarray = np.ascontiguousarray(pixels, dtype=np.float32)
        if affine is None:
            if spacing_mm is None:
                spacing_mm = (1.0,) * pixels.ndim
                spacing_known = False
            if len(spacing_mm) != pixels.ndim:
                raise ConfigError(
                    f"spacing {spacing_mm} does not match image dimensions {pixels.shape}"
                )
            affine = _default_affine(tuple(float(s) for s in spacing_mm))
        self.affine: np.ndarray = np.asarray(affine, dtype=np.float64).copy()
        self.modality: Modality = Modality.parse(modality)
        self.source: SourceInfo = source if source is not None else SourceInfo()
        self.history: list[str] = list(history or [])
        self.spacing_known = spacing_known

    # -- geometry -------------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return int(self.pixels.ndim)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.pixels.shape)

    @property
    def spacing_mm(self) -> tuple[float, ...]:
        """Spacing in mm along each array axis: (dz, dy, dx) or (dy, dx)."""
        norms = np.linalg.norm(self.affine[:3, :3], axis=0)  # column, row, slice
        dx, dy, dz = (float(v) for v in norms)
        return (dz, dy, dx) if self.ndim == 3 else (dy, dx)

    @property
    def origin_mm(self) -> tuple[float, float, float]:
        """Patient position (LPS, mm) of the centre of the first voxel."""
        return tuple(float(v) for v in self.affine[:3, 3])  # type: ignore[return-value]

    @property
    def direction(self) -> np.ndarray:
        """3x3 matrix of unit vectors along column, row and slice index directions."""
        m = self.affine[:3, :3]
        return m / np.linalg.norm(m, axis=0, keepdims=True)

    # -- intensities ----------------------------------------------------------------------
    def normalization(
        self,
        window: str | tuple[float, float] | None = None,
        percentiles: tuple[float, float] = (0.5, 99.5),
    ) -> Normalization:
        """The default [0, 1] mapping for this image's modality.

        CT: a HU window (default ``full`` = [-1024, 3071]; presets in ``CT_WINDOWS``).
        MR: robust percentiles of this image (stored in the result, so the inverse is
        exact). X-ray and ultrasound: [0, 2**bits_stored - 1]. Other: bits stored when
        known, else the image's min/max.
        """
        if window is not None:
            if isinstance(window, str):
                if window not in CT_WINDOWS:
                    raise ConfigError(
                        f"unknown window {window!r}; choose one of {', '.join(CT_WINDOWS)}"
                    )
                low, high = CT_WINDOWS[window]
                return Normalization(low, high, f"window:{window}")
            return Normalization(float(window[0]), float(window[1]), "window")
        if self.modality is Modality.CT:
            low, high = CT_WINDOWS["full"]
            return Normalization(low, high, "window:full")
        if self.modality is Modality.MR:
            lo, hi = np.percentile(self.pixels, percentiles)
            if hi <= lo:
                lo, hi = float(self.pixels.min()), float(self.pixels.max())
            if hi <= lo:
                hi = lo + 1.0
            return Normalization(
                float(lo), float(hi), f"percentile:{percentiles[0]}-{percentiles[1]}"
            )
        bits = self.source.bits_stored
        if bits:
            signed = self.source.pixel_representation == 1
            if signed:
                return Normalization(-(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1, f"bits:{bits}")
            return Normalization(0.0, 2.0**bits - 1, f"bits:{bits}")
        lo, hi = float(self.pixels.min()), float(self.pixels.max())
        if hi <= lo:
            hi = lo + 1.0
        return Normalization(lo, hi, "minmax")

    # -- derived images -------------------------------------------------------------------
    def with_pixels(self, pixels: np.ndarray, description: str, grid: str = "area") -> MedicalImage:
        """A derived image with new pixels; geometry rescaled to the new shape on ``grid``.

        ``s`` is the per-axis ratio new_size / old_size. ``area`` (an area shrink or an
        interpolation that keeps the field-of-view edges): new voxel ``i`` sits at old
        continuous index ``(i + 0.5) / s - 0.5``. ``dft`` (k-space truncation or zero-fill)
        and ``sample`` (every r-th pixel kept): new voxel ``i`` sits at old index ``i / s``,
        so the first centre stays. Either way the spacing is divided by ``s``; ``same`` is a
        grid that does not change (sizes must match). See :mod:`medsr.degrade.acquisition`.
        """
        pixels = np.asarray(pixels)
        if pixels.ndim != self.ndim:
            raise ConfigError(
                f"derived pixels have {pixels.ndim} dimensions, the source has {self.ndim}"
            )
        ratios = [n / o for n, o in zip(pixels.shape, self.shape)]
        return self.rescaled(pixels, tuple(ratios), description, grid)

    def rescaled(
        self, pixels: np.ndarray, scale: tuple[float, ...], description: str, grid: str = "area"
    ) -> MedicalImage:
        """A derived image whose grid is this one's resampled by ``scale`` per array axis,
        placed as ``grid`` says (see :meth:`with_pixels`)."""
        if len(scale) != self.ndim:
            raise ConfigError(f"scale {scale} does not match image dimensions {self.shape}")
        if grid not in GRIDS:
            raise ConfigError(f"unknown grid {grid!r}; choose one of {', '.join(GRIDS)}")
        if grid == "same" and any(float(s) != 1.0 for s in scale):
            raise ConfigError(f"grid 'same' keeps the size, but the scale is {scale}")
        keeps_first_centre = grid in ("dft", "sample")
        # array axes (z, y, x) -> affine columns (x, y, z)
        per_col = [1.0, 1.0, 1.0]
        for axis, s in enumerate(scale):
            col = self.ndim - 1 - axis
            per_col[col] = float(s)
        transform = np.eye(4)
        for col, s in enumerate(per_col):
            transform[col, col] = 1.0 / s
            transform[col, 3] = 0.0 if keeps_first_centre else 0.5 / s - 0.5
        affine = self.affine @ transform
        return MedicalImage(
            pixels,
            affine=affine,
            modality=self.modality,
            source=self.source,
            history=[*self.history, description],
            spacing_known=self.spacing_known,
        )

    def slice(self, index: int) -> MedicalImage:
        """Slice ``index`` of a volume as a 2-D image with its own origin."""
        if self.ndim != 3:
            raise ConfigError("slice() needs a (D, H, W) volume")
        affine = self.affine.copy()
        affine[:3, 3] = (
            self.affine[:3, :3] @ np.array([0.0, 0.0, float(index)]) + self.affine[:3, 3]
        )
        source = copy.copy(self.source)
        if len(self.source.datasets) == self.shape[0]:
            source.datasets = [self.source.datasets[index]]
        return MedicalImage(
            self.pixels[index],
            affine=affine,
            modality=self.modality,
            source=source,
            history=list(self.history),
            spacing_known=self.spacing_known,
        )

    def copy(self) -> MedicalImage:
        return MedicalImage(
            self.pixels.copy(),
            affine=self.affine.copy(),
            modality=self.modality,
            source=self.source,
            history=list(self.history),
            spacing_known=self.spacing_known,
        )

    def summary(self) -> dict[str, Any]:
        """The figures ``medsr info`` prints."""
        return {
            "path": self.source.path,
            "format": self.source.format,
            "modality": self.modality.value,
            "shape": list(self.shape),
            "spacing_mm": [round(s, 6) for s in self.spacing_mm],
            "spacing_known": self.spacing_known,
            "min": float(self.pixels.min()),
            "max": float(self.pixels.max()),
            "mean": float(self.pixels.mean()),
            "units": "HU" if self.modality is Modality.CT else "stored value",
            "bits_stored": self.source.bits_stored,
            "photometric": self.source.photometric,
        }

    def __repr__(self) -> str:
        sp = ", ".join(f"{s:.4g}" for s in self.spacing_mm)
        return (
            f"MedicalImage({self.modality.value}, shape={self.shape}, spacing_mm=({sp}), "
            f"range=[{self.pixels.min():.6g}, {self.pixels.max():.6g}])"
        )
