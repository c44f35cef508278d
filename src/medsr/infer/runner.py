"""Running a generator for inference: device, precision, scale planning.

:class:`ModelRunner` wraps any generator (an :class:`~medsr.models.SRModel`, or
a plain ``nn.Module`` whose scale is found by a probe) and maps a batch of
grey [0, 1] planes (B, 1, h, w) on the CPU to upscaled planes on the CPU,
under ``torch.inference_mode``, channels-last, with fp16/bf16 autocast on CUDA
(bf16 on the CPU) and optionally ``torch.compile``. It is the one execution path
of ``medsr upscale``, ``medsr eval``, the demo and the app: it runs an inference
copy of the model with every BatchNorm folded into the conv before it
(:func:`fold_batchnorm`; 8-10% of SRResNet's forward), kept per model and
rebuilt only when the model's weights change.

:func:`plan_scale` decides the scale the model runs at for a requested
per-axis scale: an arbitrary-scale model runs at it; a fixed-scale model runs
at the smallest supported scale that reaches it (optionally with the axes
swapped, for through-plane use of an x-only model) and the result is resampled
down with antialiased cubic ``imresize``.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

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


def _output_conv(module: nn.Module) -> nn.Conv2d | None:
    """The conv a module ends with: itself, or what its ``output_conv`` hook names
    (a composite such as a depthwise-separable conv ends with its pointwise conv)."""
    if isinstance(module, nn.Conv2d):
        return module
    last = getattr(module, "output_conv", None)
    return last if isinstance(last, nn.Conv2d) else None


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every eval-mode ``BatchNorm2d`` that directly follows a conv in an
    ``nn.Sequential`` into that conv, in place; returns how many were folded.

    ``w' = w * g / sqrt(var + eps)``, ``b' = (b - mean) * g / sqrt(var + eps) + beta``:
    the same function at inference, one layer fewer. Call it on an inference copy only.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    folded = 0
    for parent in list(model.modules()):
        if not isinstance(parent, nn.Sequential):
            continue
        names = list(parent._modules)
        for before, name in itertools.pairwise(names):
            bn, conv = parent._modules[name], _output_conv(parent._modules[before])
            if (
                conv is None
                or not isinstance(bn, nn.BatchNorm2d)
                or bn.training
                or bn.running_mean is None
                or bn.running_var is None
                or conv.out_channels != bn.num_features
            ):
                continue
            weight, bias = fuse_conv_bn_weights(
                conv.weight,
                conv.bias,
                bn.running_mean,
                bn.running_var,
                bn.eps,
                bn.weight,
                bn.bias,
            )
            conv.weight, conv.bias = weight, bias
            parent._modules[name] = nn.Identity()
            folded += 1
    return folded


def _weights_signature(model: nn.Module) -> tuple[tuple[int, int], ...]:
    """Changes whenever a parameter or buffer is replaced or modified in place."""
    tensors = [*model.parameters(), *model.buffers()]
    return tuple((id(t), t._version) for t in tensors)


#: model -> (weights signature, device, channels_last, inference copy)
_INFERENCE_COPIES: weakref.WeakKeyDictionary[nn.Module, tuple[Any, ...]] = (
    weakref.WeakKeyDictionary()
)


#: inference copy -> {(scale, precision): estimated peak bytes per LR pixel}
_BYTES_PER_PIXEL: weakref.WeakKeyDictionary[nn.Module, dict[tuple[ScalePair, str], float]] = (
    weakref.WeakKeyDictionary()
)


def inference_copy(model: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    """An eval-mode copy of ``model`` on ``device`` with BatchNorm folded (and
    channels-last weights), reused while the model's weights are unchanged."""
    signature = _weights_signature(model)
    cached = _INFERENCE_COPIES.get(model)
    if cached is not None and cached[:3] == (signature, device, channels_last):
        return cached[3]
    was_training = model.training
    model.eval()
    try:
        twin = copy.deepcopy(model)
    except (TypeError, RuntimeError, copy.Error):  # a module that cannot be copied
        return model.to(device)  # runs as it is: in eval mode until ModelRunner.restore()
    model.train(was_training)
    with torch.no_grad():
        fold_batchnorm(twin)
    twin.to(device)
    if channels_last:
        twin.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    for p in twin.parameters():
        p.requires_grad_(False)
    _INFERENCE_COPIES[model] = (signature, device, channels_last, twin)
    return twin


class _LiveBytes(TorchDispatchMode):
    """Tracks the bytes held by tensors that operations create, and their peak.

    Each new storage is counted once when an op returns it and released when its
    tensor is garbage-collected (views of a counted storage are not recounted).
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._counted: set[int] = set()

    def _release(self, key: int, size: int) -> None:
        self._counted.discard(key)
        self.live -= size

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for leaf in pytree.tree_leaves(out):
            if not isinstance(leaf, Tensor) or leaf.device.type == "meta":
                continue
            storage = leaf.untyped_storage()
            key, size = storage.data_ptr(), storage.nbytes()
            if size == 0 or key in self._counted:
                continue
            self._counted.add(key)
            self.live += size
            self.peak = max(self.peak, self.live)
            weakref.finalize(leaf, self._release, key, size)
        return out


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
        #: the caller's model (left untouched); :attr:`inference_model` is what runs
        self.model = model
        self.info = describe_model(model)
        self.channels_last = channels_last
        self._was_training = model.training
        self.inference_model = inference_copy(model, self.device, channels_last)
        self._bytes_per_pixel = _BYTES_PER_PIXEL.setdefault(self.inference_model, {})
        self._forward: Any = self.inference_model
        self.compile = compile
        if compile:
            self._forward = compiled(self.inference_model, self.device)

    def restore(self) -> None:
        """Put the caller's model back in training mode if it was (only a model that could
        not be copied ran itself, in eval mode); an inference copy leaves it untouched."""
        if self._was_training and self.inference_model is self.model:
            self.model.train()

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        if self.precision == "fp32":
            yield
            return
        dtype = torch.float16 if self.precision == "fp16" else torch.bfloat16
        with torch.autocast(self.device.type, dtype=dtype):
            yield

    def bytes_per_pixel(self, scale: ScalePair) -> float:
        """Estimated peak activation bytes of a forward per LR pixel at ``scale``.

        Measured once per scale by running two probe sizes (32^2 and 48^2 LR
        pixels) under :class:`_LiveBytes`, which adds up the bytes of every tensor
        an operation creates until it is freed; the slope between the two sizes
        removes fixed costs, and 1.15 covers allocator slack. Within 10% of the
        peak RSS growth measured for the zoo models on 192^2-384^2 inputs.
        """
        key = (scale, self.precision)
        if key not in self._bytes_per_pixel:
            sizes = (32, 48)
            peaks = [self._probe_peak(n, scale) for n in sizes]
            slope = (peaks[1] - peaks[0]) / (sizes[1] ** 2 - sizes[0] ** 2)
            self._bytes_per_pixel[key] = 1.15 * max(slope, 0.5 * peaks[1] / sizes[1] ** 2)
        return self._bytes_per_pixel[key]

    def _probe_peak(self, size: int, scale: ScalePair) -> float:
        """Peak live bytes of one eager forward (never the compiled one) on a size^2 input."""
        compiled_forward, compile = self._forward, self.compile
        self._forward, self.compile = self.inference_model, False
        try:
            with _LiveBytes() as tracker:
                self(torch.full((1, 1, size, size), 0.5), scale)
        finally:
            self._forward, self.compile = compiled_forward, compile
        return float(tracker.peak)

    def __call__(self, lr: Tensor, scale: ScalePair) -> Tensor:
        x = lr.to(self.device, torch.float32, non_blocking=True)
        if self.info.in_channels != x.shape[1]:
            x = x.mean(1, keepdim=True).expand(-1, self.info.in_channels, -1, -1)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        # compiled graphs are guarded against inference-mode tensors: no_grad for them
        grad_off = torch.no_grad() if self.compile else torch.inference_mode()
        with grad_off, self._autocast():
            y = self._forward(x, scale) if self.info.takes_scale else self._forward(x)
        if y.shape[1] != 1:
            y = y.mean(1, keepdim=True)
        return y.float().to("cpu").contiguous()


def compiled(model: nn.Module, device: torch.device) -> Any:
    """``torch.compile(model)``, checked on a small input now, so that an unusable
    compiler is a one-line ConfigError here rather than a traceback minutes later.

    The compiled module runs under ``torch.no_grad`` (inference mode tensors trip
    the compiler's guards), and with dynamic shapes so tiles of several sizes share
    one graph.
    """
    try:
        forward = torch.compile(model, dynamic=True)
        probe = torch.zeros(1, int(getattr(model, "in_channels", 1) or 1), 16, 16, device=device)
        with torch.no_grad():
            forward(probe, None) if _takes_scale(model) else forward(probe)
    except Exception as exc:  # the compiler raises many types (backend, C++ toolchain, guards)
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"--compile failed on this machine ({type(exc).__name__}: {first}); run without it"
        ) from None
    return forward


def _takes_scale(model: nn.Module) -> bool:
    from medsr.models.base import SRModel

    return isinstance(model, SRModel)
