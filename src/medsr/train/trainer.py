"""The training loop: stages, per-network optimisers, AMP, EMA, checkpoints, validation.

One iteration:

1. HR patches for the iteration are cut on the CPU (a pure function of
   ``(seed, iteration)``, prepared ahead by a thread) and moved to the device.
2. The LR batch is made *on the device* by the configured degradation, with
   per-sample random parameters from a ``torch.Generator`` seeded from
   ``(seed, iteration, rank)``. Arbitrary-scale models draw one scale per batch
   from ``scale_sampling`` and get LR = cubic resize to ``int(size / s)`` plus a
   3x3 Gaussian blur.
3. Generator step on the stage's loss (the discriminator frozen), then, in GAN
   stages, a discriminator step. Each network has its own optimiser, scheduler,
   GradScaler (fp16) and gradient clipping; the generator's EMA follows each step.

Because the data and degradation randomness are derived from the iteration and
the checkpoint holds every other state (weights, optimisers, schedulers,
scalers, EMA, Python/NumPy/torch RNG states), a run resumed from a checkpoint
ends with exactly the weights of an uninterrupted run.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medsr.data.datasets import Augment, SliceDataset, as_patch_size
from medsr.data.layouts import records_for
from medsr.data.splits import split_records
from medsr.errors import ConfigError, InputError
from medsr.infer.zoo import GAN_PSNR_FLOOR_DB
from medsr.train.config import Config, deep_merge, dump, total_iterations
from medsr.train.distributed import (
    DistContext,
    init_from_env,
    local_device,
    shutdown,
    sync_buffers,
    wrap,
)

log = logging.getLogger("medsr.train")

CHECKPOINT_VERSION = 1
#: PSNR of an exact reconstruction is infinite; averages cap each patch here.
PSNR_CAP_DB = 100.0


def resolve_device(name: str | torch.device | None) -> torch.device:
    """``auto`` -> CUDA when available, else the CPU; ``cuda`` without a GPU is an error."""
    if isinstance(name, torch.device):
        return name
    text = (name or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but no CUDA GPU is available")
    try:
        return torch.device(text)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; choose auto, cpu or cuda") from None


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from integers, decorrelated by NumPy's SeedSequence."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> 1)


def gaussian_blur3(x: Tensor, sigma: float) -> Tensor:
    """3x3 Gaussian blur, per channel, reflect padding; ``sigma`` 0 returns ``x``."""
    if sigma <= 0:
        return x
    t = torch.tensor([-1.0, 0.0, 1.0], device=x.device, dtype=x.dtype)
    k1 = torch.exp(-(t**2) / (2 * sigma**2))
    k1 = k1 / k1.sum()
    kernel = (k1[:, None] * k1[None, :]).expand(x.shape[1], 1, 3, 3)
    if min(x.shape[-2:]) < 2:
        return x
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), kernel, groups=x.shape[1])


def scale_choices(spec: Mapping[str, float]) -> list[float]:
    """``{min: 1.1, max: 4.0, step: 0.1}`` -> ``[1.1, 1.2, ..., 4.0]`` (rounded to 6 places)."""
    count = math.floor((spec["max"] - spec["min"]) / spec["step"] + 1e-6) + 1
    return [round(spec["min"] + i * spec["step"], 6) for i in range(count)]


def arbitrary_scale_lr(hr: Tensor, scale: float, blur_sigma: float) -> Tensor:
    """MIASSR's LR: antialiased cubic resize by exactly 1/s, then a light 3x3 blur.

    The paper resizes to ``int(H / s)`` pixels, which makes the effective factor
    ``H / int(H / s)`` depend on the patch size (48 px at s = 2.7 really is 2.82), so
    a model trained on patches would learn offsets that do not hold on whole images.
    Resizing by exactly 1/s (``ceil(H / s)`` pixels, MATLAB's grid, the same as the
    ``bicubic`` degradation used for evaluation) keeps LR and HR aligned; the SR output
    and HR are then cropped to their common top-left region.
    """
    from medsr.degrade.resize import imresize

    lr = imresize(hr, scale=1.0 / scale, kernel="cubic", antialias=True)
    return gaussian_blur3(lr, blur_sigma).clamp(0.0, 1.0)


def common_crop(sr: Tensor, hr: Tensor) -> tuple[Tensor, Tensor]:
    """Crop both to their common top-left (H, W) (LR sizes round, so SR may differ by a pixel)."""
    h = min(sr.shape[-2], hr.shape[-2])
    w = min(sr.shape[-1], hr.shape[-1])
    return sr[..., :h, :w], hr[..., :h, :w]


class ModelEMA:
    """Exponential moving average of a generator with a warm-up of its decay.

    ``ema = d_t * ema + (1 - d_t) * p`` with ``d_t = min(decay, (1 + t) / (10 + t))``
    after ``t`` updates (the warm-up of TensorFlow's ExponentialMovingAverage with
    ``num_updates``). Without it the average starts from the random initial weights and
    keeps ``decay ** n`` of them after n steps: 13% after 400 steps at 0.995. With it the
    first update copies the live weights and the early average follows them closely.
    Buffers (BatchNorm statistics) are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(model).eval()
        self.module.requires_grad_(False)
        self.decay = float(decay)
        self.updates = 0

    def current_decay(self) -> float:
        """The decay the next update uses: ``min(decay, (1 + t) / (10 + t))``."""
        t = self.updates
        return min(self.decay, (1.0 + t) / (10.0 + t))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.current_decay()
        ema_params: list[Tensor] = list(self.module.parameters())
        params: list[Tensor] = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - decay)
        for eb, b in zip(self.module.buffers(), model.buffers()):
            eb.copy_(b)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return self.module.state_dict()

    def load_state_dict(self, state: Mapping[str, Any], updates: int | None = None) -> None:
        self.module.load_state_dict(state)
        if updates is not None:
            self.updates = int(updates)


@dataclass
class Stage:
    """A training stage: its name, iteration span and the losses it trains with."""

    name: str
    start: int
    stop: int
    g_loss: nn.Module
    d_loss: nn.Module | None

    @property
    def trains_discriminator(self) -> bool:
        return self.d_loss is not None


#: model config keys that change no tensor: ``init_from`` may cross them between two truthy
#: values (a bicubic-skip model warm-starts a zero-fill-skip one; the skip has no weights),
#: never from or to "no skip"
WEIGHT_FREE_KEYS = frozenset({"residual"})


@dataclass
class ValidationSet:
    """Fixed validation patches, grouped by scale, with their bicubic baseline scores."""

    groups: list[tuple[tuple[float, float] | None, Tensor, Tensor]]
    shave: list[int]
    bicubic_psnr: float = float("nan")
    bicubic_ssim: float = float("nan")


@dataclass
class Timings:
    """Seconds spent per phase, summed over iterations (``profile=True`` syncs CUDA)."""

    data: float = 0.0
    degrade: float = 0.0
    step: float = 0.0
    iterations: int = 0
    samples: int = 0


def _atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace``; the
    temporary files of killed runs (``.last.pt.<pid>.tmp``, pid gone) are removed first."""
    from medsr.io.core import remove_stale_parts

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


class BatchSource:
    """HR patch batches per iteration, prepared ``prefetch`` iterations ahead by a thread.

    The batch of iteration ``i`` depends only on ``(seed, i)``: the global batch
    (``batch_size * world_size`` patches) is drawn, and this rank takes its shard,
    which is what a DistributedSampler would give.
    """

    def __init__(
        self,
        dataset: SliceDataset,
        batch_size: int,
        patch_size: tuple[int, int],
        augment: Augment,
        seed: int,
        ctx: DistContext,
        prefetch: int,
        scales: list[float] | None,
    ) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.patch_size = patch_size
        self.augment = augment
        self.seed = seed
        self.ctx = ctx
        self.scales = scales
        self.prefetch = prefetch
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="medsr-data") if prefetch else None
        self._futures: dict[int, Future[tuple[np.ndarray, float | None]]] = {}

    def make(self, iteration: int) -> tuple[np.ndarray, float | None]:
        """(HR patches (B, 1, h, w) for this rank, the batch's scale or None)."""
        rng = np.random.default_rng(derived_seed(self.seed, iteration, 0x5EED))
        scale = None
        if self.scales is not None:
            scale = float(self.scales[int(rng.integers(0, len(self.scales)))])
        draw = self.dataset.draw(
            rng, self.batch_size * self.ctx.world_size, self.patch_size, self.augment
        )
        start = self.ctx.rank * self.batch_size
        mine = draw.shard(start, start + self.batch_size)
        return self.dataset.patches(mine, self.patch_size), scale

    def get(self, iteration: int, last: int) -> tuple[np.ndarray, float | None]:
        if self._pool is None:
            return self.make(iteration)
        for ahead in range(iteration, min(iteration + self.prefetch + 1, last)):
            if ahead not in self._futures:
                self._futures[ahead] = self._pool.submit(self.make, ahead)
        future = self._futures.pop(iteration, None)
        return future.result() if future is not None else self.make(iteration)

    def close(self) -> None:
        if self._pool is not None:
            for f in self._futures.values():
                f.cancel()
            self._pool.shutdown(wait=True)
            self._futures.clear()


class Trainer:
    """Builds everything a config describes and runs :meth:`fit`.

    ``out_dir`` receives ``config.yaml``, ``checkpoints/last.pt``,
    ``best_ema.safetensors``, ``tensorboard/`` and ``summary.json`` (rank 0 only).
    ``resume`` is a checkpoint path, ``"auto"`` (the run's last checkpoint when
    there is one) or None.
    """

    def __init__(
        self,
        cfg: Config,
        out_dir: str | Path,
        device: str | torch.device = "auto",
        resume: str | Path | None = None,
        ctx: DistContext | None = None,
        profile: bool = False,
    ) -> None:
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        base_device = resolve_device(device)
        self.ctx = ctx if ctx is not None else init_from_env(base_device)
        self.device = local_device(base_device, self.ctx)
        self.profile = profile
        self.seed = int(cfg["seed"])
        self.iteration = 0
        self.best_psnr = -math.inf
        self.best_ssim = -math.inf
        self.best_gmsd = math.inf
        self.best_iteration = -1
        #: Training wall time over every sitting of this run (resumes included).
        self.seconds_before = 0.0
        self._wall_start: float | None = None
        self.last_metrics: dict[str, float] = {}
        self.timings = Timings()
        self._seed_everything(self.seed)
        self._build_data()
        self._build_models()
        self._load_initial_weights()
        self._build_stages()
        self._build_optimisers()
        self._build_validation()
        self.writer: Any = None
        if resume is not None:
            path = self._resume_path(resume)
            if path is not None:
                self.load_checkpoint(path)

    # -- construction ---------------------------------------------------------------------
    def _seed_everything(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def _build_data(self) -> None:
        data = self.cfg["data"]
        records = records_for(data["layout"], data.get("root"), **dict(data["options"]))
        if data["val_options"] is not None:
            # Held-out validation images of their own (the corpus's val role): no split.
            val_opts = {**dict(data["options"]), **dict(data["val_options"])}
            train = records
            val = records_for(data["layout"], data.get("root"), **val_opts)
            shared = {r.group for r in train} & {r.group for r in val}
            if shared:
                raise ConfigError(
                    f"config key data.val_options: {len(shared)} subject(s) are in both the "
                    f"training and validation images (e.g. {sorted(shared)[0]})"
                )
        else:
            train, val = split_records(
                records, float(data["val_fraction"]), int(data["split_seed"])
            )
        self.val_shares_training = not val
        if not val:
            log.warning(
                "only one patient/file group: validating on training images (scores are optimistic)"
            )
            val = train
        window = data["window"]
        if isinstance(window, list):
            window = (float(window[0]), float(window[1]))
        opts = {
            "window": window,
            "min_std": float(data["min_std"]),
            "max_slices_per_record": data["max_slices_per_file"],
            "cache": bool(data["cache"]),
        }
        self.train_data = SliceDataset(train, balance=str(data["balance"]), **opts)
        self.val_data = (
            self.train_data
            if val is train
            else SliceDataset(val, balance=str(data["balance"]), **opts)
        )
        self.patch_size = as_patch_size(data["patch_size"])
        self.batch_size = int(data["batch_size"])
        self.augment = Augment(**data["augment"])
        ss = self.cfg.get("scale_sampling")
        self.scales = scale_choices(ss) if ss else None

    def _build_models(self) -> None:
        from medsr import models

        mcfg = dict(self.cfg["model"])
        name = mcfg.pop("name")
        self.channels_last = bool(self.cfg.get("channels_last", True))
        self.generator = models.build(name, **mcfg).to(self.device)
        if self.generator.is_baseline:
            raise ConfigError(f"model.name {name!r} is an interpolation baseline: nothing to train")
        if self.generator.in_channels != 1 or self.generator.out_channels != 1:
            raise ConfigError(
                "config key model: training slices are single-channel; "
                f"{name} has in/out channels {self.generator.in_channels}/"
                f"{self.generator.out_channels}"
            )
        self.degradation: Any = None
        if self.scales is not None:
            if not self.generator.arbitrary_scale:
                raise ConfigError(
                    f"config key scale_sampling: {name} is a fixed-scale model; "
                    "remove scale_sampling or choose an arbitrary-scale model (miassr)"
                )
            lo, hi = self.generator.scale_range
            if min(self.scales) < lo or max(self.scales) > hi:
                raise ConfigError(
                    f"config key scale_sampling: scales {min(self.scales)}-{max(self.scales)} "
                    f"outside {name}'s range [{lo}, {hi}]"
                )
            self.scale: tuple[float, float] | None = None
        else:
            from medsr import degrade

            self.degradation = degrade.build(dict(self.cfg["degradation"]))
            if isinstance(self.degradation, nn.Module):
                self.degradation = self.degradation.to(self.device)
            self.scale = tuple(float(s) for s in self.degradation.scale)  # type: ignore[assignment]
            supported = self.generator.supported_scales or (self.generator.default_scale,)
            if not self.generator.arbitrary_scale and not any(
                abs(s[0] - self.scale[0]) < 1e-6 and abs(s[1] - self.scale[1]) < 1e-6  # type: ignore[index]
                for s in supported
            ):
                raise ConfigError(
                    f"config key degradation: its scale {self.scale} does not match "
                    f"{name}'s scale(s) {list(supported)}"
                )
        self.discriminator: nn.Module | None = None
        if self.cfg.get("discriminator"):
            dcfg = dict(self.cfg["discriminator"])
            dname = dcfg.pop("name")
            dcfg.setdefault("in_channels", 1)
            self.discriminator = models.build_discriminator(dname, **dcfg).to(self.device)
        if self.channels_last:
            self.generator.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            if self.discriminator is not None:
                self.discriminator.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.ema = (
            ModelEMA(self.generator, self.cfg["ema"]["decay"])
            if self.cfg["ema"]["enabled"]
            else None
        )
        self.g_train = wrap(self.generator, self.ctx, self.device)
        self.d_train = (
            wrap(self.discriminator, self.ctx, self.device)
            if self.discriminator is not None
            else None
        )

    def _load_initial_weights(self) -> None:
        """``init_from``: start the generator and its EMA from a weights file (e.g. the PSNR
        warm-up run's ``best_ema.safetensors``), so an adversarial fine-tune begins where
        pixel training ended instead of from random weights. A resumed checkpoint wins."""
        from medsr.infer.weights import read_weights

        source = self.cfg.get("init_from")
        if not source:
            return
        path = Path(str(source)).expanduser()
        if not path.is_file():
            raise InputError(path, "config key init_from: no such weights file")
        weights = read_weights(path)
        name, config = self.generator.name, dict(self.generator.config)
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
            self.generator.load_state_dict(weights.state)
        except RuntimeError as exc:
            detail = str(exc).strip().splitlines()[-1].strip()[:200]
            raise InputError(
                path, f"config key init_from: weights do not fit {name}: {detail}"
            ) from None
        if self.ema is not None:
            self.ema.module.load_state_dict(self.generator.state_dict())
        log.info("generator initialised from %s", path)

    def _build_stages(self) -> None:
        from medsr.losses import build_discriminator_loss, build_generator_loss

        self.stages: list[Stage] = []
        start = 0
        # Random-init feature networks (tests only) draw from a fixed fork of the RNG,
        # so building the losses never shifts the training randomness.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derived_seed(self.seed, 0x1055))
            for i, spec in enumerate(self.cfg["stages"]):
                loss_cfg = deep_merge(self.cfg["loss"], spec["loss"])
                g_loss = build_generator_loss(loss_cfg).to(self.device)
                d_loss = None
                if g_loss.needs_discriminator:
                    if self.discriminator is None:
                        raise ConfigError(
                            f"config key stages.{i}.loss: the {spec['name']} stage has an "
                            "adversarial term; add a discriminator section"
                        )
                    d_loss = build_discriminator_loss(loss_cfg).to(self.device)
                stop = start + int(spec["iterations"])
                self.stages.append(Stage(str(spec["name"]), start, stop, g_loss, d_loss))
                start = stop
        self.total = total_iterations(self.cfg)

    def _optimiser(self, params: Iterator[nn.Parameter], spec: Mapping[str, Any]) -> Any:
        """Adam/AdamW, fused (one kernel for all parameters) where the device supports it.

        Fused runs on CUDA, CPU, MPS and XPU for floating-point parameters (6x faster
        than the per-parameter loop on Swift-SRGAN's 19 M discriminator weights);
        elsewhere the multi-tensor ``foreach`` path is used.
        """
        cls = torch.optim.AdamW if spec["type"] == "adamw" else torch.optim.Adam
        tensors = list(params)
        devices = {p.device.type for p in tensors}
        fusable = devices <= {"cuda", "cpu", "mps", "xpu"} and all(
            p.is_floating_point() for p in tensors
        )
        kernel = {"fused": True} if tensors and fusable else {"foreach": True}
        return cls(
            tensors,
            lr=float(spec["lr"]),
            betas=(float(spec["betas"][0]), float(spec["betas"][1])),
            eps=float(spec["eps"]),
            weight_decay=float(spec["weight_decay"]),
            **kernel,
        )

    def _scheduler(self, optimiser: Any, spec: Mapping[str, Any]) -> Any:
        kind = spec["type"]
        if kind == "step":
            return torch.optim.lr_scheduler.StepLR(
                optimiser, step_size=int(spec["step_size"]), gamma=float(spec["gamma"])
            )
        if kind == "multistep":
            return torch.optim.lr_scheduler.MultiStepLR(
                optimiser,
                milestones=[int(m) for m in spec["milestones"]],
                gamma=float(spec["gamma"]),
            )
        if kind == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(
                optimiser, T_max=max(1, self.total), eta_min=float(spec["eta_min"])
            )
        return torch.optim.lr_scheduler.LambdaLR(optimiser, lambda _: 1.0)

    def _build_optimisers(self) -> None:
        amp = self.cfg["amp"]
        self.amp_enabled = bool(amp["enabled"])
        self.amp_dtype = torch.bfloat16 if amp["dtype"] == "bf16" else torch.float16
        if self.amp_enabled and self.amp_dtype is torch.float16 and self.device.type == "cpu":
            log.warning("amp.dtype fp16 needs CUDA; autocasting to bf16 on the CPU instead")
            self.amp_dtype = torch.bfloat16
        fp16 = self.amp_enabled and self.amp_dtype is torch.float16
        self.opt_g = self._optimiser(self.generator.parameters(), self.cfg["optim"]["generator"])
        self.sched_g = self._scheduler(self.opt_g, self.cfg["scheduler"]["generator"])
        self.scaler_g = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.opt_d = self.sched_d = None
        self.scaler_d = torch.amp.GradScaler(self.device.type, enabled=fp16)
        if self.discriminator is not None:
            self.opt_d = self._optimiser(
                self.discriminator.parameters(), self.cfg["optim"]["discriminator"]
            )
            self.sched_d = self._scheduler(self.opt_d, self.cfg["scheduler"]["discriminator"])

    def _make_lr(
        self,
        hr: Tensor,
        scale: float | None,
        generator: torch.Generator | None,
        validation: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """(LR, target) for an HR batch. The target is ``hr`` unless the degradation
        replaces it (``replaces_target``: ct-sparse-view pairs the sparse-view FBP with the
        full-view FBP of the same image and field-of-view mask, as the paper trains)."""
        if scale is not None:
            ss = self.cfg["scale_sampling"]
            return self._layout(arbitrary_scale_lr(hr, scale, float(ss["blur_sigma"]))), hr
        draw = self.degradation.validation_params if validation else self.degradation.sample_params
        params = draw(hr.shape[0], generator, self.device)
        if getattr(self.degradation, "replaces_target", False):
            lr, target = self.degradation.apply_pair(hr, params)
            return self._layout(lr), target
        return self._layout(self.degradation.apply(hr, params)), hr

    def _layout(self, lr: Tensor) -> Tensor:
        """The network input in the networks' memory layout (``channels_last``)."""
        return lr.contiguous(memory_format=torch.channels_last) if self.channels_last else lr

    def _build_validation(self) -> None:
        from medsr.degrade.mr import zero_fill
        from medsr.degrade.resize import imresize
        from medsr.metrics import psnr, ssim

        n = int(self.cfg["validation"]["patches"])
        self.validation: ValidationSet | None = None
        if n == 0:
            return
        seed = int(self.cfg["validation"]["seed"])
        hr_all = torch.from_numpy(self.val_data.fixed_patches(n, self.patch_size, seed))
        hr_all = hr_all.to(self.device)
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed)
        if self.scales is not None:
            val_scales = self.cfg["validation"]["scales"] or [2.0, 3.0, 4.0]
            chunks = [hr_all[i :: len(val_scales)] for i in range(len(val_scales))]
            pairs = [(float(s), c) for s, c in zip(val_scales, chunks) if len(c)]
        else:
            pairs = [(None, hr_all)]  # type: ignore[list-item]
        groups = []
        shaves = []
        scores_p, scores_s = [], []
        for s, hr in pairs:
            with torch.no_grad():
                lr, hr = self._make_lr(hr, s, gen, validation=True)
            pair = (s, s) if s is not None else self.scale
            assert pair is not None
            out = (
                math.ceil(lr.shape[-2] * pair[0] - 1e-6),
                math.ceil(lr.shape[-1] * pair[1] - 1e-6),
            )
            hr = hr[..., : out[0], : out[1]]
            shave = self.cfg["validation"]["shave"]
            shave = (
                (math.ceil(max(pair)) if max(pair) > 1 else 0) if shave == "auto" else int(shave)
            )
            if pair == (1.0, 1.0):
                base = lr
            elif s is None and getattr(self.degradation, "reference", "bicubic") == "zero-fill":
                base = zero_fill(lr, out).clamp(0, 1)  # the MR acquisition's reference
            else:
                base = imresize(lr, scale=pair, kernel="cubic").clamp(0, 1)
            base, hr_c = common_crop(base, hr)
            scores_p.append(psnr(base, hr_c, data_range=1.0, shave=shave).clamp(max=PSNR_CAP_DB))
            scores_s.append(ssim(base, hr_c, data_range=1.0, shave=shave))
            groups.append(((s, s) if s is not None else None, lr, hr))
            shaves.append(shave)
        self.validation = ValidationSet(
            groups,  # type: ignore[arg-type]
            shaves,
            float(torch.cat(scores_p).mean()),
            float(torch.cat(scores_s).mean()),
        )

    # -- checkpoints ----------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "checkpoints" / "last.pt"

    def _resume_path(self, resume: str | Path) -> Path | None:
        if str(resume) == "auto":
            return self.checkpoint_path if self.checkpoint_path.is_file() else None
        path = Path(resume)
        if not path.is_file():
            raise InputError(path, "no such checkpoint")
        return path

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue exactly."""
        state: dict[str, Any] = {
            "version": CHECKPOINT_VERSION,
            "iteration": self.iteration,
            "config": self.cfg,
            "model": {"name": self.generator.name, "config": dict(self.generator.config)},
            "generator": self.generator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),
            "scaler_d": self.scaler_d.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "ema_updates": self.ema.updates if self.ema is not None else 0,
            "seconds": self.total_seconds(),
            "best": {
                "psnr": self.best_psnr,
                "ssim": self.best_ssim,
                "gmsd": self.best_gmsd,
                "iteration": self.best_iteration,
            },
            "rng": {
                "python": random.getstate(),
                "numpy": _numpy_state(),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                # Data and degradation draws are seeded from (seed, iteration, rank):
                # the iteration above restores them exactly.
                "data": {"scheme": "per-iteration", "seed": self.seed},
                "degradation": {"scheme": "per-iteration", "seed": self.seed},
            },
        }
        if self.discriminator is not None:
            assert self.opt_d is not None and self.sched_d is not None
            state["discriminator"] = self.discriminator.state_dict()
            state["opt_d"] = self.opt_d.state_dict()
            state["sched_d"] = self.sched_d.state_dict()
        return state

    def save_checkpoint(self, path: Path | None = None) -> Path | None:
        """Rank 0 writes the checkpoint atomically; other ranks only synchronise."""
        path = path or self.checkpoint_path
        if self.ctx.is_main:
            _atomic_save(self.state_dict(), path)
            if path == self.checkpoint_path:
                self._write_progress()
        self.ctx.barrier()
        return path if self.ctx.is_main else None

    def total_seconds(self) -> float:
        """Training wall time of this run so far, over all sittings."""
        now = time.perf_counter()
        return self.seconds_before + (now - self._wall_start if self._wall_start else 0.0)

    def _standing(self) -> dict[str, Any]:
        """Where the run stands: iterations, data, the best validation result, device."""
        return {
            "name": self.cfg["name"],
            "model": self.generator.name,
            "iterations": self.iteration,
            "train_slices": len(self.train_data),
            "val_slices": len(self.val_data),
            "best_val_psnr": self.best_psnr if math.isfinite(self.best_psnr) else None,
            "best_val_ssim": self.best_ssim if math.isfinite(self.best_ssim) else None,
            "best_iteration": self.best_iteration,
            "device": str(self.device),
        }

    def _write_progress(self) -> None:
        """``progress.json`` beside the checkpoint: where a stopped or running run stands."""
        from medsr.io.core import atomic_path

        progress = {
            **self._standing(),
            "total_iterations": self.total,
            "seconds": round(self.total_seconds(), 1),
            "cpu_threads": torch.get_num_threads(),
        }
        with atomic_path(self.out_dir / "progress.json") as tmp:
            tmp.write_text(json.dumps(progress, indent=2))

    def load_checkpoint(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:
            raise InputError(path, f"not a readable medsr checkpoint ({exc})") from None
        if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
            raise InputError(path, "not a medsr training checkpoint (or from another version)")
        want = {"name": self.generator.name, "config": dict(self.generator.config)}
        if state["model"] != want:
            raise InputError(
                path,
                f"checkpoint holds {state['model']['name']} {state['model']['config']}, "
                f"the config builds {want['name']} {want['config']}",
            )
        self.generator.load_state_dict(state["generator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.sched_g.load_state_dict(state["sched_g"])
        self.scaler_g.load_state_dict(state["scaler_g"])
        self.scaler_d.load_state_dict(state["scaler_d"])
        if self.ema is not None and state["ema"] is not None:
            # Checkpoints from before the warm-up count their iterations as updates.
            self.ema.load_state_dict(
                state["ema"], int(state.get("ema_updates") or state["iteration"])
            )
        if self.discriminator is not None:
            if "discriminator" not in state:
                raise InputError(path, "checkpoint has no discriminator, the config has one")
            assert self.opt_d is not None and self.sched_d is not None
            self.discriminator.load_state_dict(state["discriminator"])
            self.opt_d.load_state_dict(state["opt_d"])
            self.sched_d.load_state_dict(state["sched_d"])
        self.iteration = int(state["iteration"])
        self.best_psnr = float(state["best"]["psnr"])
        self.best_ssim = float(state["best"].get("ssim", -math.inf))
        self.best_gmsd = float(state["best"].get("gmsd", math.inf))
        self.seconds_before = float(state.get("seconds", 0.0))
        self.best_iteration = int(state["best"]["iteration"])
        rng = state["rng"]
        random.setstate(rng["python"])
        _set_numpy_state(rng["numpy"])
        torch.set_rng_state(rng["torch"].cpu())
        if rng.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
        log.info("resumed from %s at iteration %d", path, self.iteration)

    # -- one iteration --------------------------------------------------------------------
    def stage_at(self, iteration: int) -> Stage:
        for stage in self.stages:
            if stage.start <= iteration < stage.stop:
                return stage
        return self.stages[-1]

    def _autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_enabled)

    def _sync(self) -> None:
        if self.profile and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _clip(self, params: Iterator[nn.Parameter], key: str) -> None:
        limit = self.cfg["grad_clip"][key]
        if limit is not None:
            torch.nn.utils.clip_grad_norm_(list(params), float(limit))

    def train_step(self, hr_np: np.ndarray, scale: float | None, stage: Stage) -> dict[str, float]:
        """One generator step and, in GAN stages, one discriminator step."""
        t0 = time.perf_counter()
        hr = torch.from_numpy(hr_np).to(self.device, non_blocking=True)
        self._sync()
        t1 = time.perf_counter()
        gen = torch.Generator(device=self.device)
        gen.manual_seed(derived_seed(self.seed, self.iteration, self.ctx.rank, 0xDE6))
        with torch.no_grad():
            lr, hr = self._make_lr(hr, scale, gen)
        self._sync()
        t2 = time.perf_counter()

        g_scale = None if scale is None else (scale, scale)
        raw_d = self.discriminator
        if raw_d is not None:
            raw_d.requires_grad_(False)
        with self._autocast():
            sr = self.g_train(lr, g_scale) if g_scale is not None else self.g_train(lr)
            sr, hr_c = common_crop(sr, hr)
            terms = stage.g_loss(sr.float(), hr_c, raw_d if stage.trains_discriminator else None)
        self.scaler_g.scale(terms["total"]).backward()
        if self.cfg["grad_clip"]["generator"] is not None:
            self.scaler_g.unscale_(self.opt_g)
            self._clip(self.generator.parameters(), "generator")
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        self.opt_g.zero_grad(set_to_none=True)
        self.sched_g.step()
        if self.ema is not None:
            self.ema.update(self.generator)
        out = {f"g/{k}": float(v.detach()) for k, v in terms.items()}

        if stage.trains_discriminator:
            assert raw_d is not None and self.d_train is not None and self.opt_d is not None
            assert stage.d_loss is not None and self.sched_d is not None
            raw_d.requires_grad_(True)
            with self._autocast():
                d_terms = stage.d_loss(self.d_train, hr_c, sr.detach().float(), generator=gen)
            self.scaler_d.scale(d_terms["total"]).backward()
            if self.cfg["grad_clip"]["discriminator"] is not None:
                self.scaler_d.unscale_(self.opt_d)
                self._clip(raw_d.parameters(), "discriminator")
            self.scaler_d.step(self.opt_d)
            self.scaler_d.update()
            self.opt_d.zero_grad(set_to_none=True)
            self.sched_d.step()
            out.update({f"d/{k}": float(v.detach()) for k, v in d_terms.items()})
        self._sync()
        t3 = time.perf_counter()
        self.timings.degrade += t2 - t1
        self.timings.step += t3 - t2
        self.timings.data += t1 - t0
        out["lr/generator"] = float(self.opt_g.param_groups[0]["lr"])
        return out

    # -- validation -----------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """PSNR/SSIM and GMSD (data range 1, [0, 1] intensities) of the EMA generator on the
        fixed validation patches, with the bicubic baseline on the same patches.

        Means over patches; each PSNR is capped at ``PSNR_CAP_DB`` so one exactly
        reconstructed patch (flat or band-limited content) cannot make the mean infinite.
        """
        from medsr.metrics import gmsd, psnr, ssim

        if self.validation is None:
            return {}
        model = self.ema.module if self.ema is not None else self.generator
        was_training = model.training
        model.eval()
        ps, ss, gs = [], [], []
        for (scale, lr, hr), shave in zip(self.validation.groups, self.validation.shave):
            with self._autocast():
                sr = model(lr, scale) if scale is not None else model(lr)
            sr, hr_c = common_crop(sr.float().clamp(0, 1), hr)
            ps.append(psnr(sr, hr_c, data_range=1.0, shave=shave).clamp(max=PSNR_CAP_DB))
            ss.append(ssim(sr, hr_c, data_range=1.0, shave=shave))
            gs.append(gmsd(sr, hr_c, data_range=1.0, shave=shave))
        model.train(was_training)
        return {
            "val/psnr": float(torch.cat(ps).mean()),
            "val/ssim": float(torch.cat(ss).mean()),
            "val/gmsd": float(torch.cat(gs).mean()),
            "val/bicubic_psnr": self.validation.bicubic_psnr,
            "val/bicubic_ssim": self.validation.bicubic_ssim,
        }

    def _export_best(self) -> None:
        model = self.ema.module if self.ema is not None else self.generator
        save_generator_weights(
            model,
            self.out_dir / "best_ema.safetensors",
            {
                "medsr.iteration": self.iteration,
                "medsr.val_psnr": self.best_psnr,
                "medsr.val_ssim": self.best_ssim,
            },
        )

    # -- the loop -------------------------------------------------------------------------
    def _open_writer(self) -> None:
        if not (self.ctx.is_main and self.cfg["logging"]["tensorboard"]):
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                "config key logging.tensorboard: the tensorboard package is not installed "
                "(pip install 'medsr[train]' or set logging.tensorboard: false)"
            ) from None
        self.writer = SummaryWriter(str(self.out_dir / "tensorboard"), purge_step=self.iteration)

    def _log(self, values: Mapping[str, float], step: int) -> None:
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)

    def fit(
        self, stop_after: int | None = None, on_iteration: Callable[[int], None] | None = None
    ) -> dict[str, Any]:
        """Train to the end of the last stage (or to ``stop_after``), then write the summary.

        Returns the summary dict that is also written to ``summary.json``.
        """
        from tqdm.auto import tqdm

        stop_after = stop_after if stop_after is not None else self.cfg["train"]["stop_after"]
        last = self.total if stop_after is None else min(self.total, int(stop_after))
        if self.ctx.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "config.yaml").write_text(dump(self.cfg))
        self._open_writer()
        scales = self.scales
        source = BatchSource(
            self.train_data,
            self.batch_size,
            self.patch_size,
            self.augment,
            self.seed,
            self.ctx,
            int(self.cfg["data"]["prefetch"]),
            scales,
        )
        every_val = int(self.cfg["validation"]["every"])
        every_ckpt = int(self.cfg["checkpoint"]["every"])
        every_log = int(self.cfg["logging"]["every"])
        bar = tqdm(
            total=last,
            initial=self.iteration,
            disable=not (self.ctx.is_main and self.cfg["logging"]["progress"]),
            desc=self.cfg["name"],
            unit="it",
            dynamic_ncols=True,
        )
        self.generator.train()
        if self.discriminator is not None:
            self.discriminator.train()
        start_wall = time.perf_counter()
        self._wall_start = start_wall
        start_iteration = self.iteration
        try:
            while self.iteration < last:
                stage = self.stage_at(self.iteration)
                t0 = time.perf_counter()
                hr_np, scale = source.get(self.iteration, last)
                wait = time.perf_counter() - t0
                values = self.train_step(hr_np, scale, stage)
                self.timings.data += wait
                self.timings.iterations += 1
                self.timings.samples += hr_np.shape[0] * self.ctx.world_size
                self.iteration += 1
                if self.iteration % every_log == 0 or self.iteration == last:
                    self._log(values, self.iteration)
                postfix = {"stage": stage.name, "g": f"{values['g/total']:.4g}"}
                if "d/total" in values:
                    postfix["d"] = f"{values['d/total']:.4g}"
                at_stage_end = self.iteration == stage.stop
                if every_val and (self.iteration % every_val == 0 or self.iteration == last):
                    self._run_validation()
                if "val/psnr" in self.last_metrics:
                    postfix["psnr"] = f"{self.last_metrics['val/psnr']:.2f}"
                bar.set_postfix(postfix, refresh=False)
                bar.update(1)
                if (
                    (every_ckpt and self.iteration % every_ckpt == 0)
                    or at_stage_end
                    or (self.iteration == last)
                ):
                    self.save_checkpoint()
                if on_iteration is not None:
                    on_iteration(self.iteration)
        finally:
            source.close()
            bar.close()
        sync_buffers(self.generator, self.ctx)
        if self.discriminator is not None:
            sync_buffers(self.discriminator, self.ctx)
        elapsed = time.perf_counter() - start_wall
        summary = self._summary(elapsed, self.iteration - start_iteration)
        self.seconds_before, self._wall_start = self.total_seconds(), None
        summary["total_seconds"] = self.seconds_before
        if self.ctx.is_main:
            (self.out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
            if self.writer is not None:
                self.writer.close()
        return summary

    def _run_validation(self) -> None:
        if self.ctx.is_main:
            metrics = self.validate()
            self.last_metrics = metrics
            self._log(metrics, self.iteration)
            if metrics:
                self._append_curve(metrics)
            if metrics and self._better(metrics):
                self.best_psnr = metrics["val/psnr"]
                self.best_ssim = metrics["val/ssim"]
                self.best_gmsd = metrics.get("val/gmsd", math.inf)
                self.best_iteration = self.iteration
                self._export_best()
        self.ctx.barrier()

    def _better(self, metrics: Mapping[str, float]) -> bool:
        """Whether a validation result beats the best so far (``validation.select``).

        ``psnr``: by PSNR *and* SSIM. A model must beat bicubic in both: a checkpoint whose
        SSIM is below the bicubic SSIM of the same patches ranks below every one that is
        not (a PSNR gain bought with texture painted into flat regions is no gain); within
        a rank, higher PSNR wins.

        ``perceptual`` (GAN fine-tuning, where the highest PSNR is simply the checkpoint
        nearest the pixel warm-up): checkpoints whose PSNR is within
        ``GAN_PSNR_FLOOR_DB`` of bicubic's rank above the rest; within a rank the
        lowest GMSD (gradient-magnitude similarity deviation, no learned weights) wins.
        """
        if self.best_iteration < 0:
            return True
        if self.cfg["validation"].get("select", "psnr") == "perceptual":
            floor = self._bicubic_psnr() - GAN_PSNR_FLOOR_DB
            rank = (metrics["val/psnr"] >= floor, -metrics.get("val/gmsd", math.inf))
            return rank > (self.best_psnr >= floor, -self.best_gmsd)
        base = self.validation.bicubic_ssim if self.validation is not None else -math.inf
        rank_psnr = (metrics["val/ssim"] >= base, metrics["val/psnr"])
        return rank_psnr > (self.best_ssim >= base, self.best_psnr)

    def _bicubic_psnr(self) -> float:
        return self.validation.bicubic_psnr if self.validation is not None else -math.inf

    def _append_curve(self, metrics: Mapping[str, float]) -> None:
        """One line of the learning curve (held-out PSNR/SSIM against iterations)."""
        row = {"iteration": self.iteration, **{k: round(v, 5) for k, v in metrics.items()}}
        with (self.out_dir / "curve.jsonl").open("a") as fh:
            fh.write(json.dumps(row) + "\n")

    def _summary(self, elapsed: float, iterations: int) -> dict[str, Any]:
        return {
            **self._standing(),
            "val_shares_training": self.val_shares_training,
            "last_metrics": self.last_metrics,
            "bicubic_psnr": self.validation.bicubic_psnr if self.validation else None,
            "bicubic_ssim": self.validation.bicubic_ssim if self.validation else None,
            "seconds": elapsed,
            "iterations_per_second": iterations / elapsed if elapsed > 0 else None,
            "world_size": self.ctx.world_size,
        }

    def close(self) -> None:
        shutdown(self.ctx)
