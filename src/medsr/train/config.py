"""Training configuration: YAML files merged over defaults, ``--set`` overrides, validation.

A run is described by one YAML file (``configs/<method>.yaml``), optionally
followed by override files (``configs/tiny.yaml``) and ``--set key.sub=value``
pairs whose values are parsed as YAML (``--set optim.generator.lr=1e-5``,
``--set stages.0.iterations=0``, ``--set data.patch_size=[64,128]``). Later
layers win; mappings merge key by key, lists are replaced.

An override file may hold a ``per_model:`` mapping from a generator name to
overrides that apply only when the run's ``model.name`` matches, so one file can
shrink every architecture. Every key is checked; an error names the key::

    config key optim.generator.lr: must be a positive number, got 'fast'
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from medsr.errors import ConfigError, InputError

Config = dict[str, Any]

_OPTIM: dict[str, Any] = {
    "type": "adam",
    "lr": 1e-4,
    "betas": [0.9, 0.999],
    "eps": 1e-8,
    "weight_decay": 0.0,
}
_SCHED: dict[str, Any] = {
    "type": "none",
    "step_size": None,
    "milestones": [],
    "gamma": 0.5,
    "eta_min": 0.0,
}

DEFAULTS: Config = {
    "name": "run",
    "seed": 0,
    "model": {"name": None},
    # A generator weights file (safetensors or .pt) to start from, e.g. the best_ema of a
    # PSNR warm-up run that an adversarial fine-tune continues.
    "init_from": None,
    "discriminator": None,
    "degradation": None,
    # Arbitrary-scale training (MIASSR): one scale per batch from {min, min+step, ..., max};
    # LR = cubic resize to int(size / s), then a 3x3 Gaussian blur of sigma blur_sigma.
    "scale_sampling": None,
    "data": {
        "layout": "samples",
        "root": None,
        "options": {},
        "window": None,
        "patch_size": 96,
        "batch_size": 16,
        "val_fraction": 0.2,
        "split_seed": 0,
        "min_std": 0.01,
        "max_slices_per_file": None,
        "cache": True,
        "prefetch": 2,
        "augment": {"hflip": True, "vflip": True, "rot90": True, "intensity": 0.0},
        # Validation records from the same layout with these options instead of a split
        # (the corpus layout: {role: val}); None splits val_fraction off the training data.
        "val_options": None,
        # Training draws: uniform over slices, or balanced over modalities or records.
        "balance": "slice",
    },
    "loss": {},
    "stages": [],
    "optim": {"generator": dict(_OPTIM), "discriminator": dict(_OPTIM)},
    "scheduler": {"generator": dict(_SCHED), "discriminator": dict(_SCHED)},
    "amp": {"enabled": False, "dtype": "bf16"},
    # Networks and batches in channels-last memory layout (NHWC): 1.2-1.5x faster training
    # steps for the zoo generators on a CPU (benchmarks/train_kernels.py), and the layout
    # tensor cores want on a GPU. Numerically the same model; weights are saved contiguous.
    "channels_last": True,
    # Train and validate through the data-consistency step the model gets at inference:
    # for a ct-sparse-view restorer, the sinogram-domain step of medsr.infer.sinogram with
    # each batch's view step (the loss sees what users get). Other degradations refuse it.
    "data_consistency": False,
    "ema": {"enabled": True, "decay": 0.999},
    "grad_clip": {"generator": None, "discriminator": None},
    "validation": {
        "every": 1000,
        "patches": 16,
        "scales": None,
        "shave": "auto",
        "seed": 1234,
        "select": "psnr",
    },
    "checkpoint": {"every": 1000},
    "logging": {"tensorboard": True, "every": 50, "progress": True},
    # stop_after: stop (checkpointed) after N iterations; stage_iterations: every stage
    # runs N iterations (smoke tests and benchmarks).
    "train": {"stop_after": None, "stage_iterations": None},
}

_SCALE_SAMPLING = {"min": 1.1, "max": 4.0, "step": 0.1, "blur_sigma": 0.5}
_STAGE_KEYS = ("name", "iterations", "loss")
#: Sections whose content another module validates (model/degradation/loss builders).
_FREE_FORM = {"model", "discriminator", "degradation", "loss", "data.options", "data.val_options"}
OPTIMISERS = ("adam", "adamw")
SCHEDULERS = ("none", "step", "multistep", "cosine")
AMP_DTYPES = ("bf16", "fp16")


# -- loading and merging ------------------------------------------------------------------
def read_yaml(path: str | Path) -> Config:
    """A YAML mapping from a file, with a one-line error for missing or malformed files."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(path, f"not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(path, "a config file must hold a mapping of keys")
    return data


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> Config:
    """``base`` with ``update`` merged in: mappings recursively, everything else replaced."""
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_set(item: str) -> tuple[list[str], Any]:
    """``"a.b=1e-4"`` -> ``(["a", "b"], 0.0001)``; the value is parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    key, text = item.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        raise ConfigError(f"--set {key}: value {text!r} is not valid YAML") from None
    # YAML 1.1 reads 1e-4 as a string; a number is what anyone typing it means.
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value) if any(c in value.lower() for c in ".e") else value
    return parts, value


def apply_set(cfg: Config, parts: Sequence[str], value: Any) -> None:
    """Set ``cfg[a][b]... = value``; numeric parts index lists (``stages.1.iterations``)."""
    node: Any = cfg
    for depth, part in enumerate(parts[:-1]):
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            node = node[_list_index(node, part, where)]
            continue
        if node.get(part) is None:
            node[part] = {}
        node = node[part]
        if not isinstance(node, (dict, list)):
            raise ConfigError(f"config key {where}: is a value, not a section")
    last = parts[-1]
    if isinstance(node, list):
        node[_list_index(node, last, ".".join(parts))] = value
    else:
        node[last] = value


def _list_index(node: list[Any], part: str, where: str) -> int:
    try:
        index = int(part)
    except ValueError:
        raise ConfigError(f"config key {where}: expected a list index") from None
    if not -len(node) <= index < len(node):
        raise ConfigError(f"config key {where}: index out of range (list has {len(node)})")
    return index


def load_config(
    path: str | Path | None,
    override_files: Iterable[str | Path] = (),
    sets: Iterable[str] = (),
    base: Mapping[str, Any] | None = None,
) -> Config:
    """Defaults <- ``base`` <- config file <- override files <- ``per_model`` <- ``--set``."""
    layers: list[Config] = []
    if base is not None:
        layers.append(copy.deepcopy(dict(base)))
    if path is not None:
        layers.append(read_yaml(path))
    layers.extend(read_yaml(p) for p in override_files)
    cfg: Config = copy.deepcopy(DEFAULTS)
    per_model: list[Mapping[str, Any]] = []
    for layer in layers:
        specific = layer.pop("per_model", None)
        if specific is not None:
            if not isinstance(specific, Mapping):
                raise ConfigError("config key per_model: must map model names to overrides")
            per_model.append(specific)
        cfg = deep_merge(cfg, layer)
    model_name = (cfg.get("model") or {}).get("name")
    for specific in per_model:
        if isinstance(model_name, str) and model_name in specific:
            cfg = deep_merge(cfg, specific[model_name] or {})
    for item in sets:
        parts, value = parse_set(item)
        apply_set(cfg, parts, value)
    return validate(cfg)


# -- validation ---------------------------------------------------------------------------

#: How the best checkpoint is chosen on the validation patches: ``psnr`` (pixel models: SSIM
#: at least bicubic's, then the highest PSNR) or ``perceptual`` (GANs: PSNR at most the
#: shipping rule's ``medsr.zoo.rule.GAN_PSNR_FLOOR_DB`` below bicubic's, then the lowest
#: GMSD).
CHECKPOINT_SELECTION = ("psnr", "perceptual")


def _fail(key: str, problem: str, value: Any = ...) -> ConfigError:
    shown = "" if value is ... else f", got {value!r}"
    return ConfigError(f"config key {key}: {problem}{shown}")


def _check_keys(section: Mapping[str, Any], allowed: Iterable[str], prefix: str) -> None:
    allowed = list(allowed)
    for key in section:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean {prefix}{close[0]}?" if close else ""
            raise ConfigError(
                f"config key {prefix}{key}: unknown key{hint} (known: {', '.join(allowed)})"
            )


def _section(cfg: Mapping[str, Any], key: str) -> Config:
    node: Any = cfg
    for part in key.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if not isinstance(node, dict):
        raise _fail(key, "must be a mapping", node)
    return node


def _number(value: Any, key: str, *, positive: bool = False, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(key, "must be a number", value)
    if positive and value <= 0:
        raise _fail(key, "must be a positive number", value)
    if minimum is not None and value < minimum:
        raise _fail(key, f"must be >= {minimum}", value)
    return float(value)


def _integer(value: Any, key: str, minimum: int = 0, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(key, "must be an integer", value)
    if value < minimum:
        raise _fail(key, f"must be an integer >= {minimum}", value)
    return value


def _boolean(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(key, "must be true or false", value)
    return value


def _choice(value: Any, key: str, choices: Sequence[str]) -> str:
    text = str(value).strip().lower() if value is not None else "none"
    if text not in choices:
        raise _fail(key, f"must be one of {', '.join(choices)}", value)
    return text


def validate(cfg: Config) -> Config:
    """Check every key and value; normalise spellings (lower-case choices). Returns ``cfg``."""
    _check_keys(cfg, DEFAULTS, "")
    if not isinstance(cfg.get("name"), str) or not cfg["name"]:
        raise _fail("name", "must be a non-empty string", cfg.get("name"))
    _integer(cfg.get("seed"), "seed")
    for key in ("model", "data", "optim", "scheduler", "amp", "ema"):
        _section(cfg, key)
    if not cfg["model"].get("name"):
        raise _fail("model.name", "is required (medsr models lists the names)")
    init_from = cfg.get("init_from")
    if init_from is not None and (not isinstance(init_from, str) or not init_from.strip()):
        raise _fail("init_from", "must be the path of a generator weights file", init_from)
    if cfg["discriminator"] is not None and not _section(cfg, "discriminator").get("name"):
        raise _fail("discriminator.name", "is required when a discriminator section is given")
    if cfg["degradation"] is None and cfg.get("scale_sampling") is None:
        raise _fail("degradation", "is required unless scale_sampling is set")
    if cfg["degradation"] is not None and not _section(cfg, "degradation").get("name"):
        raise _fail("degradation.name", "is required (medsr degrade --list shows the names)")
    _section(cfg, "loss")

    scale_sampling = cfg.get("scale_sampling")
    if scale_sampling is not None:
        ss = deep_merge(_SCALE_SAMPLING, _section(cfg, "scale_sampling"))
        _check_keys(ss, _SCALE_SAMPLING, "scale_sampling.")
        lo = _number(ss["min"], "scale_sampling.min", minimum=1.0)
        hi = _number(ss["max"], "scale_sampling.max", minimum=lo)
        _number(ss["step"], "scale_sampling.step", positive=True)
        _number(ss["blur_sigma"], "scale_sampling.blur_sigma", minimum=0.0)
        cfg["scale_sampling"] = ss
        del hi

    data = cfg["data"]
    _check_keys(data, DEFAULTS["data"], "data.")
    from medsr.data.layouts import LAYOUTS

    data["layout"] = _choice(str(data["layout"]).replace("_", "-"), "data.layout", list(LAYOUTS))
    if data["layout"] != "samples" and not data.get("root"):
        raise _fail("data.root", f"is required for the {data['layout']} layout")
    _section(cfg, "data.options")
    _patch_size(data["patch_size"], "data.patch_size")
    _integer(data["batch_size"], "data.batch_size", minimum=1)
    vf = _number(data["val_fraction"], "data.val_fraction", minimum=0.0)
    if vf >= 1:
        raise _fail("data.val_fraction", "must be below 1", vf)
    _integer(data["split_seed"], "data.split_seed")
    _number(data["min_std"], "data.min_std", minimum=0.0)
    _integer(data["max_slices_per_file"], "data.max_slices_per_file", 1, optional=True)
    _boolean(data["cache"], "data.cache")
    _integer(data["prefetch"], "data.prefetch")
    augment = _section(cfg, "data.augment")
    _check_keys(augment, DEFAULTS["data"]["augment"], "data.augment.")
    for key, value in augment.items():
        if key == "intensity":
            _number(value, "data.augment.intensity", minimum=0.0)
        else:
            _boolean(value, f"data.augment.{key}")
    if data["val_options"] is not None and not isinstance(data["val_options"], dict):
        raise _fail("data.val_options", "must be a mapping of layout options", data["val_options"])
    from medsr.data.datasets import BALANCES

    data["balance"] = _choice(str(data["balance"]), "data.balance", list(BALANCES))
    window = data["window"]
    if window is not None and not (
        isinstance(window, str)
        or (isinstance(window, list) and len(window) == 2 and window[0] < window[1])
    ):
        raise _fail("data.window", "must be a window name or [low, high] in HU", window)

    stages = cfg.get("stages")
    if not isinstance(stages, list) or not stages:
        raise _fail("stages", "must list at least one stage ({name, iterations, loss})", stages)
    for i, stage in enumerate(stages):
        if not isinstance(stage, dict):
            raise _fail(f"stages.{i}", "must be a mapping", stage)
        _check_keys(stage, _STAGE_KEYS, f"stages.{i}.")
        stage.setdefault("name", f"stage{i}")
        stage.setdefault("loss", {})
        _integer(stage.get("iterations"), f"stages.{i}.iterations")
        if not isinstance(stage["loss"], dict):
            raise _fail(f"stages.{i}.loss", "must be a mapping", stage["loss"])

    for net in ("generator", "discriminator"):
        opt = cfg["optim"][net] = deep_merge(_OPTIM, _section(cfg, f"optim.{net}"))
        _check_keys(opt, _OPTIM, f"optim.{net}.")
        opt["type"] = _choice(opt["type"], f"optim.{net}.type", OPTIMISERS)
        _number(opt["lr"], f"optim.{net}.lr", positive=True)
        _number(opt["eps"], f"optim.{net}.eps", positive=True)
        _number(opt["weight_decay"], f"optim.{net}.weight_decay", minimum=0.0)
        betas = opt["betas"]
        if not (isinstance(betas, list) and len(betas) == 2):
            raise _fail(f"optim.{net}.betas", "must be [beta1, beta2]", betas)
        for j, b in enumerate(betas):
            if not 0 <= _number(b, f"optim.{net}.betas.{j}") < 1:
                raise _fail(f"optim.{net}.betas.{j}", "must be in [0, 1)", b)
        sched = cfg["scheduler"][net] = deep_merge(_SCHED, _section(cfg, f"scheduler.{net}"))
        _check_keys(sched, _SCHED, f"scheduler.{net}.")
        sched["type"] = _choice(sched["type"], f"scheduler.{net}.type", SCHEDULERS)
        _number(sched["gamma"], f"scheduler.{net}.gamma", positive=True)
        _number(sched["eta_min"], f"scheduler.{net}.eta_min", minimum=0.0)
        if sched["type"] == "step":
            _integer(sched["step_size"], f"scheduler.{net}.step_size", minimum=1)
        if sched["type"] == "multistep":
            ms = sched["milestones"]
            if not isinstance(ms, list) or not ms:
                raise _fail(f"scheduler.{net}.milestones", "must list iteration numbers", ms)
            for j, m in enumerate(ms):
                _integer(m, f"scheduler.{net}.milestones.{j}", minimum=1)
        clip = cfg["grad_clip"].get(net)
        if clip is not None:
            _number(clip, f"grad_clip.{net}", positive=True)
    _check_keys(cfg["optim"], ("generator", "discriminator"), "optim.")
    _check_keys(cfg["scheduler"], ("generator", "discriminator"), "scheduler.")
    _check_keys(_section(cfg, "grad_clip"), ("generator", "discriminator"), "grad_clip.")

    amp = cfg["amp"]
    _check_keys(amp, DEFAULTS["amp"], "amp.")
    _boolean(amp["enabled"], "amp.enabled")
    amp["dtype"] = _choice(amp["dtype"], "amp.dtype", AMP_DTYPES)
    ema = cfg["ema"]
    _check_keys(ema, DEFAULTS["ema"], "ema.")
    _boolean(ema["enabled"], "ema.enabled")
    _boolean(cfg["channels_last"], "channels_last")
    _boolean(cfg["data_consistency"], "data_consistency")
    if cfg["data_consistency"] and (cfg["degradation"] or {}).get("name") != "ct-sparse-view":
        raise _fail(
            "data_consistency",
            "is supported for the ct-sparse-view degradation only (the sinogram-domain step)",
            cfg["data_consistency"],
        )
    decay = _number(ema["decay"], "ema.decay", minimum=0.0)
    if decay >= 1:
        raise _fail("ema.decay", "must be below 1", decay)

    val = _section(cfg, "validation")
    _check_keys(val, DEFAULTS["validation"], "validation.")
    _integer(val["every"], "validation.every")
    _integer(val["patches"], "validation.patches")
    _integer(val["seed"], "validation.seed")
    if val["scales"] is not None and (not isinstance(val["scales"], list) or not val["scales"]):
        raise _fail("validation.scales", "must list scales (arbitrary-scale models)", val["scales"])
    if val["shave"] != "auto":
        _integer(val["shave"], "validation.shave")
    if val["select"] not in CHECKPOINT_SELECTION:
        raise _fail(
            "validation.select", f"must be one of {', '.join(CHECKPOINT_SELECTION)}", val["select"]
        )
    ckpt = _section(cfg, "checkpoint")
    _check_keys(ckpt, DEFAULTS["checkpoint"], "checkpoint.")
    _integer(ckpt["every"], "checkpoint.every")
    logging_cfg = _section(cfg, "logging")
    _check_keys(logging_cfg, DEFAULTS["logging"], "logging.")
    _boolean(logging_cfg["tensorboard"], "logging.tensorboard")
    _boolean(logging_cfg["progress"], "logging.progress")
    _integer(logging_cfg["every"], "logging.every", minimum=1)
    train = cfg.get("train") or {}
    _check_keys(train, ("stop_after", "stage_iterations"), "train.")
    _integer(train.get("stop_after"), "train.stop_after", 0, optional=True)
    per_stage = _integer(train.get("stage_iterations"), "train.stage_iterations", 0, optional=True)
    if per_stage is not None:
        for stage in stages:
            stage["iterations"] = per_stage
    cfg["train"] = {"stop_after": train.get("stop_after"), "stage_iterations": per_stage}
    return cfg


def _patch_size(value: Any, key: str) -> None:
    from medsr.data.datasets import as_patch_size

    try:
        as_patch_size(value)
    except (ConfigError, TypeError, ValueError):
        raise _fail(key, "must be a positive integer or [rows, columns]", value) from None


def total_iterations(cfg: Mapping[str, Any]) -> int:
    return sum(int(s["iterations"]) for s in cfg["stages"])


def dump(cfg: Mapping[str, Any]) -> str:
    """The resolved config as YAML (saved beside checkpoints so a run documents itself)."""
    return yaml.safe_dump(dict(cfg), sort_keys=False)
