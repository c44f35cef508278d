"""The k-space grid convention, numerically: ``mr-kspace`` samples the band-limited image at
HR index ``j H / h`` (``j s`` when ``s`` divides ``H``), and ``zero_fill`` is textbook ZIP."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsr.degrade.mr import MRKSpace, zero_fill

#: (cycles over the field of view along y, along x, amplitude, phase)
WAVES = (
    (0, 1, 0.12, 0.3),
    (1, 0, 0.1, -1.1),
    (2, -3, 0.08, 2.0),
    (-3, 5, 0.06, 0.7),
    (4, 2, 0.05, -2.4),
)


def band_limited(rows: np.ndarray, cols: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A positive cosine sum, periodic over ``size`` (H, W) HR pixels, at continuous HR
    indices (``rows`` (n, 1), ``cols`` (1, m)); every frequency lies below 5 cycles."""
    big_h, big_w = size
    out = np.full(np.broadcast(rows, cols).shape, 0.5)
    for ky, kx, amplitude, phase in WAVES:
        out += amplitude * np.cos(2 * np.pi * (ky * rows / big_h + kx * cols / big_w) + phase)
    return out


@pytest.mark.parametrize(
    ("size", "scale"), [((32, 40), 2.0), ((36, 48), 3.0), ((31, 45), 2.0), ((33, 30), (3.0, 2.0))]
)
def test_lr_pixel_j_is_the_band_limited_hr_at_index_j_times_h_over_lr_h(size, scale) -> None:
    big_h, big_w = size
    hr = band_limited(np.arange(big_h)[:, None], np.arange(big_w)[None, :], size)
    lr = MRKSpace(scale).apply(torch.from_numpy(hr).float()[None, None], {})[0, 0].numpy()
    h, w = lr.shape
    sy, sx = (scale, scale) if isinstance(scale, float) else scale
    assert (h, w) == (int(np.ceil(big_h / sy)), int(np.ceil(big_w / sx)))
    # LR centre j sits at HR index j H / h: j s when s divides H (the first centre is kept)
    expected = band_limited(
        np.arange(h)[:, None] * big_h / h, np.arange(w)[None, :] * big_w / w, size
    )
    np.testing.assert_allclose(lr, expected, atol=2e-6)
    if big_h % sy == 0 and big_w % sx == 0:
        np.testing.assert_allclose(lr, hr[:: int(sy), :: int(sx)], atol=2e-6)
    # the area convention ((j + 0.5) s - 0.5) would be half an LR pixel off
    area = band_limited(
        (np.arange(h)[:, None] + 0.5) * big_h / h - 0.5,
        (np.arange(w)[None, :] + 0.5) * big_w / w - 0.5,
        size,
    )
    assert np.abs(lr - area).max() > 1e-2


def numpy_zero_fill(lr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """ZIP by hand: the centred spectrum zero-padded to ``size``, magnitude, H W / (h w)."""
    h, w = lr.shape
    big_h, big_w = size
    spectrum = np.fft.fftshift(np.fft.fft2(lr.astype(np.float64)))
    padded = np.zeros(size, dtype=complex)
    top, left = big_h // 2 - h // 2, big_w // 2 - w // 2
    padded[top : top + h, left : left + w] = spectrum
    return np.abs(np.fft.ifft2(np.fft.ifftshift(padded))) * (big_h * big_w) / (h * w)


@pytest.mark.parametrize(
    ("lr_size", "size"),
    [
        ((8, 10), (16, 20)),
        ((7, 9), (14, 18)),
        ((7, 9), (13, 17)),
        ((8, 9), (15, 27)),
        ((6, 6), (6, 12)),
    ],
)
def test_zero_fill_is_numpy_zip(lr_size, size) -> None:
    lr = np.random.default_rng(sum(lr_size + size)).random(lr_size).astype(np.float32)
    got = zero_fill(torch.from_numpy(lr)[None, None], size)[0, 0].numpy()
    np.testing.assert_allclose(got, numpy_zero_fill(lr, size), atol=1e-5)
    constant = zero_fill(torch.full((1, 1, *lr_size), 0.37), size)
    np.testing.assert_allclose(constant.numpy(), 0.37, atol=1e-6)  # a constant keeps its value


@pytest.mark.parametrize("size", [(32, 40), (31, 45)])
def test_zero_fill_of_mr_kspace_gives_back_a_band_limited_image(size) -> None:
    hr = band_limited(np.arange(size[0])[:, None], np.arange(size[1])[None, :], size)
    batch = torch.from_numpy(hr).float()[None, None]
    back = zero_fill(MRKSpace(2.0).apply(batch, {}), size)[0, 0].numpy()
    np.testing.assert_allclose(back, hr, atol=2e-6)


def test_mr_kspace_training_margin_keeps_lr_and_hr_aligned() -> None:
    """apply_pair trims m LR pixels and m*s HR pixels a side: the pair stays on the DFT grid
    (the trimmed LR is the trimmed HR's k-space centre up to the crop's wrap-around)."""
    from medsr.degrade import build

    deg = build({"name": "mr-kspace", "scale": 2, "train_margin": 4})
    assert deg.replaces_target and deg.config()["train_margin"] == 4
    y, x = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    hr = 0.5 + 0.3 * torch.cos(2 * torch.pi * 2 * x / 48) * torch.cos(2 * torch.pi * y / 48)
    lr, target = deg.apply_pair(hr[None, None], deg.sample_params(1))
    assert lr.shape[-2:] == (16, 16) and target.shape[-2:] == (32, 32)
    torch.testing.assert_close(lr[0, 0], target[0, 0, ::2, ::2], atol=1e-5, rtol=0)


def test_mr_kspace_noise_probability_leaves_a_share_clean() -> None:
    from medsr.degrade import build

    deg = build({"name": "mr-kspace", "scale": 2, "noise_sigma": [0.01, 0.03],
                 "noise_probability": 0.25})  # fmt: skip
    sigma = deg.sample_params(4000, torch.Generator().manual_seed(0))["noise_sigma"]
    clean = float((sigma == 0).float().mean())
    assert 0.72 < clean < 0.78
    assert float(sigma[sigma > 0].min()) >= 0.01


def test_ct_sparse_view_draws_its_view_step_per_batch_and_validates_at_the_first() -> None:
    from medsr.degrade import build

    deg = build({"name": "ct-sparse-view", "view_step": [16, 8, 16, 32]})
    gen = torch.Generator().manual_seed(0)
    drawn = [deg.sample_params(2, gen)["view_step"] for _ in range(400)]
    assert set(drawn) == {8, 16, 32}
    assert 0.4 < drawn.count(16) / len(drawn) < 0.6
    assert deg.validation_params(2)["view_step"] == 16
    assert build(deg.config()).view_steps == (16, 8, 16, 32)
    hr = torch.zeros(1, 1, 32, 32)
    hr[..., 12:20, 10:22] = 1.0
    few = deg.apply(hr, {"view_step": 32})
    many = deg.apply(hr, {"view_step": 8})
    full = deg.full_view(hr)
    assert (few - full).abs().mean() > (many - full).abs().mean()  # fewer views, more streaks
