"""CT sparse-view degradation: Radon transform, keep every r-th view, filtered back-projection.

Parallel-beam geometry with scikit-image's conventions (``radon``/``iradon``
with ``circle=True``): detector bin ``u`` of view ``theta`` sits at
``t = u - N//2`` and pixel (row, col) projects to
``t = (col - c) cos(theta) - (row - c) sin(theta)``, ``c = N // 2``; pixels outside
the inscribed circle are zero. FBP filters each view with the ramp filter
(scikit-image's band-limited spatial definition, zero-padded to
``max(64, 2**ceil(log2(2 * ceil(sqrt(2) N))))``), back-projects with linear
interpolation and scales by ``pi / (2 A)``.

Both transforms are matrix-free: the forward projection samples the image
rotated by each view bilinearly (``grid_sample``, as scikit-image's ``warp``) and
sums the columns; back-projection samples every filtered view at each pixel's
``t``. The sampling grids are affine in (row, col), so a
:class:`ParallelBeamProjector` keeps only O(views x N) tables per geometry and
size and is built once in microseconds: the first call on a 512 x 512 slice is
as fast as the hundredth, on CPU or CUDA, with memory bounded by the chunk of
views in flight (``CHUNK_ELEMENTS``). Both are differentiable: when autograd records
the input, each chunk gets its own grid instead of the reused buffer (the backward
needs them all), so a restorer can be trained through the sinogram-domain consistency
step of :mod:`medsr.infer.sinogram`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from medsr.degrade.base import Degradation, draw_choice
from medsr.errors import ConfigError

__all__ = [
    "CTSparseView",
    "ParallelBeamProjector",
    "fbp",
    "field_of_view",
    "projector",
    "radon",
    "ramp_filter",
]

#: Samples (views x images x N x N) in flight per chunk: 4 M floats = 16 MB of output.
CHUNK_ELEMENTS = 1 << 22


@lru_cache(maxsize=8)
def ramp_filter(padded_length: int) -> np.ndarray:
    """rfft-domain ramp filter of scikit-image (``_get_fourier_filter(..., 'ramp')``)."""
    n = np.concatenate(
        (
            np.arange(1, padded_length / 2 + 1, 2, dtype=int),
            np.arange(padded_length / 2 - 1, 0, -2, dtype=int),
        )
    )
    f = np.zeros(padded_length)
    f[0] = 0.25
    f[1::2] = -1 / (np.pi * n) ** 2
    return 2 * np.real(np.fft.rfft(f))


def _padded_length(size: int) -> int:
    diagonal = math.ceil(math.sqrt(2) * size)
    return max(64, int(2 ** math.ceil(math.log2(2 * diagonal))))


def field_of_view(size: int, device: torch.device | str | None = None) -> Tensor:
    """(N, N) bool mask of the inscribed circle ``(row - c)^2 + (col - c)^2 <= (N // 2)^2``."""
    r = torch.arange(size, device=device) - size // 2
    return r[:, None] ** 2 + r[None, :] ** 2 <= (size // 2) ** 2


#: Horizontal bands whose column spans bound the field-of-view circle: sampling the
#: bands instead of the square skips ~20% of the samples.
BANDS = 12


def circle_bands(size: int, margin: int, count: int = BANDS) -> list[tuple[int, int, int, int]]:
    """(row0, row1, col0, col1) rectangles covering the inscribed circle widened by ``margin``."""
    c, radius = size // 2, size // 2 + margin
    edges = [round(i * size / count) for i in range(count + 1)]
    bands = []
    for r0, r1 in itertools.pairwise(edges):
        if r1 <= r0:
            continue
        nearest = min(abs(r - c) for r in range(r0, r1))  # the band's widest row
        half = math.sqrt(max(radius**2 - nearest**2, 0.0))
        c0, c1 = max(0, math.floor(c - half) - 1), min(size, math.ceil(c + half) + 2)
        if c1 > c0:
            bands.append((r0, r1, c0, c1))
    return bands


class ParallelBeamProjector:
    """Radon transform and FBP for (B, N, N) images at fixed ``angles_deg``.

    Holds per-view affine coefficients of the two sampling grids (float64
    trigonometry, cast once), the field-of-view mask and the bands that cover it;
    the grids themselves are written chunk by chunk into one reused buffer.
    """

    def __init__(self, size: int, angles_deg: Sequence[float], device: torch.device) -> None:
        if size < 2:
            raise ConfigError(f"CT projection needs images of at least 2 x 2 pixels, got {size}")
        self.size = size
        self.angles = tuple(float(a) for a in angles_deg)
        self.device = torch.device(device)
        #: detector positions -1 .. N, so edge pixels interpolate as iradon does
        self.bins = size + 2
        theta = torch.deg2rad(torch.tensor(self.angles, dtype=torch.float64))
        cos, sin = torch.cos(theta)[:, None], torch.sin(theta)[:, None]
        c = size // 2
        offset = torch.arange(size, dtype=torch.float64)[None, :] - c  # col - c or row - c
        unit = 2.0 / (size - 1)  # pixel -> grid_sample's [-1, 1] (align_corners=True)
        centre = unit * c - 1.0
        # radon: output (row v, col u) samples x = c + u cos + v sin, y = c - u sin + v cos
        self._radon_x = self._split(unit * offset * cos + centre, unit * offset * sin)
        self._radon_y = self._split(-unit * offset * sin + centre, unit * offset * cos)
        # back-projection: pixel (row, col) reads bin t + c + 1, t = (col - c) cos - (row - c) sin
        bin_unit = 2.0 / (self.bins - 1)
        self._bp_x = self._split(bin_unit * (offset * cos + c + 1) - 1.0, -bin_unit * offset * sin)
        self.mask = field_of_view(size, self.device)
        self.whole = [(0, size, 0, size)]
        #: rays and pixels that can meet a non-zero pixel of a masked image (bilinear taps
        #: reach sqrt(2) pixels, hence the margin of 2)
        self.bands = circle_bands(size, margin=2)

    def _split(self, by_col: Tensor, by_row: Tensor) -> tuple[Tensor, Tensor]:
        return (
            by_col.to(self.device, torch.float32)[:, None, :],
            by_row.to(self.device, torch.float32)[:, :, None],
        )

    @staticmethod
    def _grid(
        buffer: Tensor | None,
        views: slice,
        band: tuple[int, int, int, int],
        x: tuple[Tensor, Tensor],
        y: tuple[Tensor, Tensor] | None,
    ) -> Tensor:
        """The (views, rows, cols, 2) sampling grid of one band, written into ``buffer``
        (a new tensor when ``buffer`` is None: autograd keeps each grid for the backward)."""
        r0, r1, c0, c1 = band
        by_col, by_row = x[0][views, :, c0:c1], x[1][views, r0:r1]
        count = by_col.shape[0]
        shape = (count, r1 - r0, c1 - c0, 2)
        if buffer is None:
            grid = torch.zeros(shape, device=by_col.device, dtype=torch.float32)
        else:
            grid = buffer[: count * (r1 - r0) * (c1 - c0) * 2].view(shape)
        torch.add(by_col, by_row, out=grid[..., 0])
        if y is not None:  # else a one-row input: any finite y reads row 0 (align_corners)
            torch.add(y[0][views, :, c0:c1], y[1][views, r0:r1], out=grid[..., 1])
        return grid

    def _views_per_chunk(self, batch: int) -> int:
        return max(1, min(len(self.angles), CHUNK_ELEMENTS // (max(batch, 1) * self.size**2)))

    def radon(self, images: Tensor, field_of_view_only: bool = False) -> Tensor:
        """(B, N, N) -> sinogram (B, A, N): sums of the image rotated to each view.

        ``field_of_view_only`` skips the rays and samples that cannot meet the
        inscribed circle: exact when the images are zero outside it.
        """
        b, n = images.shape[0], self.size
        source = images.to(self.device, torch.float32)[None]
        sino = torch.zeros(b, len(self.angles), n, device=self.device, dtype=torch.float32)
        step = self._views_per_chunk(b)
        buffer = (
            None if _differentiated(images) else torch.empty(step * n * n * 2, device=self.device)
        )
        for start in range(0, len(self.angles), step):
            views = slice(start, min(start + step, len(self.angles)))
            count = views.stop - start
            for band in self.bands if field_of_view_only else self.whole:
                grid = self._grid(buffer, views, band, self._radon_x, self._radon_y)
                rotated = F.grid_sample(
                    source.expand(count, b, n, n),
                    grid,
                    mode="bilinear",
                    padding_mode="zeros",
                    align_corners=True,
                )
                sino[:, views, band[2] : band[3]] += rotated.sum(dim=2).transpose(0, 1)
        return sino.to(images.dtype)

    def backproject(self, filtered: Tensor) -> Tensor:
        """(B, A, N + 2) filtered views -> (B, N, N), zero outside the circle (unscaled)."""
        b, n = filtered.shape[0], self.size
        views_first = filtered.to(self.device, torch.float32).transpose(0, 1)[:, :, None, :]
        image = torch.zeros(b, n, n, device=self.device, dtype=torch.float32)
        step = self._views_per_chunk(b)
        buffer = (
            None if _differentiated(filtered) else torch.zeros(step * n * n * 2, device=self.device)
        )
        for start in range(0, len(self.angles), step):
            views = slice(start, min(start + step, len(self.angles)))
            for band in self.bands:
                r0, r1, c0, c1 = band
                grid = self._grid(buffer, views, band, self._bp_x, None)  # finite y: one row
                smeared = F.grid_sample(
                    views_first[views],
                    grid,
                    mode="bilinear",
                    padding_mode="zeros",
                    align_corners=True,
                )
                image[:, r0:r1, c0:c1] += smeared.sum(dim=0)
        return image * self.mask

    def fbp(self, sinogram: Tensor) -> Tensor:
        """Filtered back-projection (B, A, N) -> (B, N, N), as ``skimage.transform.iradon``."""
        image = self.backproject(ramp_filtered(sinogram.to(self.device)))
        return image * (math.pi / (2 * len(self.angles)))


def _differentiated(x: Tensor) -> bool:
    """Whether autograd records operations on ``x`` (then no sampling grid is reused)."""
    return torch.is_grad_enabled() and x.requires_grad


@lru_cache(maxsize=32)
def projector(
    size: int, angles_deg: tuple[float, ...], device: torch.device
) -> ParallelBeamProjector:
    """The projector of one geometry and size, built once (it holds O(views x N) numbers)."""
    return ParallelBeamProjector(size, angles_deg, device)


def ramp_filtered(sinogram: Tensor) -> Tensor:
    """Ramp-filter each view (B, A, N) -> (B, A, N + 2), at detector positions -1 .. N."""
    n = sinogram.shape[-1]
    padded = _padded_length(n)
    spectrum = torch.fft.rfft(sinogram.to(torch.float32), n=padded, dim=-1)
    ramp = torch.from_numpy(ramp_filter(padded)).to(sinogram.device, torch.float32)
    filtered = torch.fft.irfft(spectrum * ramp, n=padded, dim=-1)
    return torch.cat([filtered[..., -1:], filtered[..., : n + 1]], dim=-1)


def radon(images: Tensor, angles_deg: Sequence[float]) -> Tensor:
    """Sinogram (B, A, N) of square images (B, N, N) at ``angles_deg``."""
    angles = tuple(float(a) for a in angles_deg)
    return projector(images.shape[-1], angles, images.device).radon(images)


def fbp(sinogram: Tensor, angles_deg: Sequence[float]) -> Tensor:
    """Filtered back-projection (B, A, N) -> (B, N, N), as ``skimage.transform.iradon``."""
    angles = tuple(float(a) for a in angles_deg)
    return projector(sinogram.shape[-1], angles, sinogram.device).fbp(sinogram)


class CTSparseView(Degradation):
    """FBP from every ``view_step``-th of ``n_angles`` views over [0, 180) degrees; same size.

    Defaults follow the published setting: 1000 views, every 16th kept. Whole
    slices are reconstructed: non-square images are zero-padded to a square (and
    cropped back), the field of view is the square's inscribed circle, the HR
    image is zeroed outside it before projection, and every reconstruction is
    zero outside it and clipped to [0, 1] (``clip``).

    The paper's training target is not the HR image but the FBP from *all*
    views, computed from the same sinogram with the same mask, so that the
    restorer only has to remove the streaks of the missing views. Hence
    ``replaces_target = True`` and :meth:`apply_pair`::

        lr, target = ct.apply_pair(hr, ct.sample_params(len(hr)))
        # lr: sparse-view FBP, target: full-view FBP, both (B, C, H, W) like hr

    Crop training patches from ``lr`` and ``target`` *after* this call (the
    projection needs the whole slice). :meth:`apply` returns the sparse-view
    FBP alone and :meth:`full_view` the target alone.
    """

    name = "ct-sparse-view"
    #: the training/evaluation target is :meth:`apply_pair`'s second output, not the HR input
    replaces_target = True

    #: the acquisition's reference reconstruction, which a model must beat
    reference = "fbp"

    def __init__(
        self, n_angles: int = 1000, view_step: int | Sequence[int] = 16, clip: bool = True
    ) -> None:
        super().__init__(1.0)
        steps = [int(view_step)] if isinstance(view_step, int) else [int(v) for v in view_step]
        if n_angles < 2 or not steps or any(v < 1 or v >= n_angles for v in steps):
            raise ConfigError(
                f"ct-sparse-view needs n_angles >= 2 and 1 <= view_step < n_angles, "
                f"got {n_angles} and {view_step}"
            )
        self.n_angles = int(n_angles)
        #: the view steps one batch draws from (uniformly; repeat a step to weight it)
        self.view_steps = tuple(steps)
        self.clip = clip

    @property
    def view_step(self) -> int:
        """The primary view step (the first): what validation and a plain call use."""
        return self.view_steps[0]

    @property
    def angles(self) -> tuple[float, ...]:
        return tuple(i * 180.0 / self.n_angles for i in range(0, self.n_angles))

    def kept(self, view_step: int) -> tuple[float, ...]:
        return self.angles[::view_step]

    @property
    def kept_angles(self) -> tuple[float, ...]:
        return self.kept(self.view_step)

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n_angles": self.n_angles,
            "view_step": self.view_step if len(self.view_steps) == 1 else list(self.view_steps),
            "clip": self.clip,
        }

    def sample_params(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> dict[str, Any]:
        """A batch-level view step, drawn from ``view_steps`` when there are several."""
        if len(self.view_steps) == 1:
            return {"view_step": self.view_steps[0]}
        index = draw_choice(generator, [1.0] * len(self.view_steps))
        return {"view_step": self.view_steps[index]}

    def validation_params(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> dict[str, Any]:
        """Validation scores the primary (first) view step."""
        return {"view_step": self.view_step}

    @staticmethod
    def field_of_view_on(x: Tensor) -> Tensor:
        """The (H, W) bool scanner circle of ``x``'s grid: the circle inscribed in the
        zero-padded square the projections are made on (:meth:`_square`)."""
        h, w = int(x.shape[-2]), int(x.shape[-1])
        n = max(h, w)
        top, left = (n - h) // 2, (n - w) // 2
        return field_of_view(n, x.device)[top : top + h, left : left + w]

    def _square(self, hr: Tensor) -> tuple[Tensor, tuple[int, int, int, int]]:
        """(B, C, H, W) -> masked (B*C, N, N) with N = max(H, W), and the crop back."""
        b, c, h, w = hr.shape
        n = max(h, w)
        top, left = (n - h) // 2, (n - w) // 2
        square = F.pad(hr.to(torch.float32), (left, n - w - left, top, n - h - top))
        square = square.reshape(b * c, n, n) * field_of_view(n, hr.device)
        return square, (top, left, h, w)

    def _finish(self, image: Tensor, like: Tensor, crop: tuple[int, int, int, int]) -> Tensor:
        top, left, h, w = crop
        b, c = like.shape[:2]
        out = image.reshape(b, c, *image.shape[-2:])[..., top : top + h, left : left + w]
        out = out.to(like.dtype)
        return out.clamp(0.0, 1.0) if self.clip else out

    def apply(self, hr: Tensor, params: dict[str, Any]) -> Tensor:
        """The sparse-view FBP (projects only the kept views)."""
        step = int(params.get("view_step", self.view_step))
        square, crop = self._square(hr)
        geometry = projector(square.shape[-1], self.kept(step), square.device)
        return self._finish(geometry.fbp(geometry.radon(square, True)), hr, crop)

    def apply_pair(self, hr: Tensor, params: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """(sparse-view FBP, full-view FBP) of ``hr`` from one sinogram of all ``n_angles``."""
        step = int(params.get("view_step", self.view_step))
        square, crop = self._square(hr)
        n = square.shape[-1]
        full = projector(n, self.angles, square.device)
        sinogram = full.radon(square, field_of_view_only=True)
        sparse = projector(n, self.kept(step), square.device)
        lr = sparse.fbp(sinogram[:, ::step])
        return self._finish(lr, hr, crop), self._finish(full.fbp(sinogram), hr, crop)

    def full_view(self, hr: Tensor) -> Tensor:
        """FBP from all ``n_angles`` views: the HR target of the sparse-view CT paper."""
        square, crop = self._square(hr)
        geometry = projector(square.shape[-1], self.angles, square.device)
        return self._finish(geometry.fbp(geometry.radon(square, True)), hr, crop)
