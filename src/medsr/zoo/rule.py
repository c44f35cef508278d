"""The shipping rule: which zoo models a user is handed, and which are defaults.

A zoo model is *shipped* only when its card shows that it beats its acquisition's
reference (zero-filled k-space interpolation for MR k-space models, bicubic for bicubic
or binned input, the FBP input for sparse-view CT) in both PSNR and SSIM on the held-out
test role of every modality it claims, and moves no test image's mean intensity by more
than :data:`MAX_MEAN_BIAS` of the data range. An adversarially trained model (kind
``gan``) may instead trade up to :data:`GAN_PSNR_FLOOR_DB` of PSNR against its reference
on any modality, but must then show what it bought: a lower (better) GMSD than its PSNR
twin (the same network trained on pixel losses, its warm-up), with the same bias limit.
Defaults are chosen among shipped pixel-loss models only. Any other model is
*experimental*: it stays loadable by name, but it is never a default, and ``medsr
models``, the app and the README flag it.

The manifest records each entry's ``status`` and, under ``defaults``, the model to use
per choice key (:mod:`medsr.zoo.choice`). Without a shipped model for a request the
default is the ``bicubic`` baseline: no user is handed a model worse than bicubic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from medsr.zoo.manifest import EXPERIMENTAL, SHIPPED, acquisition_key

__all__ = [
    "EXPERIMENTAL",
    "FALLBACK",
    "GAN_PSNR_FLOOR_DB",
    "MAX_MEAN_BIAS",
    "SHIPPED",
    "choose_defaults",
    "shipping_verdict",
]

#: Largest allowed shift of an output's mean intensity, as a fraction of the data range.
MAX_MEAN_BIAS = 0.002
#: How far below its reference's PSNR a shipped GAN may be on any modality (dB).
GAN_PSNR_FLOOR_DB = 0.5
#: What a user gets when the zoo ships no model for the request.
FALLBACK = "bicubic"


def shipping_verdict(
    by_modality: Mapping[str, Mapping[str, float]],
    worst_bias: float,
    kind: str = "psnr",
    perceptual: tuple[float, float] | None = None,
) -> tuple[bool, list[str]]:
    """Whether a model may ship, with the reasons it may not.

    ``by_modality`` maps a modality to its test-role mean ``psnr_gain`` (dB) and
    ``ssim_gain`` over the reference; ``worst_bias`` is the largest per-image
    ``|mean(SR) - mean(HR)| / data_range``. For ``kind="gan"``, ``perceptual`` is
    ``(model GMSD, PSNR twin's GMSD)``, test-role means (lower is better).
    """
    gan = kind.strip().lower() == "gan"
    reasons = []
    if not by_modality:
        reasons.append("no test-role evaluation")
    for modality, gains in by_modality.items():
        psnr_gain, ssim_gain = float(gains["psnr_gain"]), float(gains["ssim_gain"])
        if gan:
            if not psnr_gain >= -GAN_PSNR_FLOOR_DB:
                reasons.append(
                    f"{modality}: PSNR {psnr_gain:+.2f} dB vs the reference "
                    f"(a GAN may lose at most {GAN_PSNR_FLOOR_DB} dB)"
                )
            continue
        if not psnr_gain > 0 or math.isnan(psnr_gain):
            reasons.append(f"{modality}: PSNR {psnr_gain:+.2f} dB vs the reference")
        if not ssim_gain > 0 or math.isnan(ssim_gain):
            reasons.append(f"{modality}: SSIM {ssim_gain:+.4f} vs the reference")
    if gan:
        if perceptual is None:
            reasons.append("no PSNR twin scored to compare its perceptual measure with")
        elif not perceptual[0] < perceptual[1]:
            reasons.append(
                f"GMSD {perceptual[0]:.4f} is not below its PSNR twin's {perceptual[1]:.4f}: "
                "adversarial training bought no measured perceptual gain"
            )
    if not worst_bias <= MAX_MEAN_BIAS:
        reasons.append(
            f"mean intensity shifted by {100 * worst_bias:.2f}% of the data range "
            f"(limit {100 * MAX_MEAN_BIAS:.1f}%)"
        )
    return not reasons, reasons


def choose_defaults(summaries: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The manifest's ``defaults``: per choice key, the shipped pixel-loss model that gains
    most over its reference (a GAN is never a default: fidelity first in a medical tool).

    Each summary has ``name``, ``status``, ``kind``, ``acquisition`` (what it was trained
    for), ``arbitrary_scale`` and ``settings``: label -> figures with ``scale_key``,
    ``scale`` and ``acquisition`` (what the setting degrades with) and ``psnr_gain`` (mean dB
    over the test role). Generic keys (``"2"``, ``"4"``, ``"any"``; ``"default"`` is the
    ``"2"`` choice, else ``"4"``, else ``"any"``) come from bicubic-trained models on
    bicubic settings; acquisition keys (``"mr-kspace:x2"``, see
    :func:`medsr.zoo.manifest.acquisition_key`) from models trained for that acquisition,
    on settings of it.
    """
    best: dict[str, tuple[float, str]] = {}

    def offer(key: str, gain: float, name: str) -> None:
        if not math.isnan(gain) and (key not in best or gain > best[key][0]):
            best[key] = (gain, name)

    for s in summaries:
        if s.get("status") != SHIPPED or str(s.get("kind", "psnr")).lower() == "gan":
            continue
        trained_for = str(s.get("acquisition", "bicubic"))
        gains = []
        for figures in s["settings"].values():
            scored_on = str(figures.get("acquisition", "bicubic"))
            if scored_on != trained_for or not figures.get("claimed", True):
                continue  # how it does elsewhere (other acquisitions, noise) is shown only
            gain = float(figures["psnr_gain"])
            gains.append(gain)
            if trained_for != "bicubic":
                offer(acquisition_key(trained_for, figures.get("scale")), gain, str(s["name"]))
            elif str(figures.get("scale_key")) in ("2", "4"):
                offer(str(figures["scale_key"]), gain, str(s["name"]))
        if s.get("arbitrary_scale") and gains and trained_for == "bicubic":
            offer("any", sum(gains) / len(gains), str(s["name"]))
    out = {key: name for key, (_, name) in best.items()}
    for key in ("2", "4", "any"):
        if key in out:
            out["default"] = out[key]
            break
    return out
