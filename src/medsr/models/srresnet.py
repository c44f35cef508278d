"""SRResNet (Ledig et al., 2017): the generator of SRGAN.

conv9x9 (64) + PReLU -> N residual blocks [conv3-BN-PReLU-conv3-BN] + skip ->
conv3-BN + global skip -> pixel-shuffle stages [conv3 64 -> 64 r^2, PixelShuffle(r),
PReLU] -> conv9x9 to the output channels. The output is linear (no tanh): the
model is trained on [0, 1] targets with pixel losses and callers clamp if they
need to. Classic SRResNet uses 16 blocks; the ultrasound/CT adaptation used 5.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from medsr.errors import ConfigError
from medsr.models.base import (
    ScalePair,
    SRModel,
    check_channels,
    check_residual,
    global_skip,
    pixel_shuffle_receptive_field,
    skip_kind,
    upsampling_factors,
)


class ResidualBlock(nn.Module):
    """x + BN(conv3(PReLU(BN(conv3(x))))): the SRResNet body block."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualTrunk(nn.Module):
    """Head conv9 + PReLU, residual blocks, conv3-BN and the global skip; keeps the size."""

    def __init__(self, in_channels: int, channels: int, num_blocks: int) -> None:
        super().__init__()
        self.head = nn.Sequential(
            nn.Conv2d(in_channels, channels, 9, padding=4), nn.PReLU(channels)
        )
        self.blocks = nn.Sequential(*(ResidualBlock(channels) for _ in range(num_blocks)))
        self.fuse = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head = self.head(x)
        return head + self.fuse(self.blocks(head))

    @staticmethod
    def receptive_field(num_blocks: int) -> int:
        """LR pixels on each side: 4 (conv9) + 2 per block + 1 (fuse conv)."""
        return 4 + 2 * num_blocks + 1


def check_blocks(name: str, num_blocks: int, channels: int) -> None:
    if num_blocks < 0 or channels < 1:
        raise ConfigError(f"{name}: num_blocks must be >= 0 and channels >= 1")


class SRResNet(SRModel):
    """SRResNet for a fixed integer scale (2, 3, 4, 8, ...)."""

    def __init__(
        self,
        scale: int = 4,
        num_blocks: int = 16,
        channels: int = 64,
        in_channels: int = 1,
        out_channels: int = 1,
        residual: bool | str = False,
    ) -> None:
        super().__init__()
        check_channels(in_channels, out_channels)
        self.skip = skip_kind("srresnet", residual)
        check_residual("srresnet", residual, in_channels, out_channels)
        check_blocks("srresnet", num_blocks, channels)
        factors = upsampling_factors(scale, "srresnet")
        self.name = "srresnet"
        self.in_channels, self.out_channels = in_channels, out_channels
        self.default_scale = (float(scale), float(scale))
        self.supported_scales = (self.default_scale,)
        self.config = {
            "scale": int(scale),
            "num_blocks": num_blocks,
            "channels": channels,
            "in_channels": in_channels,
            "out_channels": out_channels,
            "residual": residual if isinstance(residual, str) else bool(residual),
        }
        self.residual = self.skip is not None
        self.trunk = ResidualTrunk(in_channels, channels, num_blocks)
        stages: list[nn.Module] = []
        for r in factors:
            stages += [
                nn.Conv2d(channels, channels * r * r, 3, padding=1),
                nn.PixelShuffle(r),
                nn.PReLU(channels),
            ]
        self.upsample = nn.Sequential(*stages)
        self.tail = nn.Conv2d(channels, out_channels, 9, padding=4)
        if self.residual:  # start as the skip (bicubic or zero-fill) exactly
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)  # type: ignore[arg-type]
        self.receptive_field = math.ceil(
            ResidualTrunk.receptive_field(num_blocks)
            + pixel_shuffle_receptive_field(factors)
            + 4 / scale
        )

    def upscale(self, lr: torch.Tensor, scale: ScalePair) -> torch.Tensor:
        out = self.tail(self.upsample(self.trunk(lr)))
        return out + global_skip(lr, scale, self.skip) if self.skip is not None else out
