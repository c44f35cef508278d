"""Regenerate every zoo model card and the README's zoo table from fresh evaluations.

For each model in ``src/medsr/zoo/manifest.json`` (or ``$MEDSR_ZOO_DIR``) the
script runs the ``medsr eval`` machinery (:mod:`medsr.evaluate.runner`) on the
held-out TEST role of the training corpus (``--corpus``, built by ``medsr corpus
build``) and on the bundled test samples, with the settings of ``medsr demo``:
central crops up to 512x512, a seeded degradation, PSNR/SSIM in physical units with
each modality's data range and a ``ceil(scale)`` border shave, bicubic in the same
run, and each image's mean bias. The shipping rule (:mod:`medsr.infer.zoo`) is
applied to the corpus figures: each model's ``status`` and the per-scale
``defaults`` are written to the manifest. Beside PSNR/SSIM each card gives the
perceptual measures HaarPSI (higher is better) and GMSD (lower is better) from the same
run, which need no learned weights. It adds a sharpness figure that needs no downloaded network,
``gradient_sharpness`` (mean gradient magnitude of SR over HR; 1 = as sharp as
HR). Each card ``<name>.md`` then states the architecture, the exact training
configuration (the YAML of ``configs/zoo/<name>.yaml``), iterations, hardware,
wall time and these figures; a JSON summary is embedded in the card, and the
README table between ``<!-- zoo:start -->`` and ``<!-- zoo:end -->`` is built
from those summaries.

    python scripts/make_zoo_cards.py            # evaluate, write cards and README table
    python scripts/make_zoo_cards.py --readme-only   # rebuild the table from the cards
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CONFIGS = ROOT / "configs" / "zoo"
START, END = "<!-- zoo:start -->", "<!-- zoo:end -->"
SUMMARY_RE = re.compile(r"<!-- zoo-summary: (\{.*?\}) -->", re.S)
#: The demo's crop: central 512x512 of each test image.
CROP = 512
SEED = 0
#: Slices whose standard deviation is below this fraction of the data range are not scored.
MIN_STD = 0.01


@dataclass(frozen=True)
class Setting:
    """One evaluation: a degradation at a scale on the test images of some modalities."""

    degradation: str
    scale: tuple[float, float]
    modalities: tuple[str, ...] = ("CT", "MR", "XRAY", "US")
    #: The HU window CT is normalised with (the one the model was trained with).
    ct_window: str = "full"

    @property
    def label(self) -> str:
        sy, sx = self.scale
        s = f"x{sy:g}" if sy == sx else f"x({sy:g}, {sx:g})"
        return f"{self.degradation} {s}"


#: What each zoo model is scored on; the first setting is its headline figure.
SETTINGS: dict[str, list[Setting]] = {
    "srresnet-x2": [Setting("bicubic", (2.0, 2.0))],
    "srresnet-x4": [Setting("bicubic", (4.0, 4.0))],
    "miassr": [
        Setting("bicubic", (2.0, 2.0)),
        Setting("bicubic", (3.0, 3.0)),
        Setting("bicubic", (4.0, 4.0)),
    ],
    "swift-srgan-x4": [Setting("bicubic", (4.0, 4.0))],
    "swift-srgan-psnr-x4": [Setting("bicubic", (4.0, 4.0))],
    "blimsr-lite-psnr-x4": [Setting("bicubic", (4.0, 4.0))],
    "blimsr-lite-x4": [Setting("bicubic", (4.0, 4.0))],
    "sisr-us-lateral-x4": [Setting("ultrasound-lateral", (1.0, 4.0), ("US",))],
    # Streaks do not depend on anatomy: scored on the held-out slices of every modality,
    # CT in the window it was trained with ([-1024, 200] HU).
    "sisr-ct-sparse-view": [
        Setting("ct-sparse-view", (1.0, 1.0), ("CT", "MR", "XRAY", "US"), "deeplesion")
    ],
}

#: Hand-written parts of each card: what the model is and what its training left out.
NOTES: dict[str, dict[str, str]] = {
    "srresnet-x2": {
        "kind": "PSNR",
        "summary": "SRResNet (Ledig et al. 2017) at x2, reduced to 8 residual blocks x 32 "
        "channels so that it trains on a CPU, with `residual=true`: its output is added to the "
        "bicubic upsampling of the input (a global residual the paper does not have; the last "
        "layer starts at zero, so training starts from bicubic).",
        "objective": "L1 pixel loss only.",
        "remarks": "Trained on the corpus on two shared CPU cores for the iterations above; the "
        "learning curve below was still rising when the run was stopped, so more iterations "
        "(`scripts/train_zoo.sh srresnet-x2` resumes it) may still pay, slowly. X-ray gains "
        "least: bicubic is already above 53 dB on the smooth test radiograph, and this "
        "network fine-tuned on that radiograph itself reaches only about +2.0 dB there "
        "(`python scripts/zoo_ceiling.py --model srresnet-x2 --image cr-rg3 --scale 2`).",
    },
    "srresnet-x4": {
        "kind": "PSNR",
        "summary": "SRResNet (Ledig et al. 2017) at x4, reduced to 8 residual blocks x 32 "
        "channels so that it trains on a CPU, with `residual=true`: its output is added to the "
        "bicubic upsampling of the input (a global residual the paper does not have; the last "
        "layer starts at zero, so training starts from bicubic).",
        "objective": "L1 pixel loss only.",
        "remarks": "Trained on the corpus on two shared CPU cores for the iterations above; the "
        "learning curve below was still rising when the run was stopped (resume with "
        "`scripts/train_zoo.sh srresnet-x4`). Ultrasound gains least: one test image of "
        "speckle and small overlay text, which a x4 bicubic input cannot resolve; this network "
        "fine-tuned on that image itself needs about 1,000 iterations to reach +2 dB "
        "(`python scripts/zoo_ceiling.py --model srresnet-x4 --image us-us1 --scale 4`).",
    },
    "miassr": {
        "kind": "PSNR",
        "summary": "MIASSR (Zhu et al. 2021): an EDSR-lite trunk (4 blocks x 24 channels) and "
        "a Meta-Upscale module (MLP 64 hidden), one network for any scale in (1, 4], with "
        "`residual=true` (output added to the bicubic upsampling; last layer starts at zero).",
        "objective": "L1 pixel loss only (the published warm-up stage). The published GAN "
        "stage adds a VGG19 perceptual term whose ImageNet weights cannot be had offline; it "
        "was not run.",
        "remarks": "Trained on the corpus with one random scale per batch from 1.1 to 4.0 (LR "
        "made by resizing by exactly 1/s); checkpoints chosen on the val role at x2, x3 and x4. "
        "Smaller than the fixed-scale SRResNets (0.06 M parameters); the default for scales "
        "without a fixed-scale model.",
    },
    "swift-srgan-x4": {
        "kind": "GAN",
        "summary": "Swift-SRGAN (Krishnan et al. 2021): depthwise-separable SRResNet, 8 blocks "
        "x 48 channels, x4, with `residual=true` (output added to the bicubic upsampling), "
        "adversarially fine-tuned from its PSNR twin `swift-srgan-psnr-x4`.",
        "objective": "GAN stage from the twin's weights: MSE + 0.001 adversarial (vanilla "
        "BCE, separable discriminator) + 2e-8 TV + 0.006 discriminator feature matching "
        "(standing in for the MobileNetV2 term, whose ImageNet weights cannot be had "
        "offline) + the low-frequency lock (L1 between output and HR both resized by 1/4). "
        "Adam 1e-4 for both networks, 1e-5 from iteration 2000. Checkpoint: lowest GMSD on "
        "the val role among those within 0.5 dB of bicubic's PSNR.",
        "remarks": "Scored, as `medsr upscale` and `medsr eval` run it by default for GAN "
        "models, with the data-consistency projection (the output re-degrades exactly to its "
        "input, so the mean level cannot drift). Read it against its twin: a GAN trades PSNR "
        "for texture, and its claim to look better is the GMSD/HaarPSI columns.",
    },
    "swift-srgan-psnr-x4": {
        "kind": "PSNR",
        "summary": "The PSNR twin of swift-srgan-x4 and its warm-up: Swift-SRGAN's "
        "generator (Krishnan et al. 2021; depthwise-separable SRResNet, 8 blocks x 48 "
        "channels) at x4, trained on pixel losses only, with `residual=true` (output added to "
        "the bicubic upsampling; last layer starts at zero, so training starts from bicubic).",
        "objective": "L1 pixel loss only.",
        "remarks": "The starting point of the adversarial fine-tune (`swift-srgan-x4`), scored "
        "here so that the GAN's trade-off can be read against it: the GAN must keep PSNR "
        "within 0.5 dB of bicubic and beat this twin's perceptual measure (GMSD, HaarPSI).",
    },
    "blimsr-lite-psnr-x4": {
        "kind": "PSNR",
        "summary": "The PSNR twin of blimsr-lite-x4 and its warm-up: BliMSR-lite (2 residual "
        "attention groups x 2 blocks x 32 channels) at x4 on pixel losses only, with "
        "`residual=true` (output added to the bicubic upsampling).",
        "objective": "L1 pixel loss only.",
        "remarks": "The starting point of the adversarial fine-tune (`blimsr-lite-x4`).",
    },
    "blimsr-lite-x4": {
        "kind": "GAN",
        "summary": "BliMSR-lite: BliMSR's residual attention groups with multi-head "
        "convolutional attention, 2 groups x 2 blocks x 32 channels, x4, with `residual=true`, "
        "adversarially fine-tuned from its PSNR twin `blimsr-lite-psnr-x4`.",
        "objective": "GAN stage from the twin's weights: 0.01 adversarial (vanilla BCE, "
        "spectral-norm ResNet discriminator as published) + 0.1 L1 + 1 gradient + 1 D-SSIM + "
        "0.1 discriminator feature matching (standing in for the VGG19 term, whose ImageNet "
        "weights cannot be had offline) + the low-frequency lock (L1 between output and HR "
        "both resized by 1/4). Adam 1e-4, 1e-5 from iteration 2000. Checkpoint: lowest GMSD "
        "on the val role among those within 0.5 dB of bicubic's PSNR.",
        "remarks": "Scored with the data-consistency projection, the default for GAN models "
        "in `medsr upscale` and `medsr eval`. Read it against its twin `blimsr-lite-psnr-x4`.",
    },
    "sisr-us-lateral-x4": {
        "kind": "PSNR",
        "summary": "SISR-US: SRResNet that upsamples the lateral (x) axis only, 4 blocks x 32 "
        "channels, restoring x4 lateral decimation of ultrasound.",
        "objective": "L1 pixel loss only (the published SRGAN stage was not run on CPU).",
        "remarks": "The reference is bicubic interpolation along x of the decimated image. "
        "Trained on the corpus's ultrasound (bundled samples and a cine), validated on a "
        "held-out echocardiogram, evaluated on the one ultrasound test image.",
    },
    "sisr-ct-sparse-view": {
        "kind": "PSNR",
        "summary": "SISR-CT: the published encoder/decoder (log2(r) stages of [conv3, "
        "space-to-depth, PReLU], a conv3 head, mirrored decoder; 4 blocks x 32 channels) as a "
        "residual restorer (output = FBP input + correction, identity at initialisation) that "
        "removes sparse-view streaks: 1000 views over 180 degrees, every 16th kept.",
        "objective": "MSE against the full-view FBP (same field-of-view mask), as published; "
        "CT in the [-1024, 200] HU window.",
        "remarks": "EXPERIMENTAL. Trained on 128 px crops of every corpus slice (streaks do "
        "not depend on anatomy), each projected and reconstructed with sparse and full views; "
        "the reference is the sparse-view FBP itself (the model's input). It removes streaks "
        "on MR, X-ray and ultrasound slices but gains only about +1 dB on the two CT head "
        "slices, whose skull makes far stronger streaks than the training crops held, and it "
        "shifts some slices' mean by more than 0.2%: it needs whole-slice training "
        "(`--set data.patch_size=512 data.batch_size=8`) on a GPU.",
    },
}


# -- evaluation ---------------------------------------------------------------------------
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
    from medsr.evaluate.runner import REFERENCE, load_models, run_evaluation

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
        specs = load_models(models)
        started = time.perf_counter()
        scale = setting.scale if setting.scale[0] != setting.scale[1] else setting.scale[0]
        run = run_evaluation(specs, chosen, scale, setting.degradation, SEED, keep_visuals=True)
        print(
            f"{source} {setting.label}: {len(chosen)} images, {', '.join(models)} "
            f"({time.perf_counter() - started:.1f} s)",
            file=sys.stderr,
        )
        shave = list(run.shave)
        for name in models:
            rows = []
            for i, visual in enumerate(run.visuals):
                ref = run.models[REFERENCE].scores[i]
                mine = run.models[name].scores[i]
                rows.append(
                    {
                        "image": mine.name,
                        "modality": mine.modality,
                        "data_range": mine.data_range,
                        "bicubic": {
                            "psnr": ref.psnr,
                            "ssim": ref.ssim,
                            "gmsd": ref.gmsd,
                            "haarpsi": ref.haarpsi,
                            "sharpness": sharpness(visual.sr[REFERENCE], visual.hr, shave),
                            "bias": bias(visual.sr[REFERENCE], visual.hr, ref.data_range, shave),
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
            }
    return out


# -- cards --------------------------------------------------------------------------------
def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else math.nan


def _signed(value: float, digits: int) -> str:
    return f"{value:+.{digits}f}"


def _scale_text(scale: Sequence[float] | None) -> str:
    if scale is None:
        return "any in (1, 4]"
    sy, sx = scale
    if sy == sx:
        return f"x{sy:g}"
    return f"x({sy:g}, {sx:g}) (rows, columns)"


def _eval_command(name: str, setting: Setting, source: str = "samples") -> str:
    """The ``medsr eval`` command that scores one setting (per modality folder on the corpus)."""
    sy, sx = setting.scale
    data = "samples" if source == "samples" else "corpus/test/<MODALITY>"
    if sy != sx:
        data = "<the US test image>" if source == "samples" else "corpus/test/US"
        return (
            f"medsr eval --model {name} --data {data} --degradation "
            f"{setting.degradation} --scale {sx:g} --max-size {CROP}"
        )
    if setting.degradation == "ct-sparse-view":
        return (
            f"medsr eval --model {name} --data {data} --degradation "
            f"ct-sparse-view --scale 1 --max-size {CROP} --ct-window {setting.ct_window}"
        )
    return f"medsr eval --model {name} --data {data} --scale {sy:g} --max-size {CROP}"


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean PSNR/SSIM/sharpness, gains over the reference overall and per modality (the
    mean over that modality's images), the worst per-image mean bias."""
    by_modality: dict[str, dict[str, float]] = {}
    for modality in sorted({r["modality"] for r in rows}):
        mine = [r for r in rows if r["modality"] == modality]
        by_modality[modality] = {
            "psnr_gain": _mean([r["model"]["psnr"] - r["bicubic"]["psnr"] for r in mine]),
            "ssim_gain": _mean([r["model"]["ssim"] - r["bicubic"]["ssim"] for r in mine]),
            "images": len(mine),
        }
    return {
        "psnr": _mean([r["model"]["psnr"] for r in rows]),
        "ssim": _mean([r["model"]["ssim"] for r in rows]),
        "sharpness": _mean([r["model"]["sharpness"] for r in rows]),
        "bicubic_psnr": _mean([r["bicubic"]["psnr"] for r in rows]),
        "bicubic_ssim": _mean([r["bicubic"]["ssim"] for r in rows]),
        "bicubic_sharpness": _mean([r["bicubic"]["sharpness"] for r in rows]),
        "gmsd": _mean([r["model"]["gmsd"] for r in rows]),
        "haarpsi": _mean([r["model"]["haarpsi"] for r in rows]),
        "bicubic_gmsd": _mean([r["bicubic"]["gmsd"] for r in rows]),
        "bicubic_haarpsi": _mean([r["bicubic"]["haarpsi"] for r in rows]),
        "psnr_gain": _mean([r["model"]["psnr"] - r["bicubic"]["psnr"] for r in rows]),
        "ssim_gain": _mean([r["model"]["ssim"] - r["bicubic"]["ssim"] for r in rows]),
        "psnr_gain_by_modality": {m: g["psnr_gain"] for m, g in by_modality.items()},
        "ssim_gain_by_modality": {m: g["ssim_gain"] for m, g in by_modality.items()},
        "images_by_modality": {m: g["images"] for m, g in by_modality.items()},
        "worst_bias": max(r["model"]["bias"] for r in rows),
        "beats_bicubic_everywhere": all(
            g["psnr_gain"] > 0 and g["ssim_gain"] > 0 for g in by_modality.values()
        ),
    }


def _table(rows: Sequence[dict[str, Any]], reference: str) -> list[str]:
    lines = [
        f"| image | modality | data range | {reference} PSNR | model PSNR | ΔPSNR "
        f"| {reference} SSIM | model SSIM | ΔSSIM | sharpness {reference} / model "
        f"| HaarPSI ↑ {reference} / model | GMSD ↓ {reference} / model "
        "| mean bias (% of range) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        b, m = r["bicubic"], r["model"]
        lines.append(
            f"| {r['image']} | {r['modality']} | {r['data_range']:g} | {b['psnr']:.2f} "
            f"| {m['psnr']:.2f} | {_signed(m['psnr'] - b['psnr'], 2)} | {b['ssim']:.4f} "
            f"| {m['ssim']:.4f} | {_signed(m['ssim'] - b['ssim'], 4)} "
            f"| {b['sharpness']:.3f} / {m['sharpness']:.3f} "
            f"| {b['haarpsi']:.4f} / {m['haarpsi']:.4f} | {b['gmsd']:.4f} / {m['gmsd']:.4f} "
            f"| {100 * m['bias']:.3f} |"
        )
    s = summarise(rows)
    lines.append(
        f"| **mean** | | | {s['bicubic_psnr']:.2f} | {s['psnr']:.2f} "
        f"| **{_signed(s['psnr_gain'], 2)}** | {s['bicubic_ssim']:.4f} | {s['ssim']:.4f} "
        f"| {_signed(s['ssim_gain'], 4)} | {s['bicubic_sharpness']:.3f} / {s['sharpness']:.3f} "
        f"| {s['bicubic_haarpsi']:.4f} / {s['haarpsi']:.4f} "
        f"| {s['bicubic_gmsd']:.4f} / {s['gmsd']:.4f} | worst {100 * s['worst_bias']:.3f} |"
    )
    lines += ["", "By modality (mean over its images):", ""]
    lines += ["| modality | images | ΔPSNR | ΔSSIM |", "|---|---:|---:|---:|"]
    for m, gain in s["psnr_gain_by_modality"].items():
        lines.append(
            f"| {m} | {s['images_by_modality'][m]} | {_signed(gain, 2)} "
            f"| {_signed(s['ssim_gain_by_modality'][m], 4)} |"
        )
    return lines


def _hardware(training: dict[str, Any]) -> str:
    device = str(training.get("device", "cpu"))
    if device.startswith("cpu"):
        return (
            f"CPU only ({training.get('processor', '')}, {training.get('cpu_count')} cores shared "
            f"with other jobs; {training.get('cpu_threads')} PyTorch thread), torch "
            f"{training.get('torch')}"
        )
    return f"{device}, torch {training.get('torch')}"


SOURCES = {
    "corpus": (
        "Evaluation on the held-out test role of the corpus",
        "The test role of the training corpus (`medsr corpus build corpus`; subjects never "
        "seen in training or checkpoint selection): every slice of each test image or volume, "
        f"central crop up to {CROP}x{CROP}.",
    ),
    "samples": (
        "Evaluation on the bundled test samples",
        "The bundled test-role samples only (first frame), central crop up to "
        f"{CROP}x{CROP} (as `medsr demo`); kept so figures stay comparable across versions.",
    ),
}
METRICS_NOTE = (
    "Degradation seeded with {seed} + image index; metrics in physical units: PSNR and SSIM "
    "(11x11 Gaussian, sigma 1.5) against the HR image with data range = CT: HU window width "
    "(full window [-1024, 3071], 4095); MR: 0.5-99.5 percentile range of the HR image; X-ray "
    "and ultrasound: 2^bits - 1. A border of ceil(scale) pixels is shaved. Sharpness = mean "
    "gradient magnitude of the output over that of HR (1 = as sharp as HR). Mean bias = "
    "|mean(SR) - mean(HR)| / data range, per image. Regenerate with "
    "`python scripts/make_zoo_cards.py`."
)


def _curve_lines(curve: Sequence[dict[str, Any]]) -> list[str]:
    """The learning curve: held-out (val role) PSNR/SSIM against iterations."""
    if not curve:
        return []
    step = max(1, len(curve) // 12)
    shown = list(curve[::step])
    if shown[-1] is not curve[-1]:
        shown.append(curve[-1])
    lines = [
        "## Learning curve",
        "",
        "Validation role of the corpus (held-out subjects, fixed patches, [0, 1] units, data "
        "range 1), EMA weights; bicubic on the same patches for reference. Still rising at "
        "the end means more iterations would pay.",
        "",
        "| iteration | val PSNR | bicubic PSNR | val SSIM | bicubic SSIM |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in shown:
        lines.append(
            f"| {int(row['iteration'])} | {row['val/psnr']:.2f} | {row['val/bicubic_psnr']:.2f} "
            f"| {row['val/ssim']:.4f} | {row['val/bicubic_ssim']:.4f} |"
        )
    return [*lines, ""]


def _twin(name: str) -> str | None:
    """The PSNR twin a GAN fine-tune starts from (its config's ``init_from`` run), or None."""
    config = CONFIGS / f"{name}.yaml"
    text = config.read_text() if config.is_file() else ""
    found = re.search(r"^init_from:\s*runs/zoo/([\w.-]+)/", text, re.MULTILINE)
    return found.group(1) if found else None


def card_summary(zoo: Path, name: str) -> dict[str, Any] | None:
    """The JSON summary embedded in ``<zoo>/<name>.md``, or None without a card."""
    card = zoo / f"{name}.md"
    if not card.is_file():
        return None
    found = SUMMARY_RE.search(card.read_text(encoding="utf-8"))
    return json.loads(found.group(1)) if found else None


def _against_twin(name: str, zoo: Path, summary: dict[str, Any]) -> tuple[float, float] | None:
    """(this GAN's GMSD, its PSNR twin's GMSD): test-role means of the headline setting."""
    twin_name = _twin(name)
    twin = card_summary(zoo, twin_name) if twin_name else None
    if not twin or not summary["settings"]:
        return None
    label = next(iter(summary["settings"]))
    mine, theirs = summary["settings"][label], twin.get("settings", {}).get(label)
    if not theirs or "gmsd" not in mine or "gmsd" not in theirs:
        return None
    return float(mine["gmsd"]), float(theirs["gmsd"])


def _train_names(name: str) -> str:
    """The zoo runs that make ``name``: a GAN fine-tune starts from its PSNR twin's weights."""
    twin = _twin(name)
    return f"{twin} {name}" if twin else name


def write_card(
    name: str,
    entry: dict[str, Any],
    results: dict[str, dict[tuple[str, Setting], dict[str, Any]]],
    zoo: Path,
) -> dict[str, Any]:
    """Write ``<zoo>/<card>`` for one model and return its summary (also embedded in it).

    ``results`` maps a data source (``corpus``, ``samples``) to its evaluations. The
    shipping verdict is taken on the corpus test role (every modality the model claims).
    """
    from medsr.infer.zoo import SHIPPED, scale_key, shipping_verdict

    notes = NOTES.get(name, {"kind": "PSNR", "summary": entry["architecture"], "objective": ""})
    training = entry.get("training", {})
    weights = zoo / entry["file"]
    config_path = ROOT / training.get("config", f"configs/zoo/{name}.yaml")
    config_text = config_path.read_text() if config_path.is_file() else "(config file missing)"
    settings = SETTINGS.get(name, [])
    minutes = float(training.get("seconds", math.nan)) / 60
    summary: dict[str, Any] = {
        "name": name,
        "kind": notes["kind"],
        "architecture": entry["architecture"],
        "scale": _scale_text(entry.get("scale")),
        "arbitrary_scale": entry.get("scale") is None,
        "parameters": int(training.get("parameters", 0)),
        "size_mb": round(weights.stat().st_size / 1e6, 2),
        "minutes": round(minutes, 1),
        "iterations": training.get("iterations"),
        "settings": {},
        "samples": {},
    }
    body: list[str] = []
    verdicts: dict[str, dict[str, float]] = {}
    worst_bias = 0.0
    for source, (title, what) in SOURCES.items():
        if source not in results:
            continue
        body += [f"## {title}", "", what, METRICS_NOTE.format(seed=SEED), ""]
        for setting in settings:
            result = results[source].get((name, setting))
            if result is None:
                continue
            reference = "FBP input" if setting.degradation == "ct-sparse-view" else "bicubic"
            s = summarise(result["rows"])
            figures = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in s.items()}
            figures["scale_key"] = scale_key(setting.scale)
            summary["settings" if source == "corpus" else "samples"][setting.label] = figures
            if source == "corpus":
                for m in s["psnr_gain_by_modality"]:
                    key = f"{m} {setting.label}"
                    verdicts[key] = {
                        "psnr_gain": s["psnr_gain_by_modality"][m],
                        "ssim_gain": s["ssim_gain_by_modality"][m],
                    }
                worst_bias = max(worst_bias, s["worst_bias"])
            body += [
                f"### {setting.label}",
                "",
                f"Equivalent command: `{_eval_command(name, setting, source)}`. "
                f"Degradation: `{json.dumps(result['degradation_config'])}`; shave "
                f"{result['shave'][0]}x{result['shave'][1]} px.",
                "",
                *_table(result["rows"], reference),
                "",
            ]
            if setting.degradation == "ct-sparse-view":
                body += [
                    "The reference here is the sparse-view filtered back-projection itself (the "
                    "model's input).",
                    "",
                ]
    perceptual = _against_twin(name, zoo, summary) if notes["kind"] == "GAN" else None
    ships, reasons = shipping_verdict(verdicts, worst_bias, notes["kind"], perceptual)
    status = SHIPPED if ships else "experimental"
    summary["status"] = status
    summary["reasons"] = reasons
    shipped_text = (
        "**Shipped**: within 0.5 dB of bicubic's PSNR on the held-out test role of every "
        "modality it claims, a lower GMSD than its PSNR twin "
        f"({perceptual[0]:.4f} vs {perceptual[1]:.4f}), and no test image's mean moved by more "
        "than 0.2% of the data range."
        if perceptual is not None
        else "**Shipped**: beats its reference in PSNR and SSIM on the held-out test role of "
        "every modality it claims, and moves no test image's mean by more than 0.2% of the "
        "data range."
    )
    verdict = (
        shipped_text
        if ships
        else "**Experimental** (never a default; flagged in `medsr models` and the app): "
        + "; ".join(reasons)
        + "."
    )
    lines = [
        f"# {name}",
        "",
        notes["summary"],
        "",
        verdict,
        "",
        "| | |",
        "|---|---|",
        f"| status | {status} |",
        f"| architecture | `{entry['architecture']}` with `{json.dumps(entry.get('config', {}))}` |",
        f"| parameters | {int(training.get('parameters', 0)):,} |",
        f"| weights | `{entry['file']}`, {weights.stat().st_size / 1e6:.2f} MB safetensors (fp32), "
        f"SHA-256 `{entry['sha256']}` |",
        f"| scale | {_scale_text(entry.get('scale'))} |",
        f"| degradation (training) | `{json.dumps(entry.get('degradation'))}` |",
        f"| training data | {training.get('data', 'see the config below')} |",
        f"| objective | {notes['objective']} |",
        f"| iterations | {training.get('iterations')} (exported EMA weights from iteration "
        f"{training.get('best_iteration')}, chosen on the val role), "
        f"{training.get('train_slices')} training slices |",
        f"| hardware | {_hardware(training)} |",
        f"| wall time | {minutes:.1f} min |",
        f"| reproduce | `medsr corpus build corpus && scripts/train_zoo.sh {_train_names(name)}` "
        "(resumes a stopped run) |",
        "",
        *([f"**Remarks.** {notes['remarks']}", ""] if notes.get("remarks") else []),
        *body,
        *_curve_lines(training.get("curve", [])),
        "## Training configuration",
        "",
        f"`configs/zoo/{name}.yaml`:",
        "",
        "```yaml",
        config_text.rstrip(),
        "```",
        "",
        "## Limits",
        "",
        "Trained on a CPU on the few hundred real images that packages ship, not on the "
        "published data sets: a compact model, not the published one. Research software, "
        "not for clinical use.",
        "",
        f"<!-- zoo-summary: {json.dumps(summary, sort_keys=True)} -->",
        "",
    ]
    (zoo / entry["card"]).write_text("\n".join(lines), encoding="utf-8")
    return summary


def write_manifest_status(zoo: Path, summaries: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Record each model's status and the per-scale defaults in the manifest (atomically)."""
    from medsr.infer.zoo import choose_defaults
    from medsr.io.core import atomic_path

    path = zoo / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    for s in summaries:
        if s["name"] in data["models"]:
            data["models"][s["name"]]["status"] = s.get("status", "experimental")
    defaults = choose_defaults(summaries)
    data["defaults"] = defaults
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return defaults


# -- README -------------------------------------------------------------------------------
def read_summaries(zoo: Path, entries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The JSON summaries embedded in the cards, in manifest order."""
    out = []
    for name, entry in entries.items():
        summary = card_summary(zoo, Path(str(entry.get("card", f"{name}.md"))).stem)
        if summary is None:
            raise SystemExit(
                f"make_zoo_cards: the card of {name} has no zoo-summary; run without --readme-only"
            )
        out.append(summary)
    return out


def _haarpsi_text(figures: dict[str, Any]) -> str:
    """``0.912 (+0.004)``: the model's mean HaarPSI and its gain over the reference (higher
    is better; a perceptual measure without learned weights); n/a in older cards."""
    mine, ref = figures.get("haarpsi"), figures.get("bicubic_haarpsi")
    if mine is None or ref is None:
        return "n/a"
    return f"{mine:.3f} ({_signed(mine - ref, 3)})"


def readme_table(summaries: Sequence[dict[str, Any]]) -> str:
    lines = [
        "Figures: the held-out test role of the training corpus (subjects never seen in "
        "training; every slice, central crop up to 512x512), PSNR in dB in physical units "
        "with each modality's data range, gains over the reference (bicubic; for sparse-view "
        "CT the FBP input) as the mean over images, and the smallest per-modality gain; the "
        "last column is the mean PSNR gain on the bundled test samples alone (comparable "
        "with 0.1). Status: *shipped* models beat the reference in PSNR and SSIM on every "
        "modality they claim and move no test image's mean by more than 0.2% of its range "
        "(GAN models: within 0.5 dB of bicubic's PSNR on every modality, a lower GMSD than "
        "their PSNR twin, the same bias limit; scored with the data-consistency projection "
        "they run with by default); *experimental* ones do not and are never a default; "
        "defaults are pixel-loss models. Details, "
        "learning curves and configurations are in each model's card "
        "(`src/medsr/zoo/<name>.md`).",
        "",
        "| model | status | kind | scale | evaluated | PSNR | ΔPSNR mean | ΔPSNR worst modality "
        "| ΔSSIM mean | HaarPSI (Δ) | worst bias % | params | train min | ΔPSNR samples |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        for label, figures in s["settings"].items():
            gains = figures["psnr_gain_by_modality"]
            worst = min(gains, key=lambda m: gains[m])
            sample = s.get("samples", {}).get(label)
            sample_text = _signed(sample["psnr_gain"], 2) if sample else "n/a"
            lines.append(
                f"| [{s['name']}](src/medsr/zoo/{s['name']}.md) | {s.get('status', '?')} "
                f"| {s['kind']} | {s['scale']} | {label} | {figures['psnr']:.2f} "
                f"| {_signed(figures['psnr_gain'], 2)} | {_signed(gains[worst], 2)} ({worst}) "
                f"| {_signed(figures['ssim_gain'], 4)} | {_haarpsi_text(figures)} "
                f"| {100 * figures['worst_bias']:.2f} "
                f"| {s['parameters'] / 1e6:.2f} M | {s['minutes']:.0f} | {sample_text} |"
            )
    return "\n".join(lines)


def write_readme(table: str, readme: Path = README) -> None:
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"make_zoo_cards: {readme} lacks the {START} / {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{table}\n{END}{tail}", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme-only", action="store_true", help="rebuild the table only")
    parser.add_argument("--no-readme", action="store_true", help="write the cards only")
    parser.add_argument(
        "--corpus",
        default=str(ROOT / "corpus"),
        help="the built training corpus whose test role is evaluated (default ./corpus)",
    )
    parser.add_argument("models", nargs="*", help="zoo names (default: every manifest entry)")
    args = parser.parse_args(argv)

    from medsr.infer.weights import zoo_folder, zoo_models

    zoo = zoo_folder()
    entries = zoo_models()
    if not entries:
        raise SystemExit(f"make_zoo_cards: no models in {zoo / 'manifest.json'}")
    names = args.models or list(entries)
    unknown = [n for n in names if n not in entries]
    if unknown:
        raise SystemExit(f"make_zoo_cards: not in the manifest: {', '.join(unknown)}")
    if not args.readme_only:
        corpus = Path(args.corpus)
        results = {
            "corpus": evaluate(names, "corpus", corpus),
            "samples": evaluate(names, "samples", corpus),
        }
        for name in names:
            summary = write_card(name, entries[name], results, zoo)
            for label, figures in summary["settings"].items():
                print(
                    f"{name} [{summary['status']}] {label}: PSNR {figures['psnr']:.2f} dB "
                    f"({_signed(figures['psnr_gain'], 2)} over the reference), by modality "
                    + ", ".join(
                        f"{m} {g:+.2f} dB / {figures['ssim_gain_by_modality'][m]:+.4f}"
                        for m, g in figures["psnr_gain_by_modality"].items()
                    )
                )
        defaults = write_manifest_status(zoo, read_summaries(zoo, entries))
        print(f"defaults: {defaults}")
    if not args.no_readme:
        write_readme(readme_table(read_summaries(zoo, entries)))
        print(f"updated the zoo table in {README}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
