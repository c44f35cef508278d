"""imresize against PIL (downscaling) and an independent NumPy Keys-cubic reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from medsr.degrade.resize import imresize, output_size
from medsr.errors import ConfigError


def _keys(x: float) -> float:
    ax = abs(x)
    if ax <= 1:
        return 1.5 * ax**3 - 2.5 * ax**2 + 1
    if ax <= 2:
        return -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    return 0.0


def _reference_upscale_1d(row: np.ndarray, out_len: int, scale: float) -> np.ndarray:
    """Per-pixel Keys cubic with MATLAB's centre mapping and mirrored borders."""
    n = len(row)
    out = np.zeros(out_len)
    for i in range(out_len):
        centre = (i + 0.5) / scale - 0.5  # 0-based input coordinate
        total, norm = 0.0, 0.0
        for j in range(math.floor(centre) - 3, math.floor(centre) + 4):
            weight = _keys(centre - j)
            jj = j
            while jj < 0 or jj >= n:  # half-sample symmetric reflection
                jj = -jj - 1 if jj < 0 else 2 * n - jj - 1
            total += weight * row[jj]
            norm += weight
        out[i] = total / norm
    return out


def _pil_resize(image: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    pil = Image.fromarray(image.astype(np.float32), mode="F")
    return np.asarray(pil.resize((size_hw[1], size_hw[0]), Image.Resampling.BICUBIC))


@pytest.mark.parametrize(("size", "out"), [((64, 64), (16, 16)), ((60, 50), (24, 20))])
def test_bicubic_downscale_matches_pil_away_from_borders(size, out) -> None:
    rng = np.random.default_rng(0)
    hr = rng.random(size).astype(np.float32)
    ours = imresize(torch.from_numpy(hr)[None, None], size=out)[0, 0].numpy()
    pil = _pil_resize(hr, out)
    # PIL clamps its window at the border where MATLAB mirrors: compare the interior.
    border = 3
    diff = np.abs(ours - pil)[border:-border, border:-border]
    assert diff.max() < 1e-3
    assert np.abs(ours - pil).max() > 1e-4  # the borders really do differ


def test_bicubic_upscale_matches_numpy_keys_reference() -> None:
    rng = np.random.default_rng(1)
    hr = rng.random((7, 9))
    scale = 2.5
    ours = imresize(torch.from_numpy(hr)[None, None], scale=scale)[0, 0].numpy()
    assert ours.shape == (math.ceil(7 * scale), math.ceil(9 * scale))
    rows = np.stack([_reference_upscale_1d(r, ours.shape[1], scale) for r in hr])
    ref = np.stack([_reference_upscale_1d(c, ours.shape[0], scale) for c in rows.T]).T
    np.testing.assert_allclose(ours, ref, atol=1e-3)
    np.testing.assert_allclose(ours, ref, atol=1e-9)


def test_box_shrink_is_block_average_and_constant_is_preserved() -> None:
    x = torch.rand(2, 3, 12, 16, dtype=torch.float64)
    area = imresize(x, scale=0.25, kernel="box")
    expected = torch.nn.functional.avg_pool2d(x, 4)
    torch.testing.assert_close(area, expected)
    const = torch.full((1, 1, 10, 10), 0.3)
    for kernel in ("cubic", "linear", "lanczos3", "box", "nearest"):
        torch.testing.assert_close(
            imresize(const, scale=(0.7, 1.9), kernel=kernel), torch.full((1, 1, 7, 19), 0.3)
        )


def test_nearest_and_linear_known_values() -> None:
    x = torch.arange(4.0).reshape(1, 1, 1, 4)
    assert imresize(x, scale=(1, 2), kernel="nearest").flatten().tolist() == [
        0,
        0,
        1,
        1,
        2,
        2,
        3,
        3,
    ]
    lin = imresize(x, scale=(1, 2), kernel="linear").flatten()
    torch.testing.assert_close(lin, torch.tensor([0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0]))


def test_output_size_rules() -> None:
    assert output_size(256, 256, 0.25) == (64, 64)
    assert output_size(100, 30, (1 / 3, 0.1)) == (34, 3)
    assert output_size(64, 64, 1.5) == (96, 96)
    x = torch.rand(1, 1, 100, 30)
    assert imresize(x, scale=(1 / 3, 0.1)).shape[-2:] == (34, 3)
    with pytest.raises(ConfigError):
        imresize(x)
    with pytest.raises(ConfigError):
        imresize(x, scale=0.5, kernel="spline")


@pytest.mark.parametrize("kernel", ["cubic", "linear", "lanczos3", "box"])
@pytest.mark.parametrize("traced", [False, True])
def test_polyphase_matches_the_gather_form_everywhere(
    kernel: str, traced: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast periodic form (eager slices/unfold, or the traced conv2d) against the
    per-pixel gather it replaces, borders included, within 1e-6 on [0, 1] data."""
    from medsr.degrade import resize

    if traced:
        monkeypatch.setattr(resize, "_tracing", lambda: True)
    x = torch.rand(2, 3, 37, 40, generator=torch.Generator().manual_seed(0))
    used = 0
    for scale in (0.25, 1 / 3, 0.5, 0.4, 2 / 3, 1.5, 2.0, 2.5, 3.0, 4.0):
        for antialias in (True, False):
            for dim, n in ((-2, 37), (-1, 40)):
                m = resize.output_size(n, n, scale)[0]
                used += resize.polyphase(scale, kernel, antialias) is not None
                got = resize._resize_axis(x, dim, m, scale, kernel, antialias)
                want = resize._gather_axis(x, dim, m, scale, kernel, antialias)
                assert got.shape == want.shape
                assert float((got - want).abs().max()) < 1e-6, (scale, antialias, dim)
    assert used == 40  # every scale here is a small ratio: the fast form was exercised


def test_small_images_and_odd_scales_fall_back_to_the_gather_form() -> None:
    from medsr.degrade import resize

    assert resize.polyphase(37 / 53, "cubic", True) is None  # taps spread over 53 inputs
    tiny = torch.rand(1, 1, 3, 2)
    out = imresize(tiny, scale=0.25)  # 16-tap kernel on 2-3 pixels: mirrored several times
    assert out.shape == (1, 1, 1, 1)
    np.testing.assert_allclose(float(out), float(tiny.mean()), atol=0.2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_fast_path_matches_the_gather_form_borders_included(dtype: torch.dtype) -> None:
    """Integer antialiased cubic shrinking goes through torch's interpolate on a mirror-padded
    image; it must equal MATLAB semantics (the gather form) everywhere, borders included."""
    from medsr.degrade import resize

    g = torch.Generator().manual_seed(1)
    cases = [((2, 3, 37, 40), 4), ((16, 64, 64), 4), ((1, 1, 31, 17), 2), ((1, 101, 97), 3)]
    cases += [((1, 1, 13, 13), 4), ((1, 1, 64, 72), 8)]
    for shape, q in cases:
        x = torch.rand(*shape, generator=g, dtype=dtype)
        h, w = shape[-2:]
        oh, ow = resize.output_size(h, w, 1 / q)
        fast = resize._torch_downscale(x, oh, ow, 1 / q, 1 / q, "cubic", True)
        assert fast is not None, (shape, q)  # the path under test was taken
        want = resize._gather_axis(x, -2, oh, 1 / q, "cubic", True)
        want = resize._gather_axis(want, -1, ow, 1 / q, "cubic", True)
        assert fast.shape == want.shape == imresize(x, scale=1 / q).shape
        assert fast.dtype == dtype
        assert float((fast - want).abs().max()) < 1e-6, (shape, q)
    # images smaller than the padding, upscaling and non-integer factors take the other forms
    assert resize._torch_downscale(torch.rand(1, 1, 9, 9), 3, 3, 0.25, 0.25, "cubic", True) is None
    assert resize._torch_downscale(torch.rand(1, 1, 8, 8), 16, 16, 2.0, 2.0, "cubic", True) is None
    assert (
        resize._torch_downscale(torch.rand(1, 1, 40, 40), 16, 16, 0.4, 0.4, "cubic", True) is None
    )
    assert (
        resize._torch_downscale(torch.rand(1, 1, 40, 40), 10, 10, 0.25, 0.25, "linear", True)
        is None
    )
