"""L1 training of the correction network on sampled pairs, for a time budget.

Iterations are traded for time: the learning rate warms up linearly, then follows a
cosine over the budget's elapsed fraction; a network that ends worse than the
least-squares filter alone on fixed pairs is dropped.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from medsr.degrade.resize import imresize
from medsr.selfsup.network import ThroughPlaneSR
from medsr.selfsup.pairs import AxisPairs, PairSampler
from medsr.selfsup.settings import SelfSupervisedSettings

__all__ = ["WARM_UP_ITERATIONS", "TrainingReport", "train_through_plane"]

#: Iterations over which the learning rate rises linearly to its value.
WARM_UP_ITERATIONS = 20


@dataclass
class TrainingReport:
    """What the training did, and the L1 (unit range) on fixed pairs before and after."""

    iterations: int = 0
    seconds: float = 0.0
    device: str = "cpu"
    batch_size: int = 0
    patch: tuple[int, int] = (0, 0)
    pairs_psnr_cubic: float = math.nan
    pairs_psnr_linear: float = math.nan
    pairs_psnr_model: float = math.nan
    stopped_by: str = "budget"
    #: the trained correction did not beat the least-squares filter and was dropped
    kept_filter: bool = False

    def describe(self) -> str:
        if self.iterations == 0:
            return (
                "no network training (budget 0): the least-squares filter alone; PSNR on "
                f"fixed training pairs: cubic {self.pairs_psnr_cubic:.2f} dB, filter "
                f"{self.pairs_psnr_linear:.2f} dB"
            )
        rows, cols = self.patch
        if self.kept_filter:
            return (
                f"trained {self.iterations} iterations in {self.seconds:.0f} s on {self.device}, "
                "but the network did not beat the least-squares filter on fixed training pairs "
                f"({self.pairs_psnr_linear:.2f} dB; cubic {self.pairs_psnr_cubic:.2f} dB): "
                "the filter alone is applied"
            )
        return (
            f"trained {self.iterations} iterations in {self.seconds:.0f} s on {self.device} "
            f"(batch {self.batch_size} of {rows}x{cols} px, stopped by the {self.stopped_by}); "
            f"PSNR on fixed training pairs: cubic {self.pairs_psnr_cubic:.2f} dB, "
            f"least-squares filter {self.pairs_psnr_linear:.2f} dB, "
            f"network {self.pairs_psnr_model:.2f} dB"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "iterations": self.iterations,
            "seconds": round(self.seconds, 1),
            "device": self.device,
            "batch_size": self.batch_size,
            "patch": list(self.patch),
            "pairs_psnr_cubic": self.pairs_psnr_cubic,
            "pairs_psnr_linear": self.pairs_psnr_linear,
            "pairs_psnr_model": self.pairs_psnr_model,
        }


def _pairs_psnr(
    model: torch.nn.Module | None,
    batches: list[tuple[Tensor, Tensor, AxisPairs]],
    device: torch.device,
) -> float:
    """PSNR (unit data range) over fixed pairs, margins excluded; cubic when ``model`` is None."""
    total, count = 0.0, 0
    with torch.no_grad():
        for lr, hr, pairs in batches:
            lr_d = lr.to(device)
            sr = (
                imresize(lr_d, scale=pairs.scale, kernel="cubic")
                if model is None
                else model(lr_d, pairs.scale)
            )
            m = pairs.margin
            diff = sr[..., m : hr.shape[-2] - m, :].cpu() - hr[..., m:-m, :]
            total += float(diff.pow(2).sum())
            count += diff.numel()
    return 10.0 * math.log10(1.0 / max(total / max(count, 1), 1e-20))


def train_through_plane(
    model: ThroughPlaneSR,
    sampler: PairSampler,
    settings: SelfSupervisedSettings,
    device: torch.device,
    progress: bool = False,
) -> TrainingReport:
    """L1 training on sampled pairs until ``settings.budget_s`` seconds or the iteration cap.

    The least-squares base filter stays as fitted; the correction network learns, after a
    linear warm-up of the learning rate over the first iterations. If the network ends
    worse than the filter alone on fixed pairs, the filter alone is kept (the correction
    is reset to zero).
    The learning rate follows a cosine from ``learning_rate`` to 1% of it over the
    budget's elapsed fraction (or the iteration fraction, whichever is larger).
    """
    from tqdm import tqdm

    report = TrainingReport(device=str(device), batch_size=settings.batch_size)
    fixed = [sampler.sample(settings.batch_size) for _ in range(4)]
    report.patch = (int(fixed[0][1].shape[-2]), int(fixed[0][1].shape[-1]))
    model.to(device)
    model.eval()
    report.pairs_psnr_cubic = _pairs_psnr(None, fixed, device)
    report.pairs_psnr_linear = _pairs_psnr(model, fixed, device)
    if settings.budget_s <= 0 or settings.max_iterations == 0:
        report.pairs_psnr_model = _pairs_psnr(model, fixed, device)
        return report
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    trainable = [p for n, p in model.named_parameters() if not n.startswith("base_")]
    optimiser = torch.optim.Adam(trainable, lr=settings.learning_rate)
    budget = settings.budget_s
    bar = tqdm(
        total=math.ceil(budget),
        unit="s",
        desc="self-supervised training",
        disable=not progress,
        leave=False,
    )
    model.train()
    start = time.perf_counter()
    shown = 0
    loss_value = math.nan
    try:
        while True:
            elapsed = time.perf_counter() - start
            done = max(elapsed / budget, report.iterations / settings.max_iterations)
            if done >= 1.0:
                report.stopped_by = "budget" if elapsed >= budget else "iteration cap"
                break
            warm_up = min(1.0, (report.iterations + 1) / WARM_UP_ITERATIONS)
            cosine = 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * done))
            rate = settings.learning_rate * warm_up * cosine
            for group in optimiser.param_groups:
                group["lr"] = rate
            lr, hr, pairs = sampler.sample(settings.batch_size)
            lr, hr = lr.to(device, non_blocking=True), hr.to(device, non_blocking=True)
            sr = model(lr, pairs.scale)
            m = pairs.margin
            loss = (sr[..., m : hr.shape[-2] - m, :] - hr[..., m:-m, :]).abs().mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            report.iterations += 1
            if report.iterations % 10 == 0:
                loss_value = float(loss.detach())
            now = int(time.perf_counter() - start)
            if now > shown:
                bar.update(min(now, bar.total) - shown)
                shown = min(now, bar.total)
                bar.set_postfix(it=report.iterations, l1=f"{loss_value:.4f}")
    finally:
        bar.close()
        model.eval()
    report.seconds = time.perf_counter() - start
    report.pairs_psnr_model = _pairs_psnr(model, fixed, device)
    if report.pairs_psnr_model < report.pairs_psnr_linear:
        model.load_state_dict(initial)
        report.kept_filter = True
        report.pairs_psnr_model = report.pairs_psnr_linear
    return report
