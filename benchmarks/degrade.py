"""Degradation throughput, and our batched CT FBP against scikit-image's iradon.

Prints images/s for every registered degradation on a batch of 16 x 1 x 256 x 256
on the CPU (and on CUDA when available), then the time of our FBP and of
``skimage.transform.iradon`` on 8 x 256 x 256 sinograms (the ct-sparse-view
default: 1000 views, every 4th kept = 250 views) and their ratio, in one run.

    OMP_NUM_THREADS=2 python benchmarks/degrade.py [--batch 16] [--size 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from medsr.degrade import available, build
from medsr.degrade.ct import CTSparseView, fbp


def _best_of(fn, repeats: int, sync=lambda: None) -> float:
    fn()  # warm-up: caches (resize weights, CT projector) and lazy init
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


def _degradation_table(device: torch.device, batch: int, size: int, repeats: int) -> None:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    hr = torch.rand(batch, 1, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    print(f"\n{device.type}: {batch} x 1 x {size} x {size}, best of {repeats}")
    print(f"{'degradation':<22}{'scale':>12}{'LR':>12}{'s/batch':>10}{'images/s':>11}")
    for name in available():
        degradation = build(name)
        g = torch.Generator().manual_seed(1)
        out = degradation(hr, generator=g)
        seconds = _best_of(lambda d=degradation, g=g: d(hr, generator=g), repeats, sync)
        scale = "x".join(f"{s:g}" for s in degradation.scale)
        lr = "x".join(str(s) for s in out.shape[-2:])
        print(f"{name:<22}{scale:>12}{lr:>12}{seconds:>10.3f}{batch / seconds:>11.1f}")


def _fbp_comparison(size: int, repeats: int) -> None:
    from skimage.transform import iradon

    ct = CTSparseView()
    angles = ct.kept_angles
    rng = np.random.default_rng(0)
    sinograms = rng.random((8, len(angles), size)).astype(np.float32)
    theta = np.array(angles)
    batch = torch.from_numpy(sinograms)
    ours = _best_of(lambda: fbp(batch, angles), repeats)
    reference = _best_of(
        lambda: [iradon(s.T, theta, circle=True, filter_name="ramp") for s in sinograms],
        max(1, repeats // 2),
    )
    diff = float(
        np.abs(fbp(batch, angles)[0].numpy() - iradon(sinograms[0].T, theta, circle=True)).max()
    )
    print(
        f"\nCT FBP, 8 x {size} x {size}, {len(angles)} views, CPU ({torch.get_num_threads()} threads)"
    )
    print(f"  medsr fbp (batched, sparse back-projection): {ours:.3f} s")
    print(f"  skimage.transform.iradon (per image):        {reference:.3f} s")
    print(f"  speed ratio: {reference / ours:.1f}x   (max |difference| {diff:.2e})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-table", action="store_true", help="only the FBP comparison")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    if not args.skip_table:
        _degradation_table(torch.device("cpu"), args.batch, args.size, args.repeats)
        if torch.cuda.is_available():
            _degradation_table(torch.device("cuda"), args.batch, args.size, args.repeats)
    _fbp_comparison(args.size, args.repeats)


if __name__ == "__main__":
    main()
