"""Training pairs from a volume's own in-plane slices, degraded along one in-plane axis
exactly as the scanner degraded z.

An in-plane slice is the HR target; its LR input is the slice profile integrated over
each pixel and sampled every ``dz`` mm along rows or columns. A slice gap samples more
coarsely than the profile blurs, so the pairs carry the acquisition's aliasing too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from medsr.degrade.volume import ThickSlice
from medsr.errors import ConfigError

__all__ = ["FOREGROUND", "MAX_CENTRES", "AxisPairs", "PairSampler", "degrade_along"]

#: Patch centres kept at most (a random subset of the foreground pixels).
MAX_CENTRES = 1 << 20
#: Unit intensity above which a pixel counts as foreground when patches are drawn.
FOREGROUND = 0.05


@dataclass(frozen=True)
class AxisPairs:
    """Pairs degraded along one in-plane axis: the degradation and the network's scale."""

    axis: int  # -2: rows (H) play the slice axis; -1: columns (W) do
    degradation: ThickSlice

    @property
    def scale(self) -> tuple[float, float]:
        return (self.degradation.through_plane, 1.0)

    @property
    def margin(self) -> int:
        """HR rows at each end of a patch left out of the loss: the profile reaches past them."""
        deg = self.degradation
        return math.ceil(max(deg.thickness, deg.through_plane) / 2.0) + 1


def degrade_along(slices: Tensor, pairs: AxisPairs) -> Tensor:
    """LR of HR in-plane slices (N, 1, H, W): the slice profile applied along ``pairs.axis``.

    The result has the slice axis as rows: (N, 1, ceil(H/s), W) for axis -2, and the
    transposed (N, 1, ceil(W/s), H) for axis -1, the layout the network sees.
    """
    x = slices if pairs.axis == -2 else slices.transpose(-1, -2)
    return pairs.degradation.apply(x, {})


class PairSampler:
    """Random (LR, HR) patch pairs from a volume's in-plane slices, degraded along z's profile.

    ``slices`` (N, H, W) in [0, 1]. Patches are centred on foreground pixels (unit
    intensity above :data:`FOREGROUND`), their origin random so the LR sampling
    phase varies, flipped at random. Each batch uses one axis (one scale).
    """

    def __init__(
        self,
        slices: Tensor,
        axes: list[AxisPairs],
        patch: int,
        generator: torch.Generator,
    ) -> None:
        if slices.ndim != 3:
            raise ConfigError(f"PairSampler takes (N, H, W) slices, got {tuple(slices.shape)}")
        self.slices = slices.float().contiguous()
        self.axes = axes
        self.generator = generator
        n, h, w = self.slices.shape
        self.patch_hw = [self._patch_size(a, patch, h, w) for a in axes]
        flat = torch.nonzero(self.slices.reshape(-1) > FOREGROUND).flatten()
        if flat.numel() > MAX_CENTRES:  # a random subset bounds the memory on big volumes
            keep = torch.randperm(flat.numel(), generator=generator)[:MAX_CENTRES]
            flat = flat[keep]
        self.foreground = flat if flat.numel() >= 16 else torch.arange(n * h * w)

    @staticmethod
    def _patch_size(pairs: AxisPairs, patch: int, h: int, w: int) -> tuple[int, int]:
        """(rows along the slice axis, columns) of the HR patch, within the slice."""
        along, across = (h, w) if pairs.axis == -2 else (w, h)
        s = pairs.degradation.through_plane
        rows = max(patch, math.ceil(4 * s) + 2 * pairs.margin)
        return min(rows, along), min(patch, across)

    def _randint(self, high: int) -> int:
        return int(torch.randint(0, max(high, 1), (1,), generator=self.generator))

    def sample(self, batch: int) -> tuple[Tensor, Tensor, AxisPairs]:
        """(lr, hr, axis): lr (B, 1, rows/s, cols), hr (B, 1, rows, cols), slice axis as rows."""
        index = self._randint(len(self.axes))
        pairs = self.axes[index]
        rows, cols = self.patch_hw[index]
        _, h, w = self.slices.shape
        picks = self.foreground[
            torch.randint(0, len(self.foreground), (batch,), generator=self.generator)
        ]
        patches = []
        for flat in picks.tolist():
            n, rem = divmod(flat, h * w)
            y, x = divmod(rem, w)
            plane = self.slices[n] if pairs.axis == -2 else self.slices[n].T
            cy, cx = (y, x) if pairs.axis == -2 else (x, y)
            top = min(max(cy - rows // 2 + self._randint(3) - 1, 0), plane.shape[0] - rows)
            left = min(max(cx - cols // 2, 0), plane.shape[1] - cols)
            patch = plane[top : top + rows, left : left + cols]
            flips = [d for d in (0, 1) if self._randint(2)]
            patches.append(patch.flip(flips) if flips else patch)
        hr = torch.stack(patches)[:, None]
        return pairs.degradation.apply(hr, {}), hr, pairs
