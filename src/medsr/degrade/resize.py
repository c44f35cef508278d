"""Image resizing with MATLAB ``imresize`` semantics, batched in torch.

Each axis is resampled separately. Output pixel ``i`` (1-based) sits at input
coordinate ``u = i / s + 0.5 * (1 - 1 / s)``; its value is ``sum_j h(u - j) x_j``
over the input pixels ``j`` within the kernel support, with weights normalised to
sum 1 and mirror-symmetric boundaries. When shrinking (``s < 1``) with
antialiasing, the kernel is stretched: ``h(x) = s * k(s * x)``, width ``w / s``.
The cubic kernel is Keys' with ``a = -0.5``. Output size is ``ceil(n * s)``.

Weights are precomputed once per (input size, output size, scale, kernel) and
applied as a gather plus a weighted sum, so a resize costs O(taps) per pixel on
any device.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import Tensor

from medsr.errors import ConfigError

__all__ = ["KERNELS", "imresize", "output_size", "resize_weights"]

ScaleArg = float | tuple[float, float]


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's and PIL's)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * (
        (ax > 1) & (ax <= 2)
    )


def _linear(x: np.ndarray) -> np.ndarray:
    return (x + 1.0) * ((x >= -1) & (x < 0)) + (1.0 - x) * ((x >= 0) & (x <= 1))


def _box(x: np.ndarray) -> np.ndarray:
    return ((x >= -0.5) & (x < 0.5)).astype(np.float64)


def _lanczos(a: int) -> Callable[[np.ndarray], np.ndarray]:
    def kernel(x: np.ndarray) -> np.ndarray:
        return np.sinc(x) * np.sinc(x / a) * (np.abs(x) < a)

    return kernel


#: name -> (kernel function, support width in input pixels at scale 1)
KERNELS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], float]] = {
    "cubic": (_cubic, 4.0),
    "linear": (_linear, 2.0),
    "lanczos2": (_lanczos(2), 4.0),
    "lanczos3": (_lanczos(3), 6.0),
    "box": (_box, 1.0),
    "nearest": (_box, 1.0),
}
_ALIASES = {"bicubic": "cubic", "bilinear": "linear", "triangle": "linear", "area": "box"}


def _kernel_name(kernel: str) -> str:
    name = _ALIASES.get(kernel, kernel)
    if name not in KERNELS:
        raise ConfigError(
            f"unknown resize kernel {kernel!r}; choose one of {', '.join(KERNELS)}, "
            f"{', '.join(_ALIASES)}"
        )
    return name


def _pair(scale: ScaleArg) -> tuple[float, float]:
    if isinstance(scale, int | float):
        return float(scale), float(scale)
    if len(scale) != 2:
        raise ConfigError(f"a scale is a number or a (sy, sx) pair, got {scale!r}")
    return float(scale[0]), float(scale[1])


def _scaled_length(n: int, s: float) -> int:
    """``ceil(n * s)``, tolerant of floating error (0.1 * 30 is 3, not 4)."""
    return max(1, math.ceil(n * s - 1e-9 * max(1.0, n * s)))


def output_size(h: int, w: int, scale: ScaleArg) -> tuple[int, int]:
    """Size of ``imresize(x, scale)`` for an (h, w) image: ``(ceil(h*sy), ceil(w*sx))``."""
    sy, sx = _pair(scale)
    if sy <= 0 or sx <= 0:
        raise ConfigError(f"scale must be positive, got {(sy, sx)}")
    return _scaled_length(h, sy), _scaled_length(w, sx)


@lru_cache(maxsize=256)
def resize_weights(
    in_len: int, out_len: int, scale: float, kernel: str, antialias: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (out_len, taps) into the input and their weights (out_len, taps).

    Follows MATLAB's ``contributions``: mirror-symmetric boundary, weights
    normalised per output pixel, all-zero tap columns dropped.
    """
    name = _kernel_name(kernel)
    func, width = KERNELS[name]
    if name == "nearest":
        antialias = False
    stretch = scale < 1 and antialias
    kernel_width = width / scale if stretch else width
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    distance = u[:, None] - indices
    weights = scale * func(scale * distance) if stretch else func(distance)
    sums = weights.sum(axis=1, keepdims=True)
    weights = weights / np.where(sums == 0, 1.0, sums)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(weights != 0, axis=0)
    return np.ascontiguousarray(indices[:, keep]), np.ascontiguousarray(weights[:, keep])


def _weights_tensors(
    in_len: int,
    out_len: int,
    scale: float,
    kernel: str,
    antialias: bool,
    device: torch.device,
    dtype: torch.dtype,
) -> tuple[Tensor, Tensor]:
    idx_np, w_np = resize_weights(in_len, out_len, scale, kernel, antialias)
    idx = torch.from_numpy(idx_np).to(device)
    return idx, torch.from_numpy(w_np).to(device=device, dtype=dtype)


_weights_cached = lru_cache(maxsize=256)(_weights_tensors)


def _weights_on(*key: Any) -> tuple[Tensor, Tensor]:
    """Device tensors of the resize weights, cached in eager mode only.

    Under tracing (torch.export, ONNX, jit) the tensors made here are graph
    constants or fake tensors; caching them would hand them to later eager calls.
    """
    tracing = (
        torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
    )
    return _weights_tensors(*key) if tracing else _weights_cached(*key)


def _resize_axis(
    x: Tensor, dim: int, out_len: int, scale: float, kernel: str, antialias: bool
) -> Tensor:
    idx, wts = _weights_on(
        int(x.shape[dim]), out_len, float(scale), kernel, antialias, x.device, x.dtype
    )
    dim = dim % x.ndim  # ONNX export needs non-negative permutation axes
    last = x.ndim - 1
    moved = x.movedim(dim, last)
    gathered = moved[..., idx.reshape(-1)].reshape(*moved.shape[:-1], out_len, idx.shape[1])
    return (gathered * wts).sum(-1).movedim(last, dim)


def imresize(
    x: Tensor,
    scale: ScaleArg | None = None,
    size: tuple[int, int] | None = None,
    kernel: str = "cubic",
    antialias: bool = True,
) -> Tensor:
    """Resize the last two axes of ``x`` (..., H, W) like MATLAB ``imresize``.

    Give ``scale`` (a factor or (sy, sx); output ``ceil(H*sy), ceil(W*sx)``) or
    ``size`` (then the factor per axis is ``size / input``). Kernels: cubic
    (Keys, a = -0.5), linear, lanczos2, lanczos3, box (area average when
    shrinking), nearest. The result keeps ``x``'s dtype and is not clipped.
    """
    if (scale is None) == (size is None):
        raise ConfigError("imresize needs exactly one of scale or size")
    if x.ndim < 2:
        raise ConfigError(f"imresize needs a tensor (..., H, W), got shape {tuple(x.shape)}")
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if size is not None:
        out_h, out_w = int(size[0]), int(size[1])
        if out_h < 1 or out_w < 1:
            raise ConfigError(f"output size must be positive, got {size}")
        sy, sx = out_h / h, out_w / w
    else:
        assert scale is not None
        sy, sx = _pair(scale)
        out_h, out_w = output_size(h, w, (sy, sx))
    kernel = _kernel_name(kernel)
    if not x.is_floating_point():
        x = x.float()
    steps = [(-2, out_h, sy), (-1, out_w, sx)]
    steps.sort(key=lambda step: step[2])  # shrink first, as MATLAB does
    for dim, out_len, s in steps:
        if out_len == x.shape[dim] and s == 1.0:
            continue
        x = _resize_axis(x, dim, out_len, s, kernel, antialias)
    return x
