"""Frechet Inception Distance: from features, or from two image sets and a local
InceptionV3 weights file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from medsr.errors import ConfigError
from medsr.metrics.inception import InceptionV3Pool, load_inception

__all__ = ["fid", "fid_from_features", "inception_features"]


def fid_from_features(feats_a: np.ndarray | Tensor, feats_b: np.ndarray | Tensor) -> float:
    """Frechet distance between Gaussians fitted to two sets of (N, F) feature vectors.

    ``FID = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})``. The trace of the
    matrix square root is computed as the sum of square roots of the eigenvalues
    of ``S_a^{1/2} S_b S_a^{1/2}`` (symmetric, positive semi-definite), which is
    exact and avoids the complex round-off of a general ``sqrtm``.
    """
    a = np.asarray(feats_a.detach().cpu() if isinstance(feats_a, Tensor) else feats_a, np.float64)
    b = np.asarray(feats_b.detach().cpu() if isinstance(feats_b, Tensor) else feats_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ConfigError(
            f"FID needs two (N, F) feature arrays with the same F; got {a.shape} and {b.shape}"
        )
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ConfigError("FID needs at least two feature vectors per set")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a = np.cov(a, rowvar=False)
    cov_b = np.cov(b, rowvar=False)
    eig_a, vec_a = np.linalg.eigh(cov_a)
    root_a = (vec_a * np.sqrt(np.clip(eig_a, 0.0, None))) @ vec_a.T
    middle = root_a @ cov_b @ root_a
    eig_mid = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_root = float(np.sqrt(np.clip(eig_mid, 0.0, None)).sum())
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_root)


@torch.no_grad()
def inception_features(
    model: InceptionV3Pool, images: Iterable[Tensor], batch_size: int = 16
) -> np.ndarray:
    """(N, 2048) pool features of [0, 1] images given as (C, H, W) or (B, C, H, W) tensors."""
    device = next(model.parameters()).device
    rows: list[np.ndarray] = []
    pending: list[Tensor] = []

    def flush() -> None:
        if pending:
            batch = torch.cat(pending).to(device=device, dtype=torch.float32)
            rows.append(model(batch).double().cpu().numpy())
            pending.clear()

    for item in images:
        pending.append(item[None] if item.ndim == 3 else item)
        if sum(t.shape[0] for t in pending) >= batch_size:
            flush()
    flush()
    if not rows:
        raise ConfigError("FID needs at least two images per set; got none")
    return np.concatenate(rows)


def fid(
    images_a: Iterable[Tensor],
    images_b: Iterable[Tensor],
    weights: str | Path | None,
    option: str = "--fid-weights",
) -> float:
    """Frechet Inception Distance between two image sets, from a local InceptionV3 file."""
    model = load_inception(weights, option)
    return fid_from_features(
        inception_features(model, images_a), inception_features(model, images_b)
    )
