"""What ``medsr eval`` produces: per-image scores, per-model results with their gains over
the run's baseline, and a run with its settings, as dataclasses with a JSON form; plus
the data-range rules every score states."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medsr.image import Modality, Normalization

#: The reference model of a run on bicubic (and binned, lateral, CT) input: gains are
#: reported over it. An acquisition with its own reference (MR k-space: ``zero-fill``,
#: what the scanner offers) is scored against that instead
#: (:func:`medsr.evaluate.runner.reference_model`).
REFERENCE = "bicubic"


#: One-line forms of the rules, for terminal output.
DATA_RANGE_SHORT: dict[str, str] = {
    "CT": "HU window width",
    "MR": "p0.5-p99.5 range",
    "XRAY": "2^bits - 1",
    "US": "2^bits - 1",
    "OT": "2^bits - 1 or min-max",
}
DATA_RANGE_RULES: dict[str, str] = {
    "CT": "width of the HU window the pixels are clipped to (full: [-1024, 3071] HU, 4095)",
    "MR": "0.5-99.5 percentile range of the HR image (per volume) it is clipped to",
    "XRAY": "bits-stored range, 2**bits - 1",
    "US": "bits-stored range, 2**bits - 1",
    "OT": "bits-stored range when known, else the HR image's min-max range",
}


def json_number(value: float | None) -> float | str | None:
    """A float for JSON: finite as is, +-inf as ``"inf"``/``"-inf"``, NaN or None as null."""
    if value is None or math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return float(value)


@dataclass
class EvalImage:
    """One 2-D HR image to score: physical pixels and the normalisation the models see."""

    name: str
    hr: np.ndarray  # (H, W) float32, physical units
    modality: Modality
    normalization: Normalization

    @property
    def data_range(self) -> float:
        return self.normalization.data_range


#: The per-image metrics of a run, in report order; ``bias`` is in percent of the data range.
METRICS: tuple[str, ...] = ("psnr", "ssim", "gmsd", "haarpsi", "bias")
#: Smallest side, after the shave, on which GMSD and HaarPSI are computed (the 8x8 Haar
#: filter of HaarPSI works at half resolution); smaller images get NaN.
PERCEPTUAL_MIN_SIZE = 16


@dataclass
class ImageScore:
    name: str
    modality: str
    data_range: float
    psnr: float
    ssim: float
    gmsd: float = math.nan
    haarpsi: float = math.nan
    #: signed mean(sr - hr) in percent of the data range
    bias: float = math.nan

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "psnr": json_number(self.psnr),
            "ssim": json_number(self.ssim),
            "gmsd": json_number(self.gmsd),
            "haarpsi": json_number(self.haarpsi),
            "bias_percent": json_number(self.bias),
            "modality": self.modality,
            "data_range": self.data_range,
        }


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population spread; ``inf`` mean and NaN spread when any value is infinite."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return math.nan, math.nan
    if np.isinf(arr).any():
        return float(arr.mean()), math.nan
    return float(arr.mean()), float(arr.std())


@dataclass
class ModelResult:
    """Per-image scores of one model, its forward time, and its gain over the reference."""

    name: str
    arbitrary_scale: bool
    is_baseline: bool
    scores: list[ImageScore] = field(default_factory=list)
    seconds: float = 0.0
    #: mean of per-image (this - reference) differences, filled by the run
    gain: dict[str, float] = field(default_factory=dict)

    def mean(self, metric: str) -> float:
        return _mean_std([getattr(s, metric) for s in self.scores])[0]

    def max_abs_bias(self) -> float:
        """The largest |mean intensity bias| over the images, percent of the data range."""
        values = [abs(s.bias) for s in self.scores if not math.isnan(s.bias)]
        return max(values) if values else math.nan

    def std(self, metric: str) -> float:
        return _mean_std([getattr(s, metric) for s in self.scores])[1]

    @property
    def images_per_s(self) -> float:
        return len(self.scores) / self.seconds if self.seconds > 0 else math.inf

    def as_json(self) -> dict[str, Any]:
        metrics = METRICS
        return {
            "mean": {m: json_number(self.mean(m)) for m in metrics},
            "std": {m: json_number(self.std(m)) for m in metrics},
            "gain_over_baseline": {m: json_number(self.gain.get(m)) for m in metrics},
            "max_abs_bias_percent": json_number(self.max_abs_bias()),
            "images_per_s": json_number(self.images_per_s),
            "arbitrary_scale": self.arbitrary_scale,
            "is_baseline": self.is_baseline,
            "images": [s.as_json() for s in self.scores],
        }


@dataclass
class ImageVisual:
    """What a report shows of one image: LR, each model's SR and the HR, physical units."""

    name: str
    modality: Modality
    normalization: Normalization
    hr: np.ndarray
    lr: np.ndarray
    sr: dict[str, np.ndarray]


@dataclass
class EvalResult:
    """One run: a scale, a degradation, every model's scores (and optionally the images)."""

    scale: tuple[float, float]
    degradation: str
    degradation_config: dict[str, Any]
    seed: int
    shave: tuple[int, int]
    models: dict[str, ModelResult]
    visuals: list[ImageVisual] = field(default_factory=list)
    #: what the outputs were scored against
    reference: str = "HR image"
    #: the model every gain is over: the acquisition's reference (zero-fill, bicubic)
    baseline: str = REFERENCE

    @property
    def data_range(self) -> float | str:
        """The common data range, or ``"per-image"`` when the images differ."""
        ranges = {s.data_range for m in self.models.values() for s in m.scores}
        return ranges.pop() if len(ranges) == 1 else "per-image"

    @property
    def scale_label(self) -> str:
        sy, sx = self.scale
        return f"x{sy:g}" if sy == sx else f"x({sy:g},{sx:g})"

    def as_json(self) -> dict[str, Any]:
        modalities = sorted({s.modality for m in self.models.values() for s in m.scores})
        return {
            "scale": self.scale[0] if self.scale[0] == self.scale[1] else list(self.scale),
            "degradation": self.degradation,
            "data_range": self.data_range,
            "data_range_rules": {m: DATA_RANGE_RULES.get(m, "") for m in modalities},
            "degradation_config": self.degradation_config,
            "seed": self.seed,
            "shave": list(self.shave),
            "metrics_space": "physical units (HU for CT, stored values otherwise)",
            "reference": self.reference,
            "baseline": self.baseline,
            "perceptual": "GMSD (lower is better) and HaarPSI (higher is better) on the "
            "normalised [0, 1] images; bias_percent = mean(sr - hr) / data range * 100",
            "models": {name: r.as_json() for name, r in self.models.items()},
        }
