"""Evaluation: degrade, super-resolve and score against baselines; the HTML report."""

from __future__ import annotations
