"""SRResNet adapted to how ultrasound and CT lose resolution.

* ``sisr-us`` (ultrasound, lateral): the image is built from scan lines, so only
  x is undersampled. SRResNet trunk, then log2(sx) stages that double the width
  only: conv3 64 -> 128 and a width shuffle (channel pairs interleaved along x).
  ``upsampler="strided"`` is the original's variant instead: conv3 with stride
  (2, 1) to 256 channels then PixelShuffle(2), net x1 on y and x2 on x.
* ``sisr-ct`` (CT, sparse view): output size = input size (streak removal).
  Space-to-depth (PixelUnshuffle(r)) encoder, SRResNet trunk at 1/r resolution,
  pixel-shuffle decoder, conv9 and, by default, a global input skip so the net
  predicts the artefact.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from medsr.errors import ConfigError
from medsr.models.base import ScalePair, SRModel, check_channels, upsampling_factors
from medsr.models.srresnet import ResidualTrunk, check_blocks


class WidthShuffle(nn.Module):
    """(B, C*r, H, W) -> (B, C, H, W*r): pixel shuffle along x only."""

    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, cr, h, w = x.shape
        c = cr // self.factor
        return (
            x.view(b, c, self.factor, h, w).permute(0, 1, 3, 4, 2).reshape(b, c, h, w * self.factor)
        )


class StridedShuffle(nn.Module):
    """conv3 stride (2, 1) to 4C channels, PixelShuffle(2), crop back to H rows: x1 on y, x2 on x."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 4 * channels, 3, stride=(2, 1), padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))[:, :, : x.shape[2]]


class SISRUltrasound(SRModel):
    """Lateral (x only) super-resolution for ultrasound: scale (1, sx), sx a power of two."""

    def __init__(
        self,
        scale: int = 4,
        num_blocks: int = 5,
        channels: int = 64,
        upsampler: Literal["width-shuffle", "strided"] = "width-shuffle",
        in_channels: int = 1,
        out_channels: int = 1,
    ) -> None:
        super().__init__()
        check_channels(in_channels, out_channels)
        check_blocks("sisr-us", num_blocks, channels)
        factors = upsampling_factors(scale, "sisr-us")
        if factors != [2] * len(factors):
            raise ConfigError(f"sisr-us: scale must be a power of two, got {scale!r}")
        if upsampler not in ("width-shuffle", "strided"):
            raise ConfigError(
                f"sisr-us: upsampler must be width-shuffle or strided, got {upsampler!r}"
            )
        self.name = "sisr-us"
        self.in_channels, self.out_channels = in_channels, out_channels
        self.default_scale = (1.0, float(scale))
        self.supported_scales = (self.default_scale,)
        self.config = {
            "scale": int(scale),
            "num_blocks": num_blocks,
            "channels": channels,
            "upsampler": upsampler,
            "in_channels": in_channels,
            "out_channels": out_channels,
        }
        self.trunk = ResidualTrunk(in_channels, channels, num_blocks)
        stages: list[nn.Module] = []
        for _ in factors:
            if upsampler == "strided":
                stages += [StridedShuffle(channels), nn.PReLU(channels)]
            else:
                stages += [
                    nn.Conv2d(channels, 2 * channels, 3, padding=1),
                    WidthShuffle(2),
                    nn.PReLU(channels),
                ]
        self.upsample = nn.Sequential(*stages)
        self.tail = nn.Conv2d(channels, out_channels, 9, padding=4)
        per_stage_rows = 2 if upsampler == "strided" else 1
        self.receptive_field = (
            ResidualTrunk.receptive_field(num_blocks) + per_stage_rows * len(factors) + 4
        )

    def upscale(self, lr: torch.Tensor, scale: ScalePair) -> torch.Tensor:
        return self.tail(self.upsample(self.trunk(lr)))


class SISRCT(SRModel):
    """Same-size CT restoration: PixelUnshuffle(r) -> SRResNet trunk -> PixelShuffle(r) -> conv9."""

    def __init__(
        self,
        downscale: int = 2,
        num_blocks: int = 5,
        channels: int = 64,
        residual: bool = True,
        in_channels: int = 1,
        out_channels: int = 1,
    ) -> None:
        super().__init__()
        check_channels(in_channels, out_channels)
        check_blocks("sisr-ct", num_blocks, channels)
        if downscale < 1:
            raise ConfigError(f"sisr-ct: downscale must be >= 1, got {downscale!r}")
        if residual and in_channels != out_channels:
            raise ConfigError("sisr-ct: residual=True needs in_channels == out_channels")
        self.name = "sisr-ct"
        self.in_channels, self.out_channels = in_channels, out_channels
        self.default_scale = (1.0, 1.0)
        self.supported_scales = (self.default_scale,)
        self.config = {
            "downscale": downscale,
            "num_blocks": num_blocks,
            "channels": channels,
            "residual": residual,
            "in_channels": in_channels,
            "out_channels": out_channels,
        }
        self.downscale, self.residual = downscale, residual
        self.encode = nn.PixelUnshuffle(downscale)
        self.trunk = ResidualTrunk(in_channels * downscale**2, channels, num_blocks)
        self.decode = nn.Sequential(
            nn.Conv2d(channels, channels * downscale**2, 3, padding=1),
            nn.PixelShuffle(downscale),
            nn.PReLU(channels),
        )
        self.tail = nn.Conv2d(channels, out_channels, 9, padding=4)
        r = downscale
        self.receptive_field = r * (ResidualTrunk.receptive_field(num_blocks) + 1) + 4 + (r - 1)

    def upscale(self, lr: torch.Tensor, scale: ScalePair) -> torch.Tensor:
        h, w = lr.shape[2:]
        r = self.downscale
        pad_h, pad_w = (math.ceil(h / r) * r - h), (math.ceil(w / r) * r - w)
        x = F.pad(lr, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else lr
        out = self.tail(self.decode(self.trunk(self.encode(x))))[:, :, :h, :w]
        return lr + out if self.residual else out
