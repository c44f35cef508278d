"""Swift-SRGAN (Krishnan & Ravikumar, 2021): SRResNet with depthwise-separable convs.

Every conv is separable: a depthwise kxk conv (groups = input channels) then a
1x1 pointwise conv. Head sep9x9 (64) + PReLU; 16 residual blocks
[sep3-BN-PReLU-sep3-BN] + skip; sep3-BN + global skip; log2(scale) stages of
[sep3 64 -> 256, PixelShuffle(2), PReLU]; sep9x9 to the output channels and
(tanh + 1) / 2 so the output lies in [0, 1]. About 0.20 M parameters at x4.

``residual=True`` (not in the paper) replaces the tanh output by
``bicubic(lr) + tail(...)`` with the tail's pointwise conv zero-initialised, so the
generator starts as bicubic exactly and a GAN never has to learn to reproduce the
input's intensities (see :func:`medsr.models.base.bicubic_skip`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from medsr.models.base import (
    ScalePair,
    SRModel,
    bicubic_skip,
    check_channels,
    check_residual,
    pixel_shuffle_receptive_field,
    upsampling_factors,
)
from medsr.models.srresnet import check_blocks


class SeparableConv2d(nn.Module):
    """Depthwise kxk conv (groups = in_channels, optional stride) then a 1x1 pointwise conv."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1
    ) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(
            in_channels,
            in_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=in_channels,
        )
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)

    @property
    def output_conv(self) -> nn.Conv2d:
        """The conv this block ends with: a BatchNorm after the block folds into it."""
        return self.pointwise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class SeparableResidualBlock(nn.Module):
    """x + BN(sep3(PReLU(BN(sep3(x)))))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            SeparableConv2d(channels, channels, 3),
            nn.BatchNorm2d(channels),
            nn.PReLU(channels),
            SeparableConv2d(channels, channels, 3),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SwiftSRGAN(SRModel):
    """The Swift-SRGAN generator for a fixed scale (2, 3 or a power of two)."""

    def __init__(
        self,
        scale: int = 4,
        num_blocks: int = 16,
        channels: int = 64,
        in_channels: int = 1,
        out_channels: int = 1,
        residual: bool = False,
    ) -> None:
        super().__init__()
        check_channels(in_channels, out_channels)
        check_residual("swift-srgan", residual, in_channels, out_channels)
        check_blocks("swift-srgan", num_blocks, channels)
        factors = upsampling_factors(scale, "swift-srgan")
        self.name = "swift-srgan"
        self.in_channels, self.out_channels = in_channels, out_channels
        self.default_scale = (float(scale), float(scale))
        self.supported_scales = (self.default_scale,)
        self.config = {
            "scale": int(scale),
            "num_blocks": num_blocks,
            "channels": channels,
            "in_channels": in_channels,
            "out_channels": out_channels,
            "residual": bool(residual),
        }
        self.residual = bool(residual)
        self.head = nn.Sequential(SeparableConv2d(in_channels, channels, 9), nn.PReLU(channels))
        self.blocks = nn.Sequential(*(SeparableResidualBlock(channels) for _ in range(num_blocks)))
        self.fuse = nn.Sequential(SeparableConv2d(channels, channels, 3), nn.BatchNorm2d(channels))
        stages: list[nn.Module] = []
        for r in factors:
            stages += [
                SeparableConv2d(channels, channels * r * r, 3),
                nn.PixelShuffle(r),
                nn.PReLU(channels),
            ]
        self.upsample = nn.Sequential(*stages)
        self.tail = SeparableConv2d(channels, out_channels, 9)
        if self.residual:  # start as bicubic exactly
            nn.init.zeros_(self.tail.pointwise.weight)
            nn.init.zeros_(self.tail.pointwise.bias)  # type: ignore[arg-type]
        self.receptive_field = math.ceil(
            4 + 2 * num_blocks + 1 + pixel_shuffle_receptive_field(factors) + 4 / scale
        )

    def upscale(self, lr: torch.Tensor, scale: ScalePair) -> torch.Tensor:
        head = self.head(lr)
        features = head + self.fuse(self.blocks(head))
        out = self.tail(self.upsample(features))
        if self.residual:
            return out + bicubic_skip(lr, scale)
        return (torch.tanh(out) + 1) / 2
