"""The blind two-pass degradation of Real-ESRGAN, with its ``realesrgan`` and ``blimsr`` presets.

Each pass: blur (a random generalised-Gaussian/plateau kernel, iso- or
anisotropic, or a 2-D sinc), resize by a random factor and mode, Gaussian or
Poisson noise, JPEG at a random quality. A final stage resizes to
``ceil(H / s)`` and applies a 2-D sinc filter and JPEG in random order. Per-sample
choices (kernels, noise levels, JPEG qualities) are tensors; batch-level choices
that fix a shape (resize factor and mode) and the noise type are Python values,
as in Real-ESRGAN. Deliberate differences from the original: resizing uses our
antialiased imresize kernels (cubic/linear/area), Poisson noise uses a fixed 256
grey levels (the original counts unique values, which needs a host round trip),
and the JPEG step honours its quality (:mod:`medsr.degrade.jpeg`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from medsr.degrade.base import Degradation, draw_choice, draw_seeds, draw_uniform
from medsr.degrade.filters import anisotropic_kernels, filter2d, sinc_kernels
from medsr.degrade.jpeg import jpeg
from medsr.degrade.noise import add_gaussian, poisson
from medsr.degrade.resize import imresize
from medsr.errors import ConfigError

__all__ = [
    "PRESETS",
    "BlindDegradation",
    "BlurStage",
    "FinalStage",
    "JpegStage",
    "NoiseStage",
    "PassSettings",
    "ResizeStage",
]

KERNEL_TYPES = (
    "iso",
    "aniso",
    "generalized_iso",
    "generalized_aniso",
    "plateau_iso",
    "plateau_aniso",
)
RESIZE_MODES = ("cubic", "box", "linear")  # bicubic, area, bilinear
_ODD_SIZES = tuple(range(7, 22, 2))
#: Poisson noise counts at intensity 1 (Real-ESRGAN's unique-value count for 8-bit data).
POISSON_LEVELS = 256.0


@dataclass(frozen=True)
class BlurStage:
    """Random blur kernel per sample; probabilities follow ``KERNEL_TYPES``."""

    prob: float = 1.0
    kernel_sizes: tuple[int, ...] = _ODD_SIZES
    kernel_probs: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sigma: tuple[float, float] = (0.2, 3.0)
    beta_gaussian: tuple[float, float] = (0.5, 4.0)
    beta_plateau: tuple[float, float] = (1.0, 2.0)
    sinc_prob: float = 0.1


@dataclass(frozen=True)
class ResizeStage:
    """Resize by a factor drawn up/down/keep with ``probs``, or the ``fixed`` factor.

    ``relative_to`` is ``current`` (the factor applies to the current size) or
    ``target`` (to the final LR size, as Real-ESRGAN's second pass does).
    """

    probs: tuple[float, float, float] = (0.2, 0.7, 0.1)
    factor_range: tuple[float, float] = (0.15, 1.5)
    mode_probs: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3)
    fixed: float | None = None
    relative_to: str = "current"


@dataclass(frozen=True)
class NoiseStage:
    """Gaussian (sigma in [0, 1] units) or Poisson noise, chosen per batch."""

    gaussian_prob: float = 0.5
    sigma: tuple[float, float] = (1 / 255, 30 / 255)
    poisson_scale: tuple[float, float] = (0.05, 3.0)
    gray_prob: float = 0.4


@dataclass(frozen=True)
class JpegStage:
    prob: float = 1.0
    quality: tuple[float, float] = (30.0, 95.0)


@dataclass(frozen=True)
class PassSettings:
    blur: BlurStage | None = field(default_factory=BlurStage)
    resize: ResizeStage | None = field(default_factory=ResizeStage)
    noise: NoiseStage | None = field(default_factory=NoiseStage)
    jpeg: JpegStage | None = field(default_factory=JpegStage)


@dataclass(frozen=True)
class FinalStage:
    """Resize to the LR size, then a sinc filter and JPEG in ``order``."""

    mode_probs: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3)
    sinc_prob: float = 0.8
    sinc_sizes: tuple[int, ...] = _ODD_SIZES
    sinc_cutoff: tuple[float, float] = (math.pi / 3, math.pi)
    jpeg: JpegStage | None = field(default_factory=JpegStage)
    order: str = "random"  # random | sinc_first | jpeg_first


def _realesrgan() -> tuple[PassSettings, PassSettings, FinalStage]:
    first = PassSettings()
    second = PassSettings(
        blur=BlurStage(prob=0.8, sigma=(0.2, 1.5)),
        resize=ResizeStage(probs=(0.3, 0.4, 0.3), factor_range=(0.3, 1.2), relative_to="target"),
        noise=NoiseStage(sigma=(1 / 255, 25 / 255), poisson_scale=(0.05, 2.5)),
        jpeg=None,
    )
    return first, second, FinalStage()


def _blimsr() -> tuple[PassSettings, PassSettings, FinalStage]:
    """SPEC 1.3: two /sqrt(s) passes (x4: /2, /2), 21x21 plateau kernels, final 11x11 sinc."""
    modes = (0.6, 0.2, 0.2)
    first = PassSettings(
        blur=BlurStage(
            kernel_sizes=(21,),
            kernel_probs=(0.0, 0.0, 0.0, 0.0, 0.7, 0.3),
            sigma=(0.6, 5.0),
            beta_plateau=(0.5, 8.0),
            sinc_prob=0.0,
        ),
        resize=ResizeStage(mode_probs=modes, fixed=-1.0),  # -1: 1 / sqrt(scale)
        noise=NoiseStage(),
        jpeg=JpegStage(),
    )
    second = PassSettings(
        blur=None,
        resize=ResizeStage(mode_probs=modes, fixed=1.0, relative_to="target"),
        noise=None,
        jpeg=JpegStage(),
    )
    final = FinalStage(
        mode_probs=modes, sinc_prob=1.0, sinc_sizes=(11,), jpeg=None, order="sinc_first"
    )
    return first, second, final


PRESETS = {"realesrgan": _realesrgan, "blimsr": _blimsr}


def _split_beta(generator: torch.Generator | None, b: int, low: float, high: float) -> Tensor:
    """Real-ESRGAN's shape parameter: half U(low, 1), half U(1, high)."""
    below = draw_uniform(generator, b, min(low, 1.0), 1.0, "cpu")
    above = draw_uniform(generator, b, 1.0, max(high, 1.0), "cpu")
    pick = draw_uniform(generator, b, 0.0, 1.0, "cpu") < 0.5
    return torch.where(pick, below, above)


def _pick(generator: torch.Generator | None, b: int, values: Sequence[float]) -> Tensor:
    index = torch.randint(
        0,
        len(values),
        (b,),
        generator=generator,
        device=generator.device if generator is not None else "cpu",
    )
    return torch.tensor([float(v) for v in values])[index.cpu()]


def _sample_blur(stage: BlurStage, g: torch.Generator | None, b: int) -> dict[str, Tensor]:
    gen_device = g.device if g is not None else torch.device("cpu")
    probs = torch.tensor(stage.kernel_probs, dtype=torch.float64)
    kind = torch.multinomial(probs.to(gen_device), b, replacement=True, generator=g).cpu()
    aniso = (kind % 2) == 1
    sigma_x = draw_uniform(g, b, *stage.sigma, "cpu")
    sigma_y = torch.where(aniso, draw_uniform(g, b, *stage.sigma, "cpu"), sigma_x)
    theta = torch.where(aniso, draw_uniform(g, b, -math.pi, math.pi, "cpu"), torch.zeros(b))
    beta_g = _split_beta(g, b, *stage.beta_gaussian)
    beta_p = _split_beta(g, b, *stage.beta_plateau)
    beta = torch.where(kind >= 4, beta_p, torch.where(kind >= 2, beta_g, torch.ones(b)))
    size = _pick(g, b, stage.kernel_sizes)
    sinc = draw_uniform(g, b, 0.0, 1.0, "cpu") < stage.sinc_prob
    cutoff = torch.where(
        size < 13,
        draw_uniform(g, b, math.pi / 3, math.pi, "cpu"),
        draw_uniform(g, b, math.pi / 5, math.pi, "cpu"),
    )
    return {
        "kernel_type": kind,
        "sigma_x": sigma_x,
        "sigma_y": sigma_y,
        "theta": theta,
        "beta": beta,
        "plateau": (kind >= 4).float(),
        "size": size,
        "sinc": sinc.float(),
        "sinc_cutoff": cutoff,
        "applied": (draw_uniform(g, b, 0.0, 1.0, "cpu") < stage.prob).float(),
    }


def _blur_kernels(p: dict[str, Tensor], full: int) -> Tensor:
    gauss = anisotropic_kernels(
        p["sigma_x"], p["sigma_y"], p["theta"], p["beta"], p["plateau"], p["size"], full
    )
    sinc = sinc_kernels(p["sinc_cutoff"], p["size"], full)
    kernels = torch.where(p["sinc"].reshape(-1, 1, 1) > 0, sinc, gauss)
    pulse = torch.zeros_like(kernels)
    pulse[:, full // 2, full // 2] = 1.0
    return torch.where(p["applied"].reshape(-1, 1, 1) > 0, kernels, pulse)


class BlindDegradation(Degradation):
    """Real-ESRGAN-style two-pass blind degradation (``preset``: realesrgan or blimsr)."""

    name = "blind"

    def __init__(
        self,
        scale: float | Sequence[float] = 4.0,
        preset: str = "realesrgan",
        jpeg_quality: Sequence[float] | None = None,
        noise_sigma: Sequence[float] | None = None,
    ) -> None:
        super().__init__(scale)
        if preset not in PRESETS:
            raise ConfigError(
                f"unknown blind preset {preset!r}; choose one of {', '.join(PRESETS)}"
            )
        self.preset = preset
        first, second, final = PRESETS[preset]()
        if jpeg_quality is not None:
            q = (float(jpeg_quality[0]), float(jpeg_quality[-1]))
            first, second = (
                replace(p, jpeg=replace(p.jpeg, quality=q)) if p.jpeg else p
                for p in (first, second)
            )
            if final.jpeg is not None:
                final = replace(final, jpeg=replace(final.jpeg, quality=q))
        if noise_sigma is not None:
            s = (float(noise_sigma[0]), float(noise_sigma[-1]))
            first, second = (
                replace(p, noise=replace(p.noise, sigma=s)) if p.noise else p
                for p in (first, second)
            )
        self.passes = (first, second)
        self.final = final
        self._overrides = {"jpeg_quality": jpeg_quality, "noise_sigma": noise_sigma}

    def config(self) -> dict[str, Any]:
        extra = {k: list(v) for k, v in self._overrides.items() if v is not None}
        return {**super().config(), "preset": self.preset, **extra}

    def sample_params(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> dict[str, Any]:
        g, b = generator, batch_size
        params: dict[str, Any] = {}
        for i, settings in enumerate(self.passes, start=1):
            key = f"pass{i}."
            if settings.blur is not None:
                for name, value in _sample_blur(settings.blur, g, b).items():
                    params[key + "blur." + name] = value
            if settings.resize is not None:
                params.update(self._sample_resize(settings.resize, g, key))
            if settings.noise is not None:
                n = settings.noise
                params[key + "noise.gaussian"] = (
                    draw_choice(g, (1 - n.gaussian_prob, n.gaussian_prob)) == 1
                )
                params[key + "noise.sigma"] = draw_uniform(g, b, *n.sigma, "cpu")
                params[key + "noise.poisson_scale"] = draw_uniform(g, b, *n.poisson_scale, "cpu")
                params[key + "noise.gray"] = (draw_uniform(g, b, 0, 1, "cpu") < n.gray_prob).float()
                params[key + "noise.seed"] = draw_seeds(g, b, "cpu")
            if settings.jpeg is not None:
                params.update(self._sample_jpeg(settings.jpeg, g, b, key))
        f = self.final
        params["final.mode"] = RESIZE_MODES[draw_choice(g, f.mode_probs)]
        params["final.sinc_cutoff"] = draw_uniform(g, b, *f.sinc_cutoff, "cpu")
        params["final.sinc_size"] = _pick(g, b, f.sinc_sizes)
        params["final.sinc"] = (draw_uniform(g, b, 0, 1, "cpu") < f.sinc_prob).float()
        if f.jpeg is not None:
            params.update(self._sample_jpeg(f.jpeg, g, b, "final."))
        order = (
            f.order
            if f.order != "random"
            else ("sinc_first", "jpeg_first")[draw_choice(g, (0.5, 0.5))]
        )
        params["final.order"] = order
        return {k: v.to(device) if isinstance(v, Tensor) else v for k, v in params.items()}

    def _sample_resize(
        self, stage: ResizeStage, g: torch.Generator | None, key: str
    ) -> dict[str, Any]:
        if stage.fixed is not None:
            factor = stage.fixed if stage.fixed > 0 else 1.0 / math.sqrt(max(self.scale))
        else:
            direction = draw_choice(g, stage.probs)
            u = float(draw_uniform(g, 1, 0.0, 1.0, "cpu")[0])
            low, high = stage.factor_range
            factor = (1 + u * (high - 1), low + u * (1 - low), 1.0)[direction]
        return {
            key + "resize.factor": factor,
            key + "resize.mode": RESIZE_MODES[draw_choice(g, stage.mode_probs)],
        }

    @staticmethod
    def _sample_jpeg(
        stage: JpegStage, g: torch.Generator | None, b: int, key: str
    ) -> dict[str, Tensor]:
        return {
            key + "jpeg.quality": draw_uniform(g, b, *stage.quality, "cpu").round(),
            key + "jpeg.applied": (draw_uniform(g, b, 0, 1, "cpu") < stage.prob).float(),
        }

    def apply(self, hr: Tensor, params: dict[str, Any]) -> Tensor:
        h, w = hr.shape[-2:]
        target = self.lr_size(int(h), int(w))
        x = hr
        for i, settings in enumerate(self.passes, start=1):
            key = f"pass{i}."
            if settings.blur is not None:
                blur = {
                    k[len(key) + 5 :]: v for k, v in params.items() if k.startswith(key + "blur.")
                }
                full = max(settings.blur.kernel_sizes)
                x = filter2d(x, _blur_kernels(blur, full))
            if settings.resize is not None:
                factor = params[key + "resize.factor"]
                base = target if settings.resize.relative_to == "target" else x.shape[-2:]
                size = (max(1, int(base[0] * factor)), max(1, int(base[1] * factor)))
                if size != tuple(x.shape[-2:]):
                    x = imresize(x, size=size, kernel=params[key + "resize.mode"])
            if settings.noise is not None:
                x = self._noise(x, params, key).clamp(0.0, 1.0)
            if settings.jpeg is not None:
                x = self._jpeg(x, params, key)
        if params["final.order"] == "jpeg_first":
            x = self._jpeg(x, params, "final.") if self.final.jpeg is not None else x
            x = self._final_sinc(x, params, target)
        else:
            x = self._final_sinc(x, params, target)
            x = self._jpeg(x, params, "final.") if self.final.jpeg is not None else x
        return torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0

    def _final_sinc(self, x: Tensor, params: dict[str, Any], target: tuple[int, int]) -> Tensor:
        if tuple(x.shape[-2:]) != target:
            x = imresize(x, size=target, kernel=params["final.mode"])
        full = max(self.final.sinc_sizes)
        kernels = sinc_kernels(params["final.sinc_cutoff"], params["final.sinc_size"], full)
        pulse = torch.zeros_like(kernels)
        pulse[:, full // 2, full // 2] = 1.0
        kernels = torch.where(params["final.sinc"].reshape(-1, 1, 1) > 0, kernels, pulse)
        return filter2d(x, kernels)

    @staticmethod
    def _jpeg(x: Tensor, params: dict[str, Any], key: str) -> Tensor:
        coded = jpeg(x.clamp(0.0, 1.0), params[key + "jpeg.quality"])
        applied = params[key + "jpeg.applied"].reshape(-1, 1, 1, 1) > 0
        return torch.where(applied, coded, x)

    @staticmethod
    def _noise(x: Tensor, params: dict[str, Any], key: str) -> Tensor:
        seeds = params[key + "noise.seed"]
        gray = params[key + "noise.gray"]
        if params[key + "noise.gaussian"]:
            return add_gaussian(x, params[key + "noise.sigma"], seeds, gray)
        scale = params[key + "noise.poisson_scale"].reshape(-1, 1, 1, 1)
        clean = x.clamp(0.0, 1.0)
        noise = poisson(clean * POISSON_LEVELS, seeds) / POISSON_LEVELS - clean
        if x.shape[1] > 1:
            weights = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype)
            lum = (
                (clean * weights.reshape(1, 3, 1, 1)).sum(1, keepdim=True)
                if x.shape[1] == 3
                else clean.mean(1, keepdim=True)
            )
            gray_noise = poisson(lum * POISSON_LEVELS, seeds, stream=5) / POISSON_LEVELS - lum
            noise = torch.where(gray.reshape(-1, 1, 1, 1) > 0, gray_noise.expand_as(noise), noise)
        return x + scale * noise
