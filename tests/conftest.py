"""Shared fixtures: small synthetic images and the bundled samples."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
