"""MIASSR (Zhu et al., 2021): EDSR-lite features + Meta-Upscale, one model for any scale.

``sr = meta_upscale(edsr(lr - mean), scale) + mean``. EDSR-lite: conv3 (64),
16 residual blocks [conv3-ReLU-conv3] + skip, conv3 + global skip, no BN.

Meta-Upscale (Hu et al., 2019), per axis: HR row i has LR source
``y_i = floor(i / sy)`` and offset ``dy_i = i / sy - y_i``; likewise columns. A
small MLP, Linear(3, 256)-ReLU-Linear(256, 3*3*C*out), maps ``(1/s, dy, dx)``
to a 3x3 kernel applied to the LR feature neighbourhood around ``(y_i, x_j)``.
For a per-axis scale, ``1/s`` is ``1/sqrt(sy*sx)`` (= 1/s when isotropic).

Memory: the offsets are separable, so only the distinct ``dy`` (Ny of them)
and ``dx`` (Nx) need a weight prediction, Ny*Nx kernels in all (Ny = p for a
scale p/q in lowest terms, e.g. 4 at x4). Two exact evaluation paths, neither
materialising the ceil(s)^2 feature copies of the original code:

* ``conv``: one conv with all Ny*Nx kernels at LR resolution, then a gather of
  each HR pixel's value by (kernel, source) index. Memory Ny*Nx*out*H*W; used
  when Ny*Nx <= 4*sy*sx (integer and simple fractional scales).
* ``gather``: HR rows grouped by their ``dy`` class, in chunks of bounded size;
  LR neighbourhoods gathered by source index and contracted with the kernel of
  each column's ``dx`` class. Memory bounded by ``gather_budget`` elements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from medsr.errors import ConfigError
from medsr.models.base import (
    ScalePair,
    SRModel,
    bicubic_skip,
    check_channels,
    check_residual,
    output_size,
)


@dataclass(frozen=True)
class AxisSampling:
    """Meta-Upscale sampling of one axis: for each output index, its source and offset class."""

    source: torch.Tensor  # (n_out,) int64, floor(i / s), clamped to n_in - 1
    offset_class: torch.Tensor  # (n_out,) int64, index into ``offsets``
    offsets: torch.Tensor  # (n_classes,) float32, the distinct frac(i / s), ascending


def axis_sampling(n_in: int, scale: float) -> AxisSampling:
    """Sources ``floor(i/s)`` and distinct offsets ``i/s - floor(i/s)`` (rounded to 1e-6) of one axis."""
    n_out = output_size(n_in, 1, (scale, 1.0))[0]
    position = torch.arange(n_out, dtype=torch.float64, device="cpu") / scale
    source = torch.floor(position + 1e-9)
    offset = (position - source).clamp_min(0.0)
    keys = torch.round(offset * 1e6).to(torch.int64)
    distinct, offset_class = torch.unique(keys, sorted=True, return_inverse=True)
    return AxisSampling(
        source=source.to(torch.int64).clamp_max(n_in - 1),
        offset_class=offset_class,
        offsets=(distinct.to(torch.float64) / 1e6).to(torch.float32),
    )


class MetaUpscale(nn.Module):
    """Scale-conditioned 3x3 conv per HR pixel, predicted from (1/s, dy, dx) by a small MLP."""

    def __init__(
        self,
        channels: int,
        out_channels: int,
        hidden: int = 256,
        mode: Literal["auto", "conv", "gather"] = "auto",
        gather_budget: int = 1 << 23,
    ) -> None:
        super().__init__()
        self.channels, self.out_channels = channels, out_channels
        self.weight_mlp = nn.Sequential(
            nn.Linear(3, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, 9 * channels * out_channels),
        )
        self.mode = mode
        self.gather_budget = gather_budget

    def kernels(self, scale: ScalePair, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
        """Kernels for every (dy, dx) pair: (Ny, Nx, out, C, 3, 3)."""
        inv_scale = 1.0 / math.sqrt(scale[0] * scale[1])
        grid_y, grid_x = torch.meshgrid(dy, dx, indexing="ij")
        code = torch.stack([torch.full_like(grid_y, inv_scale), grid_y, grid_x], dim=-1)
        weights = self.weight_mlp(code)
        return weights.view(len(dy), len(dx), self.out_channels, self.channels, 3, 3)

    def forward(self, features: torch.Tensor, scale: ScalePair) -> torch.Tensor:
        _, _, h, w = features.shape
        rows, cols = axis_sampling(h, scale[0]), axis_sampling(w, scale[1])
        device, dtype = features.device, features.dtype
        kernels = self.kernels(
            scale, rows.offsets.to(device, dtype), cols.offsets.to(device, dtype)
        )
        mode = self.mode
        if mode == "auto":
            pairs = len(rows.offsets) * len(cols.offsets)
            mode = "conv" if pairs <= 4 * scale[0] * scale[1] else "gather"
        if mode == "conv":
            return self._conv_path(features, kernels, rows, cols)
        if mode == "gather":
            return self._gather_path(features, kernels, rows, cols)
        raise ConfigError(f"Meta-Upscale mode must be auto, conv or gather, got {mode!r}")

    def _conv_path(
        self, features: torch.Tensor, kernels: torch.Tensor, rows: AxisSampling, cols: AxisSampling
    ) -> torch.Tensor:
        """All Ny*Nx kernels as one LR conv, then each HR pixel picks its (kernel, source) value."""
        b, c, h, w = features.shape
        ny, nx = kernels.shape[:2]
        responses = F.conv2d(features, kernels.reshape(-1, c, 3, 3), padding=1)
        responses = responses.view(b, ny, nx, self.out_channels, h, w).permute(0, 3, 1, 4, 2, 5)
        device = features.device
        return responses[
            :,
            :,
            rows.offset_class.to(device)[:, None],
            rows.source.to(device)[:, None],
            cols.offset_class.to(device)[None, :],
            cols.source.to(device)[None, :],
        ]

    def _gather_path(
        self, features: torch.Tensor, kernels: torch.Tensor, rows: AxisSampling, cols: AxisSampling
    ) -> torch.Tensor:
        """Per dy class, per chunk of HR rows: gather 3x3 LR neighbourhoods and contract with the column kernels."""
        b, c, _, _ = features.shape
        device = features.device
        padded = F.pad(features, (1, 1, 1, 1)).permute(0, 2, 3, 1).contiguous()  # (B, H+2, W+2, C)
        w_out = len(cols.source)
        taps = torch.arange(3, device=device)
        col_index = (cols.source.to(device)[:, None] + taps)[:, None, None, None, :]
        # kernels laid out as (ky, kx, C) x out to match the gathered neighbourhoods
        column_kernels = kernels.permute(0, 1, 4, 5, 3, 2).reshape(
            kernels.shape[0], kernels.shape[1], 9 * c, self.out_channels
        )[:, cols.offset_class.to(device)]  # (Ny, W', 9C, out)
        batch_index = torch.arange(b, device=device)[None, :, None, None, None]
        rows_per_chunk = max(1, self.gather_budget // max(1, w_out * b * 9 * c))

        def contract(
            padded: torch.Tensor, row_kernels: torch.Tensor, row_index: torch.Tensor
        ) -> torch.Tensor:
            patches = padded[batch_index, row_index, col_index]  # (W', B, n, 3, 3, C)
            n = row_index.shape[2]
            out = torch.bmm(patches.reshape(w_out, b * n, 9 * c), row_kernels)
            return out.view(w_out, b, n, self.out_channels).permute(1, 3, 2, 0)

        pieces, order = [], []
        use_checkpoint = torch.is_grad_enabled() and (
            features.requires_grad or kernels.requires_grad
        )
        for klass in range(kernels.shape[0]):
            hr_rows = torch.nonzero(rows.offset_class == klass).flatten()
            for start in range(0, len(hr_rows), rows_per_chunk):
                chunk = hr_rows[start : start + rows_per_chunk]
                source = rows.source[chunk].to(device)
                row_index = (source[:, None] + taps)[None, None, :, :, None]
                if use_checkpoint:
                    piece = checkpoint(
                        contract, padded, column_kernels[klass], row_index, use_reentrant=False
                    )
                else:
                    piece = contract(padded, column_kernels[klass], row_index)
                pieces.append(piece)
                order.append(chunk)
        inverse = torch.argsort(torch.cat(order)).to(device)
        return torch.cat(pieces, dim=2)[:, :, inverse]


def meta_upscale_naive(meta: MetaUpscale, features: torch.Tensor, scale: ScalePair) -> torch.Tensor:
    """Reference Meta-Upscale as in the original code: unfold the features, replicate each LR
    neighbourhood ceil(sy)*ceil(sx) times, predict one kernel per replicated pixel, contract,
    and keep the slots that are real HR pixels. Memory ~ 2 * 9C * ceil(sy)*ceil(sx) * H*W
    values; for tests and the memory benchmark only."""
    b, c, h, w = features.shape
    ry, rx = math.ceil(scale[0] - 1e-6), math.ceil(scale[1] - 1e-6)
    patches = F.unfold(features, 3, padding=1).view(b, 9 * c, h, 1, w, 1)
    replicated = patches.expand(b, 9 * c, h, ry, w, rx).reshape(b, 9 * c, h * ry * w * rx)

    def slots(n_in: int, s: float, r: int) -> tuple[torch.Tensor, torch.Tensor]:
        axis = axis_sampling(n_in, s)
        index = torch.arange(len(axis.source))
        first = torch.full((n_in,), len(axis.source), dtype=torch.int64)
        first = first.scatter_reduce(0, axis.source, index, reduce="amin")
        slot = axis.source * r + (index - first[axis.source])
        offset = torch.zeros(n_in * r)
        offset[slot] = axis.offsets[axis.offset_class]
        return slot, offset

    row_slot, row_offset = slots(h, scale[0], ry)
    col_slot, col_offset = slots(w, scale[1], rx)
    grid_y, grid_x = torch.meshgrid(row_offset, col_offset, indexing="ij")
    inv_scale = 1.0 / math.sqrt(scale[0] * scale[1])
    code = torch.stack([torch.full_like(grid_y, inv_scale), grid_y, grid_x], dim=-1)
    code = code.to(features.device, features.dtype)
    weights = meta.weight_mlp(code.view(-1, 3)).view(h * ry * w * rx, meta.out_channels, 9 * c)
    out = torch.einsum("bkp,pok->bop", replicated, weights).view(b, -1, h * ry, w * rx)
    return out[:, :, row_slot.to(out.device)][:, :, :, col_slot.to(out.device)]


class EDSRBlock(nn.Module):
    """x + conv3(ReLU(conv3(x))), no batch norm."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class MIASSR(SRModel):
    """EDSR-lite + Meta-Upscale: any per-axis scale in [1, max_scale] (default 4)."""

    def __init__(
        self,
        num_blocks: int = 16,
        channels: int = 64,
        mlp_hidden: int = 256,
        data_mean: float = 0.5,
        max_scale: float = 4.0,
        default_scale: float | tuple[float, float] = 4.0,
        in_channels: int = 1,
        out_channels: int = 1,
        residual: bool = False,
    ) -> None:
        super().__init__()
        check_channels(in_channels, out_channels)
        check_residual("miassr", residual, in_channels, out_channels)
        if num_blocks < 0 or channels < 1 or mlp_hidden < 1 or max_scale < 1:
            raise ConfigError(
                "miassr: num_blocks >= 0, channels >= 1, mlp_hidden >= 1 and max_scale >= 1 required"
            )
        self.name = "miassr"
        self.in_channels, self.out_channels = in_channels, out_channels
        self.arbitrary_scale = True
        self.supported_scales = ()
        self.scale_range = (1.0, float(max_scale))
        self.default_scale = self.resolve_scale(default_scale)
        self.config = {
            "num_blocks": num_blocks,
            "channels": channels,
            "mlp_hidden": mlp_hidden,
            "data_mean": float(data_mean),
            "max_scale": float(max_scale),
            "default_scale": list(self.default_scale),
            "in_channels": in_channels,
            "out_channels": out_channels,
            "residual": bool(residual),
        }
        self.residual = bool(residual)
        self.data_mean: torch.Tensor
        self.register_buffer("data_mean", torch.tensor(float(data_mean)))
        self.head = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.blocks = nn.Sequential(*(EDSRBlock(channels) for _ in range(num_blocks)))
        self.fuse = nn.Conv2d(channels, channels, 3, padding=1)
        self.meta_upscale = MetaUpscale(channels, out_channels, hidden=mlp_hidden)
        if self.residual:  # zero kernels: start as bicubic exactly
            last = self.meta_upscale.weight_mlp[-1]
            assert isinstance(last, nn.Linear)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self.receptive_field = 1 + 2 * num_blocks + 1 + 1

    def features(self, lr: torch.Tensor) -> torch.Tensor:
        head = self.head(lr - self.data_mean)
        return head + self.fuse(self.blocks(head))

    def upscale(self, lr: torch.Tensor, scale: ScalePair) -> torch.Tensor:
        out = self.meta_upscale(self.features(lr), scale)
        return out + bicubic_skip(lr, scale) if self.residual else out + self.data_mean
