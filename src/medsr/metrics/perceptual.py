"""Perceptual full-reference measures without learned weights: GMSD and HaarPSI, as their
authors' MATLAB code computes them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from medsr.errors import ConfigError
from medsr.metrics.base import (
    DataRange,
    Shave,
    check_pair,
    metric_dtype,
    range_per_image,
    shave_border,
)

__all__ = ["GMSD_T", "HAARPSI_ALPHA", "HAARPSI_C", "gmsd", "haarpsi"]

#: GMSD's stability constant for 8-bit images (Xue et al. 2014).
GMSD_T = 170.0
#: HaarPSI's constants for natural images in [0, 255] (Reisenhofer et al. 2018).
HAARPSI_C = 30.0
HAARPSI_ALPHA = 4.2


def _planes_255(x: Tensor, data_range: DataRange, shave: Shave) -> Tensor:
    """2-D images in [0, R] as (B*C, 1, H, W) planes in float64 [0, 255] units (the scale the
    constants of GMSD and HaarPSI were tuned for), border shaved. The filters pad with
    zeros as the authors' code does, so the images must start at 0 (physical units such as
    HU are shifted to [0, R] first, e.g. with a normalisation's ``to_unit`` and R = 1)."""
    if x.ndim != 4:
        raise ConfigError(f"GMSD and HaarPSI take 2-D images (B, C, H, W); got {tuple(x.shape)}")
    x = shave_border(x, shave, 2).to(metric_dtype(x))
    b, c, h, w = x.shape
    r = range_per_image(data_range, b, x).reshape(b, 1, 1, 1)
    return (x * (255.0 / r)).reshape(b * c, 1, h, w)


def _mean_subsample(x: Tensor) -> Tensor:
    """MATLAB ``conv2(x, ones(2) / 4, 'same')(1:2:end, 1:2:end)``: 2x2 block means, with
    zeros beyond the bottom and right edges when a side is odd."""
    h, w = x.shape[-2:]
    return F.avg_pool2d(F.pad(x, (0, w % 2, 0, h % 2)), 2, stride=2)


def _conv_same(x: Tensor, kernel: Tensor) -> Tensor:
    """MATLAB ``conv2(x, k, 'same')`` up to the sign of ``k`` (zero padding; an even k x k
    window covers rows i - k/2 + 1 ... i + k/2)."""
    kh, kw = kernel.shape
    pad = ((kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2)
    weight = kernel.flip(0, 1).to(x)[None, None]
    return F.conv2d(F.pad(x, pad), weight)


def gmsd(x: Tensor, y: Tensor, data_range: DataRange, shave: Shave = 0) -> Tensor:
    """Gradient magnitude similarity deviation per image (Xue et al. 2014); 0 = identical,
    larger = worse; needs no learned weights.

    As the authors' MATLAB code: both images in [0, 255] units are 2x2-mean-subsampled,
    Prewitt gradients ``m = sqrt(gx^2 + gy^2)`` (3x3 kernels / 3, zero padding) give
    ``GMS = (2 m_x m_y + T) / (m_x^2 + m_y^2 + T)`` with ``T = 170``, and GMSD is the
    standard deviation (N - 1) of the GMS map. Channels are scored separately and averaged.
    """
    check_pair(x, y)
    batch, channels = x.shape[:2]
    a = _mean_subsample(_planes_255(x, data_range, shave))
    b = _mean_subsample(_planes_255(y, data_range, shave))
    prewitt = torch.tensor([[1.0, 0.0, -1.0]] * 3, dtype=a.dtype) / 3.0

    def magnitude(img: Tensor) -> Tensor:
        return torch.sqrt(_conv_same(img, prewitt) ** 2 + _conv_same(img, prewitt.T) ** 2)

    ma, mb = magnitude(a), magnitude(b)
    gms = (2.0 * ma * mb + GMSD_T) / (ma**2 + mb**2 + GMSD_T)
    return gms.flatten(1).std(dim=1).reshape(batch, channels).mean(dim=1)


def _haar_responses(x: Tensor, scale: int) -> tuple[Tensor, Tensor]:
    """|conv2(x, H, 'same')| and |conv2(x, H', 'same')| for HaarPSI's 2^s x 2^s Haar filter
    ``H`` (entries 2^-s, the top half negated). ``H`` is the outer product of a column
    [-1 ... -1, 1 ... 1] * 2^-s and a row of ones, so each response is two 1-D passes."""
    n = 2**scale
    step = torch.full((n,), 2.0**-scale, dtype=x.dtype, device=x.device)
    step[n // 2 :] *= -1.0  # the flipped column (conv2 flips; only magnitudes are used)
    ones = torch.ones(n, dtype=x.dtype, device=x.device)
    padded = F.pad(x, ((n - 1) // 2, n // 2, (n - 1) // 2, n // 2))
    rows = F.conv2d(F.conv2d(padded, step.view(1, 1, n, 1)), ones.view(1, 1, 1, n))
    cols = F.conv2d(F.conv2d(padded, ones.view(1, 1, n, 1)), step.view(1, 1, 1, n))
    return rows.abs(), cols.abs()


def haarpsi(x: Tensor, y: Tensor, data_range: DataRange, shave: Shave = 0) -> Tensor:
    """Haar wavelet-based perceptual similarity index per image (Reisenhofer et al. 2018),
    grey-level version; 1 = identical, in (0, 1]; needs no learned weights.

    As the authors' reference code: images in [0, 255] units, 2x2-mean-subsampled; Haar
    filters of sizes 2, 4, 8 in both orientations (``conv2 'same'``, zero padding); per
    orientation the local similarity is the mean over the two finest scales of
    ``(2 |c_x| |c_y| + C) / (c_x^2 + c_y^2 + C)`` and its weight ``max(|c_x|, |c_y|)`` at
    the coarsest scale; then ``HaarPSI = (logit(sum(sigmoid(S) W) / sum(W)) / alpha)^2``
    with ``sigmoid(v) = 1 / (1 + exp(-alpha v))``, ``C = 30`` and ``alpha = 4.2``.
    """
    check_pair(x, y)
    batch, channels = x.shape[:2]
    a = _mean_subsample(_planes_255(x, data_range, shave))
    b = _mean_subsample(_planes_255(y, data_range, shave))
    planes = a.shape[0]
    responses = [_haar_responses(torch.cat([a, b]), s) for s in (1, 2, 3)]
    numerator = a.new_zeros(planes)
    denominator = a.new_zeros(planes)
    for orientation in (0, 1):
        ca = [r[orientation][:planes] for r in responses]
        cb = [r[orientation][planes:] for r in responses]
        fine = [
            (2.0 * ca[s] * cb[s] + HAARPSI_C) / (ca[s] ** 2 + cb[s] ** 2 + HAARPSI_C)
            for s in (0, 1)
        ]
        similarity = 0.5 * (fine[0] + fine[1])
        weight = torch.maximum(ca[2], cb[2])
        weighted = torch.sigmoid(HAARPSI_ALPHA * similarity) * weight
        numerator = numerator + weighted.flatten(1).sum(1)
        denominator = denominator + weight.flatten(1).sum(1)
    pooled = numerator / denominator
    score = (torch.log(pooled / (1.0 - pooled)) / HAARPSI_ALPHA) ** 2
    return score.reshape(batch, channels).mean(dim=1)
