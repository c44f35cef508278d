"""Everything worth measuring on a CUDA GPU, in one run (prints that no GPU is present otherwise).

1. Inference: every zoo generator (random weights, zoo configs) through
   ``ModelRunner`` (the path of ``medsr upscale``/``eval``/the app) on a batch of
   8 LR images of 256^2, fp32 / bf16 / fp16, default layout and channels-last:
   ms per batch and output megapixels/s.
2. Training: per published config and zoo config, the trainer's step time against
   its loader's time per batch (``benchmarks/train.py``'s measurement: does the
   CPU loader keep up with the GPU step?), with AMP as the config says.
3. ``ct-sparse-view`` (1000 views, every 16th): sparse FBP and the (sparse,
   full-view) training pair on 1 and 16 slices of 512^2, cold and warm.
4. ``bicubic`` x4 (MATLAB imresize semantics) on 16 x 512^2 against torch's
   antialiased bicubic interpolate, both on the GPU.

Timings synchronise the device; figures are medians of ``--repeats`` runs after
a warm-up. Sized to finish in a few minutes on one GPU::

    python benchmarks/gpu.py [--repeats 10] [--skip-training]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds of ``fn`` over ``repeats`` runs after one warm-up, device synchronised."""
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def inference(repeats: int) -> None:
    from medsr.infer.runner import ModelRunner
    from medsr.models import build
    from medsr.zoo.manifest import zoo_models

    print("\n[inference] 8 x 1 x 256^2 LR per batch, ModelRunner (BatchNorm folded)")
    print(
        f"{'model':<22}{'layout':<14}{'fp32 ms':>9}{'bf16 ms':>9}{'fp16 ms':>9}{'fp16 Mpx/s':>12}"
    )
    x = torch.rand(8, 1, 256, 256, generator=torch.Generator().manual_seed(0))
    for name, entry in sorted(zoo_models().items()):
        torch.manual_seed(0)
        model = build(str(entry["architecture"]), **dict(entry.get("config") or {})).eval()
        for layout in ("default", "channels-last"):
            row = []
            pixels = 0
            for precision in ("fp32", "bf16", "fp16"):
                runner = ModelRunner(
                    model, device="cuda", precision=precision, channels_last=layout != "default"
                )
                scale = runner.info.default_scale
                out = runner(x, scale)
                pixels = out.shape[0] * out.shape[-2] * out.shape[-1]
                row.append(timed(lambda r=runner, s=scale: r(x, s), repeats))
            print(
                f"{name:<22}{layout:<14}{row[0] * 1e3:>9.1f}{row[1] * 1e3:>9.1f}"
                f"{row[2] * 1e3:>9.1f}{pixels / row[2] / 1e6:>12.1f}"
            )


def training(iterations: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import train as train_bench  # benchmarks/train.py

    args = argparse.Namespace(
        iterations=iterations,
        warmup=2,
        batch=None,
        patch=None,
        amp=False,
        cine=False,
        corpus="corpus",
    )
    print(f"\n[training] step vs loader per batch, {iterations} iterations after 2 warm-up")
    print(
        f"{'config':<28}{'batch':>6}{'patch':>10}{'step ms':>9}{'degrade':>9}{'loader':>8}  keeps up"
    )
    configs = [*train_bench.METHODS, *(f"zoo/{z}" for z in train_bench.ZOO)]
    for method in configs:
        try:
            r = train_bench.bench_config(method, args, "cuda")
        except Exception as exc:  # one config failing should not hide the others
            print(f"{method:<28} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}")
            continue
        patch = "x".join(str(p) for p in r["patch"])
        print(
            f"{method:<28}{r['batch']:>6}{patch:>10}{r['step_ms']:>9.1f}{r['degrade_ms']:>9.1f}"
            f"{r['loader_ms']:>8.1f}  {'yes' if r['loader_keeps_up'] else 'NO'}"
        )


def ct_sparse_view(repeats: int) -> None:
    from medsr.degrade.ct import CTSparseView, projector

    ct = CTSparseView(n_angles=1000, view_step=16)
    print("\n[ct-sparse-view] 1000 views, every 16th kept, 512^2 slices")
    for batch in (1, 16):
        hr = torch.rand(batch, 1, 512, 512, device="cuda")
        projector.cache_clear()
        torch.cuda.synchronize()
        start = time.perf_counter()
        ct(hr)
        torch.cuda.synchronize()
        cold = time.perf_counter() - start
        warm = timed(lambda h=hr: ct(h), repeats)
        pair = timed(lambda h=hr: ct.apply_pair(h, {}), max(1, repeats // 2))
        print(
            f"  {batch:>2} slice(s): sparse FBP cold {cold * 1e3:.1f} ms, warm {warm * 1e3:.1f} ms; "
            f"pair (sparse + full-view FBP) {pair * 1e3:.1f} ms"
        )


def bicubic(repeats: int) -> None:
    from medsr.degrade import build

    x = torch.rand(16, 1, 512, 512, device="cuda")
    ours = build("bicubic", scale=4, clip=False)
    t_ours = timed(lambda: ours(x), repeats)
    t_torch = timed(
        lambda: F.interpolate(x, size=(128, 128), mode="bicubic", antialias=True), repeats
    )
    print(
        f"\n[bicubic] x4 on 16 x 512^2: MATLAB imresize {t_ours * 1e3:.2f} ms, torch "
        f"antialiased interpolate {t_torch * 1e3:.2f} ms ({t_ours / t_torch:.2f}x its time)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=10, help="training iterations")
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("benchmarks/gpu.py: no CUDA GPU is present on this machine; nothing was measured")
        return 0
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    torch.backends.cudnn.benchmark = True
    inference(args.repeats)
    ct_sparse_view(args.repeats)
    bicubic(args.repeats)
    if not args.skip_training:
        training(args.iterations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
