"""What every metric does first: check the pair of image batches, take the data range per
image, shave the border, and choose the precision to sum in."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from medsr.errors import ConfigError

__all__ = [
    "DataRange",
    "Shave",
    "check_pair",
    "filter_dtype",
    "metric_dtype",
    "range_per_image",
    "shave_border",
]

DataRange = float | Tensor
Shave = int | Sequence[int]


def check_pair(x: Tensor, y: Tensor) -> int:
    """Validate two batches of images and return the number of spatial axes (2 or 3)."""
    if x.shape != y.shape:
        raise ConfigError(f"metric inputs differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.ndim not in (4, 5):
        raise ConfigError(
            "metrics take (B, C, H, W) or (B, C, D, H, W) tensors; "
            f"got {x.ndim} dimensions {tuple(x.shape)}"
        )
    return x.ndim - 2


def metric_dtype(x: Tensor) -> torch.dtype:
    """float64 where the device supports it, for sums over many pixels."""
    return torch.float32 if x.device.type == "mps" else torch.float64


def filter_dtype(x: Tensor) -> torch.dtype:
    """float64 for float64 input, else float32: centred moments keep SSIM within ~1e-7."""
    return torch.promote_types(x.dtype, torch.float32)


def range_per_image(data_range: DataRange, batch: int, like: Tensor) -> Tensor:
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
