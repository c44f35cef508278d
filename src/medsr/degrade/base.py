"""The Degradation interface: draw recorded random parameters, then apply them.

A degradation maps an HR batch (B, C, H, W) in [0, 1] to an LR batch. Its random
choices are drawn in :meth:`Degradation.sample_params` from a
``torch.Generator`` and returned as a dict: per-sample tensors on the target
device, plus plain Python numbers for batch-level choices that fix a tensor
shape (so :meth:`Degradation.apply` never waits on the device). ``apply`` is a
pure function of (hr, params): the same params give the same LR on any call.
Noise is drawn from per-sample seeds with a counter-based generator
(:mod:`medsr.degrade.noise`), so it is recorded too and identical on CPU and CUDA.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from medsr.degrade.resize import output_size
from medsr.errors import ConfigError

__all__ = ["Degradation", "Range", "as_pair", "as_range"]

#: A fixed value or a (low, high) interval to draw uniformly from.
Range = float | tuple[float, float]


def as_pair(scale: float | Sequence[float], what: str = "scale") -> tuple[float, float]:
    """A number or a (y, x) pair as a (y, x) float pair."""
    if isinstance(scale, int | float):
        pair = (float(scale), float(scale))
    else:
        values = [float(v) for v in scale]
        if len(values) != 2:
            raise ConfigError(f"{what} is a number or a (y, x) pair, got {scale!r}")
        pair = (values[0], values[1])
    if pair[0] <= 0 or pair[1] <= 0:
        raise ConfigError(f"{what} must be positive, got {scale!r}")
    return pair


def as_range(value: float | Sequence[float], what: str) -> tuple[float, float]:
    """A number (a fixed value) or a [low, high] interval as (low, high)."""
    if isinstance(value, int | float):
        return float(value), float(value)
    values = [float(v) for v in value]
    if len(values) != 2 or values[1] < values[0]:
        raise ConfigError(f"{what} is a number or a [low, high] interval, got {value!r}")
    return values[0], values[1]


class Degradation:
    """HR (B, C, H, W) in [0, 1] -> LR, with recorded, reproducible randomness.

    Subclasses set ``name`` and implement :meth:`apply`, and :meth:`sample_params`
    when they are random. ``scale`` is the per-axis factor (sy, sx) by which the
    LR is smaller; (1, 1) for same-size restoration tasks. Callable like a module
    but deliberately not an ``nn.Module``: it holds no weights, and its
    ``apply(hr, params)`` would clash with ``nn.Module.apply(fn)``.
    """

    name: str = "degradation"

    def __init__(self, scale: float | Sequence[float] = 1.0) -> None:
        self._scale = as_pair(scale)

    @property
    def scale(self) -> tuple[float, float]:
        return self._scale

    def lr_size(self, h: int, w: int) -> tuple[int, int]:
        """LR size for an (h, w) HR image: ``ceil(h / sy), ceil(w / sx)``."""
        sy, sx = self._scale
        return output_size(h, w, (1.0 / sy, 1.0 / sx))

    def config(self) -> dict[str, Any]:
        """A dict that :func:`medsr.degrade.build` turns back into this degradation."""
        return {"name": self.name, "scale": list(self._scale)}

    def sample_params(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> dict[str, Any]:
        """Draw this batch's random parameters (none for deterministic degradations)."""
        return {}

    def validation_params(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> dict[str, Any]:
        """Parameters for fixed validation batches: :meth:`sample_params`, except where a
        degradation trains over several settings and is scored at its primary one."""
        return self.sample_params(batch_size, generator, device)

    def apply(self, hr: Tensor, params: dict[str, Any]) -> Tensor:
        raise NotImplementedError

    def __call__(self, hr: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``apply(hr, sample_params(...))`` in one call."""
        check_batch(hr)
        return self.apply(hr, self.sample_params(hr.shape[0], generator, hr.device))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


def check_batch(hr: Tensor) -> None:
    if hr.ndim != 4 or not hr.is_floating_point():
        raise ConfigError(
            f"a degradation takes a float (B, C, H, W) batch, got {hr.dtype} {tuple(hr.shape)}"
        )


def draw_uniform(
    generator: torch.Generator | None,
    batch_size: int,
    low: float,
    high: float,
    device: torch.device | str | None,
) -> Tensor:
    """(B,) values uniform in [low, high], drawn on the generator's device, moved to ``device``."""
    gen_device = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(batch_size, generator=generator, device=gen_device, dtype=torch.float64)
    return (low + (high - low) * u).to(device=device, dtype=torch.float32)


def draw_seeds(
    generator: torch.Generator | None, batch_size: int, device: torch.device | str | None
) -> Tensor:
    """(B,) int64 seeds for :mod:`medsr.degrade.noise`."""
    gen_device = generator.device if generator is not None else torch.device("cpu")
    seeds = torch.randint(0, 2**31 - 1, (batch_size,), generator=generator, device=gen_device)
    return seeds.to(device)


def draw_choice(generator: torch.Generator | None, probs: Sequence[float]) -> int:
    """One index drawn with ``probs`` (a batch-level, shape-fixing choice)."""
    weights = torch.tensor([float(p) for p in probs], dtype=torch.float64)
    if weights.sum() <= 0:
        raise ConfigError(f"probabilities must not all be zero, got {list(probs)}")
    gen_device = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(1, generator=generator, device=gen_device, dtype=torch.float64).cpu()
    cumulative = torch.cumsum(weights / weights.sum(), 0)
    return min(int(torch.searchsorted(cumulative, u).item()), len(weights) - 1)
