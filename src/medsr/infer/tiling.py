"""Tiled super-resolution with smoothly blended seams and memory bounded by the tile size.

The LR image is cut into overlapping tiles; each tile is upscaled on its own
and pasted into an output buffer on the CPU with a separable weight
``w(y, x) = w_y(y) * w_x(x)``. Along one axis, for an output pixel at distance
``d`` (in LR pixels) from a tile edge that lies *inside* the image::

    w(d) = 0                                     d <= margin
    w(d) = sin^2(pi/2 * (d - margin) / blend)    margin < d < margin + blend
    w(d) = 1                                     otherwise

Edges on the image border are not tapered, so the weights never reach 0
there. Two neighbours overlapping by ``2 * margin + blend`` pixels have weights
``cos^2 + sin^2 = 1``; the weights are still divided by their per-axis sum, so
any overlap works. With ``margin > receptive_field`` every pixel that gets a
non-zero weight was computed with its full context, and the tiled output
equals the untiled one (up to float rounding). ``margin`` is
``min(receptive_field + 1, overlap // 3)``.

Tiles are placed in output coordinates: an LR tile starting at ``y0`` covers
output rows from ``y0 * s``, which is an integer only when ``y0`` is a multiple
of ``q`` for ``s = p / q``. Tile starts are therefore multiples of ``q``
(``s = 2.5``: even starts). A scale with no small denominator falls back to
rounding, which misplaces a tile by less than half an output pixel.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
from torch import Tensor

from medsr.errors import ConfigError

ScalePair = tuple[float, float]

#: Largest denominator of a rational scale that tile placement aligns to exactly.
MAX_ALIGN_DENOMINATOR = 64


@dataclass(frozen=True)
class AxisTile:
    """One tile along one axis: LR span ``[lr_start, lr_stop)`` and output span."""

    lr_start: int
    lr_stop: int
    out_start: int
    out_stop: int
    weight: np.ndarray  # (out_stop - out_start,) float64, normalised across tiles


@dataclass(frozen=True)
class AxisPlan:
    tiles: tuple[AxisTile, ...]
    exact_alignment: bool


def alignment_step(scale: float) -> int | None:
    """Smallest LR step ``q`` with ``q * scale`` an integer (``2.5 -> 2``), or None if > 64."""
    frac = Fraction(scale).limit_denominator(MAX_ALIGN_DENOMINATOR)
    if abs(float(frac) - scale) > 1e-9 * max(1.0, scale):
        return None
    return frac.denominator


def _taper(distance: np.ndarray, margin: float, blend: float) -> np.ndarray:
    ramp = np.clip((distance - margin) / max(blend, 1e-9), 0.0, 1.0)
    return np.sin(0.5 * np.pi * ramp) ** 2


def plan_axis(
    length: int,
    out_length: int,
    scale: float,
    tile: int | None,
    overlap: int,
    margin: int,
) -> AxisPlan:
    """Tiles along one axis of ``length`` LR pixels upscaled to ``out_length`` by ``scale``."""
    step = alignment_step(scale)
    exact = step is not None
    q = step or 1
    if tile is None or tile >= length:
        starts = [0]
        tile_len = length
    else:
        starts, tile_len = even_starts(length, tile, overlap, q)
    blend = max(overlap - 2 * margin, 1)
    raw: list[tuple[int, int, int, int, np.ndarray]] = []
    for index, start in enumerate(starts):
        stop = length if index == len(starts) - 1 else min(start + tile_len, length)
        produced = math.ceil((stop - start) * scale - 1e-6)
        if index == len(starts) - 1:  # anchored to the end (the same place when exact)
            out_start, out_stop = max(0, out_length - produced), out_length
        else:
            out_start = round(start * scale)
            out_stop = min(out_start + produced, out_length)
        j = np.arange(out_stop - out_start, dtype=np.float64)
        from_left = (j + 0.5) / scale
        weight = np.ones_like(from_left)
        if start > 0:
            weight *= _taper(from_left, margin, blend)
        if stop < length:
            weight *= _taper((stop - start) - from_left, margin, blend)
        raw.append((start, stop, out_start, out_stop, weight))
    total = np.zeros(out_length)
    for _, _, o0, o1, w in raw:
        total[o0:o1] += w
    if np.any(total <= 0):
        raise ConfigError(
            f"tiles of {tile} with overlap {overlap} leave gaps at scale {scale:g}; "
            "use a larger overlap"
        )
    tiles = tuple(AxisTile(s0, s1, o0, o1, w / total[o0:o1]) for s0, s1, o0, o1, w in raw)
    return AxisPlan(tiles, exact)


def even_starts(length: int, tile: int, overlap: int, q: int = 1) -> tuple[list[int], int]:
    """Starts of ``k`` equal tiles spread evenly over ``length``, and their length.

    ``k = ceil((length - overlap) / (tile - overlap))`` tiles of
    ``ceil((length + (k - 1) overlap) / k)`` pixels (plus ``q - 1`` so that starts
    rounded down to multiples of ``q`` keep the overlap): neighbours share about
    ``overlap`` pixels, so only the overlaps are computed twice, not a whole extra
    tile anchored to the far edge. The last tile ends at ``length`` (it may be up
    to ``q - 1`` pixels longer).
    """
    count = max(1, math.ceil((length - overlap) / max(tile - overlap, 1)))
    if count == 1:
        return [0], length
    tile_len = min(length, math.ceil((length + (count - 1) * overlap) / count) + q - 1)
    span = length - tile_len
    starts = sorted({(round(i * span / (count - 1)) // q) * q for i in range(count)})
    return starts, tile_len


def blend_margin(overlap: int, receptive_field: int | None) -> int:
    """Pixels at each inner tile edge given zero weight: ``min(rf + 1, overlap // 3)``."""
    if receptive_field is None:
        return overlap // 3
    return min(receptive_field + 1, overlap // 3)


@dataclass(frozen=True)
class TilePlan:
    """The product grid of tiles over an (H, W) image."""

    rows: AxisPlan
    cols: AxisPlan

    @property
    def count(self) -> int:
        return len(self.rows.tiles) * len(self.cols.tiles)

    @property
    def exact_alignment(self) -> bool:
        return self.rows.exact_alignment and self.cols.exact_alignment

    def __iter__(self) -> Iterator[tuple[AxisTile, AxisTile]]:
        for ty in self.rows.tiles:
            for tx in self.cols.tiles:
                yield ty, tx


def plan_tiles(
    size: tuple[int, int],
    out_size: tuple[int, int],
    scale: ScalePair,
    tile: int | None,
    overlap: int,
    receptive_field: int | None = None,
) -> TilePlan:
    """Tile an (H, W) LR image whose output is ``out_size`` at per-axis ``scale``."""
    if tile is not None and tile < 8:
        raise ConfigError(f"tile must be at least 8 pixels, got {tile}")
    if overlap < 0 or (tile is not None and overlap >= tile):
        raise ConfigError(f"overlap must be in [0, tile), got overlap {overlap} for tile {tile}")
    margin = blend_margin(overlap, receptive_field)
    rows = plan_axis(size[0], out_size[0], scale[0], tile, overlap, margin)
    cols = plan_axis(size[1], out_size[1], scale[1], tile, overlap, margin)
    return TilePlan(rows, cols)


def tiled_upscale(
    run: Callable[[Tensor], Tensor],
    images: Tensor,
    scale: ScalePair,
    out_size: tuple[int, int],
    tile: int | None,
    overlap: int,
    receptive_field: int | None = None,
    batch_size: int = 1,
    progress: Callable[[int], None] | None = None,
) -> Tensor:
    """Upscale ``images`` (N, C, H, W) tile by tile into a CPU float32 buffer (N, C', H', W').

    ``run`` maps a (b, C, h, w) batch of tiles to (b, C', h', w') with
    ``h' >= ceil(h * sy)`` (extra rows are cut). Tiles of equal size from all N
    images are batched ``batch_size`` at a time; ``progress`` receives the
    number of tiles finished after every batch.
    """
    n, _, h, w = images.shape
    plan = plan_tiles((h, w), out_size, scale, tile, overlap, receptive_field)
    out: Tensor | None = None
    jobs: dict[tuple[int, int], list[tuple[int, AxisTile, AxisTile]]] = {}
    for ty, tx in plan:
        key = (ty.lr_stop - ty.lr_start, tx.lr_stop - tx.lr_start)
        jobs.setdefault(key, []).extend((i, ty, tx) for i in range(n))
    for group in jobs.values():
        for first in range(0, len(group), max(1, batch_size)):
            chunk = group[first : first + max(1, batch_size)]
            batch = torch.stack(
                [
                    images[i, :, ty.lr_start : ty.lr_stop, tx.lr_start : tx.lr_stop]
                    for i, ty, tx in chunk
                ]
            )
            result = run(batch).to("cpu", torch.float32)
            if out is None:
                out = torch.zeros(n, result.shape[1], *out_size, dtype=torch.float32)
            for k, (i, ty, tx) in enumerate(chunk):
                oh, ow = ty.out_stop - ty.out_start, tx.out_stop - tx.out_start
                piece = result[k, :, :oh, :ow]
                if piece.shape[-2:] != (oh, ow):
                    raise ConfigError(
                        f"the model returned {tuple(result.shape[-2:])} pixels for a "
                        f"{tuple(batch.shape[-2:])} tile; {oh}x{ow} expected at scale {scale}"
                    )
                if len(plan.rows.tiles) == 1 and len(plan.cols.tiles) == 1:
                    out[i] = piece
                    continue
                weight = torch.from_numpy(np.outer(ty.weight, tx.weight).astype(np.float32))
                out[i, :, ty.out_start : ty.out_stop, tx.out_start : tx.out_stop] += piece * weight
            if progress is not None:
                progress(len(chunk))
    assert out is not None
    return out


# ----------------------------------------------------------------------------- memory budget
#: Fraction of the free memory a whole-image forward may take by default.
DEFAULT_MEMORY_FRACTION = {"cpu": 0.4, "cuda": 0.6}
#: Ceiling of the default CPU budget: the rest is left to the image buffers and the system.
DEFAULT_CPU_BUDGET = 2 << 30
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_memory(text: str) -> int:
    """``"2G"``, ``"512M"``, ``"1.5GiB"`` or plain bytes -> bytes (binary units)."""
    value = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = value[-1:] if value[-1:] in _UNITS and not value[-1:].isdigit() else ""
    try:
        amount = float(value[: len(value) - len(unit)])
    except ValueError:
        raise ConfigError(f"--max-memory takes a size such as 2G or 512M, got {text!r}") from None
    if not amount > 0:
        raise ConfigError(f"--max-memory must be positive, got {text!r}")
    return int(amount * _UNITS[unit])


def available_memory(device: torch.device) -> int:
    """Free bytes on ``device``: CUDA's free memory, or the system's available RAM."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def default_memory_budget(device: torch.device) -> int:
    """Bytes a forward may use when no ``--max-memory`` is given.

    CUDA: 60% of the free memory. CPU: 40% of the available RAM, at most 2 GiB.
    """
    fraction = DEFAULT_MEMORY_FRACTION.get(device.type, 0.4)
    budget = int(fraction * available_memory(device))
    return budget if device.type == "cuda" else min(budget, DEFAULT_CPU_BUDGET)


def memory_tile(
    lr_size: tuple[int, int],
    bytes_per_pixel: float,
    budget: int,
    overlap: int,
    minimum: int = 64,
) -> int | None:
    """LR tile side for a forward that fits ``budget``, or None when the whole image fits.

    ``bytes_per_pixel`` is the model's peak activation memory per LR pixel
    (:meth:`medsr.infer.runner.ModelRunner.bytes_per_pixel`). The tile is the
    largest multiple of 16 whose forward fits; tiles are then laid evenly
    (:func:`even_starts`), so only ``overlap`` pixels per seam are recomputed.
    """
    h, w = lr_size
    if bytes_per_pixel * h * w <= budget:
        return None
    side = int(math.sqrt(budget / max(bytes_per_pixel, 1e-9)))
    side = max(minimum, (side // 16) * 16, 2 * overlap + 16)
    return side if side < max(h, w) else None
