"""Speed of every generator and the memory saving of MIASSR's Meta-Upscale.

    OMP_NUM_THREADS=2 python benchmarks/models.py     # CPU fp32 (+ CUDA fp16/bf16 if present)
    python benchmarks/models.py --quick               # 64x64 inputs

Speed: one no-grad forward of a 1x1xHxW LR image at each model's default scale
(paper-size configs), the median of ``--repeats`` timed runs after a warm-up.
On the CPU the input is ``--side`` (128; BliMSR 48) and the time per 256x256
image is scaled by pixel count (the cost of these conv nets is linear in it);
on CUDA the input is 256x256.
GFLOP/s = FLOPs counted by ``medsr.models.forward_gflops`` for that input / time,
and its ratio to a dense fp32 matmul's GFLOP/s measured in the same run on the
same device (the machine's practical peak for this workload).

Memory: peak memory of one no-grad MIASSR forward at x4 (paper config) with our
Meta-Upscale against the naive one that replicates the unfolded features
ceil(s)^2 times (the original code's method, ``meta_upscale_naive``). On the CPU
each variant runs in a fresh subprocess; it resets the kernel's peak-RSS mark
(``echo 5 > /proc/self/clear_refs``) right before the forward and reads VmHWM
after it, so the figure is the resident-memory high-water increase of the
forward alone. On CUDA it is ``torch.cuda.max_memory_allocated`` after
``reset_peak_memory_stats``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from medsr import models
from medsr.models.base import format_scale
from medsr.models.miassr import axis_sampling, meta_upscale_naive

#: LR input side per model on the CPU where it differs from ``--side``: BliMSR at paper
#: size costs ~2.5 TFLOP per 256x256 image, minutes on a small CPU
CPU_SIDE = {"blimsr": 48}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median wall time of ``repeats`` calls after one warm-up."""
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_gflops(device: torch.device, dtype: torch.dtype) -> float:
    """Dense square matmul throughput, the practical peak the models are compared with."""
    n = 1024 if device.type == "cpu" else 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    seconds = timed(lambda: a @ b, device, repeats=3)
    return 2 * n**3 / seconds / 1e9


def speed(device: torch.device, dtype: torch.dtype, side: int, repeats: int) -> None:
    """One row per model; the matmul reference is re-measured right before each model,
    so a busy shared machine slows both sides of the ratio alike."""
    label = str(dtype).replace("torch.", "")
    print(f"\n[{device.type} {label}] per model: time, counted GFLOP, GFLOP/s, and the ratio")
    print("to a dense matmul's GFLOP/s measured just before it")
    print(
        f"{'model':<12} {'scale':<8} {'input':>8} {'ms/image':>10} {'ms/256^2':>10} "
        f"{'GFLOP':>8} {'GFLOP/s':>8} {'matmul':>8} {'ratio':>6}"
    )
    for name in models.available():
        s = CPU_SIDE.get(name, side) if device.type == "cpu" else side
        model = models.build(name).eval().to(device=device, dtype=dtype)
        lr = torch.rand(1, model.in_channels, s, s, device=device, dtype=dtype)
        if model.is_baseline:
            gflop = models.forward_gflops(model, s, s)
        else:
            with torch.device("meta"):
                on_meta = models.build(name)
            gflop = models.forward_gflops(on_meta, s, s)
        peak = matmul_gflops(device, dtype)
        with torch.no_grad():
            seconds = timed(lambda m=model, x=lr: m(x), device, repeats)
        per_256 = seconds * (256 * 256) / (s * s)
        rate = gflop / seconds
        scale = format_scale(model.default_scale)
        print(
            f"{name:<12} {scale:<8} {f'{s}x{s}':>8} {seconds * 1e3:>10.1f} {per_256 * 1e3:>10.1f} "
            f"{gflop:>8.2f} {rate:>8.2f} {peak:>8.1f} {rate / peak:>6.3f}"
        )
        del model, lr


def analytic_bytes(side: int, scale: float, channels: int = 64, out: int = 1) -> dict[str, int]:
    """Largest Meta-Upscale intermediates (fp32 bytes) for one side x side LR image."""
    r = math.ceil(scale)
    slots = side * side * r * r
    ny = len(axis_sampling(side, scale).offsets)
    return {
        "naive: replicated unfolded features": 4 * 9 * channels * slots,
        "naive: per-slot kernels": 4 * 9 * channels * out * slots,
        "ours (conv path): responses of all kernels": 4 * ny * ny * out * side * side,
        "features (both)": 4 * channels * side * side,
    }


def probe(variant: str, side: int, scale: float, device: torch.device) -> int:
    """Peak bytes of one no-grad MIASSR forward (ours or naive) at ``scale``."""
    torch.manual_seed(0)
    model = models.build("miassr").eval().to(device)
    lr = torch.rand(1, 1, side, side, device=device)

    def forward() -> torch.Tensor:
        features = model.features(lr)
        pair = (scale, scale)
        if variant == "naive":
            return meta_upscale_naive(model.meta_upscale, features, pair) + model.data_mean
        return model.meta_upscale(features, pair) + model.data_mean

    with torch.no_grad():
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            out = forward()
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated() - base
        else:
            rss = Path("/proc/self/status")
            Path("/proc/self/clear_refs").write_text("5")
            before = _status_kib(rss.read_text(), "VmRSS")
            out = forward()
            peak = (_status_kib(rss.read_text(), "VmHWM") - before) * 1024
    assert out.shape[-1] == math.ceil(side * scale - 1e-9)
    return int(peak)


def _status_kib(text: str, key: str) -> int:
    line = next(row for row in text.splitlines() if row.startswith(key + ":"))
    return int(line.split()[1])


def memory(device: torch.device, side: int, scale: float) -> None:
    available_kib = _status_kib(Path("/proc/meminfo").read_text(), "MemAvailable")
    need = sum(analytic_bytes(side, scale).values()) * 2.5
    if device.type == "cpu" and need > available_kib * 1024 * 0.6:
        smaller = side // 2
        print(
            f"\n(naive Meta-Upscale at {side}x{side} needs ~{need / 2**30:.1f} GiB, "
            f"more than is free; measuring at {smaller}x{smaller})"
        )
        side = smaller
    print(
        f"\n[{device.type}] MIASSR peak memory, one no-grad forward at x{scale:g}, {side}x{side} LR"
    )
    results = {}
    for variant in ("ours", "naive"):
        if device.type == "cuda":
            results[variant] = probe(variant, side, scale, device)
        else:
            cmd = [sys.executable, __file__, "--probe", variant, "--memory-side", str(side)]
            cmd += ["--scale", str(scale)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results[variant] = json.loads(done.stdout.strip().splitlines()[-1])["peak_bytes"]
        print(f"  {variant:<6} peak {results[variant] / 2**20:10.1f} MiB")
    print(f"  naive / ours = {results['naive'] / max(results['ours'], 1):.1f}x")
    print("  analytic sizes of the largest intermediates:")
    for what, nbytes in analytic_bytes(side, scale).items():
        print(f"    {what:<45} {nbytes / 2**20:10.1f} MiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=128, help="LR input side on the CPU (GPU: 256)")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs after a warm-up")
    parser.add_argument("--memory-side", type=int, default=256)
    parser.add_argument("--scale", type=float, default=4.0)
    parser.add_argument("--quick", action="store_true", help="64x64 inputs, one repeat")
    parser.add_argument("--probe", choices=("ours", "naive"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        peak = probe(args.probe, args.memory_side, args.scale, torch.device("cpu"))
        print(json.dumps({"peak_bytes": peak}))
        return 0
    if args.quick:
        args.side, args.repeats, args.memory_side = 64, 1, 64
        CPU_SIDE["blimsr"] = 32
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    speed(torch.device("cpu"), torch.float32, args.side, args.repeats)
    memory(torch.device("cpu"), args.memory_side, args.scale)
    if torch.cuda.is_available():
        cuda = torch.device("cuda")
        print(f"\nGPU: {torch.cuda.get_device_name()}")
        for dtype in (torch.float16, torch.bfloat16):
            speed(cuda, dtype, 256, max(args.repeats, 10))
        memory(cuda, args.memory_side, args.scale)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
