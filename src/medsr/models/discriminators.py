"""Discriminators of the four published systems; all accept any input size.

Each returns raw logits: (B, 1) for the image-level ones, (B, 1, H, W) for
``unet-sn`` (one realness logit per pixel, Real-ESRGAN style).

* ``srgan-vgg``: conv3 64 + LeakyReLU, 7 conv3-BN-LeakyReLU (64 s2, 128, 128 s2,
  256, 256 s2, 512, 512 s2), adaptive average pool 6x6 (the original's 96x96
  crops give exactly 6x6), Linear(512*36, 1024), LeakyReLU, Linear(1).
  ``batch_norm=False`` for gradient-penalty (WGAN-GP) training.
* ``swift``: the same stack with depthwise-separable convs (Swift-SRGAN).
* ``resnet-sn``: BliMSR's discriminator: conv3 to 64, then spectrally normalised
  residual blocks (64, 64), (64, 128 s2), (128, 128), (128, 256 s2), (256, 256),
  (256, 512 s2), (512, 512) with a parameter-free skip (bicubic half-size resize for
  stride 2, channel duplication where the width doubles), LeakyReLU 0.01, then an
  adaptive average pool to ``pool x pool`` and a spectrally normalised Linear to one
  logit. The original's Linear read the 64x64x512 map of a 512x512 slice (13.0 M
  parameters); ``pool=64`` reproduces it exactly there and accepts any size,
  ``pool=1`` (the default) is a global average.
* ``unet-sn``: spectrally normalised U-Net, 3 stride-2 levels, skips, per-pixel output.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from medsr.errors import ConfigError
from medsr.models.swift_srgan import SeparableConv2d

#: (channels, stride) of the 7 blocks after the first conv in SRGAN's discriminator
VGG_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 2),
    (128, 1),
    (128, 2),
    (256, 1),
    (256, 2),
    (512, 1),
    (512, 2),
)


class Discriminator(nn.Module):
    """Shared attributes: ``name``, ``in_channels``, ``per_pixel`` and the build ``config``."""

    name: str = ""
    in_channels: int = 1
    per_pixel: bool = False
    config: dict[str, Any]

    def __init__(self) -> None:
        super().__init__()
        self.config = {}


def _check(name: str, in_channels: int, width: int) -> None:
    if in_channels < 1 or width < 1:
        raise ConfigError(f"{name}: in_channels and width must be >= 1")


class _ImageLevelHead(nn.Module):
    """Adaptive average pool to pool x pool, Linear(C*pool^2, 1024), LeakyReLU(0.2), Linear(1)."""

    def __init__(self, channels: int, pool: int, hidden: int = 1024) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * pool * pool, hidden),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(x))


class VGGDiscriminator(Discriminator):
    """SRGAN's VGG-style discriminator, plain or depthwise-separable (``swift``)."""

    def __init__(
        self,
        in_channels: int = 1,
        width: int = 64,
        batch_norm: bool = True,
        separable: bool = False,
        pool: int = 6,
        name: str = "srgan-vgg",
    ) -> None:
        super().__init__()
        _check(name, in_channels, width)
        self.name, self.in_channels = name, in_channels
        self.config = {
            "in_channels": in_channels,
            "width": width,
            "batch_norm": batch_norm,
            "pool": pool,
        }

        def conv(cin: int, cout: int, stride: int) -> nn.Module:
            if separable:
                return SeparableConv2d(cin, cout, 3, stride=stride)
            return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)

        layers: list[nn.Module] = [conv(in_channels, width, 1), nn.LeakyReLU(0.2, inplace=True)]
        channels = width
        for mult, stride in VGG_BLOCKS:
            out = width * mult // 64
            layers.append(conv(channels, out, stride))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = _ImageLevelHead(channels, pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


#: LeakyReLU slope of BliMSR's discriminator.
BLIMSR_LEAKY_SLOPE = 0.01


class _SNResidualBlock(nn.Module):
    """LeakyReLU(conv3(LeakyReLU(conv3_s(x))) + skip(x)) with spectrally normalised convs.

    The skip has no parameters: a bicubic resize to the body's size where the block
    strides, and ``cat([x, x])`` where the width doubles (BliMSR's discriminator).
    """

    def __init__(self, cin: int, cout: int, stride: int, slope: float) -> None:
        super().__init__()
        if cout not in (cin, 2 * cin):
            raise ConfigError(f"resnet-sn: a block keeps or doubles its width, got {cin}->{cout}")
        self.body = nn.Sequential(
            spectral_norm(nn.Conv2d(cin, cout, 3, stride=stride, padding=1)),
            nn.LeakyReLU(slope, inplace=True),
            spectral_norm(nn.Conv2d(cout, cout, 3, padding=1)),
        )
        self.stride, self.duplicate, self.slope = stride, cout == 2 * cin, slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        skip = x
        if self.stride != 1:
            skip = F.interpolate(skip, size=out.shape[-2:], mode="bicubic", align_corners=False)
        if self.duplicate:
            skip = torch.cat([skip, skip], dim=1)
        return F.leaky_relu(out + skip, self.slope)


class ResNetSNDiscriminator(Discriminator):
    """BliMSR's spectrally normalised ResNet discriminator, any input size (module docstring)."""

    #: (width multiple, stride) of the seven residual blocks after the first conv
    PLAN: tuple[tuple[int, int], ...] = ((1, 1), (2, 2), (2, 1), (4, 2), (4, 1), (8, 2), (8, 1))

    def __init__(self, in_channels: int = 1, width: int = 64, pool: int = 1) -> None:
        super().__init__()
        _check("resnet-sn", in_channels, width)
        if pool < 1:
            raise ConfigError(f"resnet-sn: pool must be >= 1, got {pool}")
        self.name, self.in_channels = "resnet-sn", in_channels
        self.config = {"in_channels": in_channels, "width": width, "pool": pool}
        slope = BLIMSR_LEAKY_SLOPE
        layers: list[nn.Module] = [
            spectral_norm(nn.Conv2d(in_channels, width, 3, padding=1)),
            nn.LeakyReLU(slope, inplace=True),
        ]
        channels = width
        for mult, stride in self.PLAN:
            layers.append(_SNResidualBlock(channels, width * mult, stride, slope))
            channels = width * mult
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.classifier = spectral_norm(nn.Linear(channels * pool * pool, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


class UNetSNDiscriminator(Discriminator):
    """Per-pixel U-Net discriminator with spectral norm (Real-ESRGAN): (B, C, H, W) -> (B, 1, H, W).

    Down: conv3 -> 3 x [SN conv4 stride 2]; up: 3 x [bilinear to the skip's size,
    SN conv3, + skip]; then 2 SN conv3 and a conv3 to one channel. LeakyReLU 0.2.
    """

    def __init__(self, in_channels: int = 1, width: int = 64) -> None:
        super().__init__()
        _check("unet-sn", in_channels, width)
        self.name, self.in_channels, self.per_pixel = "unet-sn", in_channels, True
        self.config = {"in_channels": in_channels, "width": width}
        w = width
        self.conv0 = nn.Conv2d(in_channels, w, 3, padding=1)
        self.down = nn.ModuleList(
            spectral_norm(nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=False))
            for cin, cout in ((w, 2 * w), (2 * w, 4 * w), (4 * w, 8 * w))
        )
        self.up = nn.ModuleList(
            spectral_norm(nn.Conv2d(cin, cout, 3, padding=1, bias=False))
            for cin, cout in ((8 * w, 4 * w), (4 * w, 2 * w), (2 * w, w))
        )
        self.refine = nn.Sequential(
            spectral_norm(nn.Conv2d(w, w, 3, padding=1, bias=False)),
            nn.LeakyReLU(0.2, inplace=True),
            spectral_norm(nn.Conv2d(w, w, 3, padding=1, bias=False)),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(w, 1, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [F.leaky_relu(self.conv0(x), 0.2)]
        for conv in self.down:
            skips.append(F.leaky_relu(conv(skips[-1]), 0.2))
        y = skips.pop()
        for conv in self.up:
            skip = skips.pop()
            y = F.interpolate(y, size=skip.shape[2:], mode="bilinear", align_corners=False)
            y = F.leaky_relu(conv(y), 0.2) + skip
        return self.refine(y)
