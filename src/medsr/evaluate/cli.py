"""``medsr eval`` (score models against bicubic on a folder or the samples) and ``medsr demo``."""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medsr.evaluate.runner import EvalResult, ModelSpec

#: Scales of the PSNR-against-scale plot.
DEFAULT_PLOT_SCALES = "1.5,2,2.5,3,3.5,4"
#: Scales, crop and baselines of ``medsr demo``.
DEMO_SCALES = (2.0, 4.0)
DEMO_CROP = 512
DEMO_BASELINES = ("bilinear", "bicubic", "lanczos")


def add_parser(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser(
        "eval",
        help="score SR models against bicubic: PSNR/SSIM in physical units, JSON, HTML report",
        description="Degrade each HR image (seeded), super-resolve it with every model and the "
        "baselines, and score PSNR/SSIM in physical units with an explicit data range (CT: the "
        "HU window width; X-ray/US: the bits-stored range; MR: the 0.5-99.5 percentile range) "
        "and a border shave of ceil(scale) pixels. Volumes are scored slice by slice.",
    )
    ev.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME|PATH",
        help="a zoo or registry name, or a weights file (repeatable)",
    )
    ev.add_argument(
        "--data", required=True, help="a folder of PNG/TIFF/DICOM/NIfTI files, a file, or 'samples'"
    )
    ev.add_argument("--scale", type=float, default=4.0, help="SR factor (default 4)")
    ev.add_argument(
        "--degradation",
        default="bicubic",
        help="degradation or acquisition name (default bicubic): mr-kspace (gains over "
        "zero-fill), xray-binning, ct-sparse-view, ultrasound-lateral, ... (medsr degrade --list)",
    )
    ev.add_argument(
        "--baselines",
        default="bicubic",
        help="comma-separated interpolation baselines; bicubic and the acquisition's reference "
        "(zero-fill for mr-kspace) are always included",
    )
    ev.add_argument("--seed", type=int, default=0, help="degradation seed (image i uses seed+i)")
    ev.add_argument("--json", type=Path, default=None, metavar="FILE", help="write results JSON")
    ev.add_argument("--report", type=Path, default=None, metavar="DIR", help="write report.html")
    ev.add_argument(
        "--max-size",
        type=int,
        default=None,
        metavar="N",
        help="score the central N x N crop of each image (faster)",
    )
    ev.add_argument(
        "--ct-window",
        default="full",
        help="HU window CT is clipped to and whose width is the data range (default full)",
    )
    ev.add_argument(
        "--display-window",
        default="soft-tissue",
        help="HU window the report shows CT through (default soft-tissue)",
    )
    ev.add_argument(
        "--plot-scales",
        default=DEFAULT_PLOT_SCALES,
        help="scales of the report's PSNR-against-scale plot, or 'none'",
    )
    thick = ev.add_argument_group(
        "--degradation thick-slice (volumes, scored in 3-D: cubic along z, each --model "
        "through-plane, and self-supervised SR)"
    )
    thick.add_argument(
        "--slice-profile",
        choices=("box", "gaussian"),
        default="box",
        help="slice profile of the simulated acquisition (default box)",
    )
    thick.add_argument(
        "--slice-thickness",
        type=float,
        default=None,
        metavar="MM",
        help="slice thickness (box width or Gaussian FWHM) in mm (default: --scale times the "
        "HR slice spacing, contiguous slices; less leaves a gap)",
    )
    thick.add_argument(
        "--budget-s",
        type=float,
        default=None,
        metavar="S",
        help="training seconds of self-supervised SR per volume (default 120)",
    )
    ev.add_argument(
        "--data-consistency",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="project each output so it re-degrades exactly to its input, as medsr upscale "
        "does (default: on for GAN-trained zoo models and MR k-space models, and the "
        "sinogram-domain step for sparse-view CT restorers; off otherwise)",
    )
    ev.add_argument("--quiet", action="store_true", help="no per-image progress lines")
    ev.set_defaults(handler=run_eval)

    demo = sub.add_parser(
        "demo",
        help="the main job: evaluate the zoo models on the bundled test samples, write a report",
        description="Evaluate the model zoo (the interpolation baselines while the zoo has no "
        f"weights) on the bundled test samples (central {DEMO_CROP}x{DEMO_CROP} crop, first "
        "frame) at x2 and x4 with bicubic degradation, and write an HTML report and JSON.",
    )
    demo.add_argument("-o", "--output", type=Path, default=Path("medsr-demo"), help="output folder")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(handler=run_demo)


def _parse_scales(text: str) -> list[float]:
    from medsr.errors import ConfigError

    if text.strip().lower() in ("", "none"):
        return []
    try:
        scales = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--plot-scales: expected numbers like 1.5,2,3; got {text!r}") from None
    if any(not math.isfinite(s) or s <= 1 for s in scales):
        raise ConfigError(f"--plot-scales: every scale must be > 1; got {text!r}")
    return scales


def _fmt(value: float, digits: int, signed: bool = False) -> str:
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def format_table(run: EvalResult) -> str:
    """The per-model table ``medsr eval`` prints: PSNR/SSIM (mean ± sd), their gains over
    the run's baseline (the acquisition's reference: zero-fill for mr-kspace, else bicubic), the perceptual GMSD (lower is better) and HaarPSI (higher is better), the
    mean intensity bias and its largest magnitude over the images (percent of the data
    range), and the forward speed."""
    header = (
        f"{'model':<22}{'PSNR dB':>18}{'SSIM':>20}{'dPSNR':>9}{'dSSIM':>9}"
        f"{'GMSD':>8}{'HaarPSI':>9}{'bias %':>9}{'|bias|max':>10}{'images/s':>10}"
    )
    lines = [header, "-" * len(header)]
    for name, r in run.models.items():
        psnr = f"{_fmt(r.mean('psnr'), 2)} ± {_fmt(r.std('psnr'), 2)}"
        ssim = f"{_fmt(r.mean('ssim'), 4)} ± {_fmt(r.std('ssim'), 4)}"
        lines.append(
            f"{name:<22}{psnr:>18}{ssim:>20}"
            f"{_fmt(r.gain.get('psnr', math.nan), 2, True):>9}"
            f"{_fmt(r.gain.get('ssim', math.nan), 4, True):>9}"
            f"{_fmt(r.mean('gmsd'), 4):>8}{_fmt(r.mean('haarpsi'), 4):>9}"
            f"{_fmt(r.mean('bias'), 3, True):>9}{_fmt(r.max_abs_bias(), 3):>10}"
            f"{_fmt(r.images_per_s, 1):>10}"
        )
    return "\n".join(lines)


def _data_range_line(run: EvalResult) -> str:
    from medsr.evaluate.results import DATA_RANGE_SHORT

    seen: dict[str, set[float]] = {}
    for r in run.models.values():
        for s in r.scores:
            seen.setdefault(s.modality, set()).add(s.data_range)
    parts = []
    for modality, values in sorted(seen.items()):
        shown = ", ".join(f"{v:.6g}" for v in sorted(values)[:4])
        more = " ..." if len(values) > 4 else ""
        parts.append(f"{modality} {shown}{more} ({DATA_RANGE_SHORT.get(modality, '')})")
    return "data range: " + "; ".join(parts)


def _supports(spec: ModelSpec, scale: float) -> bool:
    model = spec.model
    if getattr(model, "arbitrary_scale", False):
        lo, hi = getattr(model, "scale_range", (1.0, math.inf))
        return bool(lo - 1e-6 <= scale <= hi + 1e-6)
    supported = getattr(model, "supported_scales", ())
    return any(abs(s[0] - scale) < 1e-6 and abs(s[1] - scale) < 1e-6 for s in supported)


def _settings(**extra: Any) -> dict[str, Any]:
    import platform

    import torch

    return {
        **extra,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def _write_json(path: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` atomically (a reader never sees half a file)."""
    from medsr.io.core import atomic_path

    path = path.expanduser()
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


def _check_outputs(json_path: Path | None, report: Path | None) -> None:
    """Refuse output paths that cannot work before spending minutes on the evaluation."""
    from medsr.errors import InputError

    if json_path is not None and json_path.expanduser().is_dir():
        raise InputError(json_path, "is a folder; --json takes a file name, e.g. results.json")
    if report is not None and report.expanduser().exists() and not report.expanduser().is_dir():
        raise InputError(report, "is a file; --report takes a folder")
    for path in (json_path, report):
        if path is None:
            continue
        parent = path.expanduser().absolute().parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise InputError(path, f"cannot be created: {parent} is a file")


def run_thick_slice_eval(args: argparse.Namespace) -> int:
    """``medsr eval --degradation thick-slice``: volumes scored in 3-D, see
    :mod:`medsr.evaluate.thick_slice`."""
    from medsr.evaluate.runner import load_images
    from medsr.evaluate.thick_slice import run_thick_slice

    _check_outputs(args.json, None)
    volumes = [(n, im) for n, im in load_images(args.data) if im.ndim == 3]
    if not volumes:
        from medsr.errors import ConfigError

        raise ConfigError(f"{args.data}: --degradation thick-slice needs volumes; none found")
    progress = None if args.quiet else (lambda line: print("  " + line, file=sys.stderr))
    run = run_thick_slice(
        volumes,
        [m for m in args.model if m.strip()],
        args.scale,
        args.slice_thickness,
        args.slice_profile,
        args.budget_s,
        args.ct_window,
        progress,
    )
    thickness = f"{args.slice_thickness:g} mm" if args.slice_thickness else "contiguous"
    print(
        f"{len(volumes)} volumes, thick slices x{args.scale:g} along z ({args.slice_profile}, "
        f"thickness {thickness}), back to the HR spacing; shave {run.shave} slices "
        "at each end; PSNR over the volume, SSIM mean over (D, W) planes, physical units; "
        "gains over cubic interpolation along z"
    )
    print(run.data_range_line())
    print(run.table())
    for line in run.notes:
        print(f"  {line}")
    if args.json is not None:
        print(f"wrote {_write_json(args.json, run.as_json())}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from medsr.errors import ConfigError
    from medsr.evaluate.report import write_report
    from medsr.evaluate.runner import (
        load_images,
        load_models,
        prepare_images,
        reference_model,
        run_evaluation,
        scale_sweep,
    )

    if not math.isfinite(args.scale) or args.scale <= 0:
        raise ConfigError(f"--scale must be positive, got {args.scale}")
    if args.degradation == "thick-slice":
        return run_thick_slice_eval(args)
    plot_scales = _parse_scales(args.plot_scales)
    _check_outputs(args.json, args.report)
    baselines = [b for b in args.baselines.split(",") if b.strip()]
    models = load_models(args.model, baselines, reference_model(args.degradation))
    images = prepare_images(load_images(args.data), args.max_size, args.ct_window)
    progress = None if args.quiet else (lambda line: print("  " + line, file=sys.stderr))
    started = time.perf_counter()
    run = run_evaluation(
        models,
        images,
        args.scale,
        args.degradation,
        args.seed,
        keep_visuals=args.report is not None,
        progress=progress,
        data_consistency=args.data_consistency,
    )
    print(
        f"{len(images)} images, {run.scale_label}, degradation {run.degradation}, seed {run.seed}, "
        f"shave {run.shave[0]}x{run.shave[1]} px, metrics in physical units"
    )
    if run.reference != "HR image":
        print(f"reference: {run.reference}; bicubic at scale 1 is the degraded input itself")
    print(f"baseline (dPSNR, dSSIM): {run.baseline}, the {run.degradation} acquisition's reference")
    print(_data_range_line(run))
    print(format_table(run))
    if args.json is not None:
        print(f"wrote {_write_json(args.json, run.as_json())}")
    if args.report is not None:
        curves = scale_sweep(models, images, plot_scales, args.degradation, args.seed)
        settings = _settings(
            data=args.data,
            scale=args.scale,
            degradation=json.dumps(run.degradation_config),
            seed=args.seed,
            max_size=args.max_size,
            ct_metric_window=args.ct_window,
            ct_display_window=args.display_window,
            evaluation_seconds=f"{time.perf_counter() - started:.1f}",
        )
        path = write_report(
            [run],
            args.report,
            shlex.join(["medsr", *sys.argv[1:]]),
            settings,
            curves,
            ct_window=args.display_window,
        )
        print(f"wrote {path}")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from medsr.evaluate.report import write_report
    from medsr.evaluate.runner import (
        load_images,
        load_models,
        prepare_images,
        run_evaluation,
        scale_sweep,
        zoo_names,
    )

    started = time.perf_counter()
    out: Path = args.output.expanduser()
    from medsr.zoo.manifest import entry_acquisition, zoo_models

    # the demo degrades by bicubic shrinking: the models trained for it (acquisition models,
    # MR k-space or X-ray binning, are scored on their own acquisitions in their cards)
    entries = zoo_models()
    zoo = [n for n in zoo_names() if entry_acquisition(entries[n]) == "bicubic"]
    models = load_models(zoo, DEMO_BASELINES)
    images = prepare_images(load_images("samples"), DEMO_CROP, "full", first_frame_only=True)
    note = ", ".join(zoo) if zoo else "none with weights yet: interpolation baselines only"
    print(f"medsr demo: {len(images)} bundled test images, models: {note}", file=sys.stderr)
    runs: list[EvalResult] = []
    for scale in DEMO_SCALES:
        usable = [m for m in models if _supports(m, scale)]
        run = run_evaluation(usable, images, scale, "bicubic", args.seed, keep_visuals=True)
        runs.append(run)
        print(f"\n{run.scale_label}  ({_data_range_line(run)})")
        print(format_table(run))
        _write_json(out / f"results_{run.scale_label}.json", run.as_json())
    curves = scale_sweep(models, images, _parse_scales(DEFAULT_PLOT_SCALES), "bicubic", args.seed)
    settings = _settings(
        data=f"bundled test samples, central {DEMO_CROP}x{DEMO_CROP} crop, first frame",
        scales=", ".join(f"x{s:g}" for s in DEMO_SCALES),
        degradation="bicubic (MATLAB imresize, antialiased)",
        seed=args.seed,
        zoo_models=note,
        ct_metric_window="full [-1024, 3071] HU",
        ct_display_window="soft-tissue [-160, 240] HU",
        evaluation_seconds=f"{time.perf_counter() - started:.1f}",
    )
    path = write_report(
        runs,
        out,
        shlex.join(["medsr", *sys.argv[1:]]) if sys.argv[1:2] == ["demo"] else "medsr demo",
        settings,
        curves,
        title="medsr demo: super-resolution of the bundled test samples",
    )
    print(f"\nreport: {path.resolve()}")
    print(
        f"results: {', '.join(str((out / f'results_{r.scale_label}.json').resolve()) for r in runs)}"
    )
    print(f"took {time.perf_counter() - started:.1f} s")
    return 0
