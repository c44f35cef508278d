"""Tiling: blended tiles equal the untiled output when the receptive field fits the overlap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsr.degrade.resize import output_size
from medsr.infer.runner import ModelRunner, plan_scale
from medsr.infer.tiling import alignment_step, plan_axis, plan_tiles, tiled_upscale
from medsr.models import build


def _run(model: torch.nn.Module, scale: tuple[float, float]):
    runner = ModelRunner(model, device="cpu")
    return lambda x: runner(x, scale)


def test_alignment_step_of_rational_scales() -> None:
    assert alignment_step(4.0) == 1
    assert alignment_step(2.5) == 2
    assert alignment_step(0.7 / 0.5) == 5
    assert alignment_step(np.pi) is None


@pytest.mark.parametrize(("length", "scale"), [(100, 2.0), (101, 2.5), (37, 4.0), (64, 1.4)])
def test_axis_weights_partition_unity_and_stay_positive_at_borders(
    length: int, scale: float
) -> None:
    out_len = output_size(length, length, scale)[0]
    plan = plan_axis(length, out_len, scale, tile=24, overlap=12, margin=3)
    assert len(plan.tiles) > 1
    total = np.zeros(out_len)
    for t in plan.tiles:
        assert t.out_stop - t.out_start == len(t.weight)
        total[t.out_start : t.out_stop] += t.weight
    np.testing.assert_allclose(total, 1.0, atol=1e-12)
    first, last = plan.tiles[0], plan.tiles[-1]
    assert first.weight[0] == pytest.approx(1.0)  # image border: no taper, never 0
    assert last.weight[-1] == pytest.approx(1.0)
    assert last.lr_stop == length and last.out_stop == out_len
    # inner edges have a zero-weight margin, then a smooth ramp
    assert first.weight[-1] == 0.0
    if plan.exact_alignment:
        for t in plan.tiles:
            assert t.out_start == pytest.approx(t.lr_start * scale)


def test_tiled_equals_untiled_for_receptive_field_within_overlap(tiny_sr) -> None:
    x = torch.rand(3, 1, 50, 37, generator=torch.Generator().manual_seed(1))
    run = _run(tiny_sr, (2.0, 2.0))
    size = output_size(50, 37, 2.0)
    whole = tiled_upscale(run, x, (2.0, 2.0), size, None, 0, 2)
    plan = plan_tiles((50, 37), size, (2.0, 2.0), 16, 12, 2)
    assert plan.count >= 6
    tiled = tiled_upscale(run, x, (2.0, 2.0), size, 16, 12, 2, batch_size=4)
    assert tiled.shape == whole.shape == (3, 1, 100, 74)
    assert (tiled - whole).abs().max() < 1e-3
    assert (tiled - whole).abs().max() < 1e-5  # in fact exact up to float rounding


def test_hard_seams_would_be_caught(tiny_sr) -> None:
    """Negative control: without overlap the tiles' zero padding shows at the seams."""
    x = torch.rand(1, 1, 50, 37, generator=torch.Generator().manual_seed(1))
    run = _run(tiny_sr, (2.0, 2.0))
    size = output_size(50, 37, 2.0)
    whole = tiled_upscale(run, x, (2.0, 2.0), size, None, 0, 2)
    seams = tiled_upscale(run, x, (2.0, 2.0), size, 16, 0, 2)
    assert (seams - whole).abs().max() > 1e-3


@pytest.mark.parametrize("scale", [(2.5, 2.5), (1.0, 4.0), (1.4, 3.0)])
def test_tiles_placed_in_output_coordinates_for_non_integer_and_per_axis_scales(
    scale: tuple[float, float],
) -> None:
    model = build("bicubic")  # any scale; receptive field 3
    x = torch.rand(2, 1, 45, 38, generator=torch.Generator().manual_seed(2))
    run = _run(model, scale)
    size = output_size(45, 38, scale)
    whole = tiled_upscale(run, x, scale, size, None, 0, model.receptive_field)
    tiled = tiled_upscale(run, x, scale, size, 20, 14, model.receptive_field, batch_size=3)
    assert tiled.shape[-2:] == size
    assert (tiled - whole).abs().max() < 1e-5


def test_fixed_scale_plan_picks_next_supported_scale() -> None:
    model = build("srresnet", num_blocks=1, channels=8)
    info = ModelRunner(model, device="cpu").info
    plan = plan_scale(info, (2.5, 2.5))
    assert plan.run == (4.0, 4.0) and plan.resample
    assert any("resampled" in n for n in plan.notes)
    assert not plan_scale(info, (4.0, 4.0)).resample
    us = ModelRunner(build("sisr-us", num_blocks=1), device="cpu").info
    through = plan_scale(us, (3.0, 1.0), allow_transpose=True)
    assert through.transpose and through.run == (1.0, 4.0)


def test_scale_without_small_rational_form_still_covers_the_output() -> None:
    model = build("bicubic")
    x = torch.rand(1, 1, 40, 40, generator=torch.Generator().manual_seed(3))
    scale = (1.37, 1.37)  # 137/100: tiles are placed to the nearest output pixel
    size = output_size(40, 40, scale)
    plan = plan_tiles((40, 40), size, scale, 16, 8, model.receptive_field)
    assert not plan.exact_alignment and plan.count > 1
    run = _run(model, scale)
    tiled = tiled_upscale(run, x, scale, size, 16, 8, model.receptive_field)
    whole = tiled_upscale(run, x, scale, size, None, 0, model.receptive_field)
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().mean() < 0.05


def test_bf16_on_cpu_is_close_to_fp32(tiny_sr) -> None:
    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(4))
    fp32 = ModelRunner(tiny_sr, device="cpu")(x, (2.0, 2.0))
    bf16 = ModelRunner(tiny_sr, device="cpu", precision="bf16")(x, (2.0, 2.0))
    assert bf16.dtype == torch.float32
    assert 0 < (bf16 - fp32).abs().max() < 5e-2
