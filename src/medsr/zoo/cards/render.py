"""The cards and the README's zoo table: each card ``<name>.md`` states what the model is
(its own size, the acquisition it was trained for), the exact training configuration,
iterations, hardware, wall time, its learning curve, and the figures of every setting it
was scored on, with an acquisition table (how it does on bicubic, k-space and binned
input); a JSON summary is embedded in it, and the README table between
``<!-- zoo:start -->`` and ``<!-- zoo:end -->`` is built from those summaries."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medsr.zoo.cards.notes import NOTES
from medsr.zoo.cards.scoring import summarise
from medsr.zoo.cards.settings import CROP, SEED, SETTINGS, Setting

__all__ = [
    "card_summary",
    "read_summaries",
    "readme_table",
    "write_card",
    "write_manifest_status",
    "write_readme",
]

START, END = "<!-- zoo:start -->", "<!-- zoo:end -->"
WHICH_START, WHICH_END = "<!-- which:start -->", "<!-- which:end -->"
SUMMARY_RE = re.compile(r"<!-- zoo-summary: (\{.*?\}) -->", re.S)


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
    spec = setting.degradation_spec
    quoted = f"'{spec}'" if spec.startswith("{") else spec
    if sy != sx:
        data = "<the US test image>" if source == "samples" else "corpus/test/US"
        return (
            f"medsr eval --model {name} --data {data} --degradation "
            f"{quoted} --scale {sx:g} --max-size {CROP}"
        )
    if setting.degradation == "ct-sparse-view":
        off = " --no-data-consistency" if setting.data_consistency is False else ""
        return (
            f"medsr eval --model {name} --data {data} --degradation "
            f"{quoted} --scale 1 --max-size {CROP} --ct-window {setting.ct_window}{off}"
        )
    degradation = "" if spec == "bicubic" else f" --degradation {quoted}"
    return f"medsr eval --model {name} --data {data}{degradation} --scale {sy:g} --max-size {CROP}"


def _table(rows: Sequence[dict[str, Any]], reference: str) -> list[str]:
    lines = [
        f"| image | modality | data range | {reference} PSNR | model PSNR | ΔPSNR "
        f"| {reference} SSIM | model SSIM | ΔSSIM | sharpness {reference} / model "
        f"| HaarPSI ↑ {reference} / model | GMSD ↓ {reference} / model "
        "| mean bias (% of range) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        b, m = r["reference"], r["model"]
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
        f"| **mean** | | | {s['reference_psnr']:.2f} | {s['psnr']:.2f} "
        f"| **{_signed(s['psnr_gain'], 2)}** | {s['reference_ssim']:.4f} | {s['ssim']:.4f} "
        f"| {_signed(s['ssim_gain'], 4)} | {s['reference_sharpness']:.3f} / {s['sharpness']:.3f} "
        f"| {s['reference_haarpsi']:.4f} / {s['haarpsi']:.4f} "
        f"| {s['reference_gmsd']:.4f} / {s['gmsd']:.4f} | worst {100 * s['worst_bias']:.3f} |"
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
    "|mean(SR) - mean(HR)| / data range, per image. Regenerate with `medsr zoo cards`."
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
        "range 1), EMA weights; the reference on the same patches (zero-filled k-space "
        "interpolation for MR k-space models, the FBP input for sparse-view CT, bicubic "
        "otherwise). Still rising at the end means more iterations would pay.",
        "",
        "| iteration | val PSNR | reference PSNR | val SSIM | reference SSIM |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in shown:
        lines.append(
            f"| {int(row['iteration'])} | {row['val/psnr']:.2f} | {row['val/bicubic_psnr']:.2f} "
            f"| {row['val/ssim']:.4f} | {row['val/bicubic_ssim']:.4f} |"
        )
    return [*lines, ""]


def _twin(name: str, root: Path) -> str | None:
    """The PSNR twin a GAN fine-tune starts from (its config's ``init_from`` run), or None."""
    config = root / "configs" / "zoo" / f"{name}.yaml"
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


def _against_twin(
    name: str, zoo: Path, summary: dict[str, Any], root: Path
) -> tuple[float, float] | None:
    """(this GAN's GMSD, its PSNR twin's GMSD): test-role means of the headline setting."""
    twin_name = _twin(name, root)
    twin = card_summary(zoo, twin_name) if twin_name else None
    if not twin or not summary["settings"]:
        return None
    label = next(iter(summary["settings"]))
    mine, theirs = summary["settings"][label], twin.get("settings", {}).get(label)
    if not theirs or "gmsd" not in mine or "gmsd" not in theirs:
        return None
    return float(mine["gmsd"]), float(theirs["gmsd"])


def _train_names(name: str, root: Path) -> str:
    """The zoo runs that make ``name``: a GAN fine-tune starts from its PSNR twin's weights."""
    twin = _twin(name, root)
    return f"{twin} {name}" if twin else name


def write_card(
    name: str,
    entry: dict[str, Any],
    results: dict[str, dict[tuple[str, Setting], dict[str, Any]]],
    zoo: Path,
    root: Path,
) -> dict[str, Any]:
    """Write ``<zoo>/<card>`` for one model and return its summary (also embedded in it).

    ``results`` maps a data source (``corpus``, ``samples``) to its evaluations. The
    shipping verdict is taken on the corpus test role: every modality of every setting the
    model claims (those of the acquisition it was trained for).
    """
    from medsr.zoo.choice import scale_key
    from medsr.zoo.describe import describe_entry
    from medsr.zoo.manifest import SHIPPED, entry_acquisition, entry_modality
    from medsr.zoo.rule import shipping_verdict

    notes = NOTES.get(name, {"kind": "PSNR", "summary": entry["architecture"], "objective": ""})
    training = entry.get("training", {})
    weights = zoo / entry["file"]
    config_path = root / training.get("config", f"configs/zoo/{name}.yaml")
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
        "acquisition": entry_acquisition(entry),
        "modality": entry_modality(entry),
        "settings": {},
        "samples": {},
    }
    acquisition_rows: list[str] = []
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
            reference = (
                "FBP input" if setting.degradation == "ct-sparse-view" else result["reference"]
            )
            s = summarise(result["rows"])
            figures = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in s.items()}
            figures["scale_key"] = scale_key(setting.scale)
            figures["scale"] = list(setting.scale)
            figures["acquisition"] = setting.acquisition
            figures["reference"] = reference
            figures["claimed"] = setting.claimed
            summary["settings" if source == "corpus" else "samples"][setting.label] = figures
            if source == "corpus":
                acquisition_rows.append(_acquisition_row(setting, reference, s))
            if source == "corpus" and setting.claimed:
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
    perceptual = _against_twin(name, zoo, summary, root) if notes["kind"] == "GAN" else None
    ships, reasons = shipping_verdict(verdicts, worst_bias, notes["kind"], perceptual)
    status = SHIPPED if ships else "experimental"
    summary["status"] = status
    summary["reasons"] = reasons
    shipped_text = (
        "**Shipped**: within 0.5 dB of its reference's PSNR on the held-out test role of every "
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
        f"In short: {describe_entry(name, entry)}.",
        "",
        verdict,
        "",
        f"Its figures hold for **{summary['acquisition']}** input "
        f"({'any modality' if summary['modality'] == 'any' else summary['modality']}), the "
        "acquisition it was trained for. How it does on the others (test role of the corpus):",
        "",
        "| acquisition | setting | modalities | reference | reference PSNR | model PSNR "
        "| ΔPSNR | worst image ΔPSNR | ΔSSIM | claimed |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---|",
        *acquisition_rows,
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
        f"| reproduce | `medsr corpus build corpus && medsr zoo train {_train_names(name, root)}` "
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
    """Record each model's status, acquisition and modality, and the defaults, in the
    manifest (atomically)."""
    from medsr.io.core import atomic_path
    from medsr.zoo.rule import choose_defaults

    path = zoo / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    for s in summaries:
        if s["name"] in data["models"]:
            entry = data["models"][s["name"]]
            entry["status"] = s.get("status", "experimental")
            entry["acquisition"] = s.get("acquisition", "bicubic")
            entry["modality"] = s.get("modality", "any")
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
            from medsr.errors import InputError

            raise InputError(
                zoo / f"{name}.md", "has no zoo-summary; regenerate it (medsr zoo cards)"
            )
        out.append(summary)
    return out


def _haarpsi_text(figures: dict[str, Any]) -> str:
    """``0.912 (+0.004)``: the model's mean HaarPSI and its gain over the reference (higher
    is better; a perceptual measure without learned weights); n/a in older cards."""
    mine, ref = figures.get("haarpsi"), figures.get("reference_haarpsi")
    if mine is None or ref is None:
        return "n/a"
    return f"{mine:.3f} ({_signed(mine - ref, 3)})"


def readme_table(summaries: Sequence[dict[str, Any]]) -> str:
    lines = [
        "Figures: the held-out test role of the training corpus (subjects never seen in "
        "training; every slice, central crop up to 512x512), PSNR in dB in physical units "
        "with each modality's data range, gains over the reference of the input's "
        "acquisition (zero-filled k-space interpolation for MR k-space input, bicubic for "
        "bicubic input; for sparse-view CT the FBP input) as the mean over images, and the "
        "smallest per-modality gain; the last column is the mean PSNR gain on the bundled "
        "test samples alone (comparable with 0.1). **Rows whose input is `bicubic` hold only "
        "for bicubic-shrunk input, which no scanner makes.** Each model's first row is the "
        "acquisition it was trained for; rows marked *shown* are other acquisitions, never "
        "held against it. Status: *shipped* models beat the reference in PSNR and SSIM on "
        "every modality they claim and move no test image's mean by more than 0.2% of its "
        "range (GAN models: within 0.5 dB of the reference's PSNR on every modality, a lower "
        "GMSD than their PSNR twin, the same bias limit; scored with the data-consistency "
        "projection they run with by default); *experimental* ones do not and are never a "
        "default; defaults are pixel-loss models. Details, learning curves and "
        "configurations are in each model's card (`src/medsr/zoo/<name>.md`).",
        "",
        "| model | status | kind | scale | input (acquisition) | reference | PSNR | ΔPSNR mean "
        "| ΔPSNR worst modality | ΔSSIM mean | HaarPSI (Δ) | worst bias % | params "
        "| train min | ΔPSNR samples |",
        "|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        for label, figures in s["settings"].items():
            gains = figures["psnr_gain_by_modality"]
            worst = min(gains, key=lambda m: gains[m])
            sample = s.get("samples", {}).get(label)
            sample_text = _signed(sample["psnr_gain"], 2) if sample else "n/a"
            shown = "" if figures.get("claimed", True) else " (shown)"
            lines.append(
                f"| [{s['name']}](src/medsr/zoo/{s['name']}.md) | {s.get('status', '?')} "
                f"| {s['kind']} | {s['scale']} | {label}{shown} "
                f"| {figures.get('reference', 'bicubic')} | {figures['psnr']:.2f} "
                f"| {_signed(figures['psnr_gain'], 2)} | {_signed(gains[worst], 2)} ({worst}) "
                f"| {_signed(figures['ssim_gain'], 4)} | {_haarpsi_text(figures)} "
                f"| {100 * figures['worst_bias']:.2f} "
                f"| {s['parameters'] / 1e6:.2f} M | {s['minutes']:.0f} | {sample_text} |"
            )
    return "\n".join(lines)


def which_table(summaries: Sequence[dict[str, Any]], defaults: dict[str, str]) -> str:
    """The README's "which model for which scan": per acquisition, every model trained for
    it (its claimed settings) with its gain over that acquisition's reference."""
    order = ["mr-kspace", "xray-binning", "ct-sparse-view", "ultrasound-lateral", "bicubic"]
    rows = []
    for s in summaries:
        for label, figures in s["settings"].items():
            if not figures.get("claimed", True) or s.get("status") != "shipped":
                continue
            acquisition = str(figures.get("acquisition", "bicubic"))
            chosen = [k for k, v in defaults.items() if v == s["name"]]
            rows.append((order.index(acquisition) if acquisition in order else 9, label, (
                f"| {acquisition} | {', '.join(figures['psnr_gain_by_modality'])} | {label} "
                f"| [{s['name']}](src/medsr/zoo/{s['name']}.md) "
                f"| {figures.get('reference', 'bicubic')} "
                f"| **{_signed(figures['psnr_gain'], 2)}** "
                f"| {_signed(figures.get('worst_image_psnr_gain', math.nan), 2)} "
                f"| {_signed(figures['ssim_gain'], 4)} | {100 * figures['worst_bias']:.2f} "
                f"| {', '.join(chosen) or '-'} |"
            )))  # fmt: skip
    head = [
        "| acquisition | modality | input | model | reference | ΔPSNR mean | worst image "
        "| ΔSSIM | worst bias % | default for |",
        "|---|---|---|---|---|---:|---:|---:|---:|---|",
    ]
    return "\n".join(head + [row for _, _, row in sorted(rows, key=lambda r: r[:2])])


def _replace_between(text: str, start: str, end: str, body: str, readme: Path) -> str:
    from medsr.errors import InputError

    if start not in text or end not in text:
        raise InputError(readme, f"lacks the {start} / {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def write_readme(table: str, readme: Path, which: str | None = None) -> None:
    """Put the zoo table (and the which-model table, where the README has its markers)
    between their markers, atomically."""
    from medsr.io.core import atomic_path

    text = _replace_between(readme.read_text(encoding="utf-8"), START, END, table, readme)
    if which is not None and WHICH_START in text:
        text = _replace_between(text, WHICH_START, WHICH_END, which, readme)
    with atomic_path(readme) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _acquisition_row(setting: Setting, reference: str, s: dict[str, Any]) -> str:
    """One row of a card's acquisition table."""
    return (
        f"| {setting.acquisition} | {setting.label} | {', '.join(s['images_by_modality'])} "
        f"| {reference} | {s['reference_psnr']:.2f} | {s['psnr']:.2f} "
        f"| **{_signed(s['psnr_gain'], 2)}** | {_signed(s['worst_image_psnr_gain'], 2)} "
        f"| {_signed(s['ssim_gain'], 4)} | {'yes' if setting.claimed else 'shown'} |"
    )
