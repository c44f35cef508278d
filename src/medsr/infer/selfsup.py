"""Self-supervised through-plane super-resolution, learnt from each scan itself.

A thick-slice volume (D, H, W) has fine in-plane pixels (dy, dx) and coarse
slices: centres ``dz`` mm apart, each averaging the anatomy under its slice
profile (a box of width ``thickness`` or a Gaussian of that FWHM; a gap when
``thickness < dz``). The volume's own in-plane slices show what the anatomy
looks like at the fine resolution, so training pairs need no external data
(the idea published as SMORE, Zhao et al., IEEE TMI 2021; this is our own
implementation):

1. **pairs**: an in-plane slice is the HR target; its LR input is the same
   slice degraded along one in-plane axis exactly as the scanner degraded z:
   the slice profile integrated over each pixel, sampled every ``dz`` mm
   (:class:`~medsr.degrade.volume.ThickSlice` in pixel units). Both in-plane
   axes give pairs, at random phase (patch origin) and with flips.
2. **anti-aliasing**: a slice gap samples z more coarsely than the profile
   blurs it, so the acquired volume aliases. The pairs are sampled with the
   same gap, so the aliasing is in the training inputs and the network learns
   to undo it together with the blur; no separate filter is needed.
3. **network**: a per-phase linear filter on the LR neighbourhood, fitted in closed
   form by least squares over every pair (the optimal linear inverse of the
   profile and gap, where the usual cubic skip only interpolates), plus a
   MIASSR-style correction (EDSR-lite features + Meta-Upscale) that starts at
   zero and is trained with L1 on patches for a time budget (iterations traded
   for time; cosine learning rate over the budget). Its features start from the
   zoo's MIASSR when the zoo ships it, else from scratch.
4. **inference**: the network upsamples the slice axis of every (D, W) plane
   and of every (D, H) plane; the two results are averaged, resampled to the
   requested slice count when the network's native grid differs, and mapped
   back to physical units.

The learnt network is saved as safetensors with the acquisition in its metadata,
so ``--model`` re-applies it without training.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from medsr.degrade.resize import imresize
from medsr.degrade.volume import ThickSlice
from medsr.errors import ConfigError, InputError
from medsr.image import MedicalImage
from medsr.models.miassr import MIASSR

__all__ = [
    "DEFAULT_BUDGET_S",
    "AxisPairs",
    "PairSampler",
    "SelfSupervisedResult",
    "SelfSupervisedSettings",
    "SliceAcquisition",
    "ThroughPlaneSR",
    "TrainingReport",
    "apply_through_plane",
    "degrade_along",
    "fit_linear_base",
    "learnt_model_path",
    "load_learnt_model",
    "run_files_self_supervised",
    "save_learnt_model",
    "slice_acquisition",
    "train_through_plane",
    "upscale_self_supervised",
]

Log = Callable[[str], None]

#: Training seconds by default: with inference, a 256x256x40 volume takes a few minutes
#: on two CPU cores.
DEFAULT_BUDGET_S = 120.0
#: Iterations at most, whatever the budget (a GPU reaches it in well under the budget).
MAX_ITERATIONS = 5000
#: Iterations over which the learning rate rises linearly to its value.
WARM_UP_ITERATIONS = 20
#: Patch centres kept at most (a random subset of the foreground pixels).
MAX_CENTRES = 1 << 20
#: Unit intensity above which a pixel counts as foreground when patches are drawn.
FOREGROUND = 0.05
#: Metadata key marking a weights file as learnt from a scan by this module.
METADATA_KEY = "medsr.selfsup"
PROFILES = ("box", "gaussian")


# ----------------------------------------------------------------------------- acquisition
@dataclass(frozen=True)
class SliceAcquisition:
    """How a volume's slices were acquired along z, in mm.

    ``spacing_mm`` between slice centres; ``thickness_mm`` the width of the box
    profile or the FWHM of the Gaussian one. ``gap_mm = spacing - thickness``
    when positive.
    """

    spacing_mm: float
    thickness_mm: float
    profile: str = "box"

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ConfigError(f"unknown slice profile {self.profile!r}; choose box or gaussian")
        for name, value in (("slice spacing", self.spacing_mm), ("thickness", self.thickness_mm)):
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a positive number of mm, got {value}")

    @property
    def gap_mm(self) -> float:
        return max(self.spacing_mm - self.thickness_mm, 0.0)

    def degradation(self, pixel_mm: float) -> ThickSlice:
        """The acquisition in units of an in-plane pixel of ``pixel_mm``, unclipped."""
        return ThickSlice(
            scale=self.spacing_mm / pixel_mm,
            thickness=self.thickness_mm / pixel_mm,
            profile=self.profile,
            clip=False,
        )

    def describe(self) -> str:
        gap = f", gap {self.gap_mm:.3g} mm" if self.gap_mm > 0 else ""
        what = "box" if self.profile == "box" else "Gaussian FWHM"
        return f"slices {self.spacing_mm:.4g} mm apart, {what} {self.thickness_mm:.4g} mm{gap}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "spacing_mm": self.spacing_mm,
            "thickness_mm": self.thickness_mm,
            "profile": self.profile,
        }


def header_thickness(image: MedicalImage) -> float | None:
    """DICOM SliceThickness of the first slice (or the enhanced shared measures), if stated."""
    for ds in image.source.datasets[:1]:
        candidates = [ds]
        shared = ds.get("SharedFunctionalGroupsSequence")
        if shared and shared[0].get("PixelMeasuresSequence"):
            candidates.append(shared[0].PixelMeasuresSequence[0])
        for item in candidates:
            value = item.get("SliceThickness")
            try:
                thickness = float(value) if value not in (None, "") else math.nan
            except (TypeError, ValueError):
                continue
            if math.isfinite(thickness) and thickness > 0:
                return thickness
    return None


def slice_acquisition(
    image: MedicalImage, thickness_mm: float | None = None, profile: str = "box"
) -> SliceAcquisition:
    """The acquisition of ``image``: the given thickness, else DICOM SliceThickness, else the
    slice spacing (contiguous slices)."""
    if image.ndim != 3 or image.shape[0] < 2:
        raise ConfigError(
            f"{image.source.path or 'the image'}: self-supervised through-plane SR needs a "
            f"volume of at least 2 slices, got shape {image.shape}"
        )
    if not image.spacing_known:
        raise ConfigError(
            f"{image.source.path or 'the image'} has no known voxel spacing; self-supervised "
            "SR needs the slice and pixel spacing in mm"
        )
    dz = image.spacing_mm[0]
    if thickness_mm is None:
        thickness_mm = header_thickness(image) or dz
    return SliceAcquisition(float(dz), float(thickness_mm), profile)


# ----------------------------------------------------------------------------- settings
@dataclass
class SelfSupervisedSettings:
    """Options of a self-supervised run (CLI flags and API keywords)."""

    #: target slice spacing in mm (default: the mean in-plane spacing, isotropic voxels)
    spacing: float | None = None
    slice_thickness: float | None = None
    slice_profile: str = "box"
    #: training seconds of the correction network; 0: the least-squares filter alone
    budget_s: float = DEFAULT_BUDGET_S
    max_iterations: int = MAX_ITERATIONS
    #: a learnt model to re-apply, or a MIASSR (zoo name or file) to start from
    model: str | Path | None = None
    #: without ``model``: the zoo MIASSR whose features the network starts from, when the
    #: zoo ships it (None: from scratch, at ``num_blocks`` x ``channels``)
    start_from: str | None = "miassr"
    num_blocks: int = 4
    channels: int = 24
    patch: int = 96
    batch_size: int = 8
    learning_rate: float = 1e-3
    seed: int = 0
    device: str = "auto"
    inference_batch: int | None = None

    def check(self) -> None:
        if self.spacing is not None and not (math.isfinite(self.spacing) and self.spacing > 0):
            raise ConfigError(f"target spacing must be positive mm, got {self.spacing}")
        if self.slice_thickness is not None and not (
            math.isfinite(self.slice_thickness) and self.slice_thickness > 0
        ):
            raise ConfigError(f"--slice-thickness must be positive mm, got {self.slice_thickness}")
        if self.slice_profile not in PROFILES:
            raise ConfigError(
                f"unknown slice profile {self.slice_profile!r}; choose box or gaussian"
            )
        if not (math.isfinite(self.budget_s) and self.budget_s >= 0):
            raise ConfigError(
                f"--budget-s must be a non-negative number of seconds, got {self.budget_s}"
            )
        if self.patch < 16 or self.batch_size < 1 or self.max_iterations < 0:
            raise ConfigError("patch must be >= 16 pixels, batch size >= 1, iterations >= 0")


# ----------------------------------------------------------------------------- pairs
@dataclass(frozen=True)
class AxisPairs:
    """Pairs degraded along one in-plane axis: the degradation and the network's scale."""

    axis: int  # -2: rows (H) play the slice axis; -1: columns (W) do
    degradation: ThickSlice

    @property
    def scale(self) -> tuple[float, float]:
        return (self.degradation.through_plane, 1.0)

    @property
    def margin(self) -> int:
        """HR rows at each end of a patch left out of the loss: the profile reaches past them."""
        deg = self.degradation
        return math.ceil(max(deg.thickness, deg.through_plane) / 2.0) + 1


def degrade_along(slices: Tensor, pairs: AxisPairs) -> Tensor:
    """LR of HR in-plane slices (N, 1, H, W): the slice profile applied along ``pairs.axis``.

    The result has the slice axis as rows: (N, 1, ceil(H/s), W) for axis -2, and the
    transposed (N, 1, ceil(W/s), H) for axis -1, the layout the network sees.
    """
    x = slices if pairs.axis == -2 else slices.transpose(-1, -2)
    return pairs.degradation.apply(x, {})


class PairSampler:
    """Random (LR, HR) patch pairs from a volume's in-plane slices, degraded along z's profile.

    ``slices`` (N, H, W) in [0, 1]. Patches are centred on foreground pixels (unit
    intensity above :data:`FOREGROUND`), their origin random so the LR sampling
    phase varies, flipped at random. Each batch uses one axis (one scale).
    """

    def __init__(
        self,
        slices: Tensor,
        axes: list[AxisPairs],
        patch: int,
        generator: torch.Generator,
    ) -> None:
        if slices.ndim != 3:
            raise ConfigError(f"PairSampler takes (N, H, W) slices, got {tuple(slices.shape)}")
        self.slices = slices.float().contiguous()
        self.axes = axes
        self.generator = generator
        n, h, w = self.slices.shape
        self.patch_hw = [self._patch_size(a, patch, h, w) for a in axes]
        flat = torch.nonzero(self.slices.reshape(-1) > FOREGROUND).flatten()
        if flat.numel() > MAX_CENTRES:  # a random subset bounds the memory on big volumes
            keep = torch.randperm(flat.numel(), generator=generator)[:MAX_CENTRES]
            flat = flat[keep]
        self.foreground = flat if flat.numel() >= 16 else torch.arange(n * h * w)

    @staticmethod
    def _patch_size(pairs: AxisPairs, patch: int, h: int, w: int) -> tuple[int, int]:
        """(rows along the slice axis, columns) of the HR patch, within the slice."""
        along, across = (h, w) if pairs.axis == -2 else (w, h)
        s = pairs.degradation.through_plane
        rows = max(patch, math.ceil(4 * s) + 2 * pairs.margin)
        return min(rows, along), min(patch, across)

    def _randint(self, high: int) -> int:
        return int(torch.randint(0, max(high, 1), (1,), generator=self.generator))

    def sample(self, batch: int) -> tuple[Tensor, Tensor, AxisPairs]:
        """(lr, hr, axis): lr (B, 1, rows/s, cols), hr (B, 1, rows, cols), slice axis as rows."""
        index = self._randint(len(self.axes))
        pairs = self.axes[index]
        rows, cols = self.patch_hw[index]
        _, h, w = self.slices.shape
        picks = self.foreground[
            torch.randint(0, len(self.foreground), (batch,), generator=self.generator)
        ]
        patches = []
        for flat in picks.tolist():
            n, rem = divmod(flat, h * w)
            y, x = divmod(rem, w)
            plane = self.slices[n] if pairs.axis == -2 else self.slices[n].T
            cy, cx = (y, x) if pairs.axis == -2 else (x, y)
            top = min(max(cy - rows // 2 + self._randint(3) - 1, 0), plane.shape[0] - rows)
            left = min(max(cx - cols // 2, 0), plane.shape[1] - cols)
            patch = plane[top : top + rows, left : left + cols]
            flips = [d for d in (0, 1) if self._randint(2)]
            patches.append(patch.flip(flips) if flips else patch)
        hr = torch.stack(patches)[:, None]
        return pairs.degradation.apply(hr, {}), hr, pairs


# ----------------------------------------------------------------------------- network
#: Phase classes at most: output rows are grouped by their sub-slice offset.
MAX_PHASES = 16


def phase_count(scale: float) -> int:
    """Distinct sub-slice offsets of output rows at ``scale`` (p for a scale p/q), at most 16."""
    from medsr.models.miassr import axis_sampling

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
    """A MIASSR (zoo name or weights file) whose features a new network starts from."""
    from medsr.infer.api import load_model

    donor = load_model(source)
    if not isinstance(donor, MIASSR):
        raise ConfigError(
            f"{source}: self-supervised SR can start from a MIASSR's features (the zoo "
            f"'miassr'), not from {getattr(donor, 'name', type(donor).__name__)}"
        )
    return donor


def load_learnt_model(path: str | Path) -> tuple[ThroughPlaneSR, dict[str, Any]]:
    """A network this module learnt and saved, and the metadata stored with it."""
    import json

    from medsr.infer.weights import read_weights

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


@dataclass
class TrainingReport:
    """What the training did, and the L1 (unit range) on fixed pairs before and after."""

    iterations: int = 0
    seconds: float = 0.0
    device: str = "cpu"
    batch_size: int = 0
    patch: tuple[int, int] = (0, 0)
    pairs_psnr_cubic: float = math.nan
    pairs_psnr_linear: float = math.nan
    pairs_psnr_model: float = math.nan
    stopped_by: str = "budget"
    #: the trained correction did not beat the least-squares filter and was dropped
    kept_filter: bool = False

    def describe(self) -> str:
        if self.iterations == 0:
            return (
                "no network training (budget 0): the least-squares filter alone; PSNR on "
                f"fixed training pairs: cubic {self.pairs_psnr_cubic:.2f} dB, filter "
                f"{self.pairs_psnr_linear:.2f} dB"
            )
        rows, cols = self.patch
        if self.kept_filter:
            return (
                f"trained {self.iterations} iterations in {self.seconds:.0f} s on {self.device}, "
                "but the network did not beat the least-squares filter on fixed training pairs "
                f"({self.pairs_psnr_linear:.2f} dB; cubic {self.pairs_psnr_cubic:.2f} dB): "
                "the filter alone is applied"
            )
        return (
            f"trained {self.iterations} iterations in {self.seconds:.0f} s on {self.device} "
            f"(batch {self.batch_size} of {rows}x{cols} px, stopped by the {self.stopped_by}); "
            f"PSNR on fixed training pairs: cubic {self.pairs_psnr_cubic:.2f} dB, "
            f"least-squares filter {self.pairs_psnr_linear:.2f} dB, "
            f"network {self.pairs_psnr_model:.2f} dB"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "iterations": self.iterations,
            "seconds": round(self.seconds, 1),
            "device": self.device,
            "batch_size": self.batch_size,
            "patch": list(self.patch),
            "pairs_psnr_cubic": self.pairs_psnr_cubic,
            "pairs_psnr_linear": self.pairs_psnr_linear,
            "pairs_psnr_model": self.pairs_psnr_model,
        }


def _pairs_psnr(
    model: torch.nn.Module | None,
    batches: list[tuple[Tensor, Tensor, AxisPairs]],
    device: torch.device,
) -> float:
    """PSNR (unit data range) over fixed pairs, margins excluded; cubic when ``model`` is None."""
    total, count = 0.0, 0
    with torch.no_grad():
        for lr, hr, pairs in batches:
            lr_d = lr.to(device)
            sr = (
                imresize(lr_d, scale=pairs.scale, kernel="cubic")
                if model is None
                else model(lr_d, pairs.scale)
            )
            m = pairs.margin
            diff = sr[..., m : hr.shape[-2] - m, :].cpu() - hr[..., m:-m, :]
            total += float(diff.pow(2).sum())
            count += diff.numel()
    return 10.0 * math.log10(1.0 / max(total / max(count, 1), 1e-20))


def train_through_plane(
    model: ThroughPlaneSR,
    sampler: PairSampler,
    settings: SelfSupervisedSettings,
    device: torch.device,
    progress: bool = False,
) -> TrainingReport:
    """L1 training on sampled pairs until ``settings.budget_s`` seconds or the iteration cap.

    The least-squares base filter stays as fitted; the correction network learns, after a
    linear warm-up of the learning rate over the first iterations. If the network ends
    worse than the filter alone on fixed pairs, the filter alone is kept (the correction
    is reset to zero).
    The learning rate follows a cosine from ``learning_rate`` to 1% of it over the
    budget's elapsed fraction (or the iteration fraction, whichever is larger).
    """
    from tqdm import tqdm

    report = TrainingReport(device=str(device), batch_size=settings.batch_size)
    fixed = [sampler.sample(settings.batch_size) for _ in range(4)]
    report.patch = (int(fixed[0][1].shape[-2]), int(fixed[0][1].shape[-1]))
    model.to(device)
    model.eval()
    report.pairs_psnr_cubic = _pairs_psnr(None, fixed, device)
    report.pairs_psnr_linear = _pairs_psnr(model, fixed, device)
    if settings.budget_s <= 0 or settings.max_iterations == 0:
        report.pairs_psnr_model = _pairs_psnr(model, fixed, device)
        return report
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    trainable = [p for n, p in model.named_parameters() if not n.startswith("base_")]
    optimiser = torch.optim.Adam(trainable, lr=settings.learning_rate)
    budget = settings.budget_s
    bar = tqdm(
        total=math.ceil(budget),
        unit="s",
        desc="self-supervised training",
        disable=not progress,
        leave=False,
    )
    model.train()
    start = time.perf_counter()
    shown = 0
    loss_value = math.nan
    try:
        while True:
            elapsed = time.perf_counter() - start
            done = max(elapsed / budget, report.iterations / settings.max_iterations)
            if done >= 1.0:
                report.stopped_by = "budget" if elapsed >= budget else "iteration cap"
                break
            warm_up = min(1.0, (report.iterations + 1) / WARM_UP_ITERATIONS)
            cosine = 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * done))
            rate = settings.learning_rate * warm_up * cosine
            for group in optimiser.param_groups:
                group["lr"] = rate
            lr, hr, pairs = sampler.sample(settings.batch_size)
            lr, hr = lr.to(device, non_blocking=True), hr.to(device, non_blocking=True)
            sr = model(lr, pairs.scale)
            m = pairs.margin
            loss = (sr[..., m : hr.shape[-2] - m, :] - hr[..., m:-m, :]).abs().mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            report.iterations += 1
            if report.iterations % 10 == 0:
                loss_value = float(loss.detach())
            now = int(time.perf_counter() - start)
            if now > shown:
                bar.update(min(now, bar.total) - shown)
                shown = min(now, bar.total)
                bar.set_postfix(it=report.iterations, l1=f"{loss_value:.4f}")
    finally:
        bar.close()
        model.eval()
    report.seconds = time.perf_counter() - start
    report.pairs_psnr_model = _pairs_psnr(model, fixed, device)
    if report.pairs_psnr_model < report.pairs_psnr_linear:
        model.load_state_dict(initial)
        report.kept_filter = True
        report.pairs_psnr_model = report.pairs_psnr_linear
    return report


# ----------------------------------------------------------------------------- inference
def _resample_rows(planes: Tensor, rows: int) -> Tensor:
    """Cubic (antialiased when shrinking) resize of the row axis to ``rows``, FOV kept."""
    if planes.shape[-2] == rows:
        return planes
    return imresize(planes, size=(rows, int(planes.shape[-1])), kernel="cubic")


def apply_through_plane(
    model: torch.nn.Module,
    unit: Tensor,
    scales: tuple[float, float],
    depth: int,
    device: str | torch.device = "auto",
    batch_size: int | None = None,
    progress: bool = False,
) -> Tensor:
    """Upsample the slice axis of a [0, 1] volume (D, H, W) to ``depth`` slices.

    The network runs on every (D, W) plane at ``(scales[0], 1)`` and on every (D, H)
    plane at ``(scales[1], 1)``; both results are resampled to ``depth`` rows when the
    network's grid differs, and averaged. Returns (depth, H, W) float32 on the CPU.
    """
    from medsr.infer.pipeline import upscale_planes
    from medsr.infer.runner import ModelRunner, ScalePlan

    runner = ModelRunner(model, device=device)
    try:
        along_w = unit.permute(1, 0, 2).unsqueeze(1)  # (H, 1, D, W)
        out = upscale_planes(
            runner,
            along_w,
            ScalePlan((scales[0], 1.0), (scales[0], 1.0)),
            None,
            None,
            batch_size,
            progress,
        )
        result = _resample_rows(out, depth)[:, 0].permute(1, 0, 2).contiguous()
        del out
        along_h = unit.permute(2, 0, 1).unsqueeze(1)  # (W, 1, D, H)
        out = upscale_planes(
            runner,
            along_h,
            ScalePlan((scales[1], 1.0), (scales[1], 1.0)),
            None,
            None,
            batch_size,
            progress,
        )
        result += _resample_rows(out, depth)[:, 0].permute(1, 2, 0)
    finally:
        runner.restore()
    return result.mul_(0.5)


# ----------------------------------------------------------------------------- image
@dataclass
class SelfSupervisedResult:
    """The upscaled image, the network that made it, and what was done."""

    image: MedicalImage
    model: ThroughPlaneSR
    acquisition: SliceAcquisition
    report: TrainingReport
    pixel_mm: tuple[float, float] = (1.0, 1.0)
    notes: list[str] = field(default_factory=list)
    trained: bool = True

    def metadata(self) -> dict[str, Any]:
        """What is stored beside the weights so a re-application knows its origin."""
        return {
            METADATA_KEY: {
                "acquisition": self.acquisition.as_dict(),
                "pixel_mm": list(self.pixel_mm),
                "source": self.image.source.path,
                "training": self.report.as_dict(),
            }
        }


def _target_depth(image: MedicalImage, spacing: float | None) -> tuple[int, float]:
    """(output slice count, target spacing mm): isotropic at the mean in-plane spacing by
    default; the field of view along z is kept, the count chosen as for any upscale
    (:func:`~medsr.infer.pipeline.count_for_spacing`)."""
    from medsr.infer.pipeline import count_for_spacing

    dz, dy, dx = image.spacing_mm
    goal = spacing if spacing is not None else 0.5 * (dy + dx)
    if dz / goal <= 1.0 + 1e-6:
        raise ConfigError(
            f"{image.source.path or 'the image'}: slices are {dz:.4g} mm apart, already at or "
            f"finer than {goal:.4g} mm; nothing to upscale through-plane"
        )
    return count_for_spacing(image.shape[0], dz, goal), goal


def _snap(scale: float) -> float:
    """``scale`` rounded to 1/1000 when within 1e-6 of it: header spacings stored in float32
    (3.0000000477 mm) should not turn a x3 into a x3.00000001."""
    snapped = round(scale * 1000.0) / 1000.0
    return snapped if abs(scale - snapped) <= 1e-6 * scale else scale


def _zoo_has(name: str | Path) -> bool:
    from medsr.infer.weights import zoo_models

    return str(name) in zoo_models()


def _learnt_metadata(model: str | Path | None) -> dict[str, Any] | None:
    """The self-supervision metadata of a weights file, or None (not one, or no file)."""
    import json

    from medsr.infer.weights import WEIGHT_SUFFIXES, read_weights

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


def upscale_self_supervised(
    image: MedicalImage,
    settings: SelfSupervisedSettings | None = None,
    progress: bool = False,
    log: Log | None = None,
) -> SelfSupervisedResult:
    """Learn through-plane SR from ``image``'s own slices and apply it; see the module doc."""
    from medsr.infer.runner import resolve_device

    settings = settings or SelfSupervisedSettings()
    settings.check()
    notes: list[str] = []

    def note(text: str) -> None:
        notes.append(text)
        if log is not None:
            log(text)

    acquisition = slice_acquisition(image, settings.slice_thickness, settings.slice_profile)
    depth, goal = _target_depth(image, settings.spacing)
    _, dy, dx = image.spacing_mm
    device = resolve_device(settings.device)
    note(f"{acquisition.describe()}; in-plane {dy:.4g} x {dx:.4g} mm; target {goal:.4g} mm")

    scale = _snap(acquisition.spacing_mm / (0.5 * (dy + dx)))
    if abs(dy - dx) > 0.01 * max(dy, dx):
        note(
            f"pixels are {dy:.4g} x {dx:.4g} mm: both in-plane axes are treated as "
            f"{0.5 * (dy + dx):.4g} mm for the pairs"
        )
    norm = image.normalization()
    unit = torch.from_numpy(np.ascontiguousarray(norm.to_unit(image.pixels), dtype=np.float32))
    learnt = _learnt_metadata(settings.model)
    if learnt is not None:
        assert settings.model is not None
        model, _ = load_learnt_model(settings.model)
        if abs(model.scale - scale) > 1e-3 * scale:
            raise ConfigError(
                f"{settings.model} was learnt for a through-plane factor {model.scale:.4g}; "
                f"this volume needs {scale:.4g} (learn a new one by leaving --model out)"
            )
        source = learnt.get("source") or "another scan"
        note(f"re-applying the network learnt from {source}; no training")
        report = TrainingReport(device=str(device))
    else:
        donor, start_from = None, "from scratch"
        source = settings.model if settings.model is not None else settings.start_from
        if source is not None and (settings.model is not None or _zoo_has(source)):
            donor = load_donor(source)
            start_from = f"starting from the features of {source}"
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            model = build_network(scale, settings, donor)
        pixel = acquisition.spacing_mm / scale  # the mean in-plane pixel, up to snapping
        axes = [
            AxisPairs(-2, acquisition.degradation(pixel)),
            AxisPairs(-1, acquisition.degradation(pixel)),
        ]
        started = time.perf_counter()
        fit_linear_base(model, unit, axes)
        note(
            f"learning from the volume's own {image.shape[0]} in-plane slices, degraded along "
            f"each in-plane axis: least-squares filter fitted in "
            f"{time.perf_counter() - started:.0f} s; network {start_from}, budget "
            f"{settings.budget_s:g} s"
        )
        generator = torch.Generator().manual_seed(settings.seed)
        sampler = PairSampler(unit, axes, settings.patch, generator)
        report = train_through_plane(model, sampler, settings, device, progress)
        note(report.describe())
        if report.pairs_psnr_model < report.pairs_psnr_cubic:
            note("warning: the learnt network is worse than cubic on its own training pairs")
    scales = (scale, scale)
    start = time.perf_counter()
    sr = apply_through_plane(model, unit, scales, depth, device, settings.inference_batch, progress)
    note(
        f"applied to {image.shape[1]} (D, W) and {image.shape[2]} (D, H) planes and averaged "
        f"in {time.perf_counter() - start:.0f} s: {image.shape[0]} -> {depth} slices"
    )
    pixels = norm.from_unit(sr.numpy()).astype(np.float32, copy=False)
    del sr
    description = (
        f"medsr self-supervised through-plane SR ({acquisition.describe()}) to "
        f"{image.spacing_mm[0] * image.shape[0] / depth:.4g} mm slices"
    )
    derived = image.with_pixels(pixels, description)
    return SelfSupervisedResult(
        derived, model, acquisition, report, (dy, dx), notes, learnt is None
    )


def learnt_model_path(output: Path) -> Path:
    """Where the learnt network goes beside an output file or series folder."""
    from medsr.io.core import full_suffix, stem

    suffix = full_suffix(output)
    base = stem(output) if suffix else output.name
    return output.with_name(f"{base}_selfsup.safetensors")


def save_learnt_model(result: SelfSupervisedResult, path: Path) -> Path:
    """The learnt network as safetensors, re-appliable with ``--model``."""
    from medsr.infer.weights import save_generator

    return save_generator(result.model, path, extra_metadata=result.metadata())


def run_files_self_supervised(
    inputs: list[str | Path],
    output: str | Path,
    settings: SelfSupervisedSettings,
    tag: str = "_sr-selfsup",
    progress: bool = True,
    log: Log = print,
    overwrite: bool = False,
) -> list[Path]:
    """``medsr upscale --self-supervised``: learn from and upscale each volume; the output
    in the input's format (geometry updated) and the learnt network beside it. Existing
    outputs are replaced only with ``overwrite``."""
    from medsr.infer.pipeline import _keep_format, collect_inputs, fit_to_source, output_paths
    from medsr.io import read, write

    settings.check()
    output = Path(output)
    items = collect_inputs(inputs)
    outs = output_paths(items, output, tag)
    written: list[Path] = []
    for item, out in zip(items, outs):
        image = read(item.path)
        out = _keep_format(out, image, explicit=len(items) == 1 and out == output)
        if out.resolve() == item.path.resolve():
            raise InputError(out, "is the input; refusing to overwrite it")
        if out.exists() and not overwrite:
            raise InputError(out, "already exists; refusing to replace it (add --overwrite)")
        if image.ndim != 3:
            raise InputError(item.path, "is a 2-D image; --self-supervised needs a volume")
        result = upscale_self_supervised(image, settings, progress=progress, log=log)
        fitted, note = fit_to_source(result.image)
        if note:
            log(note)
        path = write(fitted, out)
        written.append(path)
        sp_in = " x ".join(f"{s:.4g}" for s in image.spacing_mm)
        sp_out = " x ".join(f"{s:.4g}" for s in result.image.spacing_mm)
        log(f"{item.path} {image.shape} @ {sp_in} mm -> {path} {result.image.shape} @ {sp_out} mm")
        if result.trained:
            weights = save_learnt_model(result, learnt_model_path(path))
            written.append(weights)
            log(f"  learnt network: {weights} (re-apply with --self-supervised --model {weights})")
    return written
