"""The one interface every generator and interpolation baseline shares.

A model maps a low-resolution batch ``lr`` of shape (B, C, H, W), intensities in
[0, 1], to ``(B, C', H', W')`` with ``(H', W') = output_size(H, W, scale)``:
``H' = ceil(H * sy)`` and ``W' = ceil(W * sx)`` (tolerant of float error), the
rule of MATLAB's ``imresize`` and :func:`medsr.degrade.resize.output_size`.

Scales are per axis, ``(sy, sx)``: ``(4, 4)`` for classic SR, ``(1, 4)`` for
ultrasound lateral upsampling, ``(1, 1)`` for same-size CT restoration.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from medsr.degrade.resize import output_size as imresize_output_size
from medsr.errors import ConfigError

Scale = float | tuple[float, float]
ScalePair = tuple[float, float]


def as_scale_pair(scale: Scale | list[float]) -> ScalePair:
    """``4`` -> ``(4.0, 4.0)``; ``(1, 4)`` -> ``(1.0, 4.0)``; rejects non-positive or non-finite values."""
    if isinstance(scale, (int, float)) and not isinstance(scale, bool):
        pair = (float(scale), float(scale))
    elif isinstance(scale, (tuple, list)) and len(scale) == 2:
        pair = (float(scale[0]), float(scale[1]))
    else:
        raise ConfigError(f"scale must be a number or a (sy, sx) pair, got {scale!r}")
    if not all(math.isfinite(s) and s > 0 for s in pair):
        raise ConfigError(f"scale must be positive and finite, got {scale!r}")
    return pair


def output_size(h: int, w: int, scale: Scale) -> tuple[int, int]:
    """Output (H', W') for an (h, w) input: ``(ceil(h * sy), ceil(w * sx))`` up to float error,
    exactly :func:`medsr.degrade.resize.output_size`, so models and degradations agree."""
    return imresize_output_size(h, w, as_scale_pair(scale))


def format_scale(scale: ScalePair) -> str:
    """``(4.0, 4.0)`` -> ``"x4"``; ``(1.0, 4.0)`` -> ``"x(1,4)"``."""
    sy, sx = (f"{s:g}" for s in scale)
    return f"x{sy}" if sy == sx else f"x({sy},{sx})"


def same_scale(a: ScalePair, b: ScalePair) -> bool:
    return abs(a[0] - b[0]) < 1e-6 and abs(a[1] - b[1]) < 1e-6


class SRModel(nn.Module):
    """Base class of generators and baselines: scale checking and the shared attributes.

    Subclasses set the attributes in ``__init__`` and implement
    :meth:`upscale`, which receives a validated ``(sy, sx)`` pair and must
    return exactly ``output_size(H, W, scale)`` pixels.
    """

    name: str = ""
    in_channels: int = 1
    out_channels: int = 1
    default_scale: ScalePair = (4.0, 4.0)
    arbitrary_scale: bool = False
    supported_scales: tuple[ScalePair, ...] = ()
    is_baseline: bool = False
    receptive_field: int = 0
    #: The build overrides, so ``build(model.name, **model.config)`` rebuilds it.
    config: dict[str, Any]
    #: Per-axis scale range accepted when ``arbitrary_scale`` (inclusive).
    scale_range: tuple[float, float] = (1.0, 4.0)

    def __init__(self) -> None:
        super().__init__()
        self.config = {}

    def resolve_scale(self, scale: Scale | None) -> ScalePair:
        """The (sy, sx) to run at: ``None`` means ``default_scale``; unsupported ones raise ConfigError."""
        if scale is None:
            return self.default_scale
        pair = as_scale_pair(scale)
        if self.arbitrary_scale:
            lo, hi = self.scale_range
            if not all(lo - 1e-6 <= s <= hi + 1e-6 for s in pair):
                raise ConfigError(
                    f"{self.name} supports any scale per axis in [{lo:g}, {hi:g}], got {scale!r}"
                )
            return pair
        for supported in self.supported_scales:
            if same_scale(pair, supported):
                return supported
        names = ", ".join(format_scale(s) for s in self.supported_scales)
        raise ConfigError(
            f"{self.name} was built for {names}; scale {scale!r} is not supported "
            f"(build it with another 'scale' to change that)"
        )

    def forward(self, lr: torch.Tensor, scale: Scale | None = None) -> torch.Tensor:
        if lr.dim() != 4 or lr.shape[1] != self.in_channels:
            raise ConfigError(
                f"{self.name} expects a (B, {self.in_channels}, H, W) tensor, got {tuple(lr.shape)}"
            )
        return self.upscale(lr, self.resolve_scale(scale))

    def upscale(self, lr: torch.Tensor, scale: ScalePair) -> torch.Tensor:
        raise NotImplementedError

    @property
    def grid(self) -> str:
        """Which pixel centres the output grid holds relative to the input's: ``dft`` (first
        centre kept, as zero-filled k-space) for zero-fill-skip models, ``area`` (field-of-
        view edges kept) otherwise; see :mod:`medsr.degrade.acquisition`."""
        return "dft" if getattr(self, "skip", None) == "zero-fill" else "area"

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        scales = (
            f"any in [{self.scale_range[0]:g}, {self.scale_range[1]:g}]"
            if self.arbitrary_scale
            else ", ".join(format_scale(s) for s in self.supported_scales)
        )
        return (
            f"name={self.name!r}, channels={self.in_channels}->{self.out_channels}, scales={scales}"
        )


def bicubic_skip(lr: torch.Tensor, scale: ScalePair) -> torch.Tensor:
    """Bicubic upsampling of ``lr`` (MATLAB semantics), the base a residual generator adds to.

    With ``residual=True`` a generator predicts only ``SR - bicubic(LR)`` (VDSR's global
    residual) and starts from the bicubic image exactly, because its last layer is
    zero-initialised. It is not in the papers; it makes small models trained briefly on
    a CPU improve on bicubic instead of first having to learn to reproduce it.
    """
    from medsr.degrade.resize import imresize

    return imresize(lr, scale=scale, kernel="cubic")


#: what a residual generator adds its output to: ``True``/``"bicubic"`` or ``"zero-fill"``
SKIPS = ("bicubic", "zero-fill")


def skip_kind(name: str, residual: bool | str) -> str | None:
    """The global skip a ``residual`` setting names (``None`` for no skip)."""
    if residual is False or residual is None:
        return None
    if residual is True:
        return "bicubic"
    if residual in SKIPS:
        return str(residual)
    raise ConfigError(
        f"{name}: residual must be true, false or one of {list(SKIPS)}, got {residual!r}"
    )


def zero_fill_skip(lr: torch.Tensor, scale: ScalePair) -> torch.Tensor:
    """Zero-filled k-space interpolation (ZIP) of ``lr``, the base of a model for MR k-space
    acquisitions: such a model starts as what the scanner itself offers and learns
    ``SR - ZIP(LR)``. The output grid is the DFT grid (first pixel centre kept)."""
    from medsr.degrade.mr import zero_fill

    return zero_fill(lr, output_size(lr.shape[-2], lr.shape[-1], scale))


def global_skip(lr: torch.Tensor, scale: ScalePair, kind: str) -> torch.Tensor:
    """The skip ``kind`` (see :data:`SKIPS`) of ``lr`` at ``scale``."""
    return zero_fill_skip(lr, scale) if kind == "zero-fill" else bicubic_skip(lr, scale)


def check_residual(name: str, residual: bool | str, in_channels: int, out_channels: int) -> None:
    skip_kind(name, residual)
    if residual and in_channels != out_channels:
        raise ConfigError(
            f"{name}: residual=True adds the bicubic input, so in_channels must equal "
            f"out_channels (got {in_channels} and {out_channels})"
        )


def check_channels(in_channels: int, out_channels: int) -> None:
    if in_channels < 1 or out_channels < 1:
        raise ConfigError(
            f"in_channels and out_channels must be >= 1, got {in_channels}, {out_channels}"
        )


def upsampling_factors(scale: float | int, name: str) -> list[int]:
    """Pixel-shuffle stages for an integer scale: ``4 -> [2, 2]``, ``8 -> [2, 2, 2]``, ``3 -> [3]``."""
    if isinstance(scale, bool) or float(scale) != int(scale) or int(scale) < 2:
        raise ConfigError(f"{name}: scale must be 2, 3 or a power of two, got {scale!r}")
    s = int(scale)
    if s == 3:
        return [3]
    if s & (s - 1):
        raise ConfigError(f"{name}: scale must be 2, 3 or a power of two, got {scale!r}")
    return [2] * (s.bit_length() - 1)


def pixel_shuffle_receptive_field(factors: list[int], kernel: int = 3) -> float:
    """LR pixels of context one ``kernel``-sized conv per pixel-shuffle stage adds: sum of (k//2)/r_t."""
    total, resolution = 0.0, 1
    for r in factors:
        total += (kernel // 2) / resolution
        resolution *= r
    return total
