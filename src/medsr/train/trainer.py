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

The parts live beside this loop: :mod:`~medsr.train.build` (data and networks from the
config), :mod:`~medsr.train.batches`, :mod:`~medsr.train.stages` (losses, optimisers,
schedules), :mod:`~medsr.train.ema`, :mod:`~medsr.train.validation` (and the best
checkpoint), :mod:`~medsr.train.checkpoint` (save, resume, ``init_from``).
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from medsr.data.datasets import Augment, as_patch_size
from medsr.errors import ConfigError, InputError
from medsr.infer.sinogram import SparseViews, project_views
from medsr.train.batches import (
    BatchSource,
    arbitrary_scale_lr,
    common_crop,
    derived_seed,
    gaussian_blur3,
    scale_choices,
)
from medsr.train.build import build_datasets, build_networks
from medsr.train.checkpoint import (
    CHECKPOINT_VERSION,
    WEIGHT_FREE_KEYS,
    atomic_save,
    load_initial_weights,
    restore_training_state,
    save_generator_weights,
    standing,
    training_state,
    write_progress,
)
from medsr.train.config import Config, dump, total_iterations
from medsr.train.distributed import (
    DistContext,
    init_from_env,
    local_device,
    resolve_device,
    shutdown,
    sync_buffers,
    wrap,
)
from medsr.train.ema import ModelEMA
from medsr.train.stages import Stage, build_optimiser, build_scheduler, build_stages
from medsr.train.validation import (
    PSNR_CAP_DB,
    ValidationSet,
    append_curve,
    beats_best,
    build_validation,
    validate,
)

#: What this module defined before it was split; importable from here as before.
__all__ = [
    "CHECKPOINT_VERSION",
    "PSNR_CAP_DB",
    "WEIGHT_FREE_KEYS",
    "BatchSource",
    "ModelEMA",
    "Stage",
    "Timings",
    "Trainer",
    "ValidationSet",
    "arbitrary_scale_lr",
    "common_crop",
    "derived_seed",
    "gaussian_blur3",
    "resolve_device",
    "save_generator_weights",
    "scale_choices",
]

#: ``tests/test_cli_errors.py`` saves through this name.
_atomic_save = atomic_save

log = logging.getLogger("medsr.train")


@dataclass
class Timings:
    """Seconds spent per phase, summed over iterations (``profile=True`` syncs CUDA)."""

    data: float = 0.0
    degrade: float = 0.0
    step: float = 0.0
    iterations: int = 0
    samples: int = 0


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
        self.train_data, self.val_data, self.val_shares_training = build_datasets(data)
        self.patch_size = as_patch_size(data["patch_size"])
        self.batch_size = int(data["batch_size"])
        self.augment = Augment(**data["augment"])
        ss = self.cfg.get("scale_sampling")
        self.scales = scale_choices(ss) if ss else None

    def _build_models(self) -> None:
        networks = build_networks(self.cfg, self.scales, self.device)
        self.generator, self.discriminator = networks.generator, networks.discriminator
        self.degradation, self.scale = networks.degradation, networks.scale
        self.channels_last = bool(self.cfg.get("channels_last", True))
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
        load_initial_weights(self.generator, self.ema, self.cfg.get("init_from"))

    def _build_stages(self) -> None:
        self.stages: list[Stage] = build_stages(
            self.cfg, self.discriminator is not None, self.device, self.seed
        )
        self.total = total_iterations(self.cfg)

    def _build_optimisers(self) -> None:
        amp = self.cfg["amp"]
        self.amp_enabled = bool(amp["enabled"])
        self.amp_dtype = torch.bfloat16 if amp["dtype"] == "bf16" else torch.float16
        if self.amp_enabled and self.amp_dtype is torch.float16 and self.device.type == "cpu":
            log.warning("amp.dtype fp16 needs CUDA; autocasting to bf16 on the CPU instead")
            self.amp_dtype = torch.bfloat16
        fp16 = self.amp_enabled and self.amp_dtype is torch.float16
        optim, schedule = self.cfg["optim"], self.cfg["scheduler"]
        self.opt_g = build_optimiser(self.generator.parameters(), optim["generator"])
        self.sched_g = build_scheduler(self.opt_g, schedule["generator"], self.total)
        self.scaler_g = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.opt_d = self.sched_d = None
        self.scaler_d = torch.amp.GradScaler(self.device.type, enabled=fp16)
        if self.discriminator is not None:
            self.opt_d = build_optimiser(self.discriminator.parameters(), optim["discriminator"])
            self.sched_d = build_scheduler(self.opt_d, schedule["discriminator"], self.total)

    def _make_lr(
        self,
        hr: Tensor,
        scale: float | None,
        generator: torch.Generator | None,
        validation: bool = False,
    ) -> tuple[Tensor, Tensor, dict[str, Any]]:
        """(LR, target, degradation parameters) for an HR batch. The target is ``hr`` unless
        the degradation replaces it (``replaces_target``: ct-sparse-view pairs the sparse-view
        FBP with the full-view FBP of the same image and field-of-view mask, as the paper
        trains)."""
        if scale is not None:
            ss = self.cfg["scale_sampling"]
            lr = arbitrary_scale_lr(hr, scale, float(ss["blur_sigma"]))
            return self._layout(lr), hr, {"scale": scale}
        draw = self.degradation.validation_params if validation else self.degradation.sample_params
        params = draw(hr.shape[0], generator, self.device)
        if getattr(self.degradation, "replaces_target", False):
            lr, target = self.degradation.apply_pair(hr, params)
            return self._layout(lr), target, params
        return self._layout(self.degradation.apply(hr, params)), hr, params

    def _consistent(self, sr: Tensor, lr: Tensor, params: dict[str, Any]) -> Tensor:
        """``sr`` through the inference-time data-consistency step when the config asks for
        it (``data_consistency``: the sinogram step with the batch's view step), else as is."""
        if not self.cfg["data_consistency"]:
            return sr
        views = SparseViews.of_degradation(self.degradation)
        assert views is not None  # the config check allows ct-sparse-view only
        step = int(params.get("view_step", views.view_step))
        return project_views(sr.float(), lr.float(), SparseViews(views.n_angles, step))

    def _layout(self, lr: Tensor) -> Tensor:
        """The network input in the networks' memory layout (``channels_last``)."""
        return lr.contiguous(memory_format=torch.channels_last) if self.channels_last else lr

    def _build_validation(self) -> None:
        """The fixed validation patches (``validation.patches`` of the held-out images) and
        their LR, made with the degradation's validation parameters."""
        spec = self.cfg["validation"]
        n = int(spec["patches"])
        self.validation: ValidationSet | None = None
        if n == 0:
            return
        seed = int(spec["seed"])
        hr_all = torch.from_numpy(self.val_data.fixed_patches(n, self.patch_size, seed))
        hr_all = hr_all.to(self.device)
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed)
        self.validation = build_validation(
            hr_all,
            lambda hr, scale: self._make_lr(hr, scale, gen, validation=True)[:2],
            (spec["scales"] or [2.0, 3.0, 4.0]) if self.scales is not None else None,
            self.scale,
            getattr(self.degradation, "reference", "bicubic"),
            spec["shave"],
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
        """Everything a resumed run needs to continue exactly (:mod:`medsr.train.checkpoint`)."""
        return training_state(self)

    def save_checkpoint(self, path: Path | None = None) -> Path | None:
        """Rank 0 writes the checkpoint atomically; other ranks only synchronise."""
        path = path or self.checkpoint_path
        if self.ctx.is_main:
            atomic_save(self.state_dict(), path)
            if path == self.checkpoint_path:
                write_progress(self)
        self.ctx.barrier()
        return path if self.ctx.is_main else None

    def total_seconds(self) -> float:
        """Training wall time of this run so far, over all sittings."""
        now = time.perf_counter()
        return self.seconds_before + (now - self._wall_start if self._wall_start else 0.0)

    def load_checkpoint(self, path: Path) -> None:
        restore_training_state(self, path)

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
            lr, hr, params = self._make_lr(hr, scale, gen)
        self._sync()
        t2 = time.perf_counter()

        g_scale = None if scale is None else (scale, scale)
        raw_d = self.discriminator
        if raw_d is not None:
            raw_d.requires_grad_(False)
        with self._autocast():
            sr = self.g_train(lr, g_scale) if g_scale is not None else self.g_train(lr)
            sr, hr_c = common_crop(self._consistent(sr, lr, params), hr)
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
    def validate(self) -> dict[str, float]:
        """PSNR/SSIM and GMSD of the EMA generator (else the generator) on the fixed
        validation patches, with the bicubic baseline (:func:`medsr.train.validation.validate`)."""
        if self.validation is None:
            return {}
        model = self.ema.module if self.ema is not None else self.generator
        consistent = None
        if self.cfg["data_consistency"]:
            params = self.degradation.validation_params(1)

            def consistent(sr: Tensor, lr: Tensor) -> Tensor:
                return self._consistent(sr, lr, params)

        return validate(model, self.validation, self._autocast, consistent)

    def _export_best(self) -> None:
        model = self.ema.module if self.ema is not None else self.generator
        metadata: dict[str, Any] = {
            "medsr.iteration": self.iteration,
            "medsr.val_psnr": self.best_psnr,
            "medsr.val_ssim": self.best_ssim,
        }
        # what the weights restore and in which units: the loader tags the model with them
        # (its data-consistency step, a sparse-view restorer's CT window)
        if self.cfg["degradation"]:
            metadata["medsr.degradation"] = self.cfg["degradation"]
        if self.cfg["data"]["window"]:
            metadata["medsr.window"] = self.cfg["data"]["window"]
        save_generator_weights(model, self.out_dir / "best_ema.safetensors", metadata)

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
                append_curve(self.out_dir / "curve.jsonl", self.iteration, metrics)
            if metrics and self._better(metrics):
                self.best_psnr = metrics["val/psnr"]
                self.best_ssim = metrics["val/ssim"]
                self.best_gmsd = metrics.get("val/gmsd", math.inf)
                self.best_iteration = self.iteration
                self._export_best()
        self.ctx.barrier()

    def _better(self, metrics: Mapping[str, float]) -> bool:
        """Whether a validation result beats the best so far: the first always does, then
        :func:`medsr.train.validation.beats_best` by ``validation.select``."""
        if self.best_iteration < 0:
            return True
        best = {"val/psnr": self.best_psnr, "val/ssim": self.best_ssim, "val/gmsd": self.best_gmsd}
        select = self.cfg["validation"].get("select", "psnr")
        return beats_best(metrics, best, select, self.validation)

    def _summary(self, elapsed: float, iterations: int) -> dict[str, Any]:
        return {
            **standing(self),
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
