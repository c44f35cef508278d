#!/usr/bin/env bash
# Train the model zoo and ship its weights: for each model (all of them, or the names given),
#   medsr train configs/zoo/<name>.yaml --out runs/zoo/<name> --resume auto
# (on the training corpus: build it first with `medsr corpus build corpus`), then copy
# runs/zoo/<name>/best_ema.safetensors (the EMA weights chosen on the corpus's val role) to
# src/medsr/zoo/<name>.safetensors and write its manifest entry (file, SHA-256, architecture,
# build config, scale, degradation, card) with the run's iterations, wall time, hardware and
# learning curve. A run resumes where it stopped (runs/zoo/<name>/checkpoints/last.pt). Each
# shipped run is also carried in the repository, zoo-runs/<name>/ (checkpoint, best weights,
# curve and progress; a few MB), and a machine without runs/zoo/<name> resumes from there, so
# a later session, or a GPU machine, goes on where this one stopped. Afterwards regenerate
# the cards, which apply the shipping rule:
#   python scripts/make_zoo_cards.py
#
# Usage: scripts/train_zoo.sh [NAME...]        (env: CORPUS=corpus, MEDSR_ZOO_DIR,
#                                               RUNS=runs/zoo, DEVICE=auto, STOP_AFTER=N)
#        scripts/train_zoo.sh --export NAME... (ship the best weights of a run so far, no training)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUNS="${RUNS:-runs/zoo}"
CORPUS="${CORPUS:-corpus}"
CARRY="${CARRY:-zoo-runs}"
CARRIED=(checkpoints/last.pt best_ema.safetensors curve.jsonl progress.json)
CARRY_MAX_BYTES="${CARRY_MAX_BYTES:-20000000}"
DEVICE="${DEVICE:-auto}"
ZOO="${MEDSR_ZOO_DIR:-src/medsr/zoo}"
ALL=(srresnet-x2 srresnet-x4 miassr swift-srgan-psnr-x4 swift-srgan-x4 blimsr-lite-psnr-x4 blimsr-lite-x4
     sisr-us-lateral-x4 sisr-ct-sparse-view)  # each GAN after its PSNR twin (init_from)

train=1
if [[ "${1:-}" == "--export" ]]; then
    train=0
    shift
fi
names=("$@")
[[ ${#names[@]} -eq 0 ]] && names=("${ALL[@]}")

for name in "${names[@]}"; do
    config="configs/zoo/${name}.yaml"
    [[ -f "$config" ]] || { echo "train_zoo: no config $config" >&2; exit 2; }
    if [[ ! -f "$RUNS/$name/checkpoints/last.pt" && -f "$CARRY/$name/checkpoints/last.pt" ]]; then
        echo "== resuming $name from $CARRY/$name ==" >&2
        for f in "${CARRIED[@]}"; do
            if [[ -f "$CARRY/$name/$f" ]]; then install -D -m 644 "$CARRY/$name/$f" "$RUNS/$name/$f"; fi
        done
    fi
    if [[ $train -eq 1 ]]; then
        echo "== training $name ($config) ==" >&2
        [[ -f "$CORPUS/manifest.csv" ]] || { echo "train_zoo: no corpus at $CORPUS (medsr corpus build $CORPUS)" >&2; exit 2; }
        medsr train "$config" --out "$RUNS/$name" --device "$DEVICE" --no-progress \
            --resume auto --set "data.root=$CORPUS" ${STOP_AFTER:+--stop-after "$STOP_AFTER"}
    fi
    python - "$name" "$config" "$RUNS/$name" "$ZOO" <<'PY'
"""Copy a run's best EMA weights into the zoo and write its manifest entry (file-locked)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from medsr.infer.weights import load_generator, sha256_of
from medsr.train.config import load_config

name, config_path, run_dir, zoo = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
weights = run_dir / "best_ema.safetensors"
progress_path = run_dir / "progress.json"
if not weights.is_file() or not progress_path.is_file():
    sys.exit(f"train_zoo: {run_dir} has no run to ship (best_ema.safetensors, progress.json)")
summary = json.loads(progress_path.read_text())
curve_path = run_dir / "curve.jsonl"
curve = [json.loads(line) for line in curve_path.read_text().splitlines()] if curve_path.is_file() else []
cfg = load_config(config_path)
model = load_generator(weights)
zoo.mkdir(parents=True, exist_ok=True)
target = zoo / f"{name}.safetensors"
shutil.copyfile(weights, target)
degradation = cfg["degradation"]
if degradation is None:
    ss = cfg["scale_sampling"]
    degradation = {
        "name": "bicubic",
        "scale": f"random per batch in [{ss['min']}, {ss['max']}] step {ss['step']}",
        "blur_sigma": ss["blur_sigma"],
    }
entry = {
    "file": target.name,
    "sha256": sha256_of(target),
    "architecture": model.name,
    "config": dict(model.config),
    "scale": None if model.arbitrary_scale else [float(s) for s in model.default_scale],
    "degradation": degradation,
    "card": f"{name}.md",
    "kind": "gan" if cfg.get("discriminator") else "psnr",
    "training": {
        "config": config_path,
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
    # Until scripts/make_zoo_cards.py applies the shipping rule, a new model is experimental.
    "status": "experimental",
}
manifest = zoo / "manifest.json"
lock_path = Path(tempfile.gettempdir()) / f"medsr-zoo-{hashlib.sha1(str(zoo.resolve()).encode()).hexdigest()[:12]}.lock"
with open(lock_path, "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    data = json.loads(manifest.read_text()) if manifest.is_file() else {"models": {}}
    data["models"][name] = entry
    data["models"] = dict(sorted(data["models"].items()))
    tmp = manifest.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, manifest)
print(f"train_zoo: shipped {target} ({target.stat().st_size / 1e6:.2f} MB, sha256 {entry['sha256'][:12]}...)")
PY
    for f in "${CARRIED[@]}"; do
        [[ -f "$RUNS/$name/$f" ]] || continue
        if [[ $(stat -c %s "$RUNS/$name/$f") -gt $CARRY_MAX_BYTES ]]; then
            # a GAN checkpoint holds the discriminator and both optimisers (100+ MB): not
            # carried in the repository; a later session restarts that run from init_from
            echo "train_zoo: $RUNS/$name/$f is over $((CARRY_MAX_BYTES / 1000000)) MB, not carried" >&2
            rm -f "$CARRY/$name/$f"
            continue
        fi
        install -D -m 644 "$RUNS/$name/$f" "$CARRY/$name/$f"
    done
done
