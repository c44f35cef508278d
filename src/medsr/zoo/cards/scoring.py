"""Scoring for the cards: every (model, setting) on the held-out corpus test role and the
bundled samples, through the ``medsr eval`` machinery (:mod:`medsr.evaluate.runner`), with
each setting's reference (zero-filled k-space interpolation for MR k-space input, bicubic
otherwise, the FBP input for sparse-view CT) scored in the same run."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medsr.zoo.cards.settings import CROP, MIN_STD, SEED, SETTINGS, Setting

__all__ = ["bias", "evaluate", "load_data", "sharpness", "summarise"]


def sharpness(sr: Any, hr: Any, shave: Sequence[int]) -> float:
    """``gradient_sharpness`` of two 2-D arrays over their common top-left region."""
    import numpy as np
    import torch

    from medsr.metrics import gradient_sharpness

    h, w = min(sr.shape[0], hr.shape[0]), min(sr.shape[1], hr.shape[1])
    x = torch.from_numpy(np.ascontiguousarray(sr[:h, :w], dtype=np.float64))[None, None]
    y = torch.from_numpy(np.ascontiguousarray(hr[:h, :w], dtype=np.float64))[None, None]
    return float(gradient_sharpness(x, y, shave=list(shave))[0])


def bias(sr: Any, hr: Any, data_range: float, shave: Sequence[int]) -> float:
    """``|mean(SR) - mean(HR)| / data_range`` over the shaved common region."""
    import numpy as np

    h, w = min(sr.shape[0], hr.shape[0]), min(sr.shape[1], hr.shape[1])
    sy, sx = int(shave[0]), int(shave[1])
    a = np.asarray(sr[sy : h - sy, sx : w - sx], dtype=np.float64)
    b = np.asarray(hr[sy : h - sy, sx : w - sx], dtype=np.float64)
    return float(abs(a.mean() - b.mean()) / data_range)


def load_data(source: str, corpus: Path, ct_window: str = "full") -> list[Any]:
    """Evaluation images: the held-out test role of the corpus, or the bundled test samples.

    Every slice of a test volume is scored; images are cropped to the central 512x512;
    CT is clipped to and normalised with ``ct_window``.
    """
    from medsr.data import load_record, records_for
    from medsr.evaluate.runner import load_images, prepare_images

    if source == "samples":
        return prepare_images(load_images("samples"), CROP, ct_window, first_frame_only=True)
    named = [(r.label, load_record(r)) for r in records_for("corpus", corpus, role="test")]
    images = prepare_images(named, CROP, ct_window)
    # Near-constant slices (air at the ends of a volume) are dropped, as in training: every
    # method scores an infinite PSNR on them.
    return [im for im in images if float(im.hr.std()) >= MIN_STD * im.data_range]


def evaluate(
    names: Sequence[str], source: str, corpus: Path
) -> dict[tuple[str, Setting], dict[str, Any]]:
    """Scores of every (model, setting) on one data source: per-image reference and model
    PSNR/SSIM/sharpness/mean bias."""
    from medsr.evaluate.runner import load_models, run_evaluation

    by_window: dict[str, list[Any]] = {}
    settings: dict[Setting, list[str]] = {}
    for name in names:
        for setting in SETTINGS.get(name, []):
            settings.setdefault(setting, []).append(name)
    out: dict[tuple[str, Setting], dict[str, Any]] = {}
    for setting, models in settings.items():
        if setting.ct_window not in by_window:
            by_window[setting.ct_window] = load_data(source, corpus, setting.ct_window)
        images = by_window[setting.ct_window]
        chosen = [im for im in images if im.modality.value in setting.modalities]
        if not chosen:
            continue
        specs = load_models(models, reference=setting.reference)
        started = time.perf_counter()
        scale = setting.scale if setting.scale[0] != setting.scale[1] else setting.scale[0]
        run = run_evaluation(
            specs,
            chosen,
            scale,
            setting.degradation_spec,
            SEED,
            keep_visuals=True,
            data_consistency=setting.data_consistency,
        )
        print(
            f"{source} {setting.label}: {len(chosen)} images, {', '.join(models)} "
            f"({time.perf_counter() - started:.1f} s)",
            file=sys.stderr,
        )
        shave = list(run.shave)
        for name in models:
            rows = []
            for i, visual in enumerate(run.visuals):
                ref = run.models[run.baseline].scores[i]
                mine = run.models[name].scores[i]
                rows.append(
                    {
                        "image": mine.name,
                        "modality": mine.modality,
                        "data_range": mine.data_range,
                        "reference": {
                            "psnr": ref.psnr,
                            "ssim": ref.ssim,
                            "gmsd": ref.gmsd,
                            "haarpsi": ref.haarpsi,
                            "sharpness": sharpness(visual.sr[run.baseline], visual.hr, shave),
                            "bias": bias(visual.sr[run.baseline], visual.hr, ref.data_range, shave),
                        },
                        "model": {
                            "psnr": mine.psnr,
                            "ssim": mine.ssim,
                            "gmsd": mine.gmsd,
                            "haarpsi": mine.haarpsi,
                            "sharpness": sharpness(visual.sr[name], visual.hr, shave),
                            "bias": bias(visual.sr[name], visual.hr, mine.data_range, shave),
                        },
                    }
                )
            out[(name, setting)] = {
                "rows": rows,
                "shave": shave,
                "degradation_config": run.degradation_config,
                "seconds": run.models[name].seconds,
                "reference": run.baseline,
            }
    return out


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else math.nan


def _signed(value: float, digits: int) -> str:
    return f"{value:+.{digits}f}"


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean PSNR/SSIM/sharpness, gains over the reference overall and per modality (the
    mean over that modality's images), the worst per-image mean bias."""
    by_modality: dict[str, dict[str, float]] = {}
    for modality in sorted({r["modality"] for r in rows}):
        mine = [r for r in rows if r["modality"] == modality]
        by_modality[modality] = {
            "psnr_gain": _mean([r["model"]["psnr"] - r["reference"]["psnr"] for r in mine]),
            "ssim_gain": _mean([r["model"]["ssim"] - r["reference"]["ssim"] for r in mine]),
            "images": len(mine),
        }
    return {
        "psnr": _mean([r["model"]["psnr"] for r in rows]),
        "ssim": _mean([r["model"]["ssim"] for r in rows]),
        "sharpness": _mean([r["model"]["sharpness"] for r in rows]),
        "reference_psnr": _mean([r["reference"]["psnr"] for r in rows]),
        "reference_ssim": _mean([r["reference"]["ssim"] for r in rows]),
        "reference_sharpness": _mean([r["reference"]["sharpness"] for r in rows]),
        "gmsd": _mean([r["model"]["gmsd"] for r in rows]),
        "haarpsi": _mean([r["model"]["haarpsi"] for r in rows]),
        "reference_gmsd": _mean([r["reference"]["gmsd"] for r in rows]),
        "reference_haarpsi": _mean([r["reference"]["haarpsi"] for r in rows]),
        "psnr_gain": _mean([r["model"]["psnr"] - r["reference"]["psnr"] for r in rows]),
        "ssim_gain": _mean([r["model"]["ssim"] - r["reference"]["ssim"] for r in rows]),
        "psnr_gain_by_modality": {m: g["psnr_gain"] for m, g in by_modality.items()},
        "ssim_gain_by_modality": {m: g["ssim_gain"] for m, g in by_modality.items()},
        "images_by_modality": {m: g["images"] for m, g in by_modality.items()},
        "worst_bias": max(r["model"]["bias"] for r in rows),
        "worst_image_psnr_gain": min(r["model"]["psnr"] - r["reference"]["psnr"] for r in rows),
        "beats_reference_everywhere": all(
            g["psnr_gain"] > 0 and g["ssim_gain"] > 0 for g in by_modality.values()
        ),
    }
