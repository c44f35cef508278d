"""Sparse-view CT restorers on the held-out head CT: gain over the FBP input at view steps
8, 16 and 32, with and without the sinogram-domain data-consistency step.

The data are the corpus test role's CT (``medsr corpus build corpus``), central crop up to
512x512, in the [-1024, 200] HU window the restorers were trained in; PSNR and SSIM in HU
with data range 1224 (the window width), against the full-view FBP (ct-sparse-view's
target); the reference is the sparse-view FBP input itself. The same machinery as
``medsr eval`` and ``medsr zoo cards``.

    python benchmarks/ct_sparse_view.py --corpus corpus
    python benchmarks/ct_sparse_view.py --models sisr-ct-sparse-view-slices --steps 16
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from medsr.evaluate.runner import load_models, run_evaluation
from medsr.zoo.cards.scoring import load_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("corpus"))
    parser.add_argument(
        "--models", nargs="+", default=["sisr-ct-sparse-view-slices", "sisr-ct-sparse-view"]
    )
    parser.add_argument("--steps", nargs="+", type=int, default=[8, 16, 32])
    args = parser.parse_args()

    images = [
        im for im in load_data("corpus", args.corpus, "deeplesion") if im.modality.value == "CT"
    ]
    print(f"{len(images)} held-out CT slices: {', '.join(im.name for im in images)}")
    print(
        "| model | view step | consistency step | FBP PSNR | model PSNR | gain (dB) "
        "| ΔSSIM | worst |bias| % |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for step in args.steps:
        spec = json.dumps({"name": "ct-sparse-view", "view_step": step})
        for consistency in (None, False):
            run = run_evaluation(
                load_models(args.models), images, 1.0, spec, 0, data_consistency=consistency
            )
            reference = run.models[run.baseline]
            for name in args.models:
                result = run.models[name]
                bias = max(abs(s.bias) for s in result.scores)
                print(
                    f"| {name} | {step} | {'off' if consistency is False else 'on'} "
                    f"| {reference.mean('psnr'):.2f} | {result.mean('psnr'):.2f} "
                    f"| {result.gain['psnr']:+.2f} | {result.gain['ssim']:+.4f} | {bias:.3f} |"
                )


if __name__ == "__main__":
    main()
