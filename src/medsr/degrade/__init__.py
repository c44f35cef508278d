"""Degradations: how an HR image becomes the LR image a model learns to invert."""

from __future__ import annotations
