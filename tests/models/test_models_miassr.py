"""MIASSR's Meta-Upscale: sampling maths, both evaluation paths against the naive reference."""

from __future__ import annotations

import pytest
import torch

from medsr import models
from medsr.models.miassr import MetaUpscale, axis_sampling, meta_upscale_naive

SCALES = [1.5, 2.0, 2.7, 3.3, 4.0, (1.0, 4.0), (3.0, 1.5)]


def test_axis_sampling_x4() -> None:
    axis = axis_sampling(2, 4.0)
    assert axis.source.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert axis.offsets.tolist() == [0.0, 0.25, 0.5, 0.75]
    assert axis.offset_class.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]


def test_axis_sampling_non_integer() -> None:
    axis = axis_sampling(2, 1.5)  # i / 1.5 = 0, 0.667, 1.333
    assert axis.source.tolist() == [0, 0, 1]
    torch.testing.assert_close(axis.offsets, torch.tensor([0.0, 1 / 3, 2 / 3]))
    assert axis.offset_class.tolist() == [0, 2, 1]
    # 2.7 = 27/10: the offsets repeat every 27 HR pixels, so 27 distinct ones
    assert len(axis_sampling(40, 2.7).offsets) == 27
    assert len(axis_sampling(40, 1.0).offsets) == 1


def _meta(channels: int = 5, out: int = 2) -> MetaUpscale:
    torch.manual_seed(0)
    return MetaUpscale(channels, out, hidden=16).double()


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("mode", ["conv", "gather"])
def test_paths_match_naive_meta_upscale(scale: float | tuple[float, float], mode: str) -> None:
    meta = _meta()
    meta.mode = mode
    meta.gather_budget = 700  # several chunks per row class
    features = torch.randn(2, 5, 5, 6, dtype=torch.float64)
    pair = models.as_scale_pair(scale)
    expected = meta_upscale_naive(meta, features, pair)
    assert expected.shape[2:] == models.output_size(5, 6, pair)
    torch.testing.assert_close(meta(features, pair), expected)


def test_identity_kernel_gives_nearest_neighbour() -> None:
    """An MLP whose output is the kernel 'centre tap of channel 0' makes Meta-Upscale
    copy channel 0 of each HR pixel's LR source."""
    meta = MetaUpscale(3, 1, hidden=4)
    with torch.no_grad():
        meta.weight_mlp[2].weight.zero_()
        kernel = torch.zeros(1, 3, 3, 3)
        kernel[0, 0, 1, 1] = 1.0
        meta.weight_mlp[2].bias.copy_(kernel.flatten())
    features = torch.randn(1, 3, 4, 5)
    for mode in ("conv", "gather"):
        meta.mode = mode
        out = meta(features, (2.5, 2.0))
        rows, cols = axis_sampling(4, 2.5).source, axis_sampling(5, 2.0).source
        torch.testing.assert_close(out[0, 0], features[0, 0][rows][:, cols])


def test_gradients_agree_between_paths() -> None:
    meta = _meta()
    features = torch.randn(1, 5, 4, 4, dtype=torch.float64)
    grads = []
    for mode in ("conv", "gather"):
        meta.mode = mode
        meta.zero_grad()
        x = features.clone().requires_grad_(True)
        (meta(x, (2.7, 2.7)) ** 2).sum().backward()
        assert x.grad is not None
        grads.append((x.grad, [p.grad.clone() for p in meta.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    for a, b in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(a, b)


def test_auto_mode_choice() -> None:
    """x4 has 16 kernels for 16 HR pixels per LR pixel (conv path); 2.7 has 729 for 7.3."""
    meta = MetaUpscale(4, 1, hidden=8)
    calls: list[str] = []
    meta._conv_path = lambda *a: calls.append("conv") or torch.zeros(1)  # type: ignore[method-assign]
    meta._gather_path = lambda *a: calls.append("gather") or torch.zeros(1)  # type: ignore[method-assign]
    features = torch.zeros(1, 4, 8, 8)
    for scale in ((4.0, 4.0), (1.5, 1.5), (1.0, 4.0), (2.7, 2.7), (3.3, 3.3)):
        meta(features, scale)
    assert calls == ["conv", "conv", "conv", "gather", "gather"]


def test_miassr_mean_is_subtracted_and_added() -> None:
    """With zero weights everywhere but the MLP bias, the output is the data mean."""
    model = models.build("miassr", num_blocks=1, channels=4, mlp_hidden=4, data_mean=0.3)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    out = model(torch.rand(1, 1, 3, 3), 2.0)
    torch.testing.assert_close(out, torch.full((1, 1, 6, 6), 0.3))
