"""GMSD, HaarPSI and the mean bias: hand-computed values, a literal transcription of the
authors' MATLAB code (scipy full convolution sliced as conv2 'same'), and the expected
responses to noise, blur and data range."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

from medsr.errors import ConfigError
from medsr.metrics import gmsd, haarpsi, mean_bias


def _conv2_same(a: np.ndarray, k: np.ndarray) -> np.ndarray:
    """MATLAB conv2(a, k, 'same'): the full convolution from row/column k // 2 on."""
    full = convolve2d(a, k, mode="full")
    r, c = k.shape[0] // 2, k.shape[1] // 2
    return full[r : r + a.shape[0], c : c + a.shape[1]]


def _subsample(a: np.ndarray) -> np.ndarray:
    return _conv2_same(a, np.ones((2, 2)) / 4)[::2, ::2]


def _gmsd_matlab(y1: np.ndarray, y2: np.ndarray) -> float:
    """GMSD.m (Xue et al.), images in [0, 255]."""
    dx = np.array([[1.0, 0, -1]] * 3) / 3
    a, b = _subsample(y1), _subsample(y2)
    m1 = np.hypot(_conv2_same(a, dx), _conv2_same(a, dx.T))
    m2 = np.hypot(_conv2_same(b, dx), _conv2_same(b, dx.T))
    quality = (2 * m1 * m2 + 170) / (m1**2 + m2**2 + 170)
    return float(np.std(quality, ddof=1))


def _haarpsi_matlab(ref: np.ndarray, dist: np.ndarray) -> float:
    """HaarPSI.m (Reisenhofer et al.), grey-level branch, images in [0, 255]."""
    c, alpha = 30.0, 4.2
    ref, dist = _subsample(ref), _subsample(dist)

    def decompose(img: np.ndarray) -> list[np.ndarray]:
        out = [np.zeros(0)] * 6
        for scale in (1, 2, 3):
            haar = 2.0**-scale * np.ones((2**scale, 2**scale))
            haar[: 2 ** (scale - 1)] *= -1
            out[scale - 1] = _conv2_same(img, haar)
            out[scale + 2] = _conv2_same(img, haar.T)
        return out

    cr, cd = decompose(ref), decompose(dist)
    sims, weights = [], []
    for ori in (0, 1):
        weights.append(np.maximum(abs(cr[2 + 3 * ori]), abs(cd[2 + 3 * ori])))
        local = sum(
            (2 * abs(cr[s + 3 * ori]) * abs(cd[s + 3 * ori]) + c)
            / (cr[s + 3 * ori] ** 2 + cd[s + 3 * ori] ** 2 + c)
            for s in (0, 1)
        )
        sims.append(local / 2)
    s, w = np.stack(sims), np.stack(weights)
    pooled = np.sum(1 / (1 + np.exp(-alpha * s)) * w) / np.sum(w)
    return float((np.log(pooled / (1 - pooled)) / alpha) ** 2)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))[None, None]


def test_gmsd_hand_computed() -> None:
    """One 255 pixel in a 4x4 black image: the subsampled images are [[63.75, 0], [0, 0]]
    and 0; Prewitt magnitudes of the first are 0, v/3, v/3, v*sqrt(2)/3 (v = 63.75), so
    GMS = [1, 170/(170 + v^2/9) twice, 170/(170 + 2 v^2/9)] and GMSD its N-1 std."""
    x = np.zeros((4, 4))
    y = x.copy()
    y[0, 0] = 255.0
    v = 63.75
    gms = np.array(
        [1.0, 170 / (170 + v**2 / 9), 170 / (170 + v**2 / 9), 170 / (170 + 2 * v**2 / 9)]
    )
    expected = float(np.std(gms, ddof=1))
    assert expected == pytest.approx(0.38626, abs=1e-5)
    assert float(gmsd(_t(y), _t(x), 255.0)[0]) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("shape", [(32, 32), (40, 56), (37, 30)])
def test_gmsd_and_haarpsi_match_the_authors_code(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    ref = rng.uniform(0, 4095, shape)
    ref = convolve2d(ref, np.ones((3, 3)) / 9, mode="same", boundary="symm")  # some structure
    dist = ref + rng.normal(0, 80, shape)
    unit = 255.0 / 4095.0
    got_g = float(gmsd(_t(dist), _t(ref), 4095.0)[0])
    got_h = float(haarpsi(_t(dist), _t(ref), 4095.0)[0])
    assert got_g == pytest.approx(_gmsd_matlab(dist * unit, ref * unit), rel=1e-10)
    assert got_h == pytest.approx(_haarpsi_matlab(ref * unit, dist * unit), rel=1e-10)


def test_identical_images_and_monotone_in_distortion() -> None:
    torch.manual_seed(0)
    hr = torch.nn.functional.avg_pool2d(torch.rand(1, 1, 66, 66), 3, stride=1)
    assert float(gmsd(hr, hr, 1.0)[0]) == 0.0
    assert float(haarpsi(hr, hr, 1.0)[0]) == pytest.approx(1.0, abs=1e-12)
    noisy = [hr + s * torch.randn_like(hr) for s in (0.01, 0.05, 0.2)]
    g = [float(gmsd(n, hr, 1.0)[0]) for n in noisy]
    h = [float(haarpsi(n, hr, 1.0)[0]) for n in noisy]
    assert g[0] < g[1] < g[2]
    assert h[0] > h[1] > h[2]


def test_batch_channels_data_range_and_shave() -> None:
    torch.manual_seed(1)
    x, y = torch.rand(3, 2, 24, 24), torch.rand(3, 2, 24, 24)
    for metric in (gmsd, haarpsi):
        batch = metric(x, y, 1.0, shave=2)
        assert batch.shape == (3,)
        first = (
            metric(x[:1, :1, 2:-2, 2:-2], y[:1, :1, 2:-2, 2:-2], 1.0)[0]
            + metric(x[:1, 1:, 2:-2, 2:-2], y[:1, 1:, 2:-2, 2:-2], 1.0)[0]
        ) / 2
        assert float(batch[0]) == pytest.approx(float(first), rel=1e-12)
        scaled = metric(x * 4095, y * 4095, 4095.0, shave=2)
        torch.testing.assert_close(scaled, batch, rtol=1e-6, atol=1e-9)  # float32 inputs
    with pytest.raises(ConfigError, match="2-D"):
        gmsd(torch.rand(1, 1, 4, 8, 8), torch.rand(1, 1, 4, 8, 8), 1.0)


def test_mean_bias_is_signed_and_relative_to_the_range() -> None:
    hr = torch.rand(2, 1, 10, 10, dtype=torch.float64) * 4095 - 1024
    sr = hr.clone()
    sr[0] += 8.19  # +0.2% of 4095 HU
    sr[1] -= 4.095
    bias = mean_bias(sr, hr, 4095.0, shave=1)
    assert bias.tolist() == pytest.approx([0.002, -0.001], rel=1e-9)
    assert math.isclose(float(mean_bias(hr, hr, 1.0)[0]), 0.0)
