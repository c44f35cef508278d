"""Full-reference fidelity per image: PSNR, SSIM, MS-SSIM (tensors and NumPy arrays), and
the mean intensity bias."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from medsr.errors import ConfigError
from medsr.metrics.base import (
    DataRange,
    Shave,
    check_pair,
    filter_dtype,
    metric_dtype,
    range_per_image,
    shave_border,
)

__all__ = [
    "MS_SSIM_WEIGHTS",
    "gaussian_window_1d",
    "mean_bias",
    "ms_ssim",
    "ms_ssim_np",
    "psnr",
    "psnr_np",
    "ssim",
    "ssim_map",
    "ssim_np",
]

#: Per-scale exponents of MS-SSIM (Wang, Simoncelli & Bovik 2003), finest scale first.
MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def psnr(x: Tensor, y: Tensor, data_range: DataRange, shave: Shave = 0) -> Tensor:
    """Peak signal-to-noise ratio per image in dB: ``10 log10(R^2 / MSE)``.

    ``R`` is ``data_range`` (a scalar or one value per image). Identical images
    give ``inf``, which reports show as such rather than failing.
    """
    dims = check_pair(x, y)
    dtype = metric_dtype(x)
    x = shave_border(x, shave, dims)
    y = shave_border(y, shave, dims)
    step = _images_per_chunk(x)
    if not (x.is_floating_point() and y.is_floating_point()):
        x, y = x.to(dtype), y.to(dtype)  # integers would wrap around when subtracted
    # the difference and its square in the input's precision (in place), summed in float64;
    # image by image on the CPU, where small buffers are reused instead of page-faulted
    sums = []
    if x.requires_grad or y.requires_grad:
        for i in range(0, x.shape[0], step):
            sums.append((x[i : i + step] - y[i : i + step]).flatten(1).square().sum(1, dtype=dtype))
    else:  # one reused buffer: no fresh pages per image
        buffer = torch.empty_like(x[:step], dtype=torch.promote_types(x.dtype, y.dtype))
        for i in range(0, x.shape[0], step):
            diff = torch.sub(x[i : i + step], y[i : i + step], out=buffer[: len(x[i : i + step])])
            sums.append(diff.flatten(1).square_().sum(dim=1, dtype=dtype))
    mse = torch.cat(sums) / x[0].numel()
    r = range_per_image(data_range, x.shape[0], mse)
    return 10.0 * torch.log10(r * r / mse)


def gaussian_window_1d(
    size: int = 11,
    sigma: float = 1.5,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> Tensor:
    """Normalised 1-D Gaussian taps ``exp(-k^2 / 2 sigma^2)`` for k in [-size//2, size//2]."""
    k = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    w = torch.exp(-0.5 * (k / sigma) ** 2)
    return w / w.sum()


def _separable_valid_filter(x: Tensor, taps: Tensor) -> Tensor:
    """Filter every channel separably with ``taps`` along each spatial axis, keeping only
    the positions whose whole window lies inside the input ("valid" correlation).

    On the CPU as a sum of shifted views per axis (``sum_t w_t x[t : t + L - n + 1]``):
    contiguous multiply-adds, several times faster than a depthwise conv there;
    elsewhere as depthwise convs.
    """
    spatial = x.ndim - 2
    if x.device.type == "cpu":
        weights = [float(w) for w in taps.detach().cpu()]
        for axis in range(2, 2 + spatial):
            length = x.shape[axis] - len(weights) + 1
            acc = x.narrow(axis, 0, length) * weights[0]
            for t, w in enumerate(weights[1:], start=1):
                acc.add_(x.narrow(axis, t, length), alpha=w)
            x = acc
        return x
    channels = x.shape[1]
    conv = F.conv2d if spatial == 2 else F.conv3d
    n = taps.numel()
    for axis in range(spatial):
        shape = [1, 1] + [1] * spatial
        shape[2 + axis] = n
        kernel = taps.reshape(shape).expand(channels, *shape[1:])
        x = conv(x, kernel, groups=channels)
    return x


def ssim_map(
    x: Tensor,
    y: Tensor,
    data_range: DataRange,
    window: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> tuple[Tensor, Tensor]:
    """Local SSIM and contrast-structure maps over the valid window positions.

    ``SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))``
    with ``C1 = (k1 R)^2`` and ``C2 = (k2 R)^2``; ``cs`` is the second factor
    alone. Differentiable, in the dtype of ``x``. The moments are filtered after
    subtracting each channel's mean of ``y`` and dividing by ``R`` (variances do
    not change; the means are shifted back), so float32 stays accurate for data
    in physical units far from zero, such as Hounsfield units.
    """
    dims = check_pair(x, y)
    too_small = [s for s in x.shape[2:] if s < window]
    if too_small:
        raise ConfigError(
            f"SSIM needs at least {window} pixels along every spatial axis; "
            f"got {tuple(x.shape[2:])}"
        )
    r = range_per_image(data_range, x.shape[0], x).reshape([-1] + [1] * (dims + 1))
    centre = y.detach().flatten(2).mean(dim=2).reshape(*y.shape[:2], *[1] * dims)
    x = (x - centre) / r
    y = (y - centre) / r
    offset = centre / r
    taps = gaussian_window_1d(window, sigma, dtype=x.dtype, device=x.device)
    c1 = k1**2
    c2 = k2**2
    moments = _separable_valid_filter(torch.cat([x, y, x * x, y * y, x * y], dim=1), taps)
    mu_x, mu_y, xx, yy, xy = moments.chunk(5, dim=1)
    var_x = xx - mu_x * mu_x
    var_y = yy - mu_y * mu_y
    cov = xy - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    mu_x = mu_x + offset
    mu_y = mu_y + offset
    luminance = (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    return luminance * cs, cs


def ssim(x: Tensor, y: Tensor, data_range: DataRange, shave: Shave = 0) -> Tensor:
    """Structural similarity per image (mean over channels and valid window positions).

    Computed in float32 unless the input is float64 (both agree with
    scikit-image to about 1e-7); returned as float64.
    """
    dims = check_pair(x, y)
    dtype = filter_dtype(x)
    x = shave_border(x, shave, dims).to(dtype)
    y = shave_border(y, shave, dims).to(dtype)
    r = range_per_image(data_range, x.shape[0], x)
    step = _images_per_chunk(x)
    values = []
    for start in range(0, x.shape[0], step):  # image by image on the CPU: stays in cache
        stop = start + step
        s, _ = ssim_map(x[start:stop], y[start:stop], r[start:stop])
        values.append(s.flatten(1).to(metric_dtype(s)).mean(dim=1))
    return torch.cat(values)


def _images_per_chunk(x: Tensor) -> int:
    """1 on the CPU (an image's five moment maps fit the cache; a batch's do not), else all."""
    return 1 if x.device.type == "cpu" else max(1, x.shape[0])


def ms_ssim(
    x: Tensor,
    y: Tensor,
    data_range: DataRange,
    shave: Shave = 0,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
) -> Tensor:
    """Multi-scale SSIM per image: ``SSIM_M^{w_M} * prod_{j<M} cs_j^{w_j}``.

    Each coarser scale is a 2x average-pool of the previous one; negative ``cs``
    values are clamped to 0 (as is usual) so the powers stay real. With the five
    standard weights the image needs at least 11 * 16 = 176 pixels per axis.
    """
    dims = check_pair(x, y)
    dtype = filter_dtype(x)
    x = shave_border(x, shave, dims).to(dtype)
    y = shave_border(y, shave, dims).to(dtype)
    scales = len(weights)
    need = 11 * 2 ** (scales - 1)
    if min(x.shape[2:]) < need:
        raise ConfigError(
            f"MS-SSIM with {scales} scales needs at least {need} pixels per axis; "
            f"got {tuple(x.shape[2:])}"
        )
    pool = F.avg_pool2d if dims == 2 else F.avg_pool3d
    w = torch.as_tensor(list(weights), dtype=dtype, device=x.device)
    factors = []
    for level in range(scales):
        s, cs = ssim_map(x, y, data_range)
        value = s if level == scales - 1 else cs
        factors.append(value.flatten(2).mean(dim=2).clamp_min(0.0))
        if level < scales - 1:
            x = pool(x, kernel_size=2)
            y = pool(y, kernel_size=2)
    stacked = torch.stack(factors, dim=0)  # (scales, B, C)
    per_channel = torch.prod(stacked ** w.reshape(-1, 1, 1), dim=0)
    return per_channel.to(metric_dtype(per_channel)).mean(dim=1)


def _as_batch(a: np.ndarray) -> Tensor:
    """(1, 1, ...) tensor; float32 arrays stay float32 (fast), anything else becomes float64."""
    arr = np.asarray(a)
    if arr.ndim not in (2, 3):
        raise ConfigError(f"expected a 2-D image or a 3-D volume; got shape {arr.shape}")
    dtype = np.float32 if arr.dtype == np.float32 else np.float64
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=dtype))[None, None]


def psnr_np(x: np.ndarray, y: np.ndarray, data_range: float, shave: Shave = 0) -> float:
    """PSNR in dB of one 2-D image or 3-D volume (``inf`` when identical)."""
    return float(psnr(_as_batch(x), _as_batch(y), data_range, shave)[0])


def ssim_np(x: np.ndarray, y: np.ndarray, data_range: float, shave: Shave = 0) -> float:
    """SSIM of one 2-D image or 3-D volume (3-D Gaussian window for volumes)."""
    return float(ssim(_as_batch(x), _as_batch(y), data_range, shave)[0])


def ms_ssim_np(x: np.ndarray, y: np.ndarray, data_range: float, shave: Shave = 0) -> float:
    """MS-SSIM of one 2-D image or 3-D volume."""
    return float(ms_ssim(_as_batch(x), _as_batch(y), data_range, shave)[0])


def mean_bias(x: Tensor, y: Tensor, data_range: DataRange, shave: Shave = 0) -> Tensor:
    """Signed mean intensity bias per image as a fraction of the data range:
    ``(mean(x) - mean(y)) / R``. A GAN may invent texture; this says whether it also
    moved the grey levels (or HU) of the image as a whole."""
    dims = check_pair(x, y)
    dtype = metric_dtype(x)
    x = shave_border(x, shave, dims).to(dtype)
    y = shave_border(y, shave, dims).to(dtype)
    diff = (x - y).flatten(1).mean(dim=1)
    return diff / range_per_image(data_range, x.shape[0], diff)
