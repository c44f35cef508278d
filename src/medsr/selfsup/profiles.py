"""How a volume's slices were acquired along z: spacing, thickness and slice profile, in mm.

The thickness is the user's, else DICOM SliceThickness, else the slice spacing
(contiguous slices); a thickness below the spacing leaves a gap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from medsr.degrade.volume import ThickSlice
from medsr.errors import ConfigError
from medsr.image import MedicalImage

__all__ = ["PROFILES", "SliceAcquisition", "header_thickness", "slice_acquisition"]

#: Slice profiles: a box of the slice thickness, or a Gaussian of that FWHM.
PROFILES = ("box", "gaussian")


@dataclass(frozen=True)
class SliceAcquisition:
    """How a volume's slices were acquired along z, in mm.

    ``spacing_mm`` between slice centres; ``thickness_mm`` the width of the box
    profile or the FWHM of the Gaussian one. ``gap_mm = spacing - thickness``
    when positive.
    """

    spacing_mm: float
    thickness_mm: float
    profile: str = "box"

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ConfigError(f"unknown slice profile {self.profile!r}; choose box or gaussian")
        for name, value in (("slice spacing", self.spacing_mm), ("thickness", self.thickness_mm)):
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a positive number of mm, got {value}")

    @property
    def gap_mm(self) -> float:
        return max(self.spacing_mm - self.thickness_mm, 0.0)

    def degradation(self, pixel_mm: float) -> ThickSlice:
        """The acquisition in units of an in-plane pixel of ``pixel_mm``, unclipped."""
        return ThickSlice(
            scale=self.spacing_mm / pixel_mm,
            thickness=self.thickness_mm / pixel_mm,
            profile=self.profile,
            clip=False,
        )

    def describe(self) -> str:
        gap = f", gap {self.gap_mm:.3g} mm" if self.gap_mm > 0 else ""
        what = "box" if self.profile == "box" else "Gaussian FWHM"
        return f"slices {self.spacing_mm:.4g} mm apart, {what} {self.thickness_mm:.4g} mm{gap}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "spacing_mm": self.spacing_mm,
            "thickness_mm": self.thickness_mm,
            "profile": self.profile,
        }


def header_thickness(image: MedicalImage) -> float | None:
    """DICOM SliceThickness of the first slice (or the enhanced shared measures), if stated."""
    for ds in image.source.datasets[:1]:
        candidates = [ds]
        shared = ds.get("SharedFunctionalGroupsSequence")
        if shared and shared[0].get("PixelMeasuresSequence"):
            candidates.append(shared[0].PixelMeasuresSequence[0])
        for item in candidates:
            value = item.get("SliceThickness")
            try:
                thickness = float(value) if value not in (None, "") else math.nan
            except (TypeError, ValueError):
                continue
            if math.isfinite(thickness) and thickness > 0:
                return thickness
    return None


def slice_acquisition(
    image: MedicalImage, thickness_mm: float | None = None, profile: str = "box"
) -> SliceAcquisition:
    """The acquisition of ``image``: the given thickness, else DICOM SliceThickness, else the
    slice spacing (contiguous slices)."""
    if image.ndim != 3 or image.shape[0] < 2:
        raise ConfigError(
            f"{image.source.path or 'the image'}: self-supervised through-plane SR needs a "
            f"volume of at least 2 slices, got shape {image.shape}"
        )
    if not image.spacing_known:
        raise ConfigError(
            f"{image.source.path or 'the image'} has no known voxel spacing; self-supervised "
            "SR needs the slice and pixel spacing in mm"
        )
    dz = image.spacing_mm[0]
    if thickness_mm is None:
        thickness_mm = header_thickness(image) or dz
    return SliceAcquisition(float(dz), float(thickness_mm), profile)
