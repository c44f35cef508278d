"""BliMSR's generator: residual attention groups with multi-head convolutional attention.

F0 = conv3(lr) (64 channels). Body: G groups, each B residual attention blocks
plus a group skip (x + blocks(x)). Tail: concat[conv1x1(body), F0] ->
conv3 128 -> 256 -> PixelShuffle(2) -> conv3 64 -> 256 -> PixelShuffle(2) ->
conv1x1 -> sigmoid. The paper size (8 groups x 16 blocks x 64 channels) has
about 19 M parameters; ``blimsr-lite`` is a CPU-trainable preset.

``residual=True`` (not in the paper) replaces the sigmoid output by
``bicubic(lr) + tail(...)`` with the 1x1 tail zero-initialised, so the generator
starts as bicubic exactly (see :func:`medsr.models.base.bicubic_skip`).

The attention (MHCA) is written from its published description only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from medsr.errors import ConfigError
from medsr.models.base import (
    ScalePair,
    SRModel,
    bicubic_skip,
    check_channels,
    check_residual,
    pixel_shuffle_receptive_field,
    upsampling_factors,
)


class StrideOneTransposedConv2d(nn.ConvTranspose2d):
    """A size-preserving transposed conv (stride 1, padding k // 2), computed as the
    equivalent ordinary conv: ``conv2d(x, flip(W).transpose(0, 1), padding=k - 1 - p)``.
    Same parameters and result as ``nn.ConvTranspose2d``; about twice as fast on CPUs."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        weight = self.weight.flip(2, 3).transpose(0, 1)
        k = self.kernel_size[0]
        return F.conv2d(x, weight, self.bias, padding=k - 1 - k // 2)


class MultiHeadConvAttention(nn.Module):
    """Gate the features by sigmoid(sum of three convolutional heads).

    Each head squeezes C channels to C / reduction and expands them back:
    a 1x1 head (conv1x1-ReLU-conv1x1) and k x k heads for k = 3, 5
    (conv k x k - ReLU - transposed conv k x k), all size-preserving.
    ``y = x * sigmoid(h1(x) + h3(x) + h5(x))``.
    """

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.heads = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels, hidden, k, padding=k // 2),
                nn.ReLU(inplace=True),
                StrideOneTransposedConv2d(hidden, channels, k)
                if k > 1
                else nn.Conv2d(hidden, channels, 1),
            )
            for k in (1, 3, 5)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.heads[0](x)
        for head in self.heads[1:]:
            logits = logits + head(x)
        return x * torch.sigmoid(logits)

    #: LR pixels on each side the gate looks at: the 5x5 conv and its 5x5 transpose.
    receptive_field = 4


class ResidualAttentionBlock(nn.Module):
    """x + MHCA(conv3(ReLU(conv3(x))))."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
            MultiHeadConvAttention(channels, reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)

    receptive_field = 2 + MultiHeadConvAttention.receptive_field


class ResidualAttentionGroup(nn.Module):
    """x + blocks(x)."""

    def __init__(self, channels: int, num_blocks: int, reduction: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            *(ResidualAttentionBlock(channels, reduction) for _ in range(num_blocks))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.blocks(x)


class BliMSR(SRModel):
    """The BliMSR generator for a fixed scale (x4 in the paper; 2, 3, 8 also build)."""

    def __init__(
        self,
        scale: int = 4,
        num_groups: int = 8,
        num_blocks: int = 16,
        channels: int = 64,
        reduction: int = 4,
        in_channels: int = 1,
        out_channels: int = 1,
        residual: bool = False,
        name: str = "blimsr",
    ) -> None:
        super().__init__()
        check_channels(in_channels, out_channels)
        check_residual(name, residual, in_channels, out_channels)
        if num_groups < 1 or num_blocks < 0 or channels < 1 or reduction < 1:
            raise ConfigError(
                f"{name}: num_groups >= 1, num_blocks >= 0, channels >= 1 and reduction >= 1 required"
            )
        factors = upsampling_factors(scale, name)
        self.name = name
        self.in_channels, self.out_channels = in_channels, out_channels
        self.default_scale = (float(scale), float(scale))
        self.supported_scales = (self.default_scale,)
        self.config = {
            "scale": int(scale),
            "num_groups": num_groups,
            "num_blocks": num_blocks,
            "channels": channels,
            "reduction": reduction,
            "in_channels": in_channels,
            "out_channels": out_channels,
            "residual": bool(residual),
        }
        self.residual = bool(residual)
        self.head = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.body = nn.Sequential(
            *(ResidualAttentionGroup(channels, num_blocks, reduction) for _ in range(num_groups))
        )
        self.body_out = nn.Conv2d(channels, channels, 1)
        stages: list[nn.Module] = []
        width = 2 * channels
        for r in factors:
            stages += [nn.Conv2d(width, channels * r * r, 3, padding=1), nn.PixelShuffle(r)]
            width = channels
        self.upsample = nn.Sequential(*stages)
        self.tail = nn.Conv2d(channels, out_channels, 1)
        if self.residual:  # start as bicubic exactly
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)  # type: ignore[arg-type]
        self.receptive_field = math.ceil(
            1
            + num_groups * num_blocks * ResidualAttentionBlock.receptive_field
            + pixel_shuffle_receptive_field(factors)
        )

    def upscale(self, lr: torch.Tensor, scale: ScalePair) -> torch.Tensor:
        f0 = self.head(lr)
        features = torch.cat([self.body_out(self.body(f0)), f0], dim=1)
        out = self.tail(self.upsample(features))
        if self.residual:
            return out + bicubic_skip(lr, scale)
        return torch.sigmoid(out)
