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

For a model whose output sits on the DFT grid of its input (``grid == "dft"``: a
zero-fill-skip model for MR k-space acquisitions) the forward model is the acquisition's
own, k-space truncation (:data:`KSPACE`, ``mr-kspace`` without noise): the residual is
``|mr-kspace(SR) - LR|`` and the projection replaces the centre of SR's k-space with the
measured LR's (:func:`project_kspace`). The magnitude is taken about ``zero``, the
[0, 1] value of no signal (physical 0 under the image's normalisation), so that values
below the normalisation's low end are not folded up. Other models keep the imresize
operator above.

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

from medsr.degrade.mr import kspace_crop
from medsr.degrade.resize import resize_weights
from medsr.infer.sinogram import sparse_views_of

#: The forward model named where an imresize kernel is otherwise: MR k-space truncation.
KSPACE = "kspace"

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
    """The forward model that re-degrades ``model``'s outputs, and a note when it differs
    from training: :data:`KSPACE` for a model on the DFT grid (``model.grid == "dft"``),
    else the imresize kernel of its training degradation when that is a plain resize,
    else cubic."""
    config = getattr(model, "medsr_degradation", None)
    if getattr(model, "grid", "area") == "dft":
        name = config if isinstance(config, str | None) else config.get("name")
        if name in (None, "mr-kspace"):
            return KSPACE, None
        return KSPACE, (
            f"the model (zero-fill skip, DFT grid) was trained with the degradation {config}; "
            "fidelity is measured against the mr-kspace forward model instead"
        )
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
        from medsr.zoo.manifest import zoo_models

        kind = zoo_models().get(str(zoo_name), {}).get("kind")
    return str(kind).strip().lower() if kind is not None else None


def wants_data_consistency(model: nn.Module, requested: bool | None) -> bool:
    """Whether to apply the data-consistency projection: the user's choice when given;
    otherwise on for models on the DFT grid (MR k-space models: the measured centre of
    k-space is kept exactly, as a scanner's reconstruction keeps its data; it adds +0.25
    to +0.3 dB over their raw output on the MR test role and keeps the mean intensity) and
    for adversarially trained models whose training degradation is a plain resize (so the
    projection inverts the right operator), off for the rest, whose pixel losses already
    keep the output close to re-degrading to the input. Sparse-view CT restorers get the
    sinogram-domain step of :mod:`medsr.infer.sinogram` by default (sisr-ct-sparse-view-slices:
    +2.1 to +4.5 dB over its raw output on the held-out head CT at view steps 32 to 8)."""
    if requested is not None:
        return bool(requested)
    if getattr(model, "is_baseline", False):
        return False
    if getattr(model, "grid", "area") == "dft":
        return True
    if sparse_views_of(model) is not None:
        return True
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


def downscale(
    sr: Tensor, size: tuple[int, int], kernel: str = "cubic", zero: float = 0.0
) -> Tensor:
    """The resize degradation: antialiased ``imresize(sr, size=size)`` of (N, C, H', W'),
    computed as ``D_y SR D_x^T`` with sparse matrices (same weights, less memory);
    ``kernel=KSPACE``: :func:`kspace_downscale` with its magnitude about ``zero`` (the
    resize operators are linear and keep constants: ``zero`` does not matter to them)."""
    if kernel == KSPACE:
        return kspace_downscale(sr, size, zero)
    out = sr
    if sr.shape[-2] != size[0]:
        out = _apply_rows(resize_operator(int(sr.shape[-2]), size[0], kernel)[0], out)
    if sr.shape[-1] != size[1]:
        out = _apply_cols(resize_operator(int(sr.shape[-1]), size[1], kernel)[0], out)
    return out


def project_consistent(sr: Tensor, lr: Tensor, kernel: str = "cubic", zero: float = 0.0) -> Tensor:
    """Closest ``x`` to ``sr`` (N, C, H', W') with ``downscale(x, (H, W)) == lr`` (N, C, H, W):
    ``x = sr + D_y^T G_y R G_x D_x`` with ``R = lr - downscale(sr)``, ``G = (D D^T)^-1``;
    ``kernel=KSPACE``: :func:`project_kspace` (magnitude about ``zero``)."""
    if kernel == KSPACE:
        return project_kspace(sr, lr, zero)
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


def kspace_downscale(
    sr: Tensor, size: tuple[int, int], zero: float = 0.0, magnitude: bool = True
) -> Tensor:
    """MR k-space truncation without noise (``mr-kspace``'s forward model) of (..., H', W')
    to ``size`` (h, w): ``zero + |ifft2(K_c)| * h w / (H' W')`` with ``K_c`` the centred block
    of ``fft2(sr - zero)`` that :func:`~medsr.degrade.mr.kspace_crop` takes.

    ``magnitude=False`` takes the real part instead: a linear Fourier resampling that keeps
    a DFT-grid image on its grid (and negative values negative), used to bring a model's
    output to a target size below the scale it ran at.
    """
    big_h, big_w = int(sr.shape[-2]), int(sr.shape[-1])
    if size[0] > big_h or size[1] > big_w:
        raise ValueError(f"k-space truncation to {size} of a larger {(big_h, big_w)} grid")
    block = kspace_crop(sr - zero if magnitude else sr, size)
    image = torch.fft.ifft2(torch.fft.ifftshift(block, dim=(-2, -1)))
    gain = size[0] * size[1] / (big_h * big_w)
    if not magnitude:
        return (image.real * gain).to(sr.dtype)
    return (image.abs() * gain + zero).to(sr.dtype)


def _mirror(spectrum: Tensor) -> Tensor:
    """``spectrum[-k]`` at every centred (fftshifted) frequency ``k`` of the last two axes."""
    out = spectrum
    for dim in (-2, -1):
        n = int(spectrum.shape[dim])
        out = torch.roll(torch.flip(out, dims=(dim,)), shifts=1 - n % 2, dims=dim)
    return out


def project_kspace(sr: Tensor, lr: Tensor, zero: float = 0.0) -> Tensor:
    """Closest real ``x`` to ``sr`` (..., H', W') with ``kspace_downscale(x, (h, w), zero) ==
    lr`` (..., h, w), where ``x >= zero``: the centred k-space of ``sr - zero`` with the block
    that ``mr-kspace`` keeps replaced by that of ``(lr - zero) * H' W' / (h w)``, the
    frequencies that mirror the block (``+h/2`` for even ``h``) set Hermitian so the image
    stays real; then the magnitude, plus ``zero``."""
    big_h, big_w = int(sr.shape[-2]), int(sr.shape[-1])
    h, w = int(lr.shape[-2]), int(lr.shape[-1])
    spectrum = torch.fft.fftshift(torch.fft.fft2((sr - zero).to(torch.float32)), dim=(-2, -1))
    measured = torch.fft.fftshift(torch.fft.fft2((lr - zero).to(torch.float32)), dim=(-2, -1))
    top, left = big_h // 2 - h // 2, big_w // 2 - w // 2
    spectrum[..., top : top + h, left : left + w] = measured * (big_h * big_w / (h * w))
    inside = torch.zeros(big_h, big_w, dtype=torch.bool, device=sr.device)
    inside[top : top + h, left : left + w] = True
    mirrors_inside = _mirror(inside) & ~inside
    spectrum = torch.where(mirrors_inside, _mirror(spectrum).conj(), spectrum)
    image = torch.fft.ifft2(torch.fft.ifftshift(spectrum, dim=(-2, -1)))
    return (image.abs() + zero).to(sr.dtype)


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
