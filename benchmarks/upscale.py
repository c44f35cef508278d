"""Speed and memory of ``medsr upscale``.

1. The bundled computed radiograph ``cr-rg1`` (1955 x 1841, 15-bit) at x4 with
   tiling on the CPU, upscaled and written as DICOM in a child process: wall
   time and the child's peak RSS (``ru_maxrss``; the budget is 3 GiB).
2. Tiled against untiled time on a centre crop of the same radiograph
   (``2 * tile - overlap`` pixels a side, i.e. 2 x 2 tiles): the whole image
   at x4 untiled would need ~15 GiB of activations, so it is not run.
3. A 100-slice 256 x 256 volume upscaled in-plane, slices/s on the CPU (and on
   a CUDA GPU in fp16 when one is available).

The model is a registry architecture with random weights (seed 0): timing does
not depend on weight values. To stay within ~5 minutes on 2 CPU cores the
default is a slimmed Swift-SRGAN x4 (16 channels, 4 blocks, 8 k parameters);
``--channels 0 --blocks 0`` runs the published one (64 channels, 16 blocks,
0.2 M parameters). The CPU volume figure is timed on the first
``--cpu-slices`` slices. Run from the repository root::

    OMP_NUM_THREADS=2 python benchmarks/upscale.py
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def build_model(args: argparse.Namespace) -> torch.nn.Module:
    from medsr.models import build

    torch.manual_seed(0)
    overrides = {k: v for k, v in (("num_blocks", args.blocks), ("channels", args.channels)) if v}
    return build(args.model, **overrides).eval()


def child_radiograph(args: argparse.Namespace) -> dict[str, Any]:
    """Runs in a fresh process so its peak RSS is the pipeline's own."""
    from medsr.infer.pipeline import UpscaleSettings, upscale_image
    from medsr.infer.runner import ModelRunner
    from medsr.io import write
    from medsr.samples import get_sample

    image = get_sample("cr-rg1").load()
    runner = ModelRunner(build_model(args), device="cpu")
    settings = UpscaleSettings(scale=4.0, tile=args.tile, overlap=args.overlap)
    start = time.perf_counter()
    result = upscale_image(image, runner, settings)
    upscaled = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write(result.image, Path(tmp) / "rg1_x4.dcm")
    done = time.perf_counter()
    return {
        "input": list(image.shape),
        "output": list(result.image.shape),
        "upscale_s": upscaled - start,
        "write_s": done - upscaled,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def run_child(args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", "radiograph", "--model", args.model]
    cmd += ["--tile", str(args.tile), "--overlap", str(args.overlap)]
    cmd += ["--blocks", str(args.blocks), "--channels", str(args.channels)]
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    report = json.loads(out.stdout.strip().splitlines()[-1])
    report["wall_s"] = wall
    report["children_peak_rss_kib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return report


def tiled_vs_untiled(args: argparse.Namespace) -> dict[str, Any]:
    from medsr.degrade.resize import output_size
    from medsr.infer.runner import ModelRunner
    from medsr.infer.tiling import plan_tiles, tiled_upscale
    from medsr.samples import get_sample

    image = get_sample("cr-rg1").load()
    side = 2 * args.tile - args.overlap
    h, w = image.shape
    top, left = (h - side) // 2, (w - side) // 2
    norm = image.normalization()
    crop = norm.to_unit(image.pixels[top : top + side, left : left + side])
    x = torch.from_numpy(np.ascontiguousarray(crop))[None, None]
    runner = ModelRunner(build_model(args), device="cpu")
    size = output_size(side, side, 4.0)
    rf = runner.info.receptive_field

    def run(t: int | None, overlap: int) -> tuple[float, torch.Tensor]:
        start = time.perf_counter()
        y = tiled_upscale(lambda b: runner(b, (4.0, 4.0)), x, (4.0, 4.0), size, t, overlap, rf)
        return time.perf_counter() - start, y

    runner(x[..., :32, :32], (4.0, 4.0))  # warm-up
    untiled_s, whole = run(None, 0)
    tiled_s, tiled = run(args.tile, args.overlap)
    plan = plan_tiles((h, w), output_size(h, w, 4.0), (4.0, 4.0), args.tile, args.overlap, rf)
    area = sum((a.lr_stop - a.lr_start) * (b.lr_stop - b.lr_start) for a, b in plan)
    return {
        "crop": side,
        "untiled_s": untiled_s,
        "tiled_s": tiled_s,
        "ratio": tiled_s / untiled_s,
        "max_abs_diff": float((tiled - whole).abs().max()),
        "full_image_tiles": plan.count,
        "full_image_overhead": area / (h * w),
    }


def volume(args: argparse.Namespace, device: str, precision: str, timed: int) -> dict[str, Any]:
    from medsr.image import MedicalImage
    from medsr.infer.pipeline import UpscaleSettings, upscale_image
    from medsr.infer.runner import ModelRunner

    rng = np.random.default_rng(0)
    pixels = rng.normal(300.0, 80.0, size=(100, 256, 256)).astype(np.float32)
    image = MedicalImage(pixels[:timed], spacing_mm=(3.0, 0.9, 0.9), modality="MR")
    slices = timed
    runner = ModelRunner(build_model(args), device=device, precision=precision)
    upscale_image(image.slice(0).copy(), runner, UpscaleSettings(scale=4.0))  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    upscale_image(image, runner, UpscaleSettings(scale=4.0, batch_size=args.batch_size))
    if device == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    return {
        "device": device,
        "precision": precision,
        "slices": slices,
        "s": elapsed,
        "slices_per_s": slices / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="swift-srgan")
    parser.add_argument("--blocks", type=int, default=4, help="num_blocks (0: the model's own)")
    parser.add_argument("--channels", type=int, default=16, help="channels (0: the model's own)")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument(
        "--cpu-slices", type=int, default=20, help="slices of the 100 timed on the CPU"
    )
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--skip-radiograph", action="store_true")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "radiograph":
        print(json.dumps(child_radiograph(args)))
        return

    threads = torch.get_num_threads()
    model = build_model(args)
    params = sum(p.numel() for p in model.parameters())
    print(
        f"model {args.model} x4 {dict(model.config)} ({params} parameters), random weights "
        f"(seed 0); torch {torch.__version__}, {threads} CPU threads"
    )
    if not args.skip_radiograph:
        r = run_child(args)
        print(
            f"[radiograph] cr-rg1 {r['input']} -> {r['output']} x4, tiles {args.tile} "
            f"overlap {args.overlap}, CPU: upscale {r['upscale_s']:.1f} s + DICOM write "
            f"{r['write_s']:.1f} s; child wall {r['wall_s']:.1f} s; peak RSS "
            f"{r['peak_rss_kib'] / 2**20:.2f} GiB (budget 3 GiB)"
        )
    t = tiled_vs_untiled(args)
    print(
        f"[tiling] {t['crop']}x{t['crop']} centre crop at x4: untiled {t['untiled_s']:.2f} s, "
        f"tiled (2x2 tiles) {t['tiled_s']:.2f} s, ratio tiled/untiled {t['ratio']:.2f}; "
        f"max |tiled - untiled| {t['max_abs_diff']:.2e}. The whole radiograph (not run "
        f"untiled: ~15 GiB of activations) takes {t['full_image_tiles']} tiles covering "
        f"{t['full_image_overhead']:.2f}x its area"
    )
    v = volume(args, "cpu", "fp32", args.cpu_slices)
    print(
        f"[volume] 100 x 256 x 256 volume, in-plane x4 on the CPU (fp32), timed on "
        f"{v['slices']} slices: {v['s']:.1f} s, {v['slices_per_s']:.2f} slices/s"
    )
    if torch.cuda.is_available():
        for precision in ("fp16", "fp32"):
            g = volume(args, "cuda", precision, 100)
            print(
                f"[volume] 100 x 256 x 256 in-plane x4 on {torch.cuda.get_device_name()} "
                f"({precision}): {g['s']:.2f} s, {g['slices_per_s']:.1f} slices/s"
            )
    else:
        print("[volume] no CUDA GPU here: GPU fp16 figure not measured")


if __name__ == "__main__":
    main()
