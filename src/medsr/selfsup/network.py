"""The through-plane network: a least-squares linear filter per output phase plus a
MIASSR-style correction; its donor features and the learnt network read back from disk."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from medsr.errors import ConfigError, InputError
from medsr.infer.weights import WEIGHT_SUFFIXES, load_generator, read_weights
from medsr.models.miassr import MIASSR, axis_sampling
from medsr.selfsup.pairs import AxisPairs
from medsr.selfsup.settings import SelfSupervisedSettings
from medsr.zoo.manifest import load_zoo_model, zoo_models

__all__ = [
    "MAX_PHASES",
    "METADATA_KEY",
    "ThroughPlaneSR",
    "build_network",
    "fit_linear_base",
    "learnt_metadata",
    "load_donor",
    "load_learnt_model",
    "phase_count",
    "row_sources",
]

#: Metadata key marking a weights file as a network learnt from a scan by self-supervision.
METADATA_KEY = "medsr.selfsup"

#: Phase classes at most: output rows are grouped by their sub-slice offset.
MAX_PHASES = 16


def phase_count(scale: float) -> int:
    """Distinct sub-slice offsets of output rows at ``scale`` (p for a scale p/q), at most 16."""
    return min(len(axis_sampling(64, scale).offsets), MAX_PHASES)


def row_sources(rows: int, scale: float, phases: int) -> tuple[Tensor, Tensor]:
    """For output rows ``i < rows``: the LR row below ``(i + 0.5) / s - 0.5`` (may be -1) and
    the phase class of its fractional offset, ``floor(frac * phases)``."""
    position = (torch.arange(rows, dtype=torch.float64) + 0.5) / scale - 0.5
    source = torch.floor(position + 1e-6)  # 2.9999999 is row 3, at offset 0
    offset = (position - source).clamp_min(0.0)
    phase = torch.floor(offset * phases + 1e-6).clamp(0, phases - 1)
    return source.to(torch.int64), phase.to(torch.int64)


class ThroughPlaneSR(MIASSR):
    """A learnt linear filter per output phase plus an EDSR-lite/Meta-Upscale correction.

    ``sr = base(lr) + meta_upscale(edsr(lr - mean))``: ``base`` is one
    (2K+1) x (2R+1) filter on the LR neighbourhood per phase class of the output
    row, fitted in closed form (least squares over every pair of the volume) before
    training: the optimal linear inverse of the slice profile, gaps and aliasing
    included, where the published cubic skip only interpolates. The correction
    starts at zero (MIASSR's zero-initialised kernel predictor), so the network
    begins as the least-squares filter and training adds what is nonlinear. It runs
    at its one through-plane scale ``(scale, 1)``.
    """

    def __init__(
        self,
        scale: float = 4.0,
        num_blocks: int = 4,
        channels: int = 24,
        mlp_hidden: int = 64,
        taps: tuple[int, int] | list[int] = (3, 3),
        data_mean: float = 0.5,
        in_channels: int = 1,
        out_channels: int = 1,
    ) -> None:
        if not (math.isfinite(scale) and scale > 1.0):
            raise ConfigError(f"through-plane scale must be > 1, got {scale}")
        super().__init__(
            num_blocks=num_blocks,
            channels=channels,
            mlp_hidden=mlp_hidden,
            data_mean=data_mean,
            max_scale=max(4.0, float(math.ceil(scale))),
            default_scale=(scale, 1.0),
            in_channels=in_channels,
            out_channels=out_channels,
            residual=True,  # zero-initialised correction; the skip is our base below
        )
        self.name = "selfsup-through-plane"
        self.arbitrary_scale = False
        self.supported_scales = ((float(scale), 1.0),)
        self.scale = float(scale)
        self.taps = (int(taps[0]), int(taps[1]))
        self.phases = phase_count(scale)
        k, r = self.taps
        self.base_weight = torch.nn.Parameter(torch.zeros(self.phases, 1, 2 * k + 1, 2 * r + 1))
        self.base_bias = torch.nn.Parameter(torch.zeros(self.phases))
        with torch.no_grad():  # cubic-like start until fitted: the nearest LR row
            self.base_weight[:, 0, k, r] = 1.0
        self.config = {
            "scale": self.scale,
            "num_blocks": num_blocks,
            "channels": channels,
            "mlp_hidden": mlp_hidden,
            "taps": list(self.taps),
            "data_mean": float(data_mean),
            "in_channels": in_channels,
            "out_channels": out_channels,
        }
        self.receptive_field = max(self.receptive_field, k + 2, r + 1)

    def neighbourhoods(self, lr: Tensor) -> Tensor:
        """LR padded by K + 1 rows and R columns (replicated), for the base filter."""
        k, r = self.taps
        return torch.nn.functional.pad(lr, (r, r, k + 1, k + 1), mode="replicate")

    def base(self, lr: Tensor, rows: int) -> Tensor:
        """The per-phase linear filter's output, (B, 1, rows, W)."""
        response = torch.nn.functional.conv2d(
            self.neighbourhoods(lr), self.base_weight, self.base_bias
        )  # (B, P, h + 2, W): row j + 1 is centred on LR row j
        source, phase = row_sources(rows, self.scale, self.phases)
        device = lr.device
        return response[:, phase.to(device), source.to(device) + 1, :].unsqueeze(1)

    def upscale(self, lr: Tensor, scale: tuple[float, float]) -> Tensor:
        correction = self.meta_upscale(self.features(lr), scale)
        return correction + self.base(lr, int(correction.shape[-2]))


def fit_linear_base(
    model: ThroughPlaneSR, slices: Tensor, axes: list[AxisPairs], ridge: float = 1e-4
) -> None:
    """Least-squares fit of ``model``'s per-phase base filter on every pair of ``slices``.

    Normal equations per phase, accumulated a few slices at a time (memory bounded),
    ridge-regularised by ``ridge`` times the mean diagonal.
    """
    for pairs in axes:
        if abs(pairs.degradation.through_plane - model.scale) > 1e-6 * model.scale:
            raise ConfigError(
                f"pairs at x{pairs.degradation.through_plane:.6g} do not fit a network "
                f"for x{model.scale:.6g}"
            )
    k, r = model.taps
    taps = (2 * k + 1) * (2 * r + 1)
    gram = torch.zeros(model.phases, taps + 1, taps + 1, dtype=torch.float64)
    cross = torch.zeros(model.phases, taps + 1, dtype=torch.float64)
    chunk = max(1, (1 << 19) // (int(slices.shape[-2]) * int(slices.shape[-1])))
    for pairs in axes:
        planes = slices if pairs.axis == -2 else slices.transpose(-1, -2)
        for first in range(0, planes.shape[0], chunk):
            hr = planes[first : first + chunk].unsqueeze(1).contiguous()
            lr = pairs.degradation.apply(hr, {})
            n, _, h, w = lr.shape
            cols = torch.nn.functional.unfold(model.neighbourhoods(lr), (2 * k + 1, 2 * r + 1))
            cols = cols.view(n, taps, h + 2, w)
            source, phase = row_sources(int(hr.shape[-2]), model.scale, model.phases)
            for p in range(model.phases):
                rows = torch.nonzero(phase == p).flatten()
                if rows.numel() == 0:
                    continue
                x = cols[:, :, source[rows] + 1, :].permute(1, 0, 2, 3).reshape(taps, -1)
                x = torch.cat([x, torch.ones(1, x.shape[1])]).double()
                y = hr[:, 0, rows, :].reshape(-1).double()
                gram[p] += x @ x.T
                cross[p] += x @ y
    eye = torch.eye(taps + 1, dtype=torch.float64)
    scale = gram.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-12)
    solution = torch.linalg.solve(gram + ridge * scale[:, None, None] * eye, cross)
    with torch.no_grad():
        model.base_weight.copy_(solution[:, :taps].view_as(model.base_weight).float())
        model.base_bias.copy_(solution[:, taps].float())


def build_network(
    scale: float, settings: SelfSupervisedSettings, donor: MIASSR | None = None
) -> ThroughPlaneSR:
    """A fresh network for ``(scale, 1)``: the donor's size and EDSR-lite features when a
    MIASSR donor (the zoo's) is given, else ``settings``' size from scratch."""
    if donor is None:
        return ThroughPlaneSR(scale, num_blocks=settings.num_blocks, channels=settings.channels)
    model = ThroughPlaneSR(
        scale,
        num_blocks=int(donor.config["num_blocks"]),
        channels=int(donor.config["channels"]),
        mlp_hidden=int(donor.config.get("mlp_hidden", 64)),
    )
    wanted = ("head.", "blocks.", "fuse.", "data_mean")
    state = {k: v for k, v in donor.state_dict().items() if k.startswith(wanted)}
    model.load_state_dict(state, strict=False)
    return model


def load_donor(source: str | Path) -> MIASSR:
    """A MIASSR (zoo name or weights file) whose features a new network starts from.

    A path is read as a weights file (as :func:`medsr.load_model` reads one), else the
    name is looked up in the zoo; anything else cannot hold MIASSR features.
    """
    text = str(source)
    path = Path(text)
    donor: torch.nn.Module | None = None
    if path.exists() or path.suffix.lower() in WEIGHT_SUFFIXES or "/" in text:
        if not path.exists():
            raise InputError(path, "no such weights file")
        donor = load_generator(path)
    elif text in zoo_models():
        donor = load_zoo_model(text)
    if not isinstance(donor, MIASSR):
        what = text if donor is None else getattr(donor, "name", type(donor).__name__)
        raise ConfigError(
            f"{source}: self-supervised SR can start from a MIASSR's features (the zoo "
            f"'miassr'), not from {what}"
        )
    return donor


def learnt_metadata(model: str | Path | None) -> dict[str, Any] | None:
    """The self-supervision metadata of a weights file, or None (not one, or no file)."""
    if model is None:
        return None
    path = Path(model)
    if not path.is_file() or path.suffix.lower() not in WEIGHT_SUFFIXES:
        return None
    text = read_weights(path).metadata.get(METADATA_KEY)
    if not text:
        return None
    try:
        info = json.loads(text)
    except ValueError:
        raise InputError(path, f"malformed {METADATA_KEY} metadata") from None
    return info if isinstance(info, dict) else {}


def load_learnt_model(path: str | Path) -> tuple[ThroughPlaneSR, dict[str, Any]]:
    """A network learnt by self-supervision and saved, and the metadata stored with it."""
    path = Path(path)
    weights = read_weights(path)
    text = weights.metadata.get(METADATA_KEY)
    if not text or weights.metadata.get("medsr.model") != "selfsup-through-plane":
        raise InputError(
            path,
            "not a network learnt by self-supervised SR (no medsr.selfsup metadata); "
            "leave --model out to learn one from the volume",
        )
    try:
        info = json.loads(text)
        config = json.loads(weights.metadata.get("medsr.config", "{}"))
        model = ThroughPlaneSR(**config)
        model.load_state_dict(weights.state)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise InputError(path, f"malformed self-supervised weights ({exc})") from None
    return model, info
