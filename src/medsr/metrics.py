"""Image-quality metrics with an explicit data range: PSNR, SSIM, MS-SSIM, FID, sharpness.

Every metric works per image on (B, C, H, W) or (B, C, D, H, W) tensors and
returns a (B,) tensor, so a report can give the mean *and* the spread. PSNR and
SSIM take a required ``data_range`` (the peak-to-peak range the intensities can
span: a CT window width in HU, ``2**bits - 1`` for stored integers, or 1 for
images normalised to [0, 1]): a metric that guesses 255 for 16-bit data is the
commonest reason published SR numbers cannot be compared.

SSIM follows Wang et al. 2004 as scikit-image computes it with
``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``: an 11-tap
Gaussian window (per axis, 3-D windows for volumes), ``K1 = 0.01``,
``K2 = 0.03``, and the mean taken over the pixels whose window lies inside the
image. The results agree with scikit-image to about 1e-6.

FID needs InceptionV3 ImageNet (or TF-ported FID) weights from a local file;
:class:`InceptionV3Pool` is written here in torchvision's layout so such a file
loads, and :func:`fid_from_features` works on any pre-computed features.
``gradient_sharpness`` and ``laplacian_variance_ratio`` judge GAN sharpness
without any network.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medsr.errors import ConfigError, InputError

__all__ = [
    "MS_SSIM_WEIGHTS",
    "InceptionV3Pool",
    "fid",
    "fid_from_features",
    "gaussian_window_1d",
    "gradient_sharpness",
    "inception_features",
    "laplacian_variance_ratio",
    "load_inception",
    "ms_ssim",
    "ms_ssim_np",
    "psnr",
    "psnr_np",
    "require_weights_file",
    "shave_border",
    "ssim",
    "ssim_map",
    "ssim_np",
]

#: Per-scale exponents of MS-SSIM (Wang, Simoncelli & Bovik 2003), finest scale first.
MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

DataRange = float | Tensor
Shave = int | Sequence[int]


def _check_pair(x: Tensor, y: Tensor) -> int:
    """Validate two batches of images and return the number of spatial axes (2 or 3)."""
    if x.shape != y.shape:
        raise ConfigError(f"metric inputs differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.ndim not in (4, 5):
        raise ConfigError(
            "metrics take (B, C, H, W) or (B, C, D, H, W) tensors; "
            f"got {x.ndim} dimensions {tuple(x.shape)}"
        )
    return x.ndim - 2


def _metric_dtype(x: Tensor) -> torch.dtype:
    """float64 where the device supports it, for sums over many pixels."""
    return torch.float32 if x.device.type == "mps" else torch.float64


def _filter_dtype(x: Tensor) -> torch.dtype:
    """float64 for float64 input, else float32: centred moments keep SSIM within ~1e-7."""
    return torch.promote_types(x.dtype, torch.float32)


def _range_per_image(data_range: DataRange, batch: int, like: Tensor) -> Tensor:
    """Broadcastable (B,) data range; a scalar applies to every image."""
    if data_range is None:
        raise ConfigError("a data_range is required (e.g. the CT window width, or 1.0 for [0, 1])")
    r = torch.as_tensor(data_range, dtype=like.dtype, device=like.device).reshape(-1)
    if r.numel() not in (1, batch):
        raise ConfigError(f"data_range has {r.numel()} values for a batch of {batch} images")
    if bool((r <= 0).any()) or not bool(torch.isfinite(r).all()):
        raise ConfigError(f"data_range must be positive and finite; got {data_range!r}")
    return r.expand(batch)


def shave_border(x: Tensor, shave: Shave, spatial_dims: int) -> Tensor:
    """Crop ``shave`` pixels from both ends of every spatial axis (an int, or one per axis)."""
    amounts = [int(shave)] * spatial_dims if isinstance(shave, int) else [int(s) for s in shave]
    if len(amounts) != spatial_dims:
        raise ConfigError(f"shave needs {spatial_dims} values for this input; got {len(amounts)}")
    if any(a < 0 for a in amounts):
        raise ConfigError(f"shave must be non-negative; got {shave!r}")
    index: list[slice] = [slice(None), slice(None)]
    for axis, a in enumerate(amounts):
        size = x.shape[2 + axis]
        if 2 * a >= size:
            raise ConfigError(f"shave {a} leaves nothing of an axis of {size} pixels")
        index.append(slice(a, size - a))
    return x[tuple(index)]


def psnr(x: Tensor, y: Tensor, data_range: DataRange, shave: Shave = 0) -> Tensor:
    """Peak signal-to-noise ratio per image in dB: ``10 log10(R^2 / MSE)``.

    ``R`` is ``data_range`` (a scalar or one value per image). Identical images
    give ``inf``, which reports show as such rather than failing.
    """
    dims = _check_pair(x, y)
    dtype = _metric_dtype(x)
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
    r = _range_per_image(data_range, x.shape[0], mse)
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
    dims = _check_pair(x, y)
    too_small = [s for s in x.shape[2:] if s < window]
    if too_small:
        raise ConfigError(
            f"SSIM needs at least {window} pixels along every spatial axis; "
            f"got {tuple(x.shape[2:])}"
        )
    r = _range_per_image(data_range, x.shape[0], x).reshape([-1] + [1] * (dims + 1))
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
    dims = _check_pair(x, y)
    dtype = _filter_dtype(x)
    x = shave_border(x, shave, dims).to(dtype)
    y = shave_border(y, shave, dims).to(dtype)
    r = _range_per_image(data_range, x.shape[0], x)
    step = _images_per_chunk(x)
    values = []
    for start in range(0, x.shape[0], step):  # image by image on the CPU: stays in cache
        stop = start + step
        s, _ = ssim_map(x[start:stop], y[start:stop], r[start:stop])
        values.append(s.flatten(1).to(_metric_dtype(s)).mean(dim=1))
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
    dims = _check_pair(x, y)
    dtype = _filter_dtype(x)
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
    return per_channel.to(_metric_dtype(per_channel)).mean(dim=1)


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


def _finite_differences(x: Tensor) -> list[Tensor]:
    """Forward differences along each spatial axis."""
    return [torch.diff(x, dim=axis) for axis in range(2, x.ndim)]


def gradient_sharpness(sr: Tensor, hr: Tensor, shave: Shave = 0) -> Tensor:
    """Mean gradient magnitude of SR divided by that of HR, per image (1 = as sharp as HR).

    Needs no network, so it can judge GAN outputs anywhere: values below 1 mean
    the model smooths, above 1 that it invents edges or noise. Independent of
    the data range.
    """
    dims = _check_pair(sr, hr)
    dtype = _metric_dtype(sr)

    def mean_gradient(img: Tensor) -> Tensor:
        img = shave_border(img, shave, dims).to(dtype)
        common = tuple([slice(None), slice(None)] + [slice(0, s - 1) for s in img.shape[2:]])
        squared = torch.zeros_like(img[common])
        for d in _finite_differences(img):
            squared = squared + d[common] ** 2
        return torch.sqrt(squared).flatten(1).mean(dim=1)

    return mean_gradient(sr) / mean_gradient(hr)


def laplacian_variance_ratio(sr: Tensor, hr: Tensor, shave: Shave = 0) -> Tensor:
    """Variance of the discrete Laplacian of SR over that of HR, per image (1 = as sharp)."""
    dims = _check_pair(sr, hr)
    dtype = _metric_dtype(sr)

    def laplacian_variance(img: Tensor) -> Tensor:
        img = shave_border(img, shave, dims).to(dtype)
        channels = img.shape[1]
        size = [3] * dims
        kernel = torch.zeros(size, dtype=dtype, device=img.device)
        centre = tuple([1] * dims)
        kernel[centre] = -2.0 * dims
        for axis in range(dims):
            for end in (0, 2):
                idx = [1] * dims
                idx[axis] = end
                kernel[tuple(idx)] = 1.0
        weight = kernel.expand(channels, 1, *size)
        conv = F.conv2d if dims == 2 else F.conv3d
        lap = conv(img, weight, groups=channels)
        return lap.flatten(1).var(dim=1, unbiased=False)

    return laplacian_variance(sr) / laplacian_variance(hr)


def fid_from_features(feats_a: np.ndarray | Tensor, feats_b: np.ndarray | Tensor) -> float:
    """Frechet distance between Gaussians fitted to two sets of (N, F) feature vectors.

    ``FID = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})``. The trace of the
    matrix square root is computed as the sum of square roots of the eigenvalues
    of ``S_a^{1/2} S_b S_a^{1/2}`` (symmetric, positive semi-definite), which is
    exact and avoids the complex round-off of a general ``sqrtm``.
    """
    a = np.asarray(feats_a.detach().cpu() if isinstance(feats_a, Tensor) else feats_a, np.float64)
    b = np.asarray(feats_b.detach().cpu() if isinstance(feats_b, Tensor) else feats_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ConfigError(
            f"FID needs two (N, F) feature arrays with the same F; got {a.shape} and {b.shape}"
        )
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ConfigError("FID needs at least two feature vectors per set")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a = np.cov(a, rowvar=False)
    cov_b = np.cov(b, rowvar=False)
    eig_a, vec_a = np.linalg.eigh(cov_a)
    root_a = (vec_a * np.sqrt(np.clip(eig_a, 0.0, None))) @ vec_a.T
    middle = root_a @ cov_b @ root_a
    eig_mid = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_root = float(np.sqrt(np.clip(eig_mid, 0.0, None)).sum())
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_root)


def require_weights_file(path: str | Path | None, what: str, option: str) -> Path:
    """Return ``path`` as a Path or raise a one-line ConfigError naming the option to set.

    medsr never downloads weights: LPIPS, FID and perceptual losses need a local file.
    """
    if path is None or str(path) == "":
        raise ConfigError(
            f"{what} needs a local weights file: set {option}; none is bundled and medsr "
            "never downloads"
        )
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"{option}: weights file {p} does not exist")
    return p


# --- FID: InceptionV3 pool features from a local weights file -------------------------------


class _BasicConv(nn.Module):
    """Conv (no bias), BatchNorm (eps 1e-3), ReLU: torchvision's ``BasicConv2d``."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], **kw: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: Tensor, fid: bool) -> Tensor:
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=not fid)


class _InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int, fid: bool) -> None:
        super().__init__()
        self.fid = fid
        self.branch1x1 = _BasicConv(cin, 64, 1)
        self.branch5x5_1 = _BasicConv(cin, 48, 1)
        self.branch5x5_2 = _BasicConv(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _BasicConv(cin, 64, 1)
        self.branch3x3dbl_2 = _BasicConv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _BasicConv(96, 96, 3, padding=1)
        self.branch_pool = _BasicConv(cin, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_avg3(x, self.fid)),
            ],
            1,
        )


class _InceptionB(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = _BasicConv(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = _BasicConv(cin, 64, 1)
        self.branch3x3dbl_2 = _BasicConv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _BasicConv(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                F.max_pool2d(x, 3, stride=2),
            ],
            1,
        )


class _InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int, fid: bool) -> None:
        super().__init__()
        self.fid = fid
        row, col = {"padding": (0, 3)}, {"padding": (3, 0)}
        self.branch1x1 = _BasicConv(cin, 192, 1)
        self.branch7x7_1 = _BasicConv(cin, c7, 1)
        self.branch7x7_2 = _BasicConv(c7, c7, (1, 7), **row)
        self.branch7x7_3 = _BasicConv(c7, 192, (7, 1), **col)
        self.branch7x7dbl_1 = _BasicConv(cin, c7, 1)
        self.branch7x7dbl_2 = _BasicConv(c7, c7, (7, 1), **col)
        self.branch7x7dbl_3 = _BasicConv(c7, c7, (1, 7), **row)
        self.branch7x7dbl_4 = _BasicConv(c7, c7, (7, 1), **col)
        self.branch7x7dbl_5 = _BasicConv(c7, 192, (1, 7), **row)
        self.branch_pool = _BasicConv(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = self.branch7x7dbl_1(x)
        for layer in (
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            d = layer(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg3(x, self.fid))], 1)


class _InceptionD(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = _BasicConv(cin, 192, 1)
        self.branch3x3_2 = _BasicConv(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _BasicConv(cin, 192, 1)
        self.branch7x7x3_2 = _BasicConv(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _BasicConv(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _BasicConv(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        return torch.cat(
            [self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, stride=2)], 1
        )


class _InceptionE(nn.Module):
    def __init__(self, cin: int, pool: str) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = _BasicConv(cin, 320, 1)
        self.branch3x3_1 = _BasicConv(cin, 384, 1)
        self.branch3x3_2a = _BasicConv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _BasicConv(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _BasicConv(cin, 448, 1)
        self.branch3x3dbl_2 = _BasicConv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _BasicConv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _BasicConv(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _BasicConv(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        if self.pool == "max":
            pooled = F.max_pool2d(x, 3, stride=1, padding=1)
        else:
            pooled = _avg3(x, self.pool == "avg-fid")
        return torch.cat([self.branch1x1(x), b3, d, self.branch_pool(pooled)], 1)


class InceptionV3Pool(nn.Module):
    """InceptionV3 up to its 2048-d global average pool, for FID.

    Module names follow torchvision's ``Inception3`` (``Conv2d_1a_3x3.conv.weight``,
    ``Mixed_7c.branch_pool.bn.running_var``, ...), so both torchvision's
    ``inception_v3_google`` file and the TF-ported FID weights
    (``pt_inception-2015-12-05``, 1008 classes) load. ``fid_variant`` selects
    the FID network's pooling quirks (average pools that exclude padding,
    a max pool in the last block), which the published FID numbers rely on.
    Input: [0, 1] images with 1 or 3 channels, resized bilinearly to 299x299
    and mapped to [-1, 1].
    """

    def __init__(self, fid_variant: bool = True, resize_to: int | None = 299) -> None:
        super().__init__()
        fid = fid_variant
        self.fid_variant = fid_variant
        self.resize_to = resize_to
        self.Conv2d_1a_3x3 = _BasicConv(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _BasicConv(32, 32, 3)
        self.Conv2d_2b_3x3 = _BasicConv(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _BasicConv(64, 80, 1)
        self.Conv2d_4a_3x3 = _BasicConv(80, 192, 3)
        self.Mixed_5b = _InceptionA(192, 32, fid)
        self.Mixed_5c = _InceptionA(256, 64, fid)
        self.Mixed_5d = _InceptionA(288, 64, fid)
        self.Mixed_6a = _InceptionB(288)
        self.Mixed_6b = _InceptionC(768, 128, fid)
        self.Mixed_6c = _InceptionC(768, 160, fid)
        self.Mixed_6d = _InceptionC(768, 160, fid)
        self.Mixed_6e = _InceptionC(768, 192, fid)
        self.Mixed_7a = _InceptionD(768)
        self.Mixed_7b = _InceptionE(1280, "avg-fid" if fid else "avg")
        self.Mixed_7c = _InceptionE(2048, "max" if fid else "avg")
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> InceptionV3Pool:
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ConfigError(f"FID features need (B, 1|3, H, W) images; got {tuple(x.shape)}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.resize_to is not None:
            size = (self.resize_to, self.resize_to)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        x = 2.0 * x - 1.0
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)
        return x.mean(dim=(2, 3))


def load_inception(
    weights: str | Path | None, option: str = "--fid-weights", resize_to: int | None = 299
) -> InceptionV3Pool:
    """InceptionV3 pool-feature network from a local torchvision-format weights file.

    A file whose ``fc.weight`` has 1008 rows is the TF-ported FID network (the
    pooling quirks are switched on); 1000 rows is torchvision's ImageNet model.
    """
    path = require_weights_file(weights, "FID (InceptionV3 pool features)", option)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(path, f"cannot read InceptionV3 weights: {exc}") from None
    if not isinstance(state, Mapping):
        raise InputError(path, "not a state dict of InceptionV3 weights")
    fc = state.get("fc.weight")
    fid_variant = fc is None or int(fc.shape[0]) == 1008
    model = InceptionV3Pool(fid_variant=fid_variant, resize_to=resize_to)
    target = model.state_dict()
    missing = [k for k in target if k not in state]
    if missing:
        raise InputError(path, f"not an InceptionV3 weights file: it has no {missing[0]!r}")
    for key, value in target.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise InputError(
                path, f"{key} has shape {tuple(state[key].shape)}, expected {tuple(value.shape)}"
            )
    model.load_state_dict({k: state[k] for k in target})
    return model


@torch.no_grad()
def inception_features(
    model: InceptionV3Pool, images: Iterable[Tensor], batch_size: int = 16
) -> np.ndarray:
    """(N, 2048) pool features of [0, 1] images given as (C, H, W) or (B, C, H, W) tensors."""
    device = next(model.parameters()).device
    rows: list[np.ndarray] = []
    pending: list[Tensor] = []

    def flush() -> None:
        if pending:
            batch = torch.cat(pending).to(device=device, dtype=torch.float32)
            rows.append(model(batch).double().cpu().numpy())
            pending.clear()

    for item in images:
        pending.append(item[None] if item.ndim == 3 else item)
        if sum(t.shape[0] for t in pending) >= batch_size:
            flush()
    flush()
    if not rows:
        raise ConfigError("FID needs at least two images per set; got none")
    return np.concatenate(rows)


def fid(
    images_a: Iterable[Tensor],
    images_b: Iterable[Tensor],
    weights: str | Path | None,
    option: str = "--fid-weights",
) -> float:
    """Frechet Inception Distance between two image sets, from a local InceptionV3 file."""
    model = load_inception(weights, option)
    return fid_from_features(
        inception_features(model, images_a), inception_features(model, images_b)
    )


# -- intensity bias and perceptual full-reference measures without learned weights ----------
__all__ += ["gmsd", "haarpsi", "mean_bias"]

#: GMSD's stability constant for 8-bit images (Xue et al. 2014).
GMSD_T = 170.0
#: HaarPSI's constants for natural images in [0, 255] (Reisenhofer et al. 2018).
HAARPSI_C = 30.0
HAARPSI_ALPHA = 4.2


def mean_bias(x: Tensor, y: Tensor, data_range: DataRange, shave: Shave = 0) -> Tensor:
    """Signed mean intensity bias per image as a fraction of the data range:
    ``(mean(x) - mean(y)) / R``. A GAN may invent texture; this says whether it also
    moved the grey levels (or HU) of the image as a whole."""
    dims = _check_pair(x, y)
    dtype = _metric_dtype(x)
    x = shave_border(x, shave, dims).to(dtype)
    y = shave_border(y, shave, dims).to(dtype)
    diff = (x - y).flatten(1).mean(dim=1)
    return diff / _range_per_image(data_range, x.shape[0], diff)


def _planes_255(x: Tensor, data_range: DataRange, shave: Shave) -> Tensor:
    """2-D images in [0, R] as (B*C, 1, H, W) planes in float64 [0, 255] units (the scale the
    constants of GMSD and HaarPSI were tuned for), border shaved. The filters pad with
    zeros as the authors' code does, so the images must start at 0 (physical units such as
    HU are shifted to [0, R] first, e.g. with a normalisation's ``to_unit`` and R = 1)."""
    if x.ndim != 4:
        raise ConfigError(f"GMSD and HaarPSI take 2-D images (B, C, H, W); got {tuple(x.shape)}")
    x = shave_border(x, shave, 2).to(_metric_dtype(x))
    b, c, h, w = x.shape
    r = _range_per_image(data_range, b, x).reshape(b, 1, 1, 1)
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
    _check_pair(x, y)
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
    _check_pair(x, y)
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
