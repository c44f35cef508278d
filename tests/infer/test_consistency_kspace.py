"""Data consistency for models on the DFT grid (zero-fill skip): the forward model is the
MR acquisition's own, k-space truncation, not a bicubic shrink."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsr.degrade.mr import MRKSpace, zero_fill
from medsr.image import MedicalImage, Modality
from medsr.infer.consistency import (
    KSPACE,
    degradation_kernel,
    downscale,
    kspace_downscale,
    project_consistent,
)
from medsr.infer.pipeline import UpscaleSettings, upscale_image
from medsr.models import build


def _zero_fill_model(perturbed: bool) -> torch.nn.Module:
    torch.manual_seed(3)
    model = build("srresnet", scale=2, num_blocks=1, channels=8, residual="zero-fill").eval()
    if perturbed:  # no longer ZIP: its output re-degrades to something else than its input
        torch.nn.init.normal_(model.tail.weight, std=0.01)
    return model


@pytest.mark.parametrize(
    ("hr_size", "scale"), [((32, 32), 2.0), ((33, 31), 2.0), ((30, 28), 3.0), ((32, 40), 4.0)]
)
def test_projection_makes_mr_kspace_give_back_the_lr(hr_size, scale) -> None:
    generator = torch.Generator().manual_seed(0)
    hr = 0.3 + 0.4 * torch.rand(2, 1, *hr_size, generator=generator)
    lr = MRKSpace(scale).apply(hr, {})
    sr = hr + 0.05 * torch.randn(hr.shape, generator=generator)  # a model's guess
    assert float((MRKSpace(scale).apply(sr, {}) - lr).abs().max()) > 1e-2
    projected = project_consistent(sr, lr, KSPACE)
    torch.testing.assert_close(MRKSpace(scale).apply(projected, {}), lr, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        downscale(projected, tuple(lr.shape[-2:]), KSPACE), lr, atol=1e-5, rtol=0
    )
    # only the measured block (and its mirror) changed: the rest of k-space is the guess's
    lr_h, lr_w = lr.shape[-2:]
    top, left = hr_size[0] // 2 - lr_h // 2, hr_size[1] // 2 - lr_w // 2
    block = torch.zeros(hr_size, dtype=torch.bool)
    block[top : top + lr_h, left : left + lr_w] = True
    mirrored = torch.roll(block.flip(0, 1), (1 - hr_size[0] % 2, 1 - hr_size[1] % 2), (0, 1))
    outside = ~(block | mirrored)

    def spectrum(x: torch.Tensor) -> torch.Tensor:
        return torch.fft.fftshift(torch.fft.fft2(x), dim=(-2, -1))

    torch.testing.assert_close(
        spectrum(projected)[..., outside], spectrum(sr)[..., outside], atol=1e-3, rtol=1e-4
    )


def test_projection_leaves_a_consistent_image_alone() -> None:
    """ZIP of an odd-sized LR re-degrades to it exactly (an even size has an unpaired
    Nyquist row whose zero-filled image is complex), so the projection keeps it."""
    lr = 0.2 + 0.6 * torch.rand(1, 1, 15, 21, generator=torch.Generator().manual_seed(1))
    zip_ = zero_fill(lr, (30, 42))
    torch.testing.assert_close(kspace_downscale(zip_, (15, 21)), lr, atol=1e-5, rtol=0)
    torch.testing.assert_close(project_consistent(zip_, lr, KSPACE), zip_, atol=1e-5, rtol=0)


def test_magnitude_is_taken_about_the_no_signal_level() -> None:
    """In [0, 1] units a percentile normalisation puts physical 0 at ``zero < 0``: LR values
    between ``zero`` and 0 are signal, and the projection keeps them (not folded by |.|)."""
    zero = -0.25
    hr = zero + 0.05 + 0.3 * torch.rand(1, 1, 24, 30, generator=torch.Generator().manual_seed(2))
    lr = kspace_downscale(hr, (12, 15), zero)
    assert float(lr.min()) < 0.0
    sr = hr + 0.02 * torch.randn(hr.shape, generator=torch.Generator().manual_seed(3))
    projected = project_consistent(sr, lr, KSPACE, zero)
    torch.testing.assert_close(downscale(projected, (12, 15), KSPACE, zero), lr, atol=1e-5, rtol=0)
    assert float((kspace_downscale(projected, (12, 15)) - lr).abs().max()) > 1e-2


def test_zero_fill_models_are_re_degraded_in_kspace_others_by_their_kernel() -> None:
    zip_model = _zero_fill_model(perturbed=False)
    assert degradation_kernel(zip_model) == (KSPACE, None)
    zip_model.medsr_degradation = {"name": "mr-kspace", "scale": 2}
    assert degradation_kernel(zip_model) == (KSPACE, None)
    zip_model.medsr_degradation = {"name": "blind", "scale": 2}
    kernel, note = degradation_kernel(zip_model)
    assert kernel == KSPACE and note is not None and "mr-kspace" in note
    bicubic_skip = build("srresnet", scale=2, num_blocks=1, channels=8, residual=True)
    assert degradation_kernel(bicubic_skip) == ("cubic", None)
    bicubic_skip.medsr_degradation = {"name": "mr-kspace", "scale": 2}
    assert degradation_kernel(bicubic_skip)[0] == "cubic"  # unchanged for area-grid models


def _mr_lr() -> tuple[MedicalImage, torch.Tensor]:
    """A band-limited positive phantom truncated in k-space (mr-kspace in physical units),
    and its [0, 1] planes. Min/max normalisation (modality OT) keeps every value in [0, 1],
    where the zero-fill skip's magnitude is exact (below 0 it would fold values up)."""
    y, x = np.mgrid[:32, :40]
    hr = (
        300.0
        + 200.0 * np.cos(2 * np.pi * x / 40) * np.sin(2 * np.pi * 2 * y / 32)
        + 80.0 * np.cos(2 * np.pi * (5 * x / 40 + 4 * y / 32))
    )
    image = MedicalImage(hr.astype(np.float32), (1.0, 1.0), modality=Modality.OTHER)
    lr_pixels = MRKSpace(2.0, clip=False).apply(torch.from_numpy(image.pixels)[None, None], {})
    lr = image.with_pixels(lr_pixels[0, 0].numpy(), "mr-kspace x2", grid="dft")
    return lr, torch.from_numpy(lr.normalization().to_unit(lr.pixels))[None, None]


def test_upscale_projects_and_measures_a_zero_fill_model_in_kspace() -> None:
    lr, _ = _mr_lr()
    norm = lr.normalization()
    settings = UpscaleSettings(scale=2, consistency=True, data_consistency=True)
    result = upscale_image(lr, _zero_fill_model(perturbed=True), settings)
    assert result.projected_residual_percent is not None
    assert result.projected_residual_percent < 1e-3
    assert result.residual_summary is not None and result.residual_summary.max_percent < 1e-3
    # in physical units, where MR magnitudes are taken: mr-kspace(SR) is the LR file's pixels
    sr = torch.from_numpy(result.image.pixels)[None, None]
    redegraded = MRKSpace(2.0, clip=False).apply(sr, {})[0, 0].numpy()
    np.testing.assert_allclose(redegraded, lr.pixels, atol=2e-5 * norm.data_range)
    assert any("mr-kspace" in n and "data consistency" in n for n in result.notes)
    assert result.image.origin_mm == pytest.approx(lr.origin_mm)  # the DFT grid


def test_consistency_residual_of_a_zero_fill_model_is_the_kspace_one() -> None:
    lr, lr_unit = _mr_lr()
    norm = lr.normalization()
    settings = UpscaleSettings(scale=2, consistency=True, data_consistency=False)
    result = upscale_image(lr, _zero_fill_model(perturbed=True), settings)
    sr_unit = torch.from_numpy(norm.to_unit(result.image.pixels))[None, None]
    zero = float(norm.to_unit(0.0))  # physical 0: where the magnitude is taken
    expected = (kspace_downscale(sr_unit, (16, 20), zero) - lr_unit).abs()
    assert result.residual_summary is not None
    np.testing.assert_allclose(result.residual_summary.map, expected.numpy(), atol=2e-5)
    assert result.residual_summary.max_percent > 0.1  # the perturbed model is not consistent
    # ZIP itself (the model at init) re-degrades to its input exactly in k-space, not in bicubic
    zip_result = upscale_image(lr, _zero_fill_model(perturbed=False), settings)
    assert zip_result.residual_summary is not None
    assert zip_result.residual_summary.max_percent < 1e-3
    zip_unit = torch.from_numpy(norm.to_unit(zip_result.image.pixels))[None, None]
    assert float((downscale(zip_unit, (16, 20), "cubic") - lr_unit).abs().max()) > 1e-3
