"""Resumable zoo training runs and shipping their weights (``medsr zoo train``/``export``).

For each zoo name: ``configs/zoo/<name>.yaml`` is trained into ``runs/zoo/<name>`` with
``--resume auto`` on the training corpus; a machine without that run resumes from the
copy carried in the repository (``zoo-runs/<name>/``: last checkpoint, best EMA weights,
learning curve, progress; a few MB), so a later session, or a GPU machine, goes on where
the last one stopped. Then the best EMA weights (chosen on the corpus's val role) are
copied into the zoo with their manifest entry (file, SHA-256, architecture, build config,
scale, degradation, acquisition, modality, learning curve, iterations, wall time,
hardware), and the run is carried back. A new entry is *experimental* until
``medsr zoo cards`` applies the shipping rule.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medsr.errors import ConfigError, InputError

__all__ = ["CARRIED", "carry_back", "export_run", "resume_from_carry", "train_run"]

#: what a run carries between machines, relative to its run folder
CARRIED = ("checkpoints/last.pt", "best_ema.safetensors", "curve.jsonl", "progress.json")
#: a checkpoint over this is not carried (a GAN's holds a discriminator and two optimisers)
CARRY_MAX_BYTES = 20_000_000


def resume_from_carry(name: str, runs: Path, carry: Path) -> bool:
    """Copy ``carry/<name>`` into ``runs/<name>`` when that run has no checkpoint yet."""
    run, carried = runs / name, carry / name
    if (run / CARRIED[0]).is_file() or not (carried / CARRIED[0]).is_file():
        return False
    for item in CARRIED:
        if (carried / item).is_file():
            (run / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(carried / item, run / item)
    return True


def train_run(
    name: str,
    root: Path,
    corpus: Path,
    runs: Path,
    device: str = "auto",
    stop_after: int | None = None,
    extra: Sequence[str] = (),
) -> None:
    """``medsr train configs/zoo/<name>.yaml --out runs/<name> --resume auto`` on the corpus,
    in a child process (so a crash or a kill leaves the last checkpoint, and the caller
    goes on to ship it)."""
    config = root / "configs" / "zoo" / f"{name}.yaml"
    if not config.is_file():
        raise InputError(config, f"no training configuration for zoo model {name!r}")
    if not (corpus / "manifest.csv").is_file():
        raise InputError(corpus, "no training corpus here (build it: medsr corpus build corpus)")
    command = [
        sys.executable, "-m", "medsr", "train", str(config), "--out", str(runs / name),
        "--device", device, "--no-progress", "--resume", "auto",
        "--set", f"data.root={corpus}", *extra,
    ]  # fmt: skip
    if stop_after is not None:
        command += ["--stop-after", str(stop_after)]
    result = subprocess.run(command, cwd=root)
    if result.returncode != 0:
        raise ConfigError(f"training {name} stopped with exit code {result.returncode}")


def export_run(name: str, root: Path, runs: Path, zoo: Path) -> dict[str, Any]:
    """Copy a run's best EMA weights into ``zoo`` and write its manifest entry (file-locked,
    atomic); returns the entry."""
    import torch

    from medsr.degrade.acquisition import acquisition_of_degradation
    from medsr.infer.weights import load_generator
    from medsr.io.core import atomic_path
    from medsr.train.config import load_config
    from medsr.zoo.manifest import EXPERIMENTAL, sha256_of

    run_dir = runs / name
    weights, progress_path = run_dir / "best_ema.safetensors", run_dir / "progress.json"
    if not weights.is_file() or not progress_path.is_file():
        raise InputError(run_dir, "has no run to ship (best_ema.safetensors, progress.json)")
    summary = json.loads(progress_path.read_text())
    curve_path = run_dir / "curve.jsonl"
    curve = (
        [json.loads(line) for line in curve_path.read_text().splitlines() if line.strip()]
        if curve_path.is_file()
        else []
    )
    config_path = Path("configs") / "zoo" / f"{name}.yaml"
    cfg = load_config(root / config_path)
    model = load_generator(weights)
    zoo.mkdir(parents=True, exist_ok=True)
    target = zoo / f"{name}.safetensors"
    with atomic_path(target) as tmp:
        shutil.copyfile(weights, tmp)
    degradation = cfg["degradation"]
    if degradation is None:
        ss = cfg["scale_sampling"]
        degradation = {
            "name": "bicubic",
            "scale": f"random per batch in [{ss['min']}, {ss['max']}] step {ss['step']}",
            "blur_sigma": ss["blur_sigma"],
        }
    acquisition = acquisition_of_degradation(degradation)
    modalities = (cfg["data"].get("options") or {}).get("modality")
    modality = (
        acquisition.modality
        if acquisition is not None and acquisition.modality != "any"
        else (modalities[0] if isinstance(modalities, list) and len(modalities) == 1 else "any")
    )
    entry = {
        "file": target.name,
        "sha256": sha256_of(target),
        "architecture": model.name,
        "config": dict(model.config),
        "scale": None if model.arbitrary_scale else [float(s) for s in model.default_scale],
        "degradation": degradation,
        "acquisition": acquisition.name if acquisition is not None else "bicubic",
        "modality": modality,
        "card": f"{name}.md",
        "kind": "gan" if cfg.get("discriminator") else "psnr",
        "window": cfg["data"].get("window"),
        "training": {
            "config": str(config_path),
            "iterations": int(summary["iterations"]),
            "best_iteration": int(summary["best_iteration"]),
            "seconds": round(float(summary["seconds"]), 1),
            "device": summary["device"],
            "cpu_threads": int(summary.get("cpu_threads", torch.get_num_threads())),
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "train_slices": int(summary["train_slices"]),
            "val_slices": int(summary.get("val_slices", 0)),
            "data": (
                f"train role of the training corpus ({cfg['data']['layout']} layout, options "
                f"{json.dumps(cfg['data']['options'])}), checkpoints chosen on its val role; "
                "the test role is never seen"
            ),
            "parameters": sum(p.numel() for p in model.parameters()),
            "curve": curve,
        },
        "status": EXPERIMENTAL,  # until `medsr zoo cards` applies the shipping rule
    }
    manifest = zoo / "manifest.json"
    key = hashlib.sha1(str(zoo.resolve()).encode()).hexdigest()[:12]
    lock_path = Path(tempfile.gettempdir()) / f"medsr-zoo-{key}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(manifest.read_text()) if manifest.is_file() else {"models": {}}
        old = data["models"].get(name, {})
        if old.get("sha256") == entry["sha256"] and old.get("status"):
            entry["status"] = old["status"]  # the same weights keep their verdict
        data["models"][name] = entry
        data["models"] = dict(sorted(data["models"].items()))
        with atomic_path(manifest) as tmp_manifest:
            tmp_manifest.write_text(json.dumps(data, indent=2) + "\n")
    return entry


def carry_back(name: str, runs: Path, carry: Path) -> list[str]:
    """Copy a run's carried files into ``carry/<name>``; returns what was left out (too big)."""
    left_out = []
    for item in CARRIED:
        source = runs / name / item
        if not source.is_file():
            continue
        target = carry / name / item
        if source.stat().st_size > CARRY_MAX_BYTES:
            left_out.append(item)
            target.unlink(missing_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return left_out
