"""Fidelity of an SR output to its input: re-degradation residual and data consistency.

The residual is ``|degrade(SR) - LR|``: where it is large, the output does not
explain the input, i.e. the model invented or removed detail there. Its RMS is
reported as a percentage of the normalisation's data range.

The data-consistency projection makes ``degrade(SR) = LR`` hold exactly for a
resize degradation ``D = D_y (x) D_x`` (separable, linear; the matrices are
those of :func:`medsr.degrade.resize.imresize`). It is the closed-form limit of
iterative back-projection: the smallest change to SR that satisfies the
constraint, ``SR + P_y (LR - D_y SR D_x^T) P_x^T`` with
``P = D^T (D D^T)^-1``.

For adversarially trained models (zoo ``kind: gan``) the projection is the default
(:func:`wants_data_consistency`): a GAN may invent texture above the input's band, but
after the projection the band the input determines, its mean level included, is the
input's own, so grey levels and HU cannot drift.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from medsr.degrade.resize import resize_weights

#: Degradation names that are a plain imresize with this kernel.
RESIZE_DEGRADATIONS = {
    "bicubic": "cubic",
    "cubic": "cubic",
    "bilinear": "linear",
    "linear": "linear",
    "box": "box",
    "area": "box",
    "lanczos": "lanczos3",
    "lanczos3": "lanczos3",
    "resize": "cubic",
}


def resize_kernel_of(config: dict[str, Any] | str | None) -> str | None:
    """The imresize kernel when a degradation config is a plain resize, else None."""
    if config is None:
        return "cubic"
    if isinstance(config, str):
        return RESIZE_DEGRADATIONS.get(config)
    name = str(config.get("name", config.get("type", "")))
    if name not in RESIZE_DEGRADATIONS:
        return None
    extra = set(config) - {"name", "type", "scale", "kernel", "antialias"}
    if extra:
        return None
    return RESIZE_DEGRADATIONS.get(str(config.get("kernel", "")), RESIZE_DEGRADATIONS[name])


def degradation_kernel(model: nn.Module) -> tuple[str, str | None]:
    """The imresize kernel that re-degrades ``model``'s outputs (its training degradation's
    when that is a plain resize, else cubic), and a note when it differs from training."""
    config = getattr(model, "medsr_degradation", None)
    kernel = resize_kernel_of(config)
    if kernel is not None:
        return kernel, None
    return "cubic", (
        f"the model was trained with the degradation {config}; fidelity is measured against "
        "the bicubic (antialiased imresize) degradation instead"
    )


#: The ``kind`` a zoo manifest entry (or a model's ``medsr_kind`` tag) gives GAN-trained models.
ADVERSARIAL_KIND = "gan"


def model_kind(model: nn.Module) -> str | None:
    """How a loaded model was trained, ``gan`` or ``psnr``: its ``medsr_kind`` tag, else the
    ``kind`` of its zoo manifest entry; None when neither says."""
    kind = getattr(model, "medsr_kind", None)
    zoo_name = getattr(model, "medsr_zoo_name", None)
    if kind is None and zoo_name:
        from medsr.infer.weights import zoo_models

        kind = zoo_models().get(str(zoo_name), {}).get("kind")
    return str(kind).strip().lower() if kind is not None else None


def wants_data_consistency(model: nn.Module, requested: bool | None) -> bool:
    """Whether to apply the data-consistency projection: the user's choice when given;
    otherwise on for adversarially trained models whose training degradation is a plain
    resize (so the projection inverts the right operator), off for the rest, whose pixel
    losses already keep the output close to re-degrading to the input."""
    if requested is not None:
        return bool(requested)
    if model_kind(model) != ADVERSARIAL_KIND:
        return False
    return resize_kernel_of(getattr(model, "medsr_degradation", None)) is not None


@lru_cache(maxsize=8)
def resize_operator(in_len: int, out_len: int, kernel: str) -> tuple[Tensor, Tensor]:
    """One antialiased imresize axis as sparse CSR float32 matrices ``D`` (out, in) and ``D^T``."""
    idx, wts = resize_weights(in_len, out_len, out_len / in_len, kernel, True)
    rows = np.repeat(np.arange(out_len), idx.shape[1])
    index = torch.from_numpy(np.stack([rows, idx.reshape(-1)]))
    values = torch.from_numpy(wts.reshape(-1).astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = torch.sparse_coo_tensor(index, values, (out_len, in_len)).coalesce()
        return d.to_sparse_csr(), d.t().coalesce().to_sparse_csr()


@lru_cache(maxsize=4)
def _gram_inverse(in_len: int, out_len: int, kernel: str) -> Tensor:
    """``(D D^T)^-1`` (out, out), dense float32, computed in float64."""
    d_t = resize_operator(in_len, out_len, kernel)[1].to_dense().double()
    return torch.linalg.inv(d_t.T @ d_t).float()


def _apply_rows(matrix: Tensor, planes: Tensor) -> Tensor:
    """``matrix @ plane`` for every (h, w) plane of (N, C, h, w); ``matrix`` sparse or dense."""
    n, c, h, w = planes.shape
    flat = planes.reshape(n * c, h, w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if matrix.layout == torch.strided:
            out = [matrix @ p for p in flat]
        else:
            out = [torch.sparse.mm(matrix, p.contiguous()) for p in flat]
    return torch.stack(out).reshape(n, c, -1, w)


def _apply_cols(matrix: Tensor, planes: Tensor) -> Tensor:
    """``plane @ matrix^T`` for every plane."""
    return _apply_rows(matrix, planes.transpose(-1, -2)).transpose(-1, -2).contiguous()


def downscale(sr: Tensor, size: tuple[int, int], kernel: str = "cubic") -> Tensor:
    """The resize degradation: antialiased ``imresize(sr, size=size)`` of (N, C, H', W'),
    computed as ``D_y SR D_x^T`` with sparse matrices (same weights, less memory)."""
    out = sr
    if sr.shape[-2] != size[0]:
        out = _apply_rows(resize_operator(int(sr.shape[-2]), size[0], kernel)[0], out)
    if sr.shape[-1] != size[1]:
        out = _apply_cols(resize_operator(int(sr.shape[-1]), size[1], kernel)[0], out)
    return out


def project_consistent(sr: Tensor, lr: Tensor, kernel: str = "cubic") -> Tensor:
    """Closest ``x`` to ``sr`` (N, C, H', W') with ``downscale(x, (H, W)) == lr`` (N, C, H, W):
    ``x = sr + D_y^T G_y R G_x D_x`` with ``R = lr - downscale(sr)``, ``G = (D D^T)^-1``."""
    out_h, out_w = int(sr.shape[-2]), int(sr.shape[-1])
    h, w = int(lr.shape[-2]), int(lr.shape[-1])
    correction = lr - downscale(sr, (h, w), kernel)
    if out_h != h:
        d_t, gram_inv = resize_operator(out_h, h, kernel)[1], _gram_inverse(out_h, h, kernel)
        correction = _apply_rows(d_t, _apply_rows(gram_inv, correction))
    if out_w != w:
        d_t, gram_inv = resize_operator(out_w, w, kernel)[1], _gram_inverse(out_w, w, kernel)
        correction = _apply_cols(d_t, _apply_cols(gram_inv, correction))
    return sr + correction


@dataclass(frozen=True)
class Residual:
    """|degrade(SR) - LR| in [0, 1] units of the data range, and its summary figures."""

    map: np.ndarray
    rms_percent: float
    max_percent: float

    def describe(self) -> str:
        return (
            f"re-degraded output vs input: residual RMS {self.rms_percent:.3g}% of the data "
            f"range (max {self.max_percent:.3g}%)"
        )


def residual_of(redegraded: Tensor, lr: Tensor) -> Residual:
    diff = (redegraded - lr).abs().double()
    rms = float(torch.sqrt((diff**2).mean()))
    return Residual(diff.float().numpy(), 100.0 * rms, 100.0 * float(diff.max()))
