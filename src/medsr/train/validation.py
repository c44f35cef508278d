"""Validation on fixed patches and the choice of the best checkpoint.

The patches, their LR and their reference baseline (cubic, or zero-fill for MR k-space)
are made once; each validation scores the EMA generator with PSNR, SSIM and GMSD (data
range 1), and the result is ranked against the best so far by ``validation.select``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from medsr.degrade.mr import zero_fill
from medsr.degrade.resize import imresize
from medsr.metrics import gmsd, psnr, ssim
from medsr.train.batches import common_crop
from medsr.zoo.rule import GAN_PSNR_FLOOR_DB

__all__ = [
    "PSNR_CAP_DB",
    "ValidationSet",
    "append_curve",
    "beats_best",
    "build_validation",
    "validate",
]

#: PSNR of an exact reconstruction is infinite; averages cap each patch here.
PSNR_CAP_DB = 100.0

#: (LR, target) of an HR batch at a scale (None: the configured degradation's own)
MakeLR = Callable[[Tensor, float | None], tuple[Tensor, Tensor]]


@dataclass
class ValidationSet:
    """Fixed validation patches, grouped by scale, with their bicubic baseline scores."""

    groups: list[tuple[tuple[float, float] | None, Tensor, Tensor]]
    shave: list[int]
    bicubic_psnr: float = float("nan")
    bicubic_ssim: float = float("nan")


def build_validation(
    hr_all: Tensor,
    make_lr: MakeLR,
    scales: list[float] | None,
    fixed_scale: tuple[float, float] | None,
    reference: str,
    shave_spec: int | str,
) -> ValidationSet:
    """LR and target of the fixed HR patches and the baseline's scores on them.

    ``scales`` (arbitrary-scale models) splits the patches into one group per scale;
    otherwise they form one group at the degradation's ``fixed_scale``. The baseline is
    the LR itself at scale 1, zero-fill when the degradation's ``reference`` is
    ``zero-fill`` (the MR acquisition's), else cubic. ``shave_spec`` ``auto`` shaves
    ``ceil(scale)`` pixels.
    """
    if scales is not None:
        chunks = [hr_all[i :: len(scales)] for i in range(len(scales))]
        pairs = [(float(s), c) for s, c in zip(scales, chunks) if len(c)]
    else:
        pairs = [(None, hr_all)]  # type: ignore[list-item]
    groups = []
    shaves = []
    scores_p, scores_s = [], []
    for s, hr in pairs:
        with torch.no_grad():
            lr, hr = make_lr(hr, s)
        pair = (s, s) if s is not None else fixed_scale
        assert pair is not None
        out = (
            math.ceil(lr.shape[-2] * pair[0] - 1e-6),
            math.ceil(lr.shape[-1] * pair[1] - 1e-6),
        )
        hr = hr[..., : out[0], : out[1]]
        shave = (
            (math.ceil(max(pair)) if max(pair) > 1 else 0)
            if shave_spec == "auto"
            else int(shave_spec)
        )
        if pair == (1.0, 1.0):
            base = lr
        elif s is None and reference == "zero-fill":
            base = zero_fill(lr, out).clamp(0, 1)  # the MR acquisition's reference
        else:
            base = imresize(lr, scale=pair, kernel="cubic").clamp(0, 1)
        base, hr_c = common_crop(base, hr)
        scores_p.append(psnr(base, hr_c, data_range=1.0, shave=shave).clamp(max=PSNR_CAP_DB))
        scores_s.append(ssim(base, hr_c, data_range=1.0, shave=shave))
        groups.append(((s, s) if s is not None else None, lr, hr))
        shaves.append(shave)
    return ValidationSet(
        groups,  # type: ignore[arg-type]
        shaves,
        float(torch.cat(scores_p).mean()),
        float(torch.cat(scores_s).mean()),
    )


@torch.no_grad()
def validate(
    model: nn.Module,
    validation: ValidationSet,
    autocast: Callable[[], AbstractContextManager[Any]],
    consistent: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> dict[str, float]:
    """PSNR/SSIM and GMSD (data range 1, [0, 1] intensities) of ``model`` on the fixed
    validation patches, with the bicubic baseline on the same patches.

    Means over patches; each PSNR is capped at ``PSNR_CAP_DB`` so one exactly
    reconstructed patch (flat or band-limited content) cannot make the mean infinite.
    """
    was_training = model.training
    model.eval()
    ps, ss, gs = [], [], []
    for (scale, lr, hr), shave in zip(validation.groups, validation.shave):
        with autocast():
            sr = model(lr, scale) if scale is not None else model(lr)
        if consistent is not None:  # the data-consistency step the model gets at inference
            sr = consistent(sr.float(), lr)
        sr, hr_c = common_crop(sr.float().clamp(0, 1), hr)
        ps.append(psnr(sr, hr_c, data_range=1.0, shave=shave).clamp(max=PSNR_CAP_DB))
        ss.append(ssim(sr, hr_c, data_range=1.0, shave=shave))
        gs.append(gmsd(sr, hr_c, data_range=1.0, shave=shave))
    model.train(was_training)
    return {
        "val/psnr": float(torch.cat(ps).mean()),
        "val/ssim": float(torch.cat(ss).mean()),
        "val/gmsd": float(torch.cat(gs).mean()),
        "val/bicubic_psnr": validation.bicubic_psnr,
        "val/bicubic_ssim": validation.bicubic_ssim,
    }


def beats_best(
    metrics: Mapping[str, float],
    best: Mapping[str, float],
    select: str,
    validation: ValidationSet | None,
) -> bool:
    """Whether a validation result beats the best so far (``validation.select``); both are
    ``val/psnr``, ``val/ssim``, ``val/gmsd`` dicts.

    ``psnr``: by PSNR *and* SSIM. A model must beat bicubic in both: a checkpoint whose
    SSIM is below the bicubic SSIM of the same patches ranks below every one that is
    not (a PSNR gain bought with texture painted into flat regions is no gain); within
    a rank, higher PSNR wins.

    ``perceptual`` (GAN fine-tuning, where the highest PSNR is simply the checkpoint
    nearest the pixel warm-up): checkpoints whose PSNR is within
    ``GAN_PSNR_FLOOR_DB`` of bicubic's rank above the rest; within a rank the
    lowest GMSD (gradient-magnitude similarity deviation, no learned weights) wins.
    """
    if select == "perceptual":
        bicubic = validation.bicubic_psnr if validation is not None else -math.inf
        floor = bicubic - GAN_PSNR_FLOOR_DB
        rank = (metrics["val/psnr"] >= floor, -metrics.get("val/gmsd", math.inf))
        return rank > (best["val/psnr"] >= floor, -best["val/gmsd"])
    base = validation.bicubic_ssim if validation is not None else -math.inf
    rank_psnr = (metrics["val/ssim"] >= base, metrics["val/psnr"])
    return rank_psnr > (best["val/ssim"] >= base, best["val/psnr"])


def append_curve(path: Path, iteration: int, metrics: Mapping[str, float]) -> None:
    """One line of the learning curve (held-out PSNR/SSIM against iterations)."""
    row = {"iteration": iteration, **{k: round(v, 5) for k, v in metrics.items()}}
    with path.open("a") as fh:
        fh.write(json.dumps(row) + "\n")
