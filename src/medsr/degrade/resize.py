"""Image resizing with MATLAB ``imresize`` semantics, batched in torch.

Each axis is resampled separately. Output pixel ``i`` (1-based) sits at input
coordinate ``u = i / s + 0.5 * (1 - 1 / s)``; its value is ``sum_j h(u - j) x_j``
over the input pixels ``j`` within the kernel support, with weights normalised to
sum 1 and mirror-symmetric boundaries. When shrinking (``s < 1``) with
antialiasing, the kernel is stretched: ``h(x) = s * k(s * x)``, width ``w / s``.
The cubic kernel is Keys' with ``a = -0.5``. Output size is ``ceil(n * s)``.

When the scale is a ratio ``p / q`` of small integers (x4, x1/4, x2.5 ...) the
weights repeat with period ``p`` outputs (output ``k p + r`` reads the inputs of
output ``r`` shifted by ``k q``), so the resize is a polyphase filter: mirror-pad
the axis, take ``p`` strided dot products of the period's ``span`` taps and
interleave them. In eager mode that is a strided slice sum along rows and an
``unfold`` matrix product along columns (torch's own antialiased interpolate
speed); under tracing (ONNX, ``torch.export``) it is a strided ``conv2d`` whose
weights do not depend on the image size, so exported graphs stay size-dynamic.
Antialiased cubic shrinking by an integer factor (the x1/2, x1/4 bicubic degradation of
every training batch) goes one step further in eager mode: torch's own
``interpolate(mode="bicubic", antialias=True)`` computes the same weights and only
differs at the border, so it runs on the image mirror-padded by two output cells.
Other scales (and images smaller than the mirror padding) use the general form:
per-(input size, output size) weights applied as a gather plus a weighted sum.
Both agree with each other to float rounding (1e-6 on [0, 1] data).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
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
def _taps(
    out_len: int,
    scale: float,
    func: Callable[[np.ndarray], np.ndarray],
    width: float,
    stretch: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MATLAB imresize's taps for output pixels 1..out_len: (left source index (1-based),
    source indices (out_len, taps) before mirroring, normalised weights).

    Output pixel x maps to source ``u = x / s + (1 - 1 / s) / 2``; when shrinking with
    antialiasing the kernel is stretched by ``1 / s``.
    """
    kernel_width = width / scale if stretch else width
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    distance = u[:, None] - indices
    weights = scale * func(scale * distance) if stretch else func(distance)
    sums = weights.sum(axis=1, keepdims=True)
    return left, indices, weights / np.where(sums == 0, 1.0, sums)


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
    _, indices, weights = _taps(out_len, scale, func, width, stretch)
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


#: Largest numerator/denominator of a scale ``p / q`` that the polyphase form handles.
MAX_PERIOD = 64


@dataclass(frozen=True)
class Polyphase:
    """Output ``k * p + r`` is ``sum_t weights[r, t] * padded[k * q + t]`` along one axis,
    where ``padded`` is the axis mirror-padded by ``pad_left`` pixels in front."""

    p: int
    q: int
    weights: np.ndarray  # (p, span) float64
    pad_left: int

    @property
    def span(self) -> int:
        return int(self.weights.shape[1])


@lru_cache(maxsize=256)
def polyphase(scale: float, kernel: str, antialias: bool) -> Polyphase | None:
    """The periodic form of ``resize_weights`` at a rational ``scale``, or None.

    None when ``scale`` is not ``p / q`` with ``p, q <= MAX_PERIOD``, or when the
    period's taps spread so far that the dense ``span`` wastes work (``span > taps + 8``).
    """
    frac = Fraction(scale).limit_denominator(MAX_PERIOD)
    if frac <= 0 or abs(float(frac) - scale) > 1e-12 * max(1.0, scale):
        return None
    p, q = frac.numerator, frac.denominator
    if p > MAX_PERIOD:
        return None
    name = _kernel_name(kernel)
    func, width = KERNELS[name]
    stretch = scale < 1 and antialias and name != "nearest"
    left, _, weights = _taps(p, scale, func, width, stretch)
    taps = weights.shape[1]
    first = int(left.min())
    offsets = (left - first).astype(np.int64)
    dense = np.zeros((p, int(offsets.max()) + taps))
    for r in range(p):
        dense[r, offsets[r] : offsets[r] + taps] = weights[r]
    used = np.flatnonzero(np.any(dense != 0, axis=0))
    dense = dense[:, used[0] : used[-1] + 1]
    first += int(used[0])
    if dense.shape[1] > taps + 8:
        return None
    return Polyphase(p, q, np.ascontiguousarray(dense), 1 - first)


def _mirror_pad(x: Tensor, dim: int, before: int, after: int) -> Tensor:
    """Half-sample symmetric padding (MATLAB's): ``x[-1] = x[0]``, ``x[n] = x[n - 1]``.

    A negative ``before`` drops that many leading pixels instead (no tap reads them).
    """
    parts = []
    if before > 0:
        parts.append(x.narrow(dim, 0, before).flip(dim))
    parts.append(x.narrow(dim, -before, x.shape[dim] + before) if before < 0 else x)
    if after > 0:
        tail = [slice(None)] * x.ndim
        tail[dim] = slice(-after, None)  # from the end: size-free when traced
        parts.append(x[tuple(tail)].flip(dim))
    return torch.cat(parts, dim) if len(parts) > 1 else parts[0]


def _mirror_pad_2d(x: Tensor, top: int, bottom: int, left: int, right: int) -> Tensor:
    """``_mirror_pad`` on both axes (all amounts >= 0, each at most the axis length),
    written into one preallocated tensor: a single copy of the image instead of two."""
    h, w = int(x.shape[-2]), int(x.shape[-1])
    out = x.new_empty(*x.shape[:-2], h + top + bottom, w + left + right)
    rows = out[..., :, left : left + w]
    rows[..., top : top + h, :] = x
    if top:
        rows[..., :top, :] = x[..., :top, :].flip(-2)
    if bottom:
        rows[..., top + h :, :] = x[..., h - bottom :, :].flip(-2)
    if left:
        out[..., :left] = out[..., left : 2 * left].flip(-1)
    if right:
        out[..., left + w :] = out[..., left + w - right : left + w].flip(-1)
    return out


def _tracing() -> bool:
    return torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


def _polyphase_axis(x: Tensor, dim: int, out_len: int, plan: Polyphase) -> Tensor:
    """Resize axis ``dim`` (-2 or -1) of ``x`` (..., H, W) with a polyphase filter."""
    n = int(x.shape[dim])
    p, q, span = plan.p, plan.q, plan.span
    blocks = -(-out_len // p)
    after = max(0, (blocks - 1) * q + span - plan.pad_left - n)
    padded = _mirror_pad(x, dim, plan.pad_left, after)
    weights = torch.from_numpy(plan.weights).to(x.device, x.dtype)
    if _tracing():
        out = _polyphase_conv(padded, dim, weights, q, blocks)
    elif dim == -1:  # (..., H, blocks, span) @ (span, p) -> (..., H, blocks * p)
        windows = padded.unfold(-1, span, q)[..., :blocks, :]
        out = (windows @ weights.T).flatten(-2)
    else:  # one strided row slice per tap: contiguous rows, no copies
        phases = []
        stop = (blocks - 1) * q + 1
        for r in range(p):
            acc = torch.zeros_like(padded.narrow(-2, 0, stop)[..., ::q, :])
            for t in range(span):
                w = float(plan.weights[r, t])
                if w != 0.0:
                    acc.add_(padded.narrow(-2, t, stop)[..., ::q, :], alpha=w)
            phases.append(acc)
        out = torch.stack(phases, dim=-2).flatten(-3, -2) if p > 1 else phases[0]
    if out.shape[dim] != out_len:
        out = out.narrow(dim, 0, out_len)
    return out


def _polyphase_conv(padded: Tensor, dim: int, weights: Tensor, q: int, blocks: int) -> Tensor:
    """The polyphase filter as a strided conv2d: size-independent, so traced graphs stay
    dynamic when the output is exactly ``blocks * p`` long (integer upscaling)."""
    p, span = weights.shape
    channels = padded.shape[1:-2]  # (C,) for (B, C, H, W): fixed; B, H, W stay dynamic
    planes = padded.flatten(0, -3).unsqueeze(1) if padded.ndim > 2 else padded[None, None]
    if dim == -1:
        out = F.conv2d(planes, weights.reshape(p, 1, 1, span), stride=(1, q))
        out = out.permute(0, 2, 3, 1).flatten(-2)  # (N, H, blocks * p)
    else:
        out = F.conv2d(planes, weights.reshape(p, 1, span, 1), stride=(q, 1))
        out = out.transpose(1, 2).flatten(1, 2)  # (N, blocks * p, W)
    return out.unflatten(0, (-1, *channels)) if padded.ndim > 2 else out[0]


def _resize_axis(
    x: Tensor, dim: int, out_len: int, scale: float, kernel: str, antialias: bool
) -> Tensor:
    n = int(x.shape[dim])
    # the compiler traces through caches (and warns): give it the plain function
    find_plan = polyphase.__wrapped__ if torch.compiler.is_compiling() else polyphase
    plan = find_plan(float(scale), kernel, antialias)
    if plan is not None:
        blocks = -(-out_len // plan.p)
        after = (blocks - 1) * plan.q + plan.span - plan.pad_left - n
        if -n < plan.pad_left <= n and after <= n:
            return _polyphase_axis(x, -2 if dim % x.ndim == x.ndim - 2 else -1, out_len, plan)
    return _gather_axis(x, dim, out_len, scale, kernel, antialias)


def _gather_axis(
    x: Tensor, dim: int, out_len: int, scale: float, kernel: str, antialias: bool
) -> Tensor:
    """The general form: per-output gathered taps and weights (any scale, any size)."""
    idx, wts = _weights_on(
        int(x.shape[dim]), out_len, float(scale), kernel, antialias, x.device, x.dtype
    )
    dim = dim % x.ndim  # ONNX export needs non-negative permutation axes
    last = x.ndim - 1
    moved = x.movedim(dim, last)
    gathered = moved[..., idx.reshape(-1)].reshape(*moved.shape[:-1], out_len, idx.shape[1])
    return (gathered * wts).sum(-1).movedim(last, dim)


#: Output cells of mirror padding per side in the torch fast path: the stretched cubic
#: reaches 2 q input pixels from an output centre, and the first centre sits (q - 1) / 2
#: pixels in, so 1.5 q + 0.5 < 2 q pixels of padding are read.
_FAST_PAD = 2


def _torch_downscale(
    x: Tensor, out_h: int, out_w: int, sy: float, sx: float, kernel: str, antialias: bool
) -> Tensor | None:
    """Antialiased cubic shrinking by integer factors through torch's own kernel, or None.

    ``F.interpolate(mode="bicubic", antialias=True)`` computes exactly MATLAB's weights
    (Keys a = -0.5 stretched by the factor, centres at ``(i + 0.5) q - 0.5``, normalised)
    but clips the window at the border where MATLAB mirrors. Mirror-padding each axis by
    whole output cells (``_FAST_PAD * q`` pixels, plus the ``out * q - n`` pixels that
    make the length a multiple of ``q``) makes every window interior, so the cropped
    result equals the polyphase form to float rounding, at torch's speed (this path is
    the bicubic degradation of every training batch). Eager float32/float64 only; other
    cases (tracing, upscaling, non-integer factors, images smaller than the padding)
    return None and take the polyphase form.
    """
    if kernel != "cubic" or not antialias or _tracing():
        return None
    if x.dtype not in (torch.float32, torch.float64) or x.ndim < 2:
        return None
    h, w = int(x.shape[-2]), int(x.shape[-1])
    qy, qx = 1.0 / sy, 1.0 / sx
    if not (qy > 1 and qx > 1 and qy.is_integer() and qx.is_integer()):
        return None
    qy_i, qx_i = int(qy), int(qx)
    if out_h != -(-h // qy_i) or out_w != -(-w // qx_i):
        return None
    pad_y, pad_x = _FAST_PAD * qy_i, _FAST_PAD * qx_i
    extra_y, extra_x = out_h * qy_i - h, out_w * qx_i - w
    if pad_y + extra_y > h or pad_x + extra_x > w:
        return None
    lead = x.shape[:-2]
    planes = x.reshape(-1, 1, h, w)
    padded = _mirror_pad_2d(planes, pad_y, pad_y + extra_y, pad_x, pad_x + extra_x)
    size = (out_h + 2 * _FAST_PAD, out_w + 2 * _FAST_PAD)
    out = F.interpolate(padded, size=size, mode="bicubic", antialias=True, align_corners=False)
    out = out[..., _FAST_PAD : _FAST_PAD + out_h, _FAST_PAD : _FAST_PAD + out_w]
    return out.reshape(*lead, out_h, out_w)


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
    fast = _torch_downscale(x, out_h, out_w, sy, sx, kernel, antialias)
    if fast is not None:
        return fast
    steps = [(-2, out_h, sy), (-1, out_w, sx)]
    steps.sort(key=lambda step: step[2])  # shrink first, as MATLAB does
    for dim, out_len, s in steps:
        if out_len == x.shape[dim] and s == 1.0:
            continue
        x = _resize_axis(x, dim, out_len, s, kernel, antialias)
    return x
