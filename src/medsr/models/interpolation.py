"""Interpolation baselines behind the model interface: nearest, bilinear, bicubic, Lanczos.

They call the same :func:`medsr.degrade.resize.imresize` (MATLAB ``imresize``
semantics: cubic a = -0.5, pixel-centre alignment ``u = (i + 0.5)/s - 0.5``)
that makes the LR images, so a bicubic baseline is computed exactly as the
degradation that it undoes. No weights; any per-axis scale.
"""

from __future__ import annotations

import math

import torch

from medsr.errors import ConfigError
from medsr.models.base import Scale, ScalePair, SRModel, check_channels, output_size

#: baseline name -> imresize kernel name and its half support in pixels
KERNELS: dict[str, tuple[str, float]] = {
    "nearest": ("nearest", 0.5),
    "bilinear": ("linear", 1.0),
    "bicubic": ("cubic", 2.0),
    "lanczos": ("lanczos3", 3.0),
}


class Interpolation(SRModel):
    """Upsampling by a fixed kernel, channel by channel."""

    def __init__(
        self,
        method: str = "bicubic",
        default_scale: float | tuple[float, float] = 4.0,
        max_scale: float = 16.0,
        in_channels: int = 1,
        out_channels: int | None = None,
    ) -> None:
        super().__init__()
        if method not in KERNELS:
            raise ConfigError(
                f"unknown interpolation {method!r}; choose one of {', '.join(KERNELS)}"
            )
        channels = in_channels
        if out_channels not in (None, in_channels):
            raise ConfigError(
                f"{method}: interpolation keeps the channel count; out_channels must equal in_channels"
            )
        check_channels(channels, channels)
        self.name = method
        self.kernel, half_support = KERNELS[method]
        self.in_channels = self.out_channels = channels
        self.arbitrary_scale = True
        self.is_baseline = True
        self.supported_scales = ()
        self.scale_range = (1.0, float(max_scale))
        self.default_scale = self.resolve_scale(default_scale)
        self.receptive_field = math.ceil(half_support) + 1
        self.config = {
            "default_scale": list(self.default_scale),
            "max_scale": float(max_scale),
            "in_channels": channels,
        }

    def flops(self, h: int, w: int, scale: Scale | None = None) -> int:
        """Multiplies and adds of one channel's resize: 2 * taps per output pixel of each
        1-D pass, y first then x (MATLAB's order for equal scales)."""
        from medsr.degrade.resize import resize_weights

        sy, sx = self.resolve_scale(scale)
        out_h, out_w = output_size(h, w, (sy, sx))
        total = 0
        for n_in, n_out, s, other in ((h, out_h, sy, w), (w, out_w, sx, out_h)):
            if n_out == n_in and s == 1.0:
                continue
            taps = resize_weights(n_in, n_out, s, self.kernel, False)[1].shape[1]
            total += 2 * taps * n_out * other
        return total * self.in_channels

    def upscale(self, lr: torch.Tensor, scale: ScalePair) -> torch.Tensor:
        from medsr.degrade.resize import imresize

        return imresize(lr, scale=scale, kernel=self.kernel, antialias=False)


class ZeroFill(SRModel):
    """Zero-filled k-space interpolation (ZIP): the MR scanner's own answer to a finer
    matrix, and the reference an MR k-space model must beat. Pads the centred spectrum
    with zeros (:func:`medsr.degrade.mr.zero_fill`); its output is on the DFT grid (first
    pixel centre kept). No weights; any per-axis scale >= 1."""

    def __init__(
        self,
        default_scale: float | tuple[float, float] = 2.0,
        max_scale: float = 16.0,
        in_channels: int = 1,
        out_channels: int | None = None,
    ) -> None:
        super().__init__()
        if out_channels not in (None, in_channels):
            raise ConfigError(
                "zero-fill keeps the channel count; out_channels must equal in_channels"
            )
        check_channels(in_channels, in_channels)
        self.name = "zero-fill"
        self.skip = "zero-fill"  # its grid is the DFT grid (SRModel.grid)
        self.in_channels = self.out_channels = in_channels
        self.arbitrary_scale = True
        self.is_baseline = True
        self.supported_scales = ()
        self.scale_range = (1.0, float(max_scale))
        self.default_scale = self.resolve_scale(default_scale)
        self.receptive_field = 0  # global: every output pixel depends on the whole input
        self.config = {
            "default_scale": list(self.default_scale),
            "max_scale": float(max_scale),
            "in_channels": in_channels,
        }

    def flops(self, h: int, w: int, scale: Scale | None = None) -> int:
        """About 5 N log2 N per complex FFT, forward on the input and inverse on the output."""
        sy, sx = self.resolve_scale(scale)
        out_h, out_w = output_size(h, w, (sy, sx))
        n_in, n_out = h * w, out_h * out_w
        return int(5 * (n_in * math.log2(max(n_in, 2)) + n_out * math.log2(max(n_out, 2))))

    def upscale(self, lr: torch.Tensor, scale: ScalePair) -> torch.Tensor:
        from medsr.degrade.mr import zero_fill

        return zero_fill(lr, output_size(lr.shape[-2], lr.shape[-1], scale))
