"""Pixel losses between a super-resolved batch and its target: L1, MSE, Charbonnier, and
the low-frequency lock that keeps a GAN's intensities where the input put them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medsr.errors import ConfigError

__all__ = ["CharbonnierLoss", "L1Loss", "LowFrequencyLoss", "MSELoss"]


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


class LowFrequencyLoss(nn.Module):
    """``mean |D(sr) - D(hr)|`` with ``D`` the antialiased imresize by ``1 / factor``.

    For the bicubic degradation ``D(hr)`` is the LR input itself, so the term asks that
    the output re-degrades to its input: the band the input determines (mean level,
    large-scale contrast, HU and grey levels) is locked, while the detail above the LR
    Nyquist frequency, where a GAN invents texture, is left free. Pixel losses such as
    gradient or D-SSIM are nearly blind to offsets; this term is not: a constant shift
    ``d`` costs exactly ``|d|`` (the resize weights sum to one).
    """

    def __init__(self, factor: float = 4.0, kernel: str = "cubic") -> None:
        super().__init__()
        if not factor >= 1:
            raise ConfigError(f"lowfreq: factor must be >= 1, got {factor!r}")
        self.factor = float(factor)
        self.kernel = str(kernel)

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        from medsr.degrade.resize import imresize

        if self.factor == 1.0:
            return F.l1_loss(sr, hr)
        scale = 1.0 / self.factor
        low_sr = imresize(sr, scale=scale, kernel=self.kernel, antialias=True)
        low_hr = imresize(hr, scale=scale, kernel=self.kernel, antialias=True)
        return F.l1_loss(low_sr, low_hr)

    def extra_repr(self) -> str:
        return f"factor={self.factor:g}, kernel={self.kernel}"
