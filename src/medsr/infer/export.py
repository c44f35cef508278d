"""ONNX export of a generator with dynamic batch, height and width, checked with onnxruntime.

The exported graph takes ``lr`` (B, C, H, W) in [0, 1] and returns ``sr`` at
the scale fixed at export time (the model's default unless given). After
writing, the file is run with onnxruntime on an input of a *different* size
from the one traced, and the largest absolute difference to PyTorch is
reported, so both the numbers and the dynamic axes are checked. MIASSR's
Meta-Upscale depends on the output grid, so it is exported for one input size.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from medsr.errors import ConfigError
from medsr.infer.runner import ScalePair, describe_model, format_scale


class _FixedScale(nn.Module):
    """``forward(lr)`` for a generator whose forward also takes a scale."""

    def __init__(self, model: nn.Module, scale: ScalePair | None, takes_scale: bool) -> None:
        super().__init__()
        self.model = model
        self.scale = scale
        self.takes_scale = takes_scale

    def forward(self, lr: Tensor) -> Tensor:
        return self.model(lr, self.scale) if self.takes_scale else self.model(lr)


@dataclass(frozen=True)
class ExportReport:
    path: Path
    scale: ScalePair
    check_size: tuple[int, int]
    max_abs_diff: float | None
    #: the (H, W) the graph is fixed to, or None when height and width are dynamic
    static_size: tuple[int, int] | None = None

    def describe(self) -> str:
        if self.static_size is None:
            axes = "dynamic batch/height/width"
        else:
            axes = f"dynamic batch, fixed {self.static_size[0]}x{self.static_size[1]} input"
        text = f"wrote {self.path} ({format_scale(self.scale)}, {axes})"
        if self.max_abs_diff is not None:
            h, w = self.check_size
            text += (
                f"; onnxruntime vs PyTorch on a {h}x{w} input: max abs diff {self.max_abs_diff:.3g}"
            )
        return text


def export_onnx(
    model: nn.Module,
    path: str | Path,
    scale: float | tuple[float, float] | None = None,
    opset: int = 17,
    size: tuple[int, int] | None = None,
    check: bool = True,
) -> ExportReport:
    """Write ``model`` as ONNX at ``scale``; with ``check``, compare onnxruntime to PyTorch.

    Height and width are dynamic unless ``size`` fixes them. Arbitrary-scale
    models (MIASSR) predict their upsampling kernels from the output grid, which
    depends on the size, so they are exported for one ``size`` (default 256x256).
    """
    from medsr.io.core import atomic_path

    path = Path(path)
    info = describe_model(model)
    run_scale: ScalePair = info.default_scale
    if scale is not None:
        pair = (scale, scale) if isinstance(scale, int | float) else scale
        run_scale = (float(pair[0]), float(pair[1]))
    if getattr(model, "is_baseline", False):
        raise ConfigError(
            f"{info.name} is an interpolation baseline whose weights depend on the image size; "
            "it cannot be exported as a size-dynamic graph"
        )
    if getattr(model, "grid", "area") == "dft":
        raise ConfigError(
            f"{info.name} adds zero-filled k-space interpolation (FFTs), which torch's ONNX "
            "exporter cannot write (aten::fft_fft2); MR k-space models run in medsr only"
        )
    if size is None and info.arbitrary_scale:
        size = (256, 256)
    model = model.eval().to("cpu")
    wrapped = _FixedScale(model, run_scale, info.takes_scale).eval()
    trace_size = size or (32, 32)
    check_size = size or (40, 28)
    dynamic = {"lr": {0: "batch"}, "sr": {0: "batch"}}
    if size is None:
        dynamic = {
            "lr": {0: "batch", 2: "height", 3: "width"},
            "sr": {0: "batch", 2: "out_height", 3: "out_width"},
        }
    example = torch.rand(1, info.in_channels, *trace_size)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                wrapped,
                (example,),
                str(tmp),
                input_names=["lr"],
                output_names=["sr"],
                dynamic_axes=dynamic,
                opset_version=opset,
                dynamo=False,
            )
        except Exception as exc:
            raise ConfigError(
                f"{info.name} could not be exported to ONNX: {str(exc).splitlines()[0][:200]}"
            ) from None
    diff = check_onnx(wrapped, path, info.in_channels, check_size) if check else None
    return ExportReport(path, run_scale, check_size, diff, size)


def check_onnx(reference: nn.Module, path: Path, in_channels: int, size: tuple[int, int]) -> float:
    """Max |onnxruntime(x) - reference(x)| for a random (2, C, *size) input."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigError(
            "checking the export needs onnxruntime: pip install 'medsr[export]'"
        ) from None
    x = torch.rand(2, in_channels, *size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = reference(x).numpy()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        got = session.run(None, {"lr": x.numpy()})[0]
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ConfigError(
            f"onnxruntime could not run the exported {path}: {str(exc).splitlines()[0][:200]}"
        ) from None
    if got.shape != expected.shape:
        raise ConfigError(
            f"the ONNX graph is not size-dynamic: {got.shape} from onnxruntime, "
            f"{expected.shape} from PyTorch"
        )
    return float(abs(got - expected).max())
