"""The Python API: ``medsr.load_model(name_or_path)`` and ``medsr.upscale(image, model)``.

>>> import medsr
>>> model = medsr.load_model("bicubic")                     # doctest: +SKIP
>>> sr = medsr.upscale("scan.dcm", model, scale=2.5)        # doctest: +SKIP
>>> medsr.io.write(sr, "scan_x2.5.dcm")                     # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from medsr.errors import ConfigError, InputError
from medsr.image import MedicalImage
from medsr.infer.pipeline import UpscaleSettings, upscale_image
from medsr.infer.runner import ModelRunner
from medsr.infer.weights import WEIGHT_SUFFIXES, load_generator
from medsr.models.base import SRModel
from medsr.zoo.manifest import load_zoo_model, weights_hint, zoo_models

__all__ = ["load_model", "upscale"]


def load_model(
    name_or_path: str | Path, device: str | torch.device = "cpu", zoo_dir: str | Path | None = None
) -> SRModel:
    """A ready generator: a weights file path, a zoo name, or an interpolation baseline.

    An architecture name without shipped weights (``srresnet``) is refused with
    the zoo names that exist and how to pass a weights file; to build a
    random-initialised network use :func:`medsr.models.build`.
    """
    from medsr import models

    text = str(name_or_path)
    path = Path(text)
    if path.exists() or path.suffix.lower() in WEIGHT_SUFFIXES or "/" in text:
        if not path.exists():
            raise InputError(path, "no such weights file")
        return load_generator(path, device=device)
    if text in zoo_models(zoo_dir):
        return load_zoo_model(text, device=device, zoo_dir=zoo_dir)
    if text in models.available():
        model = models.build(text)
        if model.is_baseline:
            return model.to(device)
        raise ConfigError(
            f"{text!r} is an architecture with no weights shipped for it; {weights_hint()}"
        )
    baselines = [n for n in models.available() if models.build(n).is_baseline]
    zoo = ", ".join(zoo_models(zoo_dir)) or "none in this build"
    raise ConfigError(
        f"unknown model {text!r}: not a file, a zoo model ({zoo}) or a baseline "
        f"({', '.join(baselines)})"
    )


def upscale(
    image_or_path: MedicalImage | str | Path,
    model: nn.Module | str | Path | None = None,
    scale: float | tuple[float, float] | None = None,
    spacing: float | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    device: str = "auto",
    precision: str = "fp32",
    batch_size: int | None = None,
    plane: str = "in",
    compile: bool = False,
    consistency: bool = False,
    data_consistency: bool | None = None,
    progress: bool = False,
    self_supervised: bool = False,
    slice_profile: str = "box",
    slice_thickness: float | None = None,
    budget_s: float | None = None,
    acquisition: str | None = None,
    view_step: int | None = None,
) -> MedicalImage:
    """Super-resolve an image (or the file/series at a path); returns the derived image.

    ``scale`` is per axis ``(sy, sx)`` or one number (the slice axis for
    ``plane="through"``); ``spacing`` asks for that output spacing in mm
    instead. ``tile``/``overlap`` in LR pixels (default: tiles only for large
    images). ``model`` is an ``nn.Module`` or anything :func:`load_model` takes; None
    takes the zoo's shipped model for the image's acquisition and the scale
    (:func:`medsr.zoo.choice.choose_model`: an MR image gets the MR k-space model; a file
    without a modality the generic default; else bicubic); ``acquisition`` (``mr-kspace``,
    ``xray-binning``, ``bicubic``, ...) overrides the acquisition the modality implies.
    ``view_step`` (sparse-view CT restorers) says which of the model's views the input kept
    (default: its training step), the geometry of the sinogram-domain consistency step.
    What was done (resampling, fidelity figures) is appended to the result's
    ``history``; :func:`medsr.infer.pipeline.upscale_image` also returns the
    residual map.

    ``self_supervised=True`` learns through-plane SR from the volume's own slices
    (:mod:`medsr.selfsup`) and upscales the slice axis to ``spacing`` (default:
    isotropic at the in-plane spacing); ``slice_profile`` (box or gaussian) and
    ``slice_thickness`` (mm; default DICOM SliceThickness, else the slice spacing)
    describe the acquisition, ``budget_s`` the training seconds (default 120), and
    ``model`` may name a network learnt before (re-applied) or a zoo MIASSR to start from.
    """
    from medsr.io import read

    image = image_or_path if isinstance(image_or_path, MedicalImage) else read(image_or_path)
    if self_supervised:
        return _upscale_self_supervised(
            image, model, scale, spacing, device, batch_size, progress,
            slice_profile, slice_thickness, budget_s,
        )  # fmt: skip
    chosen = None
    if model is None:
        from medsr.zoo.choice import choose_model

        chosen = choose_model(
            scale, modality=image.modality, acquisition=acquisition, spacing=spacing
        )
        model = chosen.name
    module = model if isinstance(model, nn.Module) else load_model(model)
    settings = UpscaleSettings(
        scale=scale,
        spacing=spacing,
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        plane=plane,
        consistency=consistency,
        data_consistency=data_consistency,
        view_step=view_step,
    )
    runner = ModelRunner(module, device=device, precision=precision, compile=compile)
    try:
        result = upscale_image(image, runner, settings, progress=progress)
    finally:
        runner.restore()
    if chosen is not None:
        result.image.history.append(f"note: model {chosen.reason}")
    if result.notes:
        result.image.history.extend(f"note: {n}" for n in result.notes)
    return result.image


def _upscale_self_supervised(
    image: MedicalImage,
    model: nn.Module | str | Path | None,
    scale: float | tuple[float, float] | None,
    spacing: float | None,
    device: str,
    batch_size: int | None,
    progress: bool,
    slice_profile: str,
    slice_thickness: float | None,
    budget_s: float | None,
) -> MedicalImage:
    from medsr.selfsup import (
        DEFAULT_BUDGET_S,
        SelfSupervisedSettings,
        upscale_self_supervised,
    )

    if scale is not None:
        raise ConfigError("self_supervised takes a target spacing in mm, not a scale")
    if isinstance(model, nn.Module):
        raise ConfigError("self_supervised takes a weights file or zoo name as model, not a module")
    settings = SelfSupervisedSettings(
        spacing=spacing,
        slice_thickness=slice_thickness,
        slice_profile=slice_profile,
        budget_s=DEFAULT_BUDGET_S if budget_s is None else budget_s,
        model=model,
        device=device,
        inference_batch=batch_size,
    )
    result = upscale_self_supervised(image, settings, progress=progress)
    result.image.history.extend(f"note: {n}" for n in result.notes)
    return result.image
