"""MR k-space truncation: keep the central 1/s of k-space, as a lower-resolution acquisition.

``K = fftshift(fft2(x))``; the LR image is ``|ifft2(ifftshift(K_c))| * (h w) / (H W)``
with ``K_c`` the centred (h, w) = (ceil(H/sy), ceil(W/sx)) block, so a constant keeps
its value and band-limited content is sampled exactly; sharp edges ring (Gibbs).
Options: partial Fourier (keep only a fraction >= 0.5 of the phase-encode rows,
zero-filled) and Rician noise (complex Gaussian noise of ``noise_sigma`` per
channel, in [0, 1] units, before the magnitude; ``noise_probability`` is the share of
images that get any, so a model trained on it also meets clean, high-SNR scans).

Grid convention (DFT sampling): LR pixel ``j`` sits where HR pixel ``j * s`` sat, so the
first pixel centre stays where it was and the spacing grows by ``s`` (an area shrink
instead keeps the field-of-view *edges*: its first centre moves by ``(s - 1) / 2`` HR
pixels). The field of view is ``H * dx`` before and ``h * (H / h) dx`` after.

The reference the scanner itself offers for a coarse acquisition is zero-filled
interpolation (ZIP, :func:`zero_fill`): pad the k-space with zeros to the finer
matrix and transform back. ``zero_fill(kspace_degrade(x))`` is ``x`` low-passed, on
``x``'s own grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from medsr.degrade.base import Degradation, Range, as_range, draw_seeds, draw_uniform
from medsr.degrade.noise import normal
from medsr.errors import ConfigError

__all__ = ["MRKSpace", "kspace_crop", "zero_fill"]


def kspace_crop(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Centred k-space block of the last two axes: (..., H, W) real -> (..., h, w) complex."""
    h, w = x.shape[-2:]
    k = torch.fft.fftshift(torch.fft.fft2(x.to(torch.float32)), dim=(-2, -1))
    top, left = h // 2 - size[0] // 2, w // 2 - size[1] // 2
    return k[..., top : top + size[0], left : left + size[1]]


def zero_fill(lr: Tensor, size: tuple[int, int]) -> Tensor:
    """Zero-filled k-space interpolation (ZIP) of ``lr`` (..., h, w) to ``size`` (H, W).

    The centred k-space of ``lr`` is placed at rows ``H//2 - h//2`` (as
    :func:`kspace_crop` takes it), the rest is zero, and the magnitude of the inverse
    transform is scaled by ``(H W) / (h w)`` so that a constant keeps its value. This is
    what an MR scanner does when asked for a finer matrix than it acquired.
    """
    h, w = lr.shape[-2:]
    big_h, big_w = size
    if big_h < h or big_w < w:
        raise ConfigError(f"zero_fill: target {size} is smaller than the input {(h, w)}")
    k = torch.fft.fftshift(torch.fft.fft2(lr.to(torch.float32)), dim=(-2, -1))
    top, left = big_h // 2 - h // 2, big_w // 2 - w // 2
    padded = torch.zeros((*k.shape[:-2], big_h, big_w), dtype=k.dtype, device=k.device)
    padded[..., top : top + h, left : left + w] = k
    image = torch.fft.ifft2(torch.fft.ifftshift(padded, dim=(-2, -1))).abs()
    return (image * (big_h * big_w / (h * w))).to(lr.dtype)


class MRKSpace(Degradation):
    """Central k-space crop (Gibbs ringing), optional partial Fourier and Rician noise.

    ``train_margin`` (LR pixels, training only): a crop's k-space is the k-space of a
    periodic image, so truncating it rings at the crop's edges, which a whole scan with
    air around the body does not. With a margin, :meth:`apply_pair` degrades the whole
    crop and returns its centre, LR minus ``m`` pixels a side and HR minus ``m * s``
    (on the DFT grid the two stay aligned), for crops whose size is a multiple of the
    scale.
    """

    name = "mr-kspace"
    #: the acquisition's reference reconstruction, which a model must beat
    reference = "zero-fill"

    def __init__(
        self,
        scale: float | Sequence[float] = 2.0,
        partial_fourier: float = 1.0,
        noise_sigma: Range = 0.0,
        clip: bool = True,
        train_margin: int = 0,
        noise_probability: float = 1.0,
    ) -> None:
        super().__init__(scale)
        if not 0.5 <= partial_fourier <= 1.0:
            raise ConfigError(f"partial_fourier must lie in [0.5, 1], got {partial_fourier}")
        self.partial_fourier = float(partial_fourier)
        self.noise_sigma = as_range(noise_sigma, "noise_sigma")
        self.clip = clip
        if train_margin < 0:
            raise ConfigError(f"train_margin must be >= 0, got {train_margin}")
        self.train_margin = int(train_margin)
        if not 0.0 <= noise_probability <= 1.0:
            raise ConfigError(f"noise_probability must lie in [0, 1], got {noise_probability}")
        self.noise_probability = float(noise_probability)

    @property
    def replaces_target(self) -> bool:
        """With a training margin the target is the HR crop's centre (:meth:`apply_pair`)."""
        return self.train_margin > 0

    def config(self) -> dict[str, Any]:
        out = {
            **super().config(),
            "partial_fourier": self.partial_fourier,
            "noise_sigma": list(self.noise_sigma),
            "clip": self.clip,
        }
        if self.train_margin:
            out["train_margin"] = self.train_margin
        if self.noise_probability < 1.0:
            out["noise_probability"] = self.noise_probability
        return out

    def apply_pair(self, hr: Tensor, params: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """(LR, HR) centres of a degraded crop, ``train_margin`` LR pixels trimmed a side."""
        lr = self.apply(hr, params)
        m = self.train_margin
        if m == 0:
            return lr, hr
        sy, sx = (round(v) for v in self.scale)
        if hr.shape[-2] != lr.shape[-2] * sy or hr.shape[-1] != lr.shape[-1] * sx:
            raise ConfigError(
                f"mr-kspace train_margin needs crops that are a multiple of the scale, "
                f"got {tuple(hr.shape[-2:])} at x{self.scale}"
            )
        if lr.shape[-2] <= 2 * m or lr.shape[-1] <= 2 * m:
            raise ConfigError(f"mr-kspace train_margin {m} leaves nothing of a {lr.shape[-2:]} LR")
        return lr[..., m:-m, m:-m], hr[..., m * sy : -m * sy, m * sx : -m * sx]

    def sample_params(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> dict[str, Any]:
        sigma = draw_uniform(generator, batch_size, *self.noise_sigma, device)
        if self.noise_probability < 1.0:  # a share of clean acquisitions (high-SNR scans)
            noisy = draw_uniform(generator, batch_size, 0.0, 1.0, device) < self.noise_probability
            sigma = sigma * noisy.to(sigma.dtype)
        return {"noise_sigma": sigma, "noise_seed": draw_seeds(generator, batch_size, device)}

    def apply(self, hr: Tensor, params: dict[str, Any]) -> Tensor:
        h, w = hr.shape[-2:]
        size = self.lr_size(int(h), int(w))
        k = kspace_crop(hr, size)
        if self.partial_fourier < 1.0:
            kept = round(size[0] * self.partial_fourier)
            mask = (torch.arange(size[0], device=hr.device) < kept).to(k.real.dtype)
            k = k * mask.reshape(-1, 1)
        image = torch.fft.ifft2(torch.fft.ifftshift(k, dim=(-2, -1)))
        image = image * (size[0] * size[1] / (int(h) * int(w)))
        if self.noise_sigma[1] > 0:
            sigma = params["noise_sigma"].reshape(-1, 1, 1, 1)
            shape = tuple(image.shape[1:])
            real = image.real + sigma * normal(params["noise_seed"], shape, stream=0)
            imag = image.imag + sigma * normal(params["noise_seed"], shape, stream=1)
            magnitude = torch.sqrt(real * real + imag * imag)
        else:
            magnitude = image.abs()
        magnitude = magnitude.to(hr.dtype)
        return magnitude.clamp(0.0, 1.0) if self.clip else magnitude
