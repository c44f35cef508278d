"""How far can a zoo model's architecture go on one test image if it is trained ON that image?

A diagnostic, never a way to make weights: the zoo model is fine-tuned on random crops of
one held-out test image itself (the answer is in the training data), and its whole-image
PSNR gain over bicubic is printed as it goes. Where even this memorisation plateaus below
a target, more data or more iterations for the same architecture cannot reach it; a larger
network (or a different target) is needed. Scored as the cards are: the corpus test role
image's central crop up to 512x512, in physical units with its data range, a border of
``scale`` pixels shaved.

    python scripts/zoo_ceiling.py --model srresnet-x4 --image us-us1 --scale 4
    python scripts/zoo_ceiling.py --model srresnet-x2 --image cr-rg3 --scale 2 --iterations 600
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
CROP = 512
PATCH = 64


def test_image(corpus: Path, label: str) -> tuple[np.ndarray, float]:
    """The first slice of test-role image ``label``, normalised to [0, 1], and its data range."""
    from medsr.data import load_record, records_for
    from medsr.evaluate.runner import prepare_images

    records = [r for r in records_for("corpus", corpus, role="test") if r.label == label]
    if not records:
        raise SystemExit(f"zoo_ceiling: no test-role image {label!r} in {corpus}")
    image = prepare_images([(label, load_record(records[0]))], CROP)[0]
    unit = image.normalization.to_unit(image.hr, clip=True)
    return np.asarray(unit, dtype=np.float32), image.data_range


def gains(model: torch.nn.Module, hr: torch.Tensor, scale: int) -> tuple[float, float]:
    """Whole-image PSNR (dB, data range 1 on the unit scale) of the model and of bicubic."""
    from medsr.degrade.resize import imresize
    from medsr.metrics import psnr

    lr = imresize(hr, 1 / scale).clamp(0, 1)
    model.eval()
    with torch.inference_mode():
        sr = model(lr).clamp(0, 1)
    bicubic = imresize(lr, float(scale)).clamp(0, 1)
    model.train()
    return float(psnr(sr, hr, 1.0, scale)[0]), float(psnr(bicubic, hr, 1.0, scale)[0])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", required=True, help="zoo name or weights file")
    parser.add_argument("--image", required=True, help="test-role label, e.g. us-us1")
    parser.add_argument("--scale", type=int, required=True)
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--every", type=int, default=200)
    args = parser.parse_args(argv)

    from medsr.degrade.resize import imresize
    from medsr.infer.api import load_model

    torch.manual_seed(0)
    unit, data_range = test_image(args.corpus, args.image)
    q = args.scale
    hr = torch.from_numpy(unit[: unit.shape[0] // q * q, : unit.shape[1] // q * q])[None, None]
    model = load_model(args.model)
    model.train()
    sr_db, bicubic_db = gains(model, hr, q)
    print(
        f"{args.model} on {args.image} x{q} (data range {data_range:g}): "
        f"start {sr_db - bicubic_db:+.2f} dB over bicubic ({bicubic_db:.2f} dB)"
    )
    optimizer = torch.optim.Adam(model.parameters(), args.lr)
    h, w = hr.shape[-2:]
    for it in range(1, args.iterations + 1):
        ys = torch.randint(0, h - PATCH + 1, (16,)).tolist()
        xs = torch.randint(0, w - PATCH + 1, (16,)).tolist()
        batch = torch.cat([hr[..., y : y + PATCH, x : x + PATCH] for y, x in zip(ys, xs)])
        batch = torch.rot90(batch, it % 4, (-2, -1))
        batch = batch.flip(-1) if it % 8 >= 4 else batch
        loss = F.l1_loss(model(imresize(batch, 1 / q)), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if it % args.every == 0:
            sr_db, bicubic_db = gains(model, hr, q)
            print(f"iteration {it}: {sr_db - bicubic_db:+.2f} dB over bicubic", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
