"""Metrics against scikit-image, analytic PSNR, infinite PSNR, shave, MS-SSIM, FID, sharpness."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim

from medsr.errors import ConfigError
from medsr.metrics import (
    fid_from_features,
    gradient_sharpness,
    laplacian_variance_ratio,
    ms_ssim,
    ms_ssim_np,
    psnr,
    psnr_np,
    require_weights_file,
    ssim,
    ssim_np,
)


def reference_ssim(a: np.ndarray, b: np.ndarray, data_range: float, **kw: object) -> float:
    return float(
        sk_ssim(
            a,
            b,
            data_range=data_range,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            **kw,
        )
    )


def ct_like(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """A smooth phantom in HU: air outside, soft tissue disc, a bone rim, plus noise."""
    grids = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    radius = np.sqrt(sum(g**2 for g in grids))
    hu = np.full(shape, -1000.0)
    hu[radius < 0.8] = 40.0
    hu[(radius > 0.7) & (radius < 0.8)] = 1200.0
    return hu + rng.normal(0.0, 15.0, shape)


@pytest.mark.parametrize("shape", [(37, 45), (12, 23, 29)])
def test_psnr_and_ssim_match_skimage_on_random_arrays(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(1)
    a = rng.random(shape)
    b = np.clip(a + rng.normal(0, 0.08, shape), 0, 1)
    assert psnr_np(a, b, 1.0) == pytest.approx(sk_psnr(a, b, data_range=1.0), abs=1e-4)
    assert ssim_np(a, b, 1.0) == pytest.approx(reference_ssim(a, b, 1.0), abs=1e-4)


@pytest.mark.parametrize("shape", [(64, 64), (14, 40, 40)])
def test_metrics_match_skimage_on_ct_like_data_in_hounsfield_units(
    shape: tuple[int, ...],
) -> None:
    rng = np.random.default_rng(2)
    hr = ct_like(rng, shape)
    sr = hr + rng.normal(0.0, 40.0, shape) + 25.0
    window = 4095.0
    assert psnr_np(sr, hr, window) == pytest.approx(sk_psnr(hr, sr, data_range=window), abs=1e-4)
    assert ssim_np(sr, hr, window) == pytest.approx(reference_ssim(sr, hr, window), abs=1e-4)
    # float32 pixels (as MedicalImage holds them) take the fast float32 path, just as exact.
    sr32, hr32 = sr.astype(np.float32), hr.astype(np.float32)
    assert ssim_np(sr32, hr32, 80.0) == pytest.approx(
        reference_ssim(sr32.astype(np.float64), hr32.astype(np.float64), 80.0), abs=1e-5
    )
    # The same data seen through a narrower window scores differently: the range matters.
    assert psnr_np(sr, hr, 400.0) < psnr_np(sr, hr, window) - 15


def test_float32_batches_match_skimage_per_image_with_per_image_ranges() -> None:
    rng = np.random.default_rng(3)
    hr = rng.random((3, 1, 32, 40)).astype(np.float32) * np.array([1, 255, 65535]).reshape(
        3, 1, 1, 1
    )
    sr = (
        hr
        + rng.normal(0, 1, hr.shape).astype(np.float32) * hr.max(axis=(1, 2, 3), keepdims=True) / 30
    )
    ranges = torch.tensor([1.0, 255.0, 65535.0])
    got_psnr = psnr(torch.from_numpy(sr), torch.from_numpy(hr), ranges)
    got_ssim = ssim(torch.from_numpy(sr), torch.from_numpy(hr), ranges)
    assert got_psnr.shape == (3,) and got_ssim.shape == (3,)
    for i, r in enumerate(ranges.tolist()):
        a, b = hr[i, 0].astype(np.float64), sr[i, 0].astype(np.float64)
        assert float(got_psnr[i]) == pytest.approx(sk_psnr(a, b, data_range=r), abs=1e-4)
        assert float(got_ssim[i]) == pytest.approx(reference_ssim(b, a, r), abs=1e-4)


def test_multichannel_ssim_is_the_channel_mean_like_skimage() -> None:
    rng = np.random.default_rng(4)
    a = rng.random((3, 30, 34))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    got = ssim(torch.from_numpy(a)[None], torch.from_numpy(b)[None], 1.0)
    assert float(got[0]) == pytest.approx(reference_ssim(a, b, 1.0, channel_axis=0), abs=1e-4)


@pytest.mark.parametrize(("sigma", "data_range"), [(0.01, 1.0), (20.0, 2000.0), (300.0, 65535.0)])
def test_psnr_of_gaussian_noise_matches_the_analytic_value(sigma: float, data_range: float) -> None:
    rng = np.random.default_rng(5)
    hr = np.full((256, 256), data_range / 2)
    sr = hr + rng.normal(0.0, sigma, hr.shape)
    expected = 10 * math.log10(data_range**2 / sigma**2)
    assert psnr_np(sr, hr, data_range) == pytest.approx(expected, abs=0.05)


def test_identical_images_give_infinite_psnr_and_unit_ssim() -> None:
    x = torch.rand(2, 1, 24, 24)
    assert torch.isinf(psnr(x, x.clone(), 1.0)).all()
    assert math.isinf(psnr_np(x[0, 0].numpy(), x[0, 0].numpy(), 1.0))
    assert torch.allclose(ssim(x, x.clone(), 1.0), torch.ones(2, dtype=torch.float64))
    mixed = x.clone()
    mixed[1] += 0.1
    values = psnr(mixed, x, 1.0)
    assert math.isinf(float(values[0])) and float(values[1]) == pytest.approx(20.0, abs=1e-4)


def test_shave_ignores_the_border() -> None:
    rng = np.random.default_rng(6)
    hr = rng.random((40, 48))
    sr = hr.copy()
    sr[:3, :] += 0.5
    sr[:, -3:] -= 0.5
    assert math.isinf(psnr_np(sr, hr, 1.0, shave=3))
    assert psnr_np(sr, hr, 1.0, shave=2) < 30
    noisy = hr + rng.normal(0, 0.05, hr.shape)
    assert psnr_np(noisy, hr, 1.0, shave=4) == pytest.approx(
        sk_psnr(hr[4:-4, 4:-4], noisy[4:-4, 4:-4], data_range=1.0), abs=1e-4
    )
    assert ssim_np(noisy, hr, 1.0, shave=4) == pytest.approx(
        reference_ssim(noisy[4:-4, 4:-4], hr[4:-4, 4:-4], 1.0), abs=1e-4
    )
    volume = rng.random((16, 20, 20))
    moved = volume + rng.normal(0, 0.05, volume.shape)
    assert ssim_np(moved, volume, 1.0, shave=(1, 3, 3)) == pytest.approx(
        reference_ssim(moved[1:-1, 3:-3, 3:-3], volume[1:-1, 3:-3, 3:-3], 1.0), abs=1e-4
    )


def test_bad_arguments_raise_config_errors() -> None:
    x = torch.rand(1, 1, 16, 16)
    with pytest.raises(ConfigError, match="data_range"):
        psnr(x, x, None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="positive"):
        ssim(x, x, 0.0)
    with pytest.raises(ConfigError, match="shape"):
        psnr(x, torch.rand(1, 1, 16, 15), 1.0)
    with pytest.raises(ConfigError, match="11 pixels"):
        ssim(torch.rand(1, 1, 10, 30), torch.rand(1, 1, 10, 30), 1.0)
    with pytest.raises(ConfigError, match="leaves nothing"):
        psnr(x, x, 1.0, shave=8)


def test_ms_ssim_reduces_to_ssim_with_one_scale_and_ranks_noise() -> None:
    g = torch.Generator().manual_seed(7)
    hr = torch.rand(2, 1, 180, 190, generator=g)
    sr = hr + 0.05 * torch.randn(hr.shape, generator=g)
    assert torch.allclose(ms_ssim(sr, hr, 1.0, weights=(1.0,)), ssim(sr, hr, 1.0))
    light = ms_ssim(sr, hr, 1.0)
    heavy = ms_ssim(hr + 0.2 * torch.randn(hr.shape, generator=g), hr, 1.0)
    assert (light < 1).all() and (heavy < light).all()
    assert ms_ssim_np(hr[0, 0].numpy(), hr[0, 0].numpy(), 1.0) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="176"):
        ms_ssim(hr[..., :100, :100], hr[..., :100, :100], 1.0)


def test_sharpness_ratios_are_one_for_identity_and_scale_with_contrast() -> None:
    hr = torch.rand(2, 1, 32, 32, dtype=torch.float64)
    assert torch.allclose(gradient_sharpness(hr, hr), torch.ones(2, dtype=torch.float64))
    assert torch.allclose(
        gradient_sharpness(2 * hr, hr), torch.full((2,), 2.0, dtype=torch.float64)
    )
    assert torch.allclose(
        laplacian_variance_ratio(3 * hr, hr), torch.full((2,), 9.0, dtype=torch.float64)
    )
    blurred = torch.nn.functional.avg_pool2d(hr, 3, stride=1, padding=1, count_include_pad=False)
    assert (gradient_sharpness(blurred, hr) < 0.8).all()
    assert (laplacian_variance_ratio(blurred, hr) < 0.5).all()
    vol = torch.rand(1, 1, 8, 12, 12, dtype=torch.float64)
    assert float(gradient_sharpness(0.5 * vol, vol)[0]) == pytest.approx(0.5)


def test_fid_from_features_matches_the_sqrtm_formula() -> None:
    rng = np.random.default_rng(8)
    a = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(0.5, 1.3, size=(150, 6))
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(ca @ cb).real
    expected = float(np.sum((mu_a - mu_b) ** 2) + np.trace(ca + cb - 2 * root))
    assert fid_from_features(a, b) == pytest.approx(expected, rel=1e-6)
    assert fid_from_features(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = np.array([1.0, 2.0, 0.0, 0.0, 0.0, 2.0])
    assert fid_from_features(torch.from_numpy(a), torch.from_numpy(a + shift)) == pytest.approx(
        9.0, abs=1e-6
    )
    with pytest.raises(ConfigError, match="same F"):
        fid_from_features(a, b[:, :5])


def test_missing_weights_file_names_the_option(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"eval\.fid_weights.*never downloads"):
        require_weights_file(None, "FID", "eval.fid_weights")
    with pytest.raises(ConfigError, match="does not exist"):
        require_weights_file(tmp_path / "nope.pth", "FID", "eval.fid_weights")
    present = tmp_path / "w.pth"
    present.write_bytes(b"x")
    assert require_weights_file(present, "FID", "eval.fid_weights") == present


def test_inception_matches_torchvision_layout_and_fid_needs_a_file(tmp_path) -> None:
    from medsr.metrics import InceptionV3Pool, fid, inception_features, load_inception

    torch.manual_seed(0)
    source = InceptionV3Pool(fid_variant=True)
    # torchvision Inception3 has 27,161,264 parameters; minus fc (2,049,000) and AuxLogits
    # (3,326,696) leaves the pool-feature trunk.
    assert sum(p.numel() for p in source.parameters()) == 21_785_568
    state = {k: v.half() if v.is_floating_point() else v for k, v in source.state_dict().items()}
    state["fc.weight"] = torch.zeros(1008, 2048)
    path = tmp_path / "pt_inception.pth"
    torch.save(state, path)
    loaded = load_inception(path, resize_to=80)
    assert loaded.fid_variant
    images = [torch.rand(1, 48, 48), torch.rand(1, 48, 48), torch.rand(1, 48, 48)]
    feats = inception_features(loaded, images, batch_size=2)
    assert feats.shape == (3, 2048) and np.isfinite(feats).all()
    assert fid_from_features(feats[:, :64], feats[:, :64]) == pytest.approx(0.0, abs=1e-6)

    state["fc.weight"] = torch.zeros(1000, 2048)
    torch.save(state, path)
    assert not load_inception(path, resize_to=80).fid_variant
    with pytest.raises(ConfigError, match=r"--fid-weights.*never downloads"):
        fid(images, images, None)
