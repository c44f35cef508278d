"""Checkpoints: what a run saves to resume exactly, how it resumes, the weights it exports,
and ``init_from`` (starting a generator from another run's weights).

A checkpoint holds every state the data and degradation draws do not derive from
``(seed, iteration)``: weights, optimisers, schedulers, scalers, EMA, the best validation
result so far and the Python/NumPy/torch RNG states. It is written atomically.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from medsr.errors import InputError
from medsr.io.core import atomic_path, remove_stale_parts
from medsr.models.base import SRModel
from medsr.train.ema import ModelEMA

if TYPE_CHECKING:
    from medsr.train.trainer import Trainer

__all__ = [
    "CHECKPOINT_VERSION",
    "WEIGHT_FREE_KEYS",
    "atomic_save",
    "load_initial_weights",
    "restore_training_state",
    "save_generator_weights",
    "standing",
    "training_state",
    "write_progress",
]

log = logging.getLogger("medsr.train")

CHECKPOINT_VERSION = 1

#: model config keys that change no tensor: ``init_from`` may cross them between two truthy
#: values (a bicubic-skip model warm-starts a zero-fill-skip one; the skip has no weights),
#: never from or to "no skip"
WEIGHT_FREE_KEYS = frozenset({"residual"})


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace``; the
    temporary files of killed runs (``.last.pt.<pid>.tmp``, pid gone) are removed first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(path.parent, f".{path.name}.", ".tmp")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _numpy_state() -> dict[str, Any]:
    """NumPy's global RNG state as tensors and ints, loadable with ``weights_only=True``."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "name": str(name),
        "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached": float(cached),
    }


def _set_numpy_state(state: Mapping[str, Any]) -> None:
    keys = state["keys"].cpu().numpy().astype(np.uint32)
    np.random.set_state(
        (state["name"], keys, int(state["pos"]), int(state["has_gauss"]), float(state["cached"]))
    )


def save_generator_weights(model: nn.Module, path: Path, extra: Mapping[str, Any]) -> Path:
    """Export a generator as safetensors via ``medsr.infer.weights`` (or the same format)."""
    extra_meta = {k: str(v) for k, v in extra.items()}
    try:
        from medsr.infer.weights import save_generator
    except ImportError:
        pass
    else:
        save_generator(model, path, extra_meta)  # type: ignore[arg-type]
        return path
    from safetensors.torch import save_file

    meta = {
        "medsr.model": str(getattr(model, "name", type(model).__name__)),
        "medsr.config": json.dumps(getattr(model, "config", {})),
        **extra_meta,
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def load_initial_weights(
    generator: SRModel, ema: ModelEMA | None, source: str | Path | None
) -> None:
    """``init_from``: start the generator and its EMA from a weights file (e.g. the PSNR
    warm-up run's ``best_ema.safetensors``), so an adversarial fine-tune begins where
    pixel training ended instead of from random weights. A resumed checkpoint wins."""
    from medsr.infer.weights import read_weights

    if not source:
        return
    path = Path(str(source)).expanduser()
    if not path.is_file():
        raise InputError(path, "config key init_from: no such weights file")
    weights = read_weights(path)
    name, config = generator.name, dict(generator.config)
    stored = weights.metadata.get("medsr.model")
    try:
        stored_config = json.loads(weights.metadata.get("medsr.config", "{}"))
    except json.JSONDecodeError:
        stored_config = {}
    differ = sorted(
        k
        for k in stored_config
        if k in config
        and stored_config[k] != config[k]
        and not (k in WEIGHT_FREE_KEYS and stored_config[k] and config[k])
    )
    if (stored and stored != name) or differ:
        raise InputError(
            path,
            f"config key init_from: holds {stored} {stored_config}, the config trains "
            f"{name} {config}",
        )
    try:
        generator.load_state_dict(weights.state)
    except RuntimeError as exc:
        detail = str(exc).strip().splitlines()[-1].strip()[:200]
        raise InputError(
            path, f"config key init_from: weights do not fit {name}: {detail}"
        ) from None
    if ema is not None:
        ema.module.load_state_dict(generator.state_dict())
    log.info("generator initialised from %s", path)


def training_state(trainer: Trainer) -> dict[str, Any]:
    """Everything a resumed run needs to continue exactly."""
    state: dict[str, Any] = {
        "version": CHECKPOINT_VERSION,
        "iteration": trainer.iteration,
        "config": trainer.cfg,
        "model": {"name": trainer.generator.name, "config": dict(trainer.generator.config)},
        "generator": trainer.generator.state_dict(),
        "opt_g": trainer.opt_g.state_dict(),
        "sched_g": trainer.sched_g.state_dict(),
        "scaler_g": trainer.scaler_g.state_dict(),
        "scaler_d": trainer.scaler_d.state_dict(),
        "ema": trainer.ema.state_dict() if trainer.ema is not None else None,
        "ema_updates": trainer.ema.updates if trainer.ema is not None else 0,
        "seconds": trainer.total_seconds(),
        "best": {
            "psnr": trainer.best_psnr,
            "ssim": trainer.best_ssim,
            "gmsd": trainer.best_gmsd,
            "iteration": trainer.best_iteration,
        },
        "rng": {
            "python": random.getstate(),
            "numpy": _numpy_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            # Data and degradation draws are seeded from (seed, iteration, rank):
            # the iteration above restores them exactly.
            "data": {"scheme": "per-iteration", "seed": trainer.seed},
            "degradation": {"scheme": "per-iteration", "seed": trainer.seed},
        },
    }
    if trainer.discriminator is not None:
        assert trainer.opt_d is not None and trainer.sched_d is not None
        state["discriminator"] = trainer.discriminator.state_dict()
        state["opt_d"] = trainer.opt_d.state_dict()
        state["sched_d"] = trainer.sched_d.state_dict()
    return state


def restore_training_state(trainer: Trainer, path: Path) -> None:
    """Load the checkpoint at ``path`` into ``trainer``: weights, optimisers, schedulers,
    scalers, EMA, the best result, the wall time so far and the RNG states."""
    try:
        state = torch.load(path, map_location=trainer.device, weights_only=True)
    except Exception as exc:
        raise InputError(path, f"not a readable medsr checkpoint ({exc})") from None
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise InputError(path, "not a medsr training checkpoint (or from another version)")
    want = {"name": trainer.generator.name, "config": dict(trainer.generator.config)}
    if state["model"] != want:
        raise InputError(
            path,
            f"checkpoint holds {state['model']['name']} {state['model']['config']}, "
            f"the config builds {want['name']} {want['config']}",
        )
    trainer.generator.load_state_dict(state["generator"])
    trainer.opt_g.load_state_dict(state["opt_g"])
    trainer.sched_g.load_state_dict(state["sched_g"])
    trainer.scaler_g.load_state_dict(state["scaler_g"])
    trainer.scaler_d.load_state_dict(state["scaler_d"])
    if trainer.ema is not None and state["ema"] is not None:
        # Checkpoints from before the warm-up count their iterations as updates.
        trainer.ema.load_state_dict(
            state["ema"], int(state.get("ema_updates") or state["iteration"])
        )
    if trainer.discriminator is not None:
        if "discriminator" not in state:
            raise InputError(path, "checkpoint has no discriminator, the config has one")
        assert trainer.opt_d is not None and trainer.sched_d is not None
        trainer.discriminator.load_state_dict(state["discriminator"])
        trainer.opt_d.load_state_dict(state["opt_d"])
        trainer.sched_d.load_state_dict(state["sched_d"])
    trainer.iteration = int(state["iteration"])
    trainer.best_psnr = float(state["best"]["psnr"])
    trainer.best_ssim = float(state["best"].get("ssim", -math.inf))
    trainer.best_gmsd = float(state["best"].get("gmsd", math.inf))
    trainer.seconds_before = float(state.get("seconds", 0.0))
    trainer.best_iteration = int(state["best"]["iteration"])
    rng = state["rng"]
    random.setstate(rng["python"])
    _set_numpy_state(rng["numpy"])
    torch.set_rng_state(rng["torch"].cpu())
    if rng.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
    log.info("resumed from %s at iteration %d", path, trainer.iteration)


def standing(trainer: Trainer) -> dict[str, Any]:
    """Where the run stands: iterations, data, the best validation result, device."""
    return {
        "name": trainer.cfg["name"],
        "model": trainer.generator.name,
        "iterations": trainer.iteration,
        "train_slices": len(trainer.train_data),
        "val_slices": len(trainer.val_data),
        "best_val_psnr": trainer.best_psnr if math.isfinite(trainer.best_psnr) else None,
        "best_val_ssim": trainer.best_ssim if math.isfinite(trainer.best_ssim) else None,
        "best_iteration": trainer.best_iteration,
        "device": str(trainer.device),
    }


def write_progress(trainer: Trainer) -> None:
    """``progress.json`` beside the checkpoint: where a stopped or running run stands."""
    progress = {
        **standing(trainer),
        "total_iterations": trainer.total,
        "seconds": round(trainer.total_seconds(), 1),
        "cpu_threads": torch.get_num_threads(),
    }
    with atomic_path(trainer.out_dir / "progress.json") as tmp:
        tmp.write_text(json.dumps(progress, indent=2))
