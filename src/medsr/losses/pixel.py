"""Pixel losses between a super-resolved batch and its target: L1, MSE, Charbonnier."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CharbonnierLoss", "L1Loss", "MSELoss"]


class L1Loss(nn.Module):
    """Mean absolute error ``mean |sr - hr|``."""

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        return F.l1_loss(sr, hr)


class MSELoss(nn.Module):
    """Mean squared error ``mean (sr - hr)^2``."""

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        return F.mse_loss(sr, hr)


class CharbonnierLoss(nn.Module):
    """Smooth L1 ``mean sqrt((sr - hr)^2 + eps^2)``: quadratic near 0, linear beyond ``eps``."""

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = float(eps)

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        return torch.sqrt((sr - hr).pow(2) + self.eps**2).mean()

    def extra_repr(self) -> str:
        return f"eps={self.eps}"
