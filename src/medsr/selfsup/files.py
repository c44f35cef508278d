"""``medsr upscale --self-supervised``: each volume read, learnt from, upscaled and written
in its own format, with the learnt network beside it."""

from __future__ import annotations

from pathlib import Path

from medsr.errors import InputError
from medsr.infer.files import (
    check_output,
    collect_inputs,
    fit_to_source,
    keep_format,
    output_paths,
)
from medsr.io import read, write
from medsr.selfsup.apply import Log, learnt_model_path, save_learnt_model, upscale_self_supervised
from medsr.selfsup.settings import SelfSupervisedSettings

__all__ = ["run_files_self_supervised"]


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
    settings.check()
    output = Path(output)
    items = collect_inputs(inputs)
    outs = output_paths(items, output, tag)
    written: list[Path] = []
    for item, out in zip(items, outs):
        image = read(item.path)
        out = keep_format(out, image, explicit=len(items) == 1 and out == output)
        check_output(out, item.path, overwrite)
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
