"""Per-sample blur kernels and filtering (each image of a batch has its own kernel).

Kernels are built from parameter tensors on the device: the bivariate
generalised Gaussian ``exp(-0.5 * q**beta)`` (beta = 1 is the Gaussian), the
plateau ``1 / (1 + q**beta)`` with ``q = x^T Sigma^-1 x`` and
``Sigma = R(theta) diag(sx**2, sy**2) R(theta)^T``, and the circular low-pass
(2-D sinc) ``wc * J1(wc r) / (2 pi r)``. Filtering pads by reflection and runs a
grouped convolution, one group per (sample, channel).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "anisotropic_kernels",
    "filter2d",
    "gaussian_blur",
    "gaussian_kernel1d",
    "sinc_kernels",
]


def _grid(size: int, device: torch.device) -> tuple[Tensor, Tensor]:
    r = torch.arange(size, device=device, dtype=torch.float32) - (size - 1) / 2.0
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    return xx, yy


def _support_mask(sizes: Tensor, full: int, device: torch.device) -> Tensor:
    """(B, full, full) mask of the centred ``sizes[b]`` x ``sizes[b]`` window."""
    xx, yy = _grid(full, device)
    half = (sizes.to(torch.float32) - 1.0).reshape(-1, 1, 1) / 2.0
    return ((xx.abs() <= half) & (yy.abs() <= half)).to(torch.float32)


def anisotropic_kernels(
    sigma_x: Tensor,
    sigma_y: Tensor,
    theta: Tensor,
    beta: Tensor,
    plateau: Tensor,
    sizes: Tensor,
    full_size: int,
) -> Tensor:
    """(B, K, K) normalised generalised-Gaussian or plateau kernels (see module doc).

    ``plateau`` (B,) selects the plateau shape where > 0; ``sizes`` (B,) odd
    support widths, zero outside, inside a ``full_size`` square.
    """
    device = sigma_x.device
    xx, yy = _grid(full_size, device)
    c, s = torch.cos(theta).reshape(-1, 1, 1), torch.sin(theta).reshape(-1, 1, 1)
    u = c * xx + s * yy  # coordinates in the kernel's principal axes
    v = -s * xx + c * yy
    q = (u / sigma_x.reshape(-1, 1, 1)) ** 2 + (v / sigma_y.reshape(-1, 1, 1)) ** 2
    qb = q.clamp_min(0.0) ** beta.reshape(-1, 1, 1)
    kernel = torch.where(plateau.reshape(-1, 1, 1) > 0, 1.0 / (1.0 + qb), torch.exp(-0.5 * qb))
    kernel = kernel * _support_mask(sizes, full_size, device)
    return kernel / kernel.sum(dim=(-2, -1), keepdim=True)


def sinc_kernels(cutoff: Tensor, sizes: Tensor, full_size: int) -> Tensor:
    """(B, K, K) circular low-pass kernels with cutoff ``cutoff`` (rad/pixel), normalised."""
    device = cutoff.device
    xx, yy = _grid(full_size, device)
    r = torch.sqrt(xx * xx + yy * yy)
    wc = cutoff.reshape(-1, 1, 1)
    safe_r = torch.where(r > 0, r, torch.ones_like(r))
    kernel = wc * torch.special.bessel_j1(wc * safe_r) / (2.0 * math.pi * safe_r)
    kernel = torch.where(r > 0, kernel, wc * wc / (4.0 * math.pi))
    kernel = kernel * _support_mask(sizes, full_size, device)
    return kernel / kernel.sum(dim=(-2, -1), keepdim=True)


def _pad_mode(x: Tensor, pad: int) -> str:
    return "reflect" if pad < min(x.shape[-2], x.shape[-1]) else "replicate"


def filter2d(x: Tensor, kernels: Tensor) -> Tensor:
    """Filter (B, C, H, W) with (B, K, K) per-sample or (K, K) shared kernels, same size."""
    b, c, h, w = x.shape
    if kernels.ndim == 2:
        kernels = kernels.expand(b, *kernels.shape)
    k = kernels.shape[-1]
    pad = k // 2
    padded = F.pad(x, (pad, pad, pad, pad), mode=_pad_mode(x, pad))
    weight = kernels.to(x.dtype).repeat_interleave(c, dim=0).unsqueeze(1)  # (B*C, 1, K, K)
    out = F.conv2d(padded.reshape(1, b * c, *padded.shape[-2:]), weight, groups=b * c)
    return out.reshape(b, c, h, w)


def gaussian_kernel1d(sigma: Tensor, size: int) -> Tensor:
    """(B, size) normalised Gaussian kernels; sigma <= 0 gives the identity."""
    r = torch.arange(size, device=sigma.device, dtype=torch.float32) - (size - 1) / 2.0
    s = sigma.to(torch.float32).reshape(-1, 1)
    safe = torch.where(s > 0, s, torch.ones_like(s))
    kernel = torch.exp(-0.5 * (r / safe) ** 2)
    identity = (r.abs() < 0.5).to(torch.float32).expand_as(kernel)
    kernel = torch.where(s > 0, kernel, identity)
    return kernel / kernel.sum(dim=-1, keepdim=True)


def gaussian_blur(x: Tensor, sigma: Tensor, size: int | None = None, axes: str = "yx") -> Tensor:
    """Separable Gaussian blur with per-sample ``sigma`` (B,) in pixels along ``axes``.

    ``size`` defaults to ``2 * ceil(3 * max sigma) + 1``, which needs a host value;
    pass it explicitly to keep the call free of device synchronisation.
    """
    b, c, h, w = x.shape
    if size is None:
        size = 2 * math.ceil(3.0 * float(sigma.max())) + 1
    size = max(1, size | 1)
    kernel = gaussian_kernel1d(sigma, size).to(x.dtype).repeat_interleave(c, dim=0)
    pad = size // 2
    out = x.reshape(1, b * c, h, w)
    if "y" in axes and size > 1:
        out = F.pad(out, (0, 0, pad, pad), mode="reflect" if pad < h else "replicate")
        out = F.conv2d(out, kernel.reshape(b * c, 1, size, 1), groups=b * c)
    if "x" in axes and size > 1:
        out = F.pad(out, (pad, pad, 0, 0), mode="reflect" if pad < w else "replicate")
        out = F.conv2d(out, kernel.reshape(b * c, 1, 1, size), groups=b * c)
    return out.reshape(b, c, h, w)
