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
        stride = max(q, ((tile - overlap) // q) * q)
        tile_len = max(tile, stride + overlap)
        starts = list(range(0, max(length - tile_len, 0) + 1, stride))
        last = ((length - tile_len) // q) * q
        if last > starts[-1]:
            starts.append(last)  # the last tile reaches the end; it may be up to q - 1 longer
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
