"""``medsr upscale`` and ``medsr export``."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def _scale(text: str) -> float | tuple[float, float]:
    """``2.5`` or ``1,4`` (sy,sx)."""
    try:
        parts = [float(p) for p in text.replace("x", ",").split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a scale: {text!r} (use 2.5 or 1,4)") from None
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise argparse.ArgumentTypeError(f"not a scale: {text!r} (use 2.5 or 1,4)")


def _size(text: str) -> tuple[int, int]:
    """``256,256`` -> (256, 256)."""
    try:
        h, w = (int(p) for p in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use H,W)") from None
    return h, w


def add_parser(sub: argparse._SubParsersAction) -> None:
    up = sub.add_parser(
        "upscale",
        help="super-resolve image files, folders and DICOM series",
        description="Super-resolve files (DICOM, NIfTI, PNG/TIFF, npy), folders and DICOM series. "
        "Each result keeps its input's format with the geometry updated (pixel spacing, "
        "positions, NIfTI affine) and is written atomically; inputs are never overwritten.",
    )
    up.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders or series folders")
    up.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output folder, or a file name when there is one input",
    )
    up.add_argument(
        "--model",
        default=None,
        metavar="NAME|PATH",
        help="zoo model, interpolation baseline (bicubic, zero-fill, ...) or weights file "
        "(default: the zoo's shipped model for each file's modality and the scale: an MR file "
        "gets the MR k-space model; see medsr models)",
    )
    up.add_argument(
        "--acquisition",
        default=None,
        metavar="NAME",
        help="how the input was acquired, to choose the zoo model (without --model): "
        "mr-kspace, xray-binning, ultrasound-lateral, bicubic (default: from the file's "
        "modality; a PNG has none and gets the generic default)",
    )
    target = up.add_mutually_exclusive_group()
    target.add_argument(
        "--scale",
        type=_scale,
        default=None,
        metavar="S",
        help="scale factor, e.g. 2.5, or per axis 1,4 (default: the model's own)",
    )
    target.add_argument(
        "--spacing",
        type=float,
        default=None,
        metavar="MM",
        help="target spacing in mm; the scale per axis comes from the image's spacing "
        "(with --plane through: the slice spacing, default the in-plane spacing)",
    )
    up.add_argument(
        "--tile",
        type=int,
        default=None,
        metavar="N",
        help="tile size in input pixels (default: no tiles when the whole image fits "
        "--max-memory, else the largest tile that fits)",
    )
    up.add_argument(
        "--max-memory",
        default=None,
        metavar="SIZE",
        help="memory a forward may use before tiling, e.g. 2G or 512M (default: 40%% of the "
        "available RAM up to 2G on the CPU, 60%% of the free GPU memory on CUDA)",
    )
    up.add_argument(
        "--overlap",
        type=int,
        default=None,
        metavar="M",
        help="overlap of neighbouring tiles in input pixels (default 32); seams are blended",
    )
    up.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    up.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default="fp32")
    up.add_argument(
        "--batch-size", type=int, default=None, metavar="N", help="slices/tiles per batch"
    )
    up.add_argument(
        "--plane",
        choices=("in", "through"),
        default="in",
        help="in: each slice; through: along the slice axis, towards isotropic voxels",
    )
    up.add_argument(
        "--consistency",
        action="store_true",
        help="re-degrade the output, write |degrade(SR) - input| as a map and print its size",
    )
    up.add_argument(
        "--data-consistency",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="project the output so that it re-degrades exactly to the input "
        "(default: on for GAN-trained zoo models and MR k-space models, whose measured k-space "
        "centre is kept exactly; for sparse-view CT restorers one sinogram-domain step towards "
        "the input's views, see --view-step; off otherwise)",
    )
    up.add_argument(
        "--view-step",
        type=int,
        default=None,
        metavar="N",
        help="sparse-view CT restorers: the input was reconstructed from every N-th of the "
        "model's views (default: its training step, 16 of 1000 parallel-beam views over "
        "180 degrees); the geometry of their sinogram-domain data-consistency step",
    )
    up.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing outputs (files or series folders); without it they are kept",
    )
    up.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model first (checked at once; refused in one line if it fails)",
    )
    selfsup = up.add_argument_group(
        "self-supervised through-plane SR (thick-slice volumes, no training data)"
    )
    selfsup.add_argument(
        "--self-supervised",
        action="store_true",
        help="learn through-plane SR from the volume's own in-plane slices and apply it to "
        "reach --spacing (default: isotropic at the in-plane spacing); the learnt network is "
        "saved beside the output; --model re-applies a learnt one, or names a MIASSR to start "
        "from (default: the zoo's miassr)",
    )
    selfsup.add_argument(
        "--slice-profile",
        choices=("box", "gaussian"),
        default="box",
        help="how each slice averages along z: a box of the slice thickness or a Gaussian of "
        "that FWHM (default box)",
    )
    selfsup.add_argument(
        "--slice-thickness",
        type=float,
        default=None,
        metavar="MM",
        help="slice thickness in mm (default: DICOM SliceThickness, else the slice spacing); "
        "thinner than the spacing means a gap",
    )
    selfsup.add_argument(
        "--budget-s",
        type=float,
        default=None,
        metavar="S",
        help="seconds of network training per volume (default 120: a 256x256x40 volume in a "
        "few minutes on 2 CPU cores; 0: the least-squares filter alone)",
    )
    up.add_argument("--quiet", action="store_true", help="no progress bar")
    up.set_defaults(handler=run_upscale)

    ex = sub.add_parser(
        "export",
        help="export a model to ONNX (dynamic height and width), checked with onnxruntime",
    )
    ex.add_argument("--model", required=True, metavar="NAME|PATH")
    ex.add_argument("--format", choices=("onnx",), default="onnx")
    ex.add_argument("-o", "--output", required=True, metavar="FILE")
    ex.add_argument("--scale", type=_scale, default=None, metavar="S")
    ex.add_argument("--opset", type=int, default=17)
    ex.add_argument(
        "--size",
        type=_size,
        default=None,
        metavar="H,W",
        help="fix the input size (default: dynamic; 256,256 for arbitrary-scale models)",
    )
    ex.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")
    ex.set_defaults(handler=run_export)


def _tag(args: argparse.Namespace) -> str:
    """The output name's suffix, with the full factor: ``_sr-x2.5``, ``_sr-1.25mm-z``."""
    tag = "_sr"
    if args.scale is not None:
        s = args.scale
        tag += f"-x{s:.10g}" if isinstance(s, float) else f"-x{s[0]:.10g},{s[1]:.10g}"
    elif args.spacing is not None:
        tag += f"-{args.spacing:.10g}mm"
    if args.plane == "through":
        tag += "-z"
    return tag


def run_upscale(args: argparse.Namespace) -> int:
    if args.self_supervised:
        return run_self_supervised(args)
    from medsr.infer.api import load_model
    from medsr.infer.pipeline import UpscaleSettings, run_files
    from medsr.infer.runner import resolve_device
    from medsr.infer.tiling import parse_memory

    settings = UpscaleSettings(
        scale=args.scale,
        spacing=args.spacing,
        tile=args.tile,
        overlap=args.overlap,
        batch_size=args.batch_size,
        plane=args.plane,
        consistency=args.consistency,
        data_consistency=args.data_consistency,
        view_step=args.view_step,
        max_memory=parse_memory(args.max_memory) if args.max_memory is not None else None,
    )
    settings.check()
    device = resolve_device(args.device)
    from medsr.errors import ConfigError

    model: Any
    if args.model is None:
        model = _ModelChooser(args.scale, args.spacing, args.acquisition)
        print(f"no --model given: choosing by each file's modality, on {device}")
    elif args.acquisition is not None:
        raise ConfigError("--acquisition chooses a zoo model; leave --model out to use it")
    else:
        model = load_model(args.model, device="cpu")
        print(f"model {args.model} on {device} ({args.precision})")
    run_files(
        args.inputs,
        args.output,
        model,
        settings,
        device=str(device),
        precision=args.precision,
        compile=args.compile,
        tag=_tag(args),
        progress=not args.quiet and sys.stderr.isatty(),
        log=print,
        overwrite=args.overwrite,
    )
    return 0


class _ModelChooser:
    """The zoo model for each input by its modality (or ``--acquisition``), loaded once per
    name; prints the choice and why (:func:`medsr.zoo.choice.choose_model`)."""

    def __init__(self, scale: Any, spacing: float | None, acquisition: str | None) -> None:
        self.scale, self.spacing, self.acquisition = scale, spacing, acquisition
        self.loaded: dict[str, Any] = {}

    def __call__(self, image: Any) -> Any:
        from medsr.infer.api import load_model
        from medsr.zoo.choice import choose_model

        choice = choose_model(
            self.scale,
            modality=image.modality,
            acquisition=self.acquisition,
            spacing=self.spacing,
        )
        where = image.source.path or "the input"
        print(f"{where}: model {choice.reason}")
        if choice.name not in self.loaded:
            self.loaded[choice.name] = load_model(choice.name, device="cpu")
        return self.loaded[choice.name]


def run_self_supervised(args: argparse.Namespace) -> int:
    """``medsr upscale --self-supervised``: per volume, learn, upscale, save the network."""
    from medsr.errors import ConfigError
    from medsr.infer.runner import resolve_device
    from medsr.selfsup import (
        DEFAULT_BUDGET_S,
        SelfSupervisedSettings,
        run_files_self_supervised,
    )

    if args.scale is not None:
        raise ConfigError("--self-supervised takes a target --spacing in mm, not --scale")
    if args.plane != "in" or args.consistency or args.data_consistency or args.compile:
        raise ConfigError(
            "--self-supervised works through-plane by itself; it does not take --plane, "
            "--consistency, --data-consistency or --compile"
        )
    if args.precision != "fp32":
        raise ConfigError("--self-supervised trains and runs in fp32; leave --precision out")
    settings = SelfSupervisedSettings(
        spacing=args.spacing,
        slice_thickness=args.slice_thickness,
        slice_profile=args.slice_profile,
        budget_s=DEFAULT_BUDGET_S if args.budget_s is None else args.budget_s,
        model=args.model,
        device=str(resolve_device(args.device)),
        inference_batch=args.batch_size,
    )
    settings.check()
    tag = "_sr-selfsup" + (f"-{args.spacing:.10g}mm" if args.spacing is not None else "")
    print(f"self-supervised through-plane SR on {settings.device}")
    run_files_self_supervised(
        args.inputs,
        args.output,
        settings,
        tag=tag,
        progress=not args.quiet and sys.stderr.isatty(),
        log=print,
        overwrite=getattr(args, "overwrite", False),
    )
    return 0


def run_export(args: argparse.Namespace) -> int:
    from medsr.infer.api import load_model
    from medsr.infer.export import export_onnx

    model = load_model(args.model)
    report = export_onnx(
        model,
        args.output,
        scale=args.scale,
        opset=args.opset,
        size=args.size,
        check=not args.no_check,
    )
    print(report.describe())
    return 0
