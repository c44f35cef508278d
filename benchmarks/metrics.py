"""SSIM and PSNR speed: medsr's batched call, its per-image loop, and scikit-image's loop.

20 pairs of 512 x 512 float32 images in [0, 1] (``--batch``, ``--size``); SSIM
with scikit-image's Gaussian settings (``gaussian_weights=True, sigma=1.5,
use_sample_covariance=False``), the conventions medsr reproduces. The sides run
alternately; figures are medians over ``--rounds`` and the ratio is the median
of per-round ratios. scikit-image is single-threaded, so ``--threads 1`` (the
default) compares like with like; ``--threads 2`` shows medsr with both cores::

    python benchmarks/metrics.py [--threads 1] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from medsr.metrics import psnr, ssim


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(name: str, sides: dict[str, Callable[[], object]], rounds: int, reference: str) -> None:
    times: dict[str, list[float]] = {k: [] for k in sides}
    ratios: dict[str, list[float]] = {k: [] for k in sides}
    for fn in sides.values():
        fn()  # warm-up
    for _ in range(rounds):
        for key, fn in sides.items():
            times[key].append(_seconds(fn))
        for key in sides:
            ratios[key].append(times[reference][-1] / times[key][-1])
    parts = [
        f"{key} {statistics.median(times[key]) * 1e3:.1f} ms"
        + (
            ""
            if key == reference
            else f" ({statistics.median(ratios[key]):.2f}x {reference}'s speed)"
        )
        for key in sides
    ]
    print(f"{name}: " + ", ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 1, args.size, args.size, generator=g)
    y = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    xn, yn = x[:, 0].numpy(), y[:, 0].numpy()
    n = args.batch
    print(
        f"{n} x {args.size}^2 float32 pairs; torch {torch.__version__} with "
        f"{torch.get_num_threads()} thread(s); scikit-image single-threaded"
    )

    def skimage_loop() -> list[float]:
        """scikit-image's SSIM with the Gaussian window of Wang et al. (medsr's definition)."""
        return [
            structural_similarity(
                xn[i],
                yn[i],
                data_range=1.0,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )
            for i in range(n)
        ]

    diff = float(np.abs(ssim(x, y, 1.0).numpy() - np.array(skimage_loop())).max())
    compare(
        f"SSIM (max |medsr - skimage| {diff:.1e})",
        {
            "skimage loop": skimage_loop,
            "medsr batched": lambda: ssim(x, y, 1.0),
            "medsr per image": lambda: [ssim(x[i : i + 1], y[i : i + 1], 1.0) for i in range(n)],
        },
        args.rounds,
        "skimage loop",
    )
    compare(
        "PSNR",
        {
            "skimage loop": lambda: [
                peak_signal_noise_ratio(xn[i], yn[i], data_range=1.0) for i in range(n)
            ],
            "medsr batched": lambda: psnr(x, y, 1.0),
            "medsr per image": lambda: [psnr(x[i : i + 1], y[i : i + 1], 1.0) for i in range(n)],
        },
        args.rounds,
        "skimage loop",
    )


if __name__ == "__main__":
    main()
