"""SRResNet adapted to how ultrasound and CT lose resolution.

* ``sisr-us`` (ultrasound, lateral): the image is built from scan lines, so only
  x is undersampled. SRResNet trunk, then log2(sx) stages that double the width
  only: conv3 64 -> 128 and a width shuffle (channel pairs interleaved along x).
  ``upsampler="strided"`` is the original's variant instead: conv3 with stride
  (2, 1) to 256 channels then PixelShuffle(2), net x1 on y and x2 on x.
* ``sisr-ct`` (CT, sparse view): output size = input size (streak removal).
  ``layout="published"`` (the SISR-CT encoder/decoder): log2(r) encoder stages of
  [conv3, space-to-depth(2), PReLU], a conv3 head + PReLU, SRResNet residual blocks
  and conv3-BN with the trunk skip at 1/r resolution, a mirrored decoder of log2(r)
  stages [conv3, depth-to-space(2), PReLU] and a conv3 to the output channels.
  ``residual=True`` (the default) adds the FBP input to that output and starts the
  last conv at zero, so the network is the identity at initialisation and learns only
  the streak correction. ``layout="unshuffle"`` is the earlier medsr variant (one
  PixelUnshuffle(r), SRResNet trunk with a conv9 head, one shuffle stage, conv9). It
  stays the default while the shipped ``sisr-ct-sparse-view`` weights, whose manifest
  config predates ``layout``, use it; the configs name ``layout: published``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medsr.errors import ConfigError
from medsr.models.base import ScalePair, SRModel, check_channels, upsampling_factors
from medsr.models.srresnet import ResidualBlock, ResidualTrunk, check_blocks


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


SISR_CT_LAYOUTS = ("published", "unshuffle")


class SISRCT(SRModel):
    """Same-size CT restoration (sparse-view streak removal); see the module docstring."""

    def __init__(
        self,
        downscale: int = 2,
        num_blocks: int = 5,
        channels: int = 64,
        residual: bool = True,
        in_channels: int = 1,
        out_channels: int = 1,
        layout: Literal["published", "unshuffle"] = "unshuffle",
    ) -> None:
        super().__init__()
        check_channels(in_channels, out_channels)
        check_blocks("sisr-ct", num_blocks, channels)
        if layout not in SISR_CT_LAYOUTS:
            raise ConfigError(
                f"sisr-ct: layout must be one of {', '.join(SISR_CT_LAYOUTS)}, got {layout!r}"
            )
        if downscale < 1 or (layout == "published" and downscale & (downscale - 1)):
            raise ConfigError(
                f"sisr-ct: downscale must be >= 1 (a power of two for the published layout), "
                f"got {downscale!r}"
            )
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
            "layout": layout,
        }
        self.downscale, self.residual, self.layout = downscale, residual, layout
        r = downscale
        if layout == "unshuffle":
            self.encode: nn.Module = nn.PixelUnshuffle(r)
            self.trunk = ResidualTrunk(in_channels * r**2, channels, num_blocks)
            self.decode = nn.Sequential(
                nn.Conv2d(channels, channels * r**2, 3, padding=1),
                nn.PixelShuffle(r),
                nn.PReLU(channels),
            )
            self.tail = nn.Conv2d(channels, out_channels, 9, padding=4)
            self.receptive_field = r * (ResidualTrunk.receptive_field(num_blocks) + 1) + 4 + (r - 1)
        else:
            stages = r.bit_length() - 1
            encoder: list[nn.Module] = []
            width = in_channels
            for _ in range(stages):
                encoder += [
                    nn.Conv2d(width, channels, 3, padding=1),
                    nn.PixelUnshuffle(2),
                    nn.PReLU(4 * channels),
                ]
                width = 4 * channels
            self.encode = nn.Sequential(*encoder)
            self.head = nn.Sequential(nn.Conv2d(width, channels, 3, padding=1), nn.PReLU(channels))
            self.blocks = nn.Sequential(*(ResidualBlock(channels) for _ in range(num_blocks)))
            self.fuse = nn.Sequential(
                nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels)
            )
            decoder: list[nn.Module] = []
            for _ in range(stages):
                decoder += [
                    nn.Conv2d(channels, 4 * channels, 3, padding=1),
                    nn.PixelShuffle(2),
                    nn.PReLU(channels),
                ]
            self.decode = nn.Sequential(*decoder)
            self.tail = nn.Conv2d(channels, out_channels, 3, padding=1)
            # full-resolution pixels: encoder convs at 1, 2, ..., r/2 (r - 1) and their
            # block alignment (r - 1); head, blocks and fuse at 1/r; decoder convs at r/2 ... 1
            # (2r - 2 at most, r - 1 after alignment); the tail conv3 (1)
            self.receptive_field = 2 * (r - 1) + r * (2 * num_blocks + 2) + 2 * (r - 1) + 1
        if residual:  # the identity at initialisation: output = input + 0
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)  # type: ignore[arg-type]

    def _features(self, x: Tensor) -> Tensor:
        if self.layout == "unshuffle":
            return self.tail(self.decode(self.trunk(self.encode(x))))
        head = self.head(self.encode(x))
        return self.tail(self.decode(head + self.fuse(self.blocks(head))))

    def upscale(self, lr: Tensor, scale: ScalePair) -> Tensor:
        h, w = lr.shape[2:]
        r = self.downscale
        pad_h, pad_w = (math.ceil(h / r) * r - h), (math.ceil(w / r) * r - w)
        x = F.pad(lr, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else lr
        out = self._features(x)[:, :, :h, :w]
        return lr + out if self.residual else out
