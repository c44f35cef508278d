"""The exponential moving average of the generator, the network a run validates and ships."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["ModelEMA"]


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
