"""Sharpness of SR against HR without any network: gradient magnitude and Laplacian
variance ratios (1 = as sharp as HR)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from medsr.metrics.base import Shave, check_pair, metric_dtype, shave_border

__all__ = ["gradient_sharpness", "laplacian_variance_ratio"]


def _finite_differences(x: Tensor) -> list[Tensor]:
    """Forward differences along each spatial axis."""
    return [torch.diff(x, dim=axis) for axis in range(2, x.ndim)]


def gradient_sharpness(sr: Tensor, hr: Tensor, shave: Shave = 0) -> Tensor:
    """Mean gradient magnitude of SR divided by that of HR, per image (1 = as sharp as HR).

    Needs no network, so it can judge GAN outputs anywhere: values below 1 mean
    the model smooths, above 1 that it invents edges or noise. Independent of
    the data range.
    """
    dims = check_pair(sr, hr)
    dtype = metric_dtype(sr)

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
    dims = check_pair(sr, hr)
    dtype = metric_dtype(sr)

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
