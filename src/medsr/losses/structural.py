"""Structure losses: total variation, image-gradient L1, SSIM / D-SSIM, feature matching.

All are differentiable torch code, so every term reaches the generator (the
published BliMSR computed its gradient and D-SSIM terms on detached NumPy
copies, which trained nothing). Images are (B, C, H, W) or (B, C, D, H, W) in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medsr.errors import ConfigError
from medsr.metrics import ssim_map

__all__ = [
    "DSSIMLoss",
    "FeatureMatchingLoss",
    "GradientLoss",
    "SSIMLoss",
    "TotalVariationLoss",
    "spatial_differences",
]


def spatial_differences(x: Tensor) -> list[Tensor]:
    """Forward differences ``x[i+1] - x[i]`` along each spatial axis (H, W, and D for volumes)."""
    if x.ndim not in (4, 5):
        raise ConfigError(f"expected (B, C, H, W) or (B, C, D, H, W); got {tuple(x.shape)}")
    return [torch.diff(x, dim=axis) for axis in range(2, x.ndim)]


class TotalVariationLoss(nn.Module):
    """Total variation of the output alone.

    ``squared`` (SRGAN / Swift-SRGAN): ``2 * sum_axes mean(dx^2)``, the mean taken
    over channels and pixels and averaged over the batch. ``l1``: ``sum_axes mean |dx|``.
    """

    def __init__(self, kind: str = "squared") -> None:
        super().__init__()
        if kind not in ("squared", "l1"):
            raise ConfigError(f"total variation kind must be 'squared' or 'l1'; got {kind!r}")
        self.kind = kind

    def forward(self, sr: Tensor, hr: Tensor | None = None) -> Tensor:
        diffs = spatial_differences(sr)
        if self.kind == "squared":
            return 2.0 * sum((d.pow(2).mean() for d in diffs), sr.new_zeros(()))
        return sum((d.abs().mean() for d in diffs), sr.new_zeros(()))

    def extra_repr(self) -> str:
        return f"kind={self.kind}"


class GradientLoss(nn.Module):
    """``mean |grad sr - grad hr|``: L1 between forward differences, averaged over the axes."""

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        pairs = zip(spatial_differences(sr), spatial_differences(hr))
        terms = [F.l1_loss(a, b) for a, b in pairs]
        return torch.stack(terms).mean()


class SSIMLoss(nn.Module):
    """``1 - SSIM`` with the metric's Gaussian window (11 taps, sigma 1.5), batch mean."""

    def __init__(self, data_range: float = 1.0) -> None:
        super().__init__()
        self.data_range = float(data_range)

    def similarity(self, sr: Tensor, hr: Tensor) -> Tensor:
        """Mean SSIM, computed in float32 even under autocast (its variances cancel)."""
        dtype = torch.promote_types(sr.dtype, torch.float32)
        with torch.autocast(device_type=sr.device.type, enabled=False):
            s, _ = ssim_map(sr.to(dtype), hr.to(dtype), self.data_range)
        return s.mean()

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        return 1.0 - self.similarity(sr, hr)

    def extra_repr(self) -> str:
        return f"data_range={self.data_range}"


class DSSIMLoss(SSIMLoss):
    """Structural dissimilarity ``(1 - SSIM) / 2`` in [0, 1] (BliMSR's D-SSIM term)."""

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        return 0.5 * (1.0 - self.similarity(sr, hr))


class FeatureMatchingLoss(nn.Module):
    """Mean over layers of ``mean |F_l(sr) - F_l(hr)|`` on discriminator features.

    Takes the intermediate feature lists a discriminator returns with
    ``forward(x, return_features=True)``; real features are treated as constants.
    Needs no pretrained network.
    """

    def forward(self, fake_features: Sequence[Tensor], real_features: Sequence[Tensor]) -> Tensor:
        if len(fake_features) != len(real_features) or not fake_features:
            raise ConfigError(
                "feature matching needs equally long, non-empty feature lists; "
                f"got {len(fake_features)} and {len(real_features)}"
            )
        terms = [F.l1_loss(f, r.detach()) for f, r in zip(fake_features, real_features)]
        return torch.stack(terms).mean()
