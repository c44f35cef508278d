"""Tiny models for the inference tests."""

from __future__ import annotations

import pytest
import torch
from torch import nn


class TinySR(nn.Module):
    """conv3 -> pixel shuffle x2 -> conv3: an x2 upscaler whose LR receptive field is 2 px."""

    receptive_field = 2

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.PReLU(16),
            nn.PixelShuffle(2),
            nn.Conv2d(4, 1, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")


@pytest.fixture
def tiny_sr() -> TinySR:
    return TinySR().eval()
