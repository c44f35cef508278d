"""The processing cap that keeps the app responsive on a CPU: a centre crop in plane and
through the slices, with the geometry moved to match and a note per cut for the page."""

from __future__ import annotations

import copy
import math

import numpy as np

from medsr.app.modes import Mode, ScalePair
from medsr.image import MedicalImage

__all__ = [
    "MAX_OUTPUT_SIDE",
    "MAX_OUTPUT_VOXELS",
    "MAX_SIDE_BASELINE",
    "MAX_SIDE_NETWORK",
    "MAX_SLICES",
    "crop",
    "limit_size",
    "processing_side",
    "processing_slices",
]

#: In-plane side the app processes: a centre crop keeps the app responsive on a CPU.
MAX_SIDE_BASELINE = 512
MAX_SIDE_NETWORK = 256
#: Largest super-resolved side per slice; the input crop shrinks for large scales.
MAX_OUTPUT_SIDE = 2048
#: Slices of a volume the app processes (the centre ones), and its output voxel budget.
MAX_SLICES = 16
MAX_OUTPUT_VOXELS = 1 << 24


def crop(
    image: MedicalImage,
    rows: tuple[int, int],
    cols: tuple[int, int],
    slices: tuple[int, int] | None = None,
) -> MedicalImage:
    """A sub-image [r0, r1) x [c0, c1) (and slices [z0, z1)) with its origin moved to match.

    The new first voxel sits at ``affine @ (c0, r0, z0, 1)``; the spacing is unchanged.
    """
    (r0, r1), (c0, c1) = rows, cols
    z0, z1 = slices if slices is not None else (0, image.shape[0] if image.ndim == 3 else 1)
    pixels = image.pixels[..., r0:r1, c0:c1]
    if image.ndim == 3:
        pixels = pixels[z0:z1]
    affine = image.affine.copy()
    affine[:3, 3] = image.affine[:3, :3] @ np.array([c0, r0, z0], dtype=float) + image.affine[:3, 3]
    source = copy.copy(image.source)
    if image.ndim == 3 and len(image.source.datasets) == image.shape[0]:
        source.datasets = list(image.source.datasets[z0:z1])
    return MedicalImage(
        pixels.copy(),
        affine=affine,
        modality=image.modality,
        source=source,
        history=[*image.history, f"cropped rows {r0}:{r1}, columns {c0}:{c1}"],
        spacing_known=image.spacing_known,
    )


def _centre_span(length: int, keep: int) -> tuple[int, int]:
    start = max(0, (length - keep) // 2)
    return start, start + min(length, keep)


def processing_side(scale: ScalePair, mode: Mode, is_baseline: bool) -> int:
    """Largest in-plane input side the app processes for this model, scale and mode."""
    side = MAX_SIDE_BASELINE if is_baseline else MAX_SIDE_NETWORK
    if mode is Mode.ENHANCE:
        side = min(side, int(MAX_OUTPUT_SIDE / max(scale)))
    return max(side, 16)


def processing_slices(plane_shape: tuple[int, int], scale: ScalePair, mode: Mode) -> int:
    """Slices the app processes: at most MAX_SLICES, and at most MAX_OUTPUT_VOXELS of output."""
    h, w = plane_shape
    if mode is Mode.ENHANCE:
        h, w = math.ceil(h * scale[0]), math.ceil(w * scale[1])
    return max(1, min(MAX_SLICES, MAX_OUTPUT_VOXELS // max(1, h * w)))


def limit_size(
    image: MedicalImage, max_side: int, max_slices: int = MAX_SLICES
) -> tuple[MedicalImage, list[str]]:
    """Centre-crop to at most ``max_side`` pixels in plane and ``max_slices`` slices.

    Returns the image (unchanged when it fits) and one note per cut made, for the UI.
    """
    notes = []
    h, w = image.shape[-2:]
    rows, cols = _centre_span(h, max_side), _centre_span(w, max_side)
    slices = None
    if image.ndim == 3 and image.shape[0] > max_slices:
        slices = _centre_span(image.shape[0], max_slices)
        notes.append(
            f"The volume has {image.shape[0]} slices; the app processes the centre "
            f"{max_slices} (slices {slices[0]}–{slices[1] - 1})."
        )
    if h > max_side or w > max_side:
        notes.append(
            f"The image is {h}×{w}; the app processes its centre "
            f"{rows[1] - rows[0]}×{cols[1] - cols[0]} to stay responsive "
            "(the `medsr upscale` command processes whole images, tile by tile)."
        )
    if not notes:
        return image, notes
    return crop(image, rows, cols, slices), notes
