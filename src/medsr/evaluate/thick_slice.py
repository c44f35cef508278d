"""``medsr eval --degradation thick-slice``: through-plane SR of volumes, scored in 3-D.

Per HR volume (D, H, W), identical for every method:

1. ``hr`` in physical units, clipped to its normalisation range (CT: the HU
   window; MR: the 0.5-99.5 percentile range of the volume; otherwise the
   bits-stored or min-max range); its width is the data range.
2. ``lr``: the thick-slice acquisition along z, ``ceil(D / s)`` slices ``s * dz``
   apart, each the slice profile (box of ``thickness`` mm, or Gaussian of that FWHM;
   default thickness ``s * dz``: contiguous) integrated over the HR slices, with
   the exact geometry (slice j centred on HR slice ``(j + 0.5) s - 0.5``).
3. Back to the HR slice spacing by: ``cubic`` interpolation along z (the
   reference), each ``--model`` applied through-plane (``medsr upscale --plane
   through``), and ``self-supervised`` (learnt from ``lr`` alone, told the slice
   profile and thickness).
4. PSNR over the volume (one MSE over all voxels) and SSIM (mean over the (D, W)
   planes, 11x11 Gaussian), both in physical units with the stated data range and
   ``ceil(s)`` slices shaved at each end of z.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from medsr.errors import ConfigError
from medsr.evaluate.results import DATA_RANGE_RULES, json_number
from medsr.image import MedicalImage, Modality, Normalization

__all__ = ["SELF_SUPERVISED", "ThickSliceRun", "VolumeScore", "run_thick_slice"]

#: The name the self-supervised method is reported under (always included).
SELF_SUPERVISED = "self-supervised"
REFERENCE = "cubic"


@dataclass
class VolumeScore:
    name: str
    modality: str
    data_range: float
    psnr: float
    ssim: float
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "modality": self.modality,
            "data_range": self.data_range,
            "psnr": json_number(self.psnr),
            "ssim": json_number(self.ssim),
            "seconds": round(self.seconds, 2),
        }


@dataclass
class ThickSliceRun:
    """Every method's scores on every volume, with the acquisition simulated."""

    scale: float
    thickness_mm: float | None
    profile: str
    shave: int
    scores: dict[str, list[VolumeScore]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def mean(self, method: str, metric: str) -> float:
        values = [getattr(s, metric) for s in self.scores[method]]
        return float(np.mean(values)) if values else math.nan

    def gain(self, method: str, metric: str) -> float:
        pairs = zip(self.scores[method], self.scores[REFERENCE])
        diffs = [getattr(a, metric) - getattr(b, metric) for a, b in pairs]
        return float(np.mean(diffs)) if diffs else math.nan

    def table(self) -> str:
        header = f"{'method':<24}{'PSNR dB':>9}{'SSIM':>9}{'dPSNR':>8}{'dSSIM':>9}{'s/volume':>10}"
        lines = [header, "-" * len(header)]
        for method, scores in self.scores.items():
            seconds = float(np.mean([s.seconds for s in scores])) if scores else math.nan
            lines.append(
                f"{method:<24}{self.mean(method, 'psnr'):>9.2f}{self.mean(method, 'ssim'):>9.4f}"
                f"{self.gain(method, 'psnr'):>+8.2f}{self.gain(method, 'ssim'):>+9.4f}"
                f"{seconds:>10.1f}"
            )
        return "\n".join(lines)

    def data_range_line(self) -> str:
        seen: dict[str, set[float]] = {}
        for scores in self.scores.values():
            for s in scores:
                seen.setdefault(s.modality, set()).add(s.data_range)
        parts = [
            f"{m} {', '.join(f'{v:.6g}' for v in sorted(r))} ({DATA_RANGE_RULES.get(m, '')})"
            for m, r in sorted(seen.items())
        ]
        return "data range: " + "; ".join(parts)

    def as_json(self) -> dict[str, Any]:
        return {
            "degradation": "thick-slice",
            "scale": self.scale,
            "profile": self.profile,
            "thickness_mm": self.thickness_mm or "slice spacing (contiguous)",
            "shave_slices": self.shave,
            "reference": REFERENCE,
            "metrics": "PSNR over the volume, SSIM mean over (D, W) planes, physical units",
            "methods": {
                method: {
                    "mean": {m: json_number(self.mean(method, m)) for m in ("psnr", "ssim")},
                    "gain_over_cubic": {
                        m: json_number(self.gain(method, m)) for m in ("psnr", "ssim")
                    },
                    "volumes": [s.as_json() for s in scores],
                }
                for method, scores in self.scores.items()
            },
            "notes": self.notes,
        }


def _normalization(image: MedicalImage, ct_window: str) -> Normalization:
    if image.modality is Modality.CT:
        return image.normalization(window=ct_window)
    return image.normalization()


def _score(sr: np.ndarray, hr: np.ndarray, data_range: float, shave: int) -> tuple[float, float]:
    """Volume PSNR and mean (D, W)-plane SSIM, ``shave`` slices dropped at each end of z."""
    from medsr.metrics import ssim

    depth = hr.shape[0]
    if sr.shape[0] < depth:
        raise ConfigError(f"the result has {sr.shape[0]} slices, the reference {depth}")
    keep = slice(shave, depth - shave) if depth > 2 * shave + 1 else slice(0, depth)
    x = sr[:depth][keep].astype(np.float64)
    y = hr[keep].astype(np.float64)
    mse = float(np.mean((x - y) ** 2))
    psnr = math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)
    planes_x = torch.from_numpy(np.ascontiguousarray(x.transpose(1, 0, 2)))[:, None]
    planes_y = torch.from_numpy(np.ascontiguousarray(y.transpose(1, 0, 2)))[:, None]
    value = math.nan
    if min(planes_x.shape[-2:]) >= 11:
        value = float(ssim(planes_x, planes_y, data_range).mean())
    return psnr, value


def run_thick_slice(
    volumes: Sequence[tuple[str, MedicalImage]],
    models: Sequence[str],
    scale: float,
    thickness_mm: float | None = None,
    profile: str = "box",
    budget_s: float | None = None,
    ct_window: str = "full",
    progress: Callable[[str], None] | None = None,
) -> ThickSliceRun:
    """Simulate thick slices of each volume and score cubic, ``models`` through-plane and
    self-supervised SR against it; see the module docstring for the rules."""
    from medsr.degrade.resize import imresize
    from medsr.degrade.volume import ThickSlice
    from medsr.infer.api import load_model
    from medsr.infer.pipeline import UpscaleSettings, upscale_image
    from medsr.infer.runner import ModelRunner
    from medsr.selfsup import (
        DEFAULT_BUDGET_S,
        SelfSupervisedSettings,
        upscale_self_supervised,
    )

    if not (math.isfinite(scale) and scale > 1):
        raise ConfigError(f"thick-slice evaluation needs a through-plane --scale > 1, got {scale}")
    ThickSlice(scale, profile=profile)  # checks the profile before any work
    if thickness_mm is not None and not (math.isfinite(thickness_mm) and thickness_mm > 0):
        raise ConfigError(f"--slice-thickness must be positive mm, got {thickness_mm}")
    shave = math.ceil(scale - 1e-9)
    run = ThickSliceRun(scale, thickness_mm, profile, shave)
    methods = [REFERENCE, *models, SELF_SUPERVISED]
    run.scores = {m: [] for m in methods}
    loaded = {name: load_model(name) for name in models}
    for name, image in volumes:
        if image.ndim != 3 or image.shape[0] < 2 * scale:
            raise ConfigError(
                f"{name}: thick-slice evaluation needs volumes of at least {2 * scale:g} "
                f"slices, got shape {image.shape}"
            )
        norm = _normalization(image, ct_window)
        hr = np.clip(image.pixels, norm.low, norm.high).astype(np.float32)
        unit = torch.from_numpy(np.ascontiguousarray(norm.to_unit(hr), dtype=np.float32))
        dz = image.spacing_mm[0]
        thickness = (thickness_mm or scale * dz) / dz  # in HR slices
        lr_unit = ThickSlice(scale, thickness=thickness, profile=profile).apply_volume(unit)
        lr = image.rescaled(
            norm.from_unit(lr_unit.numpy()).astype(np.float32),
            (1.0 / scale, 1.0, 1.0),
            f"thick-slice x{scale:g} ({profile})",
        )
        for method in methods:
            start = time.perf_counter()
            if method == REFERENCE:
                planes = lr_unit.permute(1, 0, 2)[:, None]
                up = imresize(planes, scale=(scale, 1.0), kernel="cubic")
                sr = norm.from_unit(up[:, 0].permute(1, 0, 2).numpy())
            elif method == SELF_SUPERVISED:
                settings = SelfSupervisedSettings(
                    spacing=dz,
                    slice_thickness=thickness * dz,
                    slice_profile=profile,
                    budget_s=DEFAULT_BUDGET_S if budget_s is None else budget_s,
                )
                result = upscale_self_supervised(lr, settings)
                run.notes.append(f"{name}: {result.report.describe()}")
                sr = result.image.pixels
            else:
                runner = ModelRunner(loaded[method])
                try:
                    through = UpscaleSettings(scale=scale, plane="through")
                    sr = upscale_image(lr, runner, through).image.pixels
                finally:
                    runner.restore()
            seconds = time.perf_counter() - start
            psnr, ssim_value = _score(sr, hr, norm.data_range, shave)
            run.scores[method].append(
                VolumeScore(name, image.modality.value, norm.data_range, psnr, ssim_value, seconds)
            )
            if progress is not None:
                progress(f"{name} {method}: PSNR {psnr:.2f} dB, SSIM {ssim_value:.4f}")
    return run
