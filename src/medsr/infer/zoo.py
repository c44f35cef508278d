"""The zoo's shipping rule: which models a user is handed, and the default per scale.

A zoo model is *shipped* only when its card shows that it beats its reference
(bicubic; for sparse-view CT, its FBP input) in both PSNR and SSIM on the held-out
test role of every modality it claims, and moves no test image's mean intensity by
more than :data:`MAX_MEAN_BIAS` of the data range. An adversarially trained model (kind
``gan``) may instead trade up to :data:`GAN_PSNR_FLOOR_DB` of PSNR against bicubic on
any modality, but must then show what it bought: a lower (better) GMSD than its PSNR
twin (the same network trained on pixel losses, its warm-up), with the same bias limit.
Defaults are chosen among shipped pixel-loss models only. Any other model is *experimental*:
it stays loadable by name, but it is never a default, and ``medsr models``, the app
and the README flag it.

The manifest (``zoo/manifest.json``) records each entry's ``status`` and, under
``defaults``, the model to use per scale (``"2"``, ``"4"``, ``"any"`` for other
scales) and overall (``"default"``); :func:`default_model` reads it, so the CLI, the
Python API and the app agree. Without a shipped model for a scale the default is the
``bicubic`` baseline: no user is handed a model worse than bicubic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medsr.errors import InputError

SHIPPED = "shipped"
EXPERIMENTAL = "experimental"
#: Largest allowed shift of an output's mean intensity, as a fraction of the data range.
MAX_MEAN_BIAS = 0.002
#: How far below its reference's PSNR a shipped GAN may be on any modality (dB).
GAN_PSNR_FLOOR_DB = 0.5
#: What a user gets when the zoo ships no model for the scale.
FALLBACK = "bicubic"


def zoo_status(name: str, zoo_dir: str | Path | None = None) -> str | None:
    """``shipped`` or ``experimental`` for a zoo model; None for a name not in the zoo.

    An entry without a status (older manifests) counts as experimental.
    """
    from medsr.infer.weights import zoo_models

    entry = zoo_models(zoo_dir).get(name)
    if entry is None:
        return None
    return SHIPPED if entry.get("status") == SHIPPED else EXPERIMENTAL


def manifest_defaults(zoo_dir: str | Path | None = None) -> dict[str, str]:
    """The manifest's ``defaults`` mapping (scale key -> zoo name); empty when absent."""
    from medsr.infer.weights import zoo_folder, zoo_manifest

    defaults = zoo_manifest(zoo_dir).get("defaults", {})
    if not isinstance(defaults, dict):
        path = zoo_folder(zoo_dir) / "manifest.json"
        raise InputError(path, '"defaults" must map a scale to a zoo model name')
    return {str(k): str(v) for k, v in defaults.items()}


def scale_key(scale: float | Sequence[float] | None) -> str:
    """``2`` -> ``"2"``, ``(4, 4)`` -> ``"4"``, ``2.5`` or ``(1, 4)`` -> ``"any"``, None -> ``"default"``."""
    if scale is None:
        return "default"
    if isinstance(scale, (int, float)):
        pair = (float(scale), float(scale))
    else:
        values = [float(s) for s in scale]
        pair = (values[0], values[-1])
    if pair[0] == pair[1] and float(pair[0]).is_integer() and pair[0] in (2.0, 4.0):
        return str(int(pair[0]))
    return "any"


def default_model(
    scale: float | Sequence[float] | None = None, zoo_dir: str | Path | None = None
) -> str:
    """The zoo model to use for ``scale`` when none is given: shipped, never experimental.

    Falls back to the ``any``-scale default for a scale without its own, then to
    ``bicubic``. A default that names a model missing from the zoo, or one that is not
    shipped, is skipped.
    """
    return _default_for(scale_key(scale), zoo_dir)


def default_model_for(scale: float | Sequence[float] | None, spacing: float | None = None) -> str:
    """The default for an upscale request: by scale, or an arbitrary-scale model when a
    target spacing decides the factor (``any``)."""
    return _default_for("any" if spacing is not None and scale is None else scale_key(scale))


def _default_for(key: str, zoo_dir: str | Path | None = None) -> str:
    """The shipped default under ``key``, else under ``any`` (or ``default``), else bicubic."""
    defaults = manifest_defaults(zoo_dir)
    for candidate in (key, "default" if key == "default" else "any"):
        name = defaults.get(candidate)
        if name and zoo_status(name, zoo_dir) == SHIPPED:
            return name
    return FALLBACK


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
    """The manifest's ``defaults``: per scale key, the shipped pixel-loss model that gains
    most (a GAN is never a default: fidelity first in a medical tool).

    Each summary has ``name``, ``status``, ``arbitrary_scale`` and ``settings``: label ->
    figures with ``scale_key`` and ``psnr_gain`` (mean dB over the test role). ``"2"`` and
    ``"4"`` take the best model evaluated at that scale, ``"any"`` the best arbitrary-scale
    model (mean gain over its settings); ``"default"`` is the ``"2"`` choice, else ``"4"``,
    else ``"any"``.
    """
    best: dict[str, tuple[float, str]] = {}

    def offer(key: str, gain: float, name: str) -> None:
        if not math.isnan(gain) and (key not in best or gain > best[key][0]):
            best[key] = (gain, name)

    for s in summaries:
        if s.get("status") != SHIPPED or str(s.get("kind", "psnr")).lower() == "gan":
            continue
        gains = []
        for figures in s["settings"].values():
            gain = float(figures["psnr_gain"])
            gains.append(gain)
            if str(figures.get("scale_key")) in ("2", "4"):
                offer(str(figures["scale_key"]), gain, str(s["name"]))
        if s.get("arbitrary_scale") and gains:
            offer("any", sum(gains) / len(gains), str(s["name"]))
    out = {key: name for key, (_, name) in best.items()}
    for key in ("2", "4", "any"):
        if key in out:
            out["default"] = out[key]
            break
    return out
