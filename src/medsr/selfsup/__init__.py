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

The modules follow those steps: :mod:`~medsr.selfsup.profiles` (the acquisition),
:mod:`~medsr.selfsup.pairs`, :mod:`~medsr.selfsup.network` (the filter, the correction,
loading), :mod:`~medsr.selfsup.training`, :mod:`~medsr.selfsup.apply` (one image) and
:mod:`~medsr.selfsup.files` (``medsr upscale --self-supervised``);
:mod:`~medsr.selfsup.settings` holds the options of a run.
"""

from __future__ import annotations

from medsr.selfsup.apply import (
    SelfSupervisedResult,
    apply_through_plane,
    learnt_model_path,
    save_learnt_model,
    upscale_self_supervised,
)
from medsr.selfsup.files import run_files_self_supervised
from medsr.selfsup.network import ThroughPlaneSR, fit_linear_base, load_learnt_model
from medsr.selfsup.pairs import AxisPairs, PairSampler, degrade_along
from medsr.selfsup.profiles import SliceAcquisition, slice_acquisition
from medsr.selfsup.settings import DEFAULT_BUDGET_S, SelfSupervisedSettings
from medsr.selfsup.training import TrainingReport, train_through_plane

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
