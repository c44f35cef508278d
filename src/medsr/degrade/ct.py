"""CT sparse-view degradation: Radon transform, keep every r-th view, filtered back-projection.

Parallel-beam geometry with scikit-image's conventions (``radon``/``iradon``
with ``circle=True``): detector bin ``u`` of view ``theta`` sits at
``t = u - N//2`` and pixel (row, col) projects to
``t = (col - c) cos(theta) - (row - c) sin(theta)``, ``c = N // 2``; pixels outside
the inscribed circle are zero. FBP filters each view with the ramp filter
(scikit-image's band-limited spatial definition, zero-padded to
``max(64, 2**ceil(log2(2 * ceil(sqrt(2) N))))``), back-projects with linear
interpolation and scales by ``pi / (2 A)``.

Back-projection is a sparse (pixels x views*bins) matrix with two linear
weights per (pixel, view), built once per (size, angles, device) and applied to
the whole batch as one sparse-dense product; forward projection is a second sparse
matrix holding scikit-image's ray-driven bilinear samples (four taps per unit step
along each ray inside the circle). Both run on CPU or CUDA without host round trips.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from medsr.degrade.base import Degradation
from medsr.errors import ConfigError

__all__ = ["CTSparseView", "ParallelBeamProjector", "projector", "ramp_filter"]

#: Above this many weights per matrix a projector is split into chunks of views (~128 MB
#: each); up to 8 chunks stay cached, so 256 x 256 with 250 views is built once.
MAX_NONZEROS = 16_000_000


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


def _csr(crow: Tensor, col: Tensor, val: Tensor, shape: tuple[int, int]) -> Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, val, shape, check_invariants=False)


class ParallelBeamProjector:
    """Radon transform and FBP for (B, N, N) images at fixed ``angles_deg``."""

    def __init__(self, size: int, angles_deg: Sequence[float], device: torch.device) -> None:
        self.size = size
        self.angles = tuple(float(a) for a in angles_deg)
        self.device = device
        self.bins = (
            size + 2
        )  # detector positions -1 .. N, so edge pixels interpolate as iradon does
        theta = torch.deg2rad(torch.tensor(self.angles, dtype=torch.float64))
        self.cos, self.sin = torch.cos(theta), torch.sin(theta)
        r = torch.arange(size, dtype=torch.float64) - size // 2
        first, second = torch.meshgrid(r, r, indexing="ij")
        inside = (first**2 + second**2 <= (size // 2) ** 2).reshape(-1)
        self.pixels = torch.nonzero(inside).squeeze(1).to(device)
        self.backproject_matrix = self._backprojection(
            first.reshape(-1)[inside], second.reshape(-1)[inside]
        ).to(device)
        self.project_matrix = self._projection(
            first.reshape(-1)[inside], second.reshape(-1)[inside], inside.reshape(size, size)
        ).to(device)

    def _backprojection(self, rows: Tensor, cols: Tensor) -> Tensor:
        """(pixels in circle) x (views * bins): linear interpolation at t = x cos - y sin."""
        c, views = self.size // 2, len(self.angles)
        t = cols[:, None] * self.cos[None, :] - rows[:, None] * self.sin[None, :]
        pos = (t + c + 1).clamp(0.0, self.bins - 1.0)
        lower = pos.floor().clamp_max(self.bins - 2)
        upper_weight = (pos - lower).to(torch.float32)
        col = lower.to(torch.int32) + (torch.arange(views, dtype=torch.int32) * self.bins)[None, :]
        col = torch.stack([col, col + 1], dim=-1).reshape(-1)
        val = torch.stack([1.0 - upper_weight, upper_weight], dim=-1).reshape(-1)
        count = rows.numel()
        crow = torch.arange(count + 1, dtype=torch.int32) * (2 * views)
        return _csr(crow, col, val, (count, views * self.bins))

    def _projection(self, u: Tensor, v: Tensor, inside: Tensor) -> Tensor:
        """(views * N) x (N * N): each ray sums bilinear samples at unit steps, as skimage's radon.

        Ray (view, bin u) samples the image at ``x = c + u cos + v sin``,
        ``y = c - u sin + v cos`` for the v inside the circle; taps outside the
        image weigh zero.
        """
        n, c, views = self.size, self.size // 2, len(self.angles)
        cos, sin = self.cos.float()[:, None], self.sin.float()[:, None]
        u, v = u.float()[None, :], v.float()[None, :]
        x = c + u * cos + v * sin
        y = c - u * sin + v * cos
        x0, y0 = x.floor(), y.floor()
        fx, fy = x - x0, y - y0
        cols, vals = [], []
        for dy, dx, weight in (
            (0, 0, (1 - fy) * (1 - fx)),
            (0, 1, (1 - fy) * fx),
            (1, 0, fy * (1 - fx)),
            (1, 1, fy * fx),
        ):
            xi, yi = x0 + dx, y0 + dy
            valid = (xi >= 0) & (xi <= n - 1) & (yi >= 0) & (yi <= n - 1)
            index = (yi.clamp(0, n - 1) * n + xi.clamp(0, n - 1)).to(torch.int32)
            cols.append(index)
            vals.append(torch.where(valid, weight, torch.zeros_like(weight)))
        col = torch.stack(cols, dim=-1).reshape(-1)
        val = torch.stack(vals, dim=-1).reshape(-1)
        per_bin = 4 * inside.sum(dim=1).to(torch.int64)  # samples on each ray, u-major order
        lengths = per_bin.repeat(views)
        crow = torch.zeros(views * n + 1, dtype=torch.int64)
        crow[1:] = torch.cumsum(lengths, 0)
        return _csr(crow.to(torch.int32), col, val, (views * n, n * n))

    def radon(self, images: Tensor) -> Tensor:
        """(B, N, N) -> sinogram (B, A, N): line integrals along each ray."""
        b = images.shape[0]
        flat = images.reshape(b, -1).to(torch.float32).T.contiguous()
        sino = (self.project_matrix @ flat).T
        return sino.reshape(b, len(self.angles), self.size).to(images.dtype)

    def backproject(self, filtered: Tensor) -> Tensor:
        """(B, A, N + 2) filtered views -> (B, N, N), zero outside the circle (unscaled)."""
        b = filtered.shape[0]
        values = self.backproject_matrix @ filtered.reshape(b, -1).T.contiguous()
        image = torch.zeros(b, self.size * self.size, device=filtered.device, dtype=values.dtype)
        image[:, self.pixels] = values.T
        return image.reshape(b, self.size, self.size)


@lru_cache(maxsize=4)
def projector(
    size: int, angles_deg: tuple[float, ...], device: torch.device
) -> ParallelBeamProjector:
    """A cached projector (building one costs about a second at 256 x 256 x 250 views)."""
    return ParallelBeamProjector(size, angles_deg, device)


def ramp_filtered(sinogram: Tensor) -> Tensor:
    """Ramp-filter each view (B, A, N) -> (B, A, N + 2), at detector positions -1 .. N."""
    n = sinogram.shape[-1]
    padded = _padded_length(n)
    spectrum = torch.fft.rfft(sinogram.to(torch.float32), n=padded, dim=-1)
    ramp = torch.from_numpy(ramp_filter(padded)).to(sinogram.device, torch.float32)
    filtered = torch.fft.irfft(spectrum * ramp, n=padded, dim=-1)
    return torch.cat([filtered[..., -1:], filtered[..., : n + 1]], dim=-1)


def _chunks(size: int, angles: tuple[float, ...]) -> list[tuple[float, ...]]:
    per_view = 4 * size * size * math.pi / 4  # the projection matrix, the larger of the two
    step = max(1, int(MAX_NONZEROS // max(per_view, 1.0)))
    return [angles[i : i + step] for i in range(0, len(angles), step)]


def radon(images: Tensor, angles_deg: Sequence[float]) -> Tensor:
    """Sinogram (B, A, N) of square images (B, N, N) at ``angles_deg``."""
    angles = tuple(float(a) for a in angles_deg)
    parts = [
        projector(images.shape[-1], part, images.device).radon(images)
        for part in _chunks(images.shape[-1], angles)
    ]
    return torch.cat(parts, dim=1)


def fbp(sinogram: Tensor, angles_deg: Sequence[float]) -> Tensor:
    """Filtered back-projection (B, A, N) -> (B, N, N), as ``skimage.transform.iradon``."""
    angles = tuple(float(a) for a in angles_deg)
    n = sinogram.shape[-1]
    filtered = ramp_filtered(sinogram)
    image = None
    start = 0
    for part in _chunks(n, angles):
        geometry = projector(n, part, sinogram.device)
        views = filtered[:, start : start + len(part)].contiguous()
        start += len(part)
        partial = geometry.backproject(views)
        image = partial if image is None else image + partial
    assert image is not None
    return image * (math.pi / (2 * len(angles)))


class CTSparseView(Degradation):
    """FBP from every ``view_step``-th of ``n_angles`` views over [0, 180) degrees; same size.

    The paper's HR target is the FBP from all views (:meth:`full_view`). Non-square
    images are zero-padded to a square and cropped back; the output is clipped to
    [0, 1] and is zero outside the inscribed circle, as a scanner's field of view.
    """

    name = "ct-sparse-view"

    def __init__(self, n_angles: int = 1000, view_step: int = 4, clip: bool = True) -> None:
        super().__init__(1.0)
        if n_angles < 2 or view_step < 1 or view_step >= n_angles:
            raise ConfigError(
                f"ct-sparse-view needs n_angles >= 2 and 1 <= view_step < n_angles, "
                f"got {n_angles} and {view_step}"
            )
        self.n_angles = int(n_angles)
        self.view_step = int(view_step)
        self.clip = clip

    @property
    def angles(self) -> tuple[float, ...]:
        return tuple(i * 180.0 / self.n_angles for i in range(0, self.n_angles))

    @property
    def kept_angles(self) -> tuple[float, ...]:
        return self.angles[:: self.view_step]

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n_angles": self.n_angles,
            "view_step": self.view_step,
            "clip": self.clip,
        }

    def _reconstruct(self, hr: Tensor, angles: tuple[float, ...]) -> Tensor:
        b, c, h, w = hr.shape
        n = max(h, w)
        top, left = (n - h) // 2, (n - w) // 2
        square = F.pad(hr, (left, n - w - left, top, n - h - top)).reshape(b * c, n, n)
        image = fbp(radon(square, angles), angles)
        out = image.reshape(b, c, n, n)[..., top : top + h, left : left + w].to(hr.dtype)
        return out.clamp(0.0, 1.0) if self.clip else out

    def apply(self, hr: Tensor, params: dict[str, Any]) -> Tensor:
        return self._reconstruct(hr, self.kept_angles)

    def full_view(self, hr: Tensor) -> Tensor:
        """FBP from all ``n_angles`` views: the HR target of the sparse-view CT paper."""
        return self._reconstruct(hr, self.angles)
