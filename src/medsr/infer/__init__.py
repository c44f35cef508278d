"""Inference: tiled upscaling of files and images, safe weights and the zoo, ONNX export.

``medsr.load_model`` and ``medsr.upscale`` (in :mod:`medsr.infer.api`) are the
entry points; :mod:`~medsr.infer.pipeline` runs files, folders and series,
:mod:`~medsr.infer.tiling` blends tiles, :mod:`~medsr.infer.weights` loads
weights without running pickled code, :mod:`~medsr.infer.export` writes ONNX.
"""

from __future__ import annotations
