"""Degradation speed: the registry table, ct-sparse-view against scikit-image, bicubic against torch.

1. images/s of every registered degradation on 16 x 1 x 256 x 256 (CPU, and CUDA
   when present);
2. ``ct-sparse-view`` (1000 views, every 4th or 16th kept) on one slice of 256^2
   and 512^2 against ``skimage.transform.radon`` + ``iradon`` of the same views,
   cold (the projector cache emptied before each call) and warm, and the
   training pair (sparse and full-view FBP) against the three scikit-image calls
   it replaces;
3. the MATLAB-semantics ``bicubic`` degradation (x4 on 16 x 512^2) against
   ``torch.nn.functional.interpolate(mode="bicubic", antialias=True)``.

The machine may be shared, so the two sides of each comparison run alternately
and the printed figure is the median of the per-round ratios. ``--threads 1``
compares with scikit-image on one core each (steadier on a busy machine)::

    OMP_NUM_THREADS=2 python benchmarks/degrade.py [--rounds 3] [--skip-table] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from medsr.degrade import available, build
from medsr.degrade.ct import CTSparseView, projector


def _seconds(fn: Callable[[], object], before: Callable[[], None] = lambda: None) -> float:
    before()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(
    ours: Callable[[], object],
    theirs: Callable[[], object],
    rounds: int,
    before: Callable[[], None] = lambda: None,
) -> tuple[float, float, float]:
    """Median seconds of each side and the median per-round ratio theirs / ours."""
    a, b, ratios = [], [], []
    for _ in range(rounds):
        t_ours = _seconds(ours, before)
        t_theirs = _seconds(theirs)
        a.append(t_ours)
        b.append(t_theirs)
        ratios.append(t_theirs / t_ours)
    return statistics.median(a), statistics.median(b), statistics.median(ratios)


def _degradation_table(device: torch.device, batch: int, size: int, repeats: int) -> None:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    hr = torch.rand(batch, 1, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    print(f"\n{device.type}: {batch} x 1 x {size} x {size}, best of {repeats}")
    print(f"{'degradation':<22}{'scale':>12}{'LR':>12}{'s/batch':>10}{'images/s':>11}")
    for name in available():
        degradation = build(name)
        g = torch.Generator().manual_seed(1)
        out = degradation(hr, generator=g)
        times = []
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            degradation(hr, generator=g)
            sync()
            times.append(time.perf_counter() - start)
        seconds = min(times)
        scale = "x".join(f"{s:g}" for s in degradation.scale)
        lr = "x".join(str(s) for s in out.shape[-2:])
        print(f"{name:<22}{scale:>12}{lr:>12}{seconds:>10.3f}{batch / seconds:>11.1f}")


def _slice(size: int) -> np.ndarray:
    """A smooth disc phantom with texture, zero outside the field of view."""
    y, x = np.mgrid[:size, :size] - size / 2
    r2 = (x**2 + y**2) / (size / 2) ** 2
    texture = 0.25 * np.sin(x / 5.0) * np.cos(y / 9.0)
    return np.clip(np.where(r2 < 0.8, 0.5 + texture, 0.0), 0, 1).astype(np.float32)


def ct_comparison(size: int, step: int, rounds: int) -> None:
    from skimage.transform import iradon, radon

    ct = CTSparseView(n_angles=1000, view_step=step)
    image = _slice(size)
    hr = torch.from_numpy(image)[None, None]
    kept = np.array(ct.kept_angles)
    full = np.array(ct.angles)

    def skimage_sparse() -> np.ndarray:
        return iradon(radon(image, kept, circle=True), kept, circle=True)

    def skimage_pair() -> tuple[np.ndarray, np.ndarray]:
        sinogram = radon(image, full, circle=True)
        return (
            iradon(sinogram[:, ::step], kept, circle=True),
            iradon(sinogram, full, circle=True),
        )

    diff = float(np.abs(ct(hr)[0, 0].numpy() - np.clip(skimage_sparse(), 0, 1)).max())
    cold = alternate(lambda: ct(hr), skimage_sparse, rounds, projector.cache_clear)
    warm = alternate(lambda: ct(hr), skimage_sparse, rounds)
    pair = alternate(lambda: ct.apply_pair(hr, {}), skimage_pair, max(1, rounds // 2))
    views = len(kept)
    print(
        f"ct-sparse-view {size}^2, {views} of 1000 views (step {step}): "
        f"cold {cold[0]:.3f} s vs skimage {cold[1]:.3f} s -> {cold[2]:.1f}x; "
        f"warm {warm[0]:.3f} s -> {warm[2]:.1f}x; pair (sparse + full-view FBP) "
        f"{pair[0]:.2f} s vs skimage {pair[1]:.2f} s -> {pair[2]:.1f}x; "
        f"max |ours - skimage| {diff:.1e}"
    )


def bicubic_comparison(batch: int, size: int, rounds: int) -> None:
    x = torch.rand(batch, 1, size, size, generator=torch.Generator().manual_seed(0))
    bicubic = build("bicubic", scale=4, clip=False)
    out = size // 4

    def torch_aa() -> torch.Tensor:
        return F.interpolate(x, size=(out, out), mode="bicubic", antialias=True)

    bicubic(x)
    torch_aa()
    ours, theirs, ratio = alternate(lambda: bicubic(x), torch_aa, rounds)
    print(
        f"bicubic x4 on {batch} x {size}^2 (MATLAB imresize semantics): {ours * 1e3:.1f} ms, "
        f"torch interpolate(bicubic, antialias) {theirs * 1e3:.1f} ms -> ours takes "
        f"{1 / ratio:.2f}x torch's time"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=256, help="table image size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-table", action="store_true", help="only the comparisons")
    parser.add_argument("--ct-sizes", default="256,512")
    parser.add_argument("--ct-steps", default="4,16")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (scikit-image uses one)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    if not args.skip_table:
        _degradation_table(torch.device("cpu"), args.batch, args.size, args.rounds)
        if torch.cuda.is_available():
            _degradation_table(torch.device("cuda"), args.batch, args.size, args.rounds)
    print()
    for size in (int(s) for s in args.ct_sizes.split(",")):
        for step in (int(s) for s in args.ct_steps.split(",")):
            ct_comparison(size, step, args.rounds)
    bicubic_comparison(16, 512, max(3, args.rounds))


if __name__ == "__main__":
    main()
