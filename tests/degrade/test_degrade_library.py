"""Degradations: shapes, reproducibility, and each family's physics against references."""

from __future__ import annotations

import io
import itertools
import math

import numpy as np
import pytest
import torch
from PIL import Image

from medsr.degrade import available, build
from medsr.degrade.jpeg import jpeg
from medsr.degrade.noise import normal, poisson, uniform
from medsr.errors import ConfigError


def _phantom(h: int = 40, w: int = 30, b: int = 2, c: int = 1) -> torch.Tensor:
    y = torch.linspace(0, 1, h).reshape(h, 1)
    x = torch.linspace(0, 1, w).reshape(1, w)
    img = 0.5 + 0.3 * torch.sin(7 * x + 3 * y) * torch.cos(5 * y)
    img = img + 0.2 * ((x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.05).float()
    return img.clamp(0, 1).expand(b, c, h, w).contiguous()


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("bicubic", {"scale": 4}, (10, 8)),
        ("bicubic", {"scale": 2.5}, (16, 12)),
        ("bicubic", {"scale": (2, 3)}, (20, 10)),
        ("area", {"scale": 2}, (20, 15)),
        ("bilinear", {"scale": 1.5}, (27, 20)),
        ("gaussian", {"scale": 3, "noise_sigma": 0.01}, (14, 10)),
        ("blind", {"scale": 4}, (10, 8)),
        ("blind", {"scale": 2.5, "preset": "blimsr"}, (16, 12)),
        ("mr-kspace", {"scale": (2, 1.5)}, (20, 20)),
        ("xray", {"scale": 2}, (20, 15)),
        ("ultrasound-lateral", {"scale": 2.5}, (40, 12)),
        ("ct-sparse-view", {"n_angles": 60, "view_step": 3}, (40, 30)),
        ("thick-slice", {"scale": 2.5}, (16, 30)),
    ],
)
def test_shapes_and_scale(name: str, params: dict, expected: tuple[int, int]) -> None:
    degradation = build(name, **params)
    hr = _phantom()
    lr = degradation(hr, generator=torch.Generator().manual_seed(0))
    assert tuple(lr.shape) == (2, 1, *expected)
    assert degradation.lr_size(40, 30) == expected
    assert lr.min() >= 0 and lr.max() <= 1


@pytest.mark.parametrize("name", ["gaussian", "blind", "xray", "mr-kspace", "ultrasound-lateral"])
def test_same_seed_same_lr_and_params_replay(name: str) -> None:
    extra = {
        "gaussian": {"noise_sigma": (0.01, 0.05), "scale": 2},
        "mr-kspace": {"noise_sigma": 0.02},
        "ultrasound-lateral": {"speckle": 0.5},
    }.get(name, {})
    degradation = build(name, **extra)
    hr = _phantom(32, 32, b=3)
    first = degradation(hr, generator=torch.Generator().manual_seed(7))
    second = degradation(hr, generator=torch.Generator().manual_seed(7))
    other = degradation(hr, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first, second)
    assert not torch.equal(first, other)
    params = degradation.sample_params(3, torch.Generator().manual_seed(7), "cpu")
    assert torch.equal(degradation.apply(hr, params), first)
    # each sample depends only on its own parameters
    one = {k: v[1:2] if isinstance(v, torch.Tensor) else v for k, v in params.items()}
    torch.testing.assert_close(degradation.apply(hr[1:2], one), first[1:2])


def test_ultrasound_lateral_keeps_columns_and_rows() -> None:
    hr = torch.rand(2, 1, 24, 40, generator=torch.Generator().manual_seed(0))
    lr = build("ultrasound-lateral", scale=2.5)(hr)
    columns = [math.floor(j * 2.5) for j in range(16)]
    assert torch.equal(lr, hr[..., columns])
    # a beam blur acts along x only: an image constant along x keeps its vertical profile
    profile = torch.rand(1, 1, 24, 1, generator=torch.Generator().manual_seed(1))
    blurred = build("ultrasound-lateral", scale=4, beam_sigma=2.0)(profile.expand(1, 1, 24, 40))
    torch.testing.assert_close(blurred, profile.expand(1, 1, 24, 10), atol=1e-6, rtol=0)
    # and a ramp along x is changed in x only
    ramp = torch.linspace(0, 1, 40).expand(1, 1, 24, 40)
    out = build("ultrasound-lateral", scale=4, beam_sigma=2.0)(ramp)
    assert torch.equal(out, out[:, :, :1].expand_as(out))


def test_mr_kspace_is_a_centred_fft_crop_and_rings() -> None:
    hr = _phantom(36, 28, b=1)
    lr = build("mr-kspace", scale=(2, 1.75), clip=False)(hr)[0, 0].numpy()
    x = hr[0, 0].numpy().astype(np.float64)
    k = np.fft.fftshift(np.fft.fft2(x))
    h, w = 18, 16
    crop = k[18 - h // 2 : 18 - h // 2 + h, 14 - w // 2 : 14 - w // 2 + w]
    ref = np.abs(np.fft.ifft2(np.fft.ifftshift(crop))) * (h * w) / (36 * 28)
    np.testing.assert_allclose(lr, ref, atol=1e-5)
    # band-limited content is sampled exactly: cos with 3 cycles over 32 rows
    rows = torch.arange(32, dtype=torch.float32)
    wave = (
        (0.5 + 0.3 * torch.cos(2 * math.pi * 3 * rows / 32))
        .reshape(1, 1, 32, 1)
        .expand(1, 1, 32, 8)
    )
    sampled = build("mr-kspace", scale=2)(wave)[0, 0, :, 0]
    expected = 0.5 + 0.3 * torch.cos(2 * math.pi * 3 * torch.arange(16.0) / 16)
    torch.testing.assert_close(sampled, expected, atol=1e-5, rtol=0)
    # a step edge rings (Gibbs): overshoot above the plateau
    step = (torch.arange(64) >= 32).float().mul(0.8).reshape(1, 1, 1, 64).expand(1, 1, 8, 64)
    ringing = build("mr-kspace", scale=(1, 4), clip=False)(step)
    assert ringing.max() > 0.8 * 1.05
    full = build("mr-kspace", scale=2)(hr)
    partial = build("mr-kspace", scale=2, partial_fourier=0.6)(hr)
    assert partial.shape == full.shape and (partial - full).abs().mean() > 1e-3


def test_ct_sparse_view_matches_scikit_image_fbp() -> None:
    from skimage.data import shepp_logan_phantom
    from skimage.transform import iradon, radon, resize

    image = resize(shepp_logan_phantom(), (64, 64)).astype(np.float32)
    degradation = build("ct-sparse-view", n_angles=180, view_step=4)
    angles = np.array(degradation.kept_angles)
    assert len(angles) == 45
    reference = np.clip(iradon(radon(image, angles, circle=True), angles, circle=True), 0, 1)
    ours = degradation(torch.from_numpy(image)[None, None])[0, 0].numpy()
    # Stated tolerance: 1e-4 on a [0, 1] image (float32 sparse sums against float64 NumPy).
    np.testing.assert_allclose(ours, reference, atol=1e-4)
    from medsr.degrade.ct import fbp
    from medsr.degrade.ct import radon as our_radon

    sinogram = radon(image, angles, circle=True)
    ours_sinogram = our_radon(torch.from_numpy(image)[None], angles)[0].numpy().T
    np.testing.assert_allclose(ours_sinogram, sinogram, atol=1e-3 * sinogram.max())
    ours_fbp = fbp(torch.from_numpy(sinogram.T.copy())[None], angles)[0].numpy()
    np.testing.assert_allclose(ours_fbp, iradon(sinogram, angles, circle=True), atol=1e-4)
    # fewer views, more streaks
    full = degradation.full_view(torch.from_numpy(image)[None, None])[0, 0].numpy()
    assert np.abs(full - image).mean() < np.abs(ours - image).mean()


def test_measured_noise_matches_request() -> None:
    flat = torch.full((2, 1, 128, 128), 0.5)
    gaussian = build("gaussian", scale=1, blur_sigma=0, noise_sigma=0.05, clip=False)(flat)
    assert abs(float(gaussian.std()) - 0.05) < 0.05 * 0.03
    assert abs(float(gaussian.mean()) - 0.5) < 1e-3
    xray = build("xray", scale=1, mtf_sigma=0, dose=400, clip=False)(flat)
    assert abs(float(xray.std()) - math.sqrt(0.5 / 400)) < 0.03 * math.sqrt(0.5 / 400)
    seeds = torch.tensor([3, 4])
    counts = poisson(torch.full((2, 100_000), 4.0), seeds)  # exact regime
    assert abs(float(counts.mean()) - 4.0) < 0.03 and abs(float(counts.var()) - 4.0) < 0.1
    assert torch.equal(counts, counts.round())
    big = poisson(torch.full((2, 100_000), 50.0), seeds)  # normal-approximation regime
    assert abs(float(big.mean()) - 50.0) < 0.2 and abs(float(big.var()) - 50.0) < 1.5
    u = uniform(torch.tensor([1, 2]), (50_000,))
    assert float(u.min()) > 0 and float(u.max()) < 1 and abs(float(u.mean()) - 0.5) < 0.005
    z = normal(torch.tensor([1, 2]), (50_000,))
    assert abs(float(torch.corrcoef(z)[0, 1])) < 0.02  # independent streams per seed


def test_jpeg_honours_quality_and_matches_libjpeg() -> None:
    from skimage.data import camera

    image = camera()[96:160, 96:176]
    x = torch.from_numpy(image / 255.0).float()[None, None]
    errors = []
    for quality in (95, 75, 50, 20, 5):
        ours = jpeg(x, torch.tensor([quality]))[0, 0].numpy() * 255
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        pil = np.asarray(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.float64)
        assert np.abs(ours - pil).mean() < 0.5  # within half a grey level of libjpeg
        errors.append(np.abs(ours - image).mean())
    assert all(a < b for a, b in itertools.pairwise(errors))
    colour = jpeg(torch.rand(2, 3, 20, 28), torch.tensor([90.0, 10.0]))
    assert colour.shape == (2, 3, 20, 28)


def test_blimsr_preset_draws_plateau_kernels_and_honours_jpeg() -> None:
    blind = build({"name": "blind", "preset": "blimsr", "scale": 4})
    params = blind.sample_params(64, torch.Generator().manual_seed(0), "cpu")
    kinds = params["pass1.blur.kernel_type"]
    assert set(kinds.tolist()) == {4, 5} and 0.55 < float((kinds == 4).float().mean()) < 0.85
    assert params["pass1.resize.factor"] == 0.5 and torch.all(params["final.sinc_size"] == 11)
    hr = _phantom(64, 64, b=1)
    g = torch.Generator
    good = build("blind", preset="blimsr", jpeg_quality=(95, 95))(hr, g().manual_seed(1))
    bad = build("blind", preset="blimsr", jpeg_quality=(5, 5))(hr, g().manual_seed(1))
    reference = build("bicubic", scale=4)(hr)
    assert (bad - reference).abs().mean() > (good - reference).abs().mean()


def test_thick_slice_box_profile_averages_slices() -> None:
    volume = torch.rand(8, 5, 6, generator=torch.Generator().manual_seed(0))
    thick = build("thick-slice", scale=4)
    out = thick.apply_volume(volume)
    torch.testing.assert_close(out, volume.reshape(2, 4, 5, 6).mean(1))
    batched = thick.apply_volume(volume[None, None])
    torch.testing.assert_close(batched[0, 0], out)
    gaussian = build("thick-slice", scale=2, profile="gaussian", thickness=3).apply_volume(volume)
    assert gaussian.shape == (4, 5, 6)
    flat = build("thick-slice", scale=2.5, profile="gaussian").apply_volume(
        torch.full((10, 2, 2), 0.3)
    )
    torch.testing.assert_close(flat, torch.full((4, 2, 2), 0.3))


def test_registry_configs_and_errors(tmp_path) -> None:
    assert {"bicubic", "blind", "ct-sparse-view", "mr-kspace", "xray", "thick-slice"} <= set(
        available()
    )
    config = tmp_path / "deg.yaml"
    config.write_text("name: gaussian\npreset: dn\nscale: [2, 3]\n")
    from_yaml = build(str(config))
    assert from_yaml.scale == (2.0, 3.0)
    rebuilt = build(from_yaml.config())
    assert rebuilt.config() == from_yaml.config()
    with pytest.raises(ConfigError, match="unknown degradation"):
        build("bicubc")
    with pytest.raises(ConfigError, match="does not take"):
        build("bicubic", sigma=2)
    with pytest.raises(ConfigError):
        build({"scale": 2})
