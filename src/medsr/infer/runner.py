"""Running a generator for inference: device, precision, scale planning.

:class:`ModelRunner` wraps any generator (an :class:`~medsr.models.SRModel`, or
a plain ``nn.Module`` whose scale is found by a probe) and maps a batch of
grey [0, 1] planes (B, 1, h, w) on the CPU to upscaled planes on the CPU,
under ``torch.inference_mode``, channels-last, with fp16/bf16 autocast on CUDA
(bf16 on the CPU) and optionally ``torch.compile``.

:func:`plan_scale` decides the scale the model runs at for a requested
per-axis scale: an arbitrary-scale model runs at it; a fixed-scale model runs
at the smallest supported scale that reaches it (optionally with the axes
swapped, for through-plane use of an x-only model) and the result is resampled
down with antialiased cubic ``imresize``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from medsr.errors import ConfigError

ScalePair = tuple[float, float]
PRECISIONS = ("fp32", "fp16", "bf16")
_EPS = 1e-6


def format_scale(scale: ScalePair) -> str:
    """``(4, 4) -> "x4"``, ``(1, 4) -> "x(1,4)"``."""
    sy, sx = (f"{s:.4g}" for s in scale)
    return f"x{sy}" if sy == sx else f"x({sy},{sx})"


@dataclass(frozen=True)
class ModelInfo:
    """What inference needs to know about a generator."""

    name: str
    in_channels: int
    out_channels: int
    default_scale: ScalePair
    arbitrary_scale: bool
    supported_scales: tuple[ScalePair, ...]
    scale_range: tuple[float, float]
    receptive_field: int | None
    takes_scale: bool  # forward(lr, scale) rather than forward(lr)


def _pair(value: Any) -> ScalePair:
    if isinstance(value, int | float):
        return float(value), float(value)
    return float(value[0]), float(value[1])


def describe_model(model: nn.Module) -> ModelInfo:
    """Read the SRModel attributes; for a plain module, probe its scale with a 16x16 input."""
    from medsr.models.base import SRModel

    if isinstance(model, SRModel):
        return ModelInfo(
            name=model.name,
            in_channels=model.in_channels,
            out_channels=model.out_channels,
            default_scale=_pair(model.default_scale),
            arbitrary_scale=bool(model.arbitrary_scale),
            supported_scales=tuple(_pair(s) for s in model.supported_scales)
            or (_pair(model.default_scale),),
            scale_range=tuple(model.scale_range),  # type: ignore[arg-type]
            receptive_field=int(model.receptive_field) if model.receptive_field else None,
            takes_scale=True,
        )
    in_channels = int(getattr(model, "in_channels", 0) or 0)
    if not in_channels:
        first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
        in_channels = first.in_channels if first is not None else 1
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            probe = model(torch.zeros(1, in_channels, 16, 16, device=device))
    finally:
        model.train(was_training)
    scale = (probe.shape[-2] / 16.0, probe.shape[-1] / 16.0)
    rf = getattr(model, "receptive_field", None)
    return ModelInfo(
        name=str(getattr(model, "name", type(model).__name__)),
        in_channels=in_channels,
        out_channels=int(probe.shape[1]),
        default_scale=scale,
        arbitrary_scale=False,
        supported_scales=(scale,),
        scale_range=(1.0, max(scale)),
        receptive_field=int(rf) if rf is not None else None,
        takes_scale=False,
    )


@dataclass(frozen=True)
class ScalePlan:
    """How to reach ``target``: run the model at ``run`` (on transposed planes if
    ``transpose``), then resample to the target size when ``resample``."""

    target: ScalePair
    run: ScalePair
    transpose: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def resample(self) -> bool:
        effective = self.run[::-1] if self.transpose else self.run
        return any(abs(a - b) > _EPS for a, b in zip(effective, self.target))


def plan_scale(
    info: ModelInfo, target: ScalePair | None, allow_transpose: bool = False
) -> ScalePlan:
    """The scale a model runs at to reach ``target`` (None: its default scale)."""
    if target is None:
        return ScalePlan(info.default_scale, info.default_scale)
    if any(t < 1.0 - _EPS for t in target):
        raise ConfigError(
            f"scale {format_scale(target)} would shrink the image; upscale only increases resolution"
        )
    if info.arbitrary_scale:
        lo, hi = info.scale_range
        if all(lo - _EPS <= t <= hi + _EPS for t in target):
            return ScalePlan(target, target)
        raise ConfigError(
            f"{info.name} supports any scale per axis in [{lo:g}, {hi:g}]; "
            f"{format_scale(target)} is outside it"
        )
    options: list[tuple[float, int, ScalePair, bool]] = []
    for scale in info.supported_scales:
        for transpose in (False, True) if allow_transpose else (False,):
            effective = scale[::-1] if transpose else scale
            if all(e >= t - _EPS for e, t in zip(effective, target)):
                options.append((effective[0] * effective[1], int(transpose), scale, transpose))
    if not options:
        names = ", ".join(format_scale(s) for s in info.supported_scales)
        raise ConfigError(
            f"{info.name} runs at {names} and cannot reach {format_scale(target)}; "
            "use an arbitrary-scale model (miassr) or an interpolation baseline (bicubic)"
        )
    _, _, run, transpose = min(options)
    plan = ScalePlan(target, run, transpose)
    notes: list[str] = []
    if transpose:
        notes.append(f"{info.name} upsamples {format_scale(run)}: applied with the axes swapped")
    if plan.resample:
        notes.append(
            f"{info.name} runs at {format_scale(run)} only; its output is resampled to "
            f"{format_scale(target)} with antialiased cubic imresize"
        )
    return ScalePlan(target, run, transpose, tuple(notes))


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is refused."""
    text = str(device)
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(text)
    except RuntimeError:
        raise ConfigError(f"unknown device {text!r}; use auto, cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is available")
    return dev


class ModelRunner:
    """Calls a generator on grey [0, 1] planes: (B, 1, h, w) CPU -> (B, 1, h', w') CPU float32.

    A model with C input channels gets the grey plane repeated C times; a model
    with several output channels is averaged back to grey (luminance-neutral).
    """

    def __init__(
        self,
        model: nn.Module,
        device: str | torch.device = "auto",
        precision: str = "fp32",
        compile: bool = False,
        channels_last: bool = True,
    ) -> None:
        if precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {precision!r}; choose fp32, fp16 or bf16")
        self.device = resolve_device(device)
        if precision == "fp16" and self.device.type != "cuda":
            raise ConfigError("fp16 needs a CUDA GPU; on the CPU use fp32 or bf16")
        self.precision = precision
        self.model = model
        self.info = describe_model(model)
        self._was_training = model.training
        model.eval()
        model.to(self.device)
        self.channels_last = channels_last
        if self.channels_last:
            model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self._forward: Any = torch.compile(model) if compile else model

    def restore(self) -> None:
        """Put the model back in training mode if it was in it."""
        self.model.train(self._was_training)

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        if self.precision == "fp32":
            yield
            return
        dtype = torch.float16 if self.precision == "fp16" else torch.bfloat16
        with torch.autocast(self.device.type, dtype=dtype):
            yield

    def __call__(self, lr: Tensor, scale: ScalePair) -> Tensor:
        x = lr.to(self.device, torch.float32, non_blocking=True)
        if self.info.in_channels != x.shape[1]:
            x = x.mean(1, keepdim=True).expand(-1, self.info.in_channels, -1, -1)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), self._autocast():
            y = self._forward(x, scale) if self.info.takes_scale else self._forward(x)
        if y.shape[1] != 1:
            y = y.mean(1, keepdim=True)
        return y.float().to("cpu").contiguous()
