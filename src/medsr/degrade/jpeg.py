"""Baseline JPEG compression in torch, honouring a per-sample quality.

Our own implementation rather than kornia's (not a dependency) or a PIL round
trip (one host copy per image): 8-bit rounding, level shift by 128, the
orthonormal 8x8 DCT-II, quantisation ``round(F / Q) * Q`` with the standard
(Annex K) tables scaled like libjpeg (``s = 5000 / q`` below 50, else
``200 - 2q``; ``Q = floor((T s + 50) / 100)`` clipped to [1, 255]), inverse DCT and
8-bit rounding. Colour (C = 3) goes through full-range YCbCr with 4:2:0 chroma
(2x2 mean down, nearest up); other channel counts are coded as grey planes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["CHROMINANCE_TABLE", "LUMINANCE_TABLE", "jpeg", "quantization_tables"]

LUMINANCE_TABLE = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
CHROMINANCE_TABLE = (
    (17, 18, 24, 47, 99, 99, 99, 99),
    (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99),
    (47, 66, 99, 99, 99, 99, 99, 99),
    *((99,) * 8 for _ in range(4)),
)


def _dct_matrix(device: torch.device) -> Tensor:
    n = torch.arange(8, dtype=torch.float64)
    d = torch.cos((2 * n[None, :] + 1) * n[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d.to(device=device, dtype=torch.float32)


def quantization_tables(quality: Tensor, chroma: bool = False) -> Tensor:
    """(B, 8, 8) libjpeg-scaled tables for qualities (B,) in [1, 100]."""
    base = torch.tensor(
        CHROMINANCE_TABLE if chroma else LUMINANCE_TABLE, dtype=torch.float32, device=quality.device
    )
    q = quality.to(torch.float32).round().clamp(1, 100).reshape(-1, 1, 1)
    scale = torch.where(q < 50, 5000.0 / q, 200.0 - 2.0 * q)
    return torch.floor((base * scale + 50.0) / 100.0).clamp(1.0, 255.0)


def _pad_to(x: Tensor, multiple: int) -> Tensor:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


def _code_planes(planes: Tensor, tables: Tensor) -> Tensor:
    """Quantise 8x8 DCT blocks of level-shifted planes (B, P, H, W); H, W multiples of 8."""
    b, p, h, w = planes.shape
    d = _dct_matrix(planes.device)
    blocks = planes.reshape(b, p, h // 8, 8, w // 8, 8).transpose(3, 4)
    coeffs = d @ blocks @ d.T
    table = tables.reshape(b, 1, 1, 1, 8, 8)
    coeffs = torch.round(coeffs / table) * table
    return (d.T @ coeffs @ d).transpose(3, 4).reshape(b, p, h, w)


def jpeg(x: Tensor, quality: Tensor) -> Tensor:
    """JPEG round trip of (B, C, H, W) in [0, 1] at per-sample ``quality`` (B,)."""
    c, h, w = x.shape[1:]
    pixels = torch.round(x.clamp(0.0, 1.0) * 255.0)
    if c == 3:
        pixels = _pad_to(pixels, 16)
        r, g, bl = pixels[:, 0:1], pixels[:, 1:2], pixels[:, 2:3]
        y = 0.299 * r + 0.587 * g + 0.114 * bl
        cb = -0.168736 * r - 0.331264 * g + 0.5 * bl + 128.0
        cr = 0.5 * r - 0.418688 * g - 0.081312 * bl + 128.0
        y = _code_planes(y - 128.0, quantization_tables(quality)) + 128.0
        chroma = F.avg_pool2d(torch.cat([cb, cr], 1), 2) - 128.0
        chroma = _code_planes(chroma, quantization_tables(quality, chroma=True)) + 128.0
        chroma = chroma.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
        cb, cr = chroma[:, 0:1] - 128.0, chroma[:, 1:2] - 128.0
        out = torch.cat([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], dim=1)
    else:
        out = _code_planes(_pad_to(pixels, 8) - 128.0, quantization_tables(quality)) + 128.0
    out = torch.round(out.clamp(0.0, 255.0))[..., :h, :w]
    return (out / 255.0).to(x.dtype)
