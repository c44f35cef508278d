"""The shared execution path: BatchNorm folding, cached inference copies, memory-budget tiles."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from medsr.errors import ConfigError
from medsr.infer import runner as runner_module
from medsr.infer.pipeline import UpscaleSettings, upscale_image
from medsr.infer.runner import ModelRunner, fold_batchnorm, inference_copy
from medsr.infer.tiling import even_starts, memory_tile, parse_memory
from medsr.models import build


def _with_running_stats(model: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics, as a trained model has."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model


@pytest.mark.parametrize("name", ["srresnet", "swift-srgan", "sisr-ct"])
def test_folded_copy_computes_the_same_and_has_no_batchnorm(name: str) -> None:
    torch.manual_seed(0)
    model = _with_running_stats(build(name, num_blocks=2, channels=8)).eval()
    bns = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    twin = inference_copy(model, torch.device("cpu"), channels_last=False)
    assert bns > 0 and not any(isinstance(m, nn.BatchNorm2d) for m in twin.modules())
    x = torch.rand(2, 1, 20, 16, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        torch.testing.assert_close(twin(x, None), model(x, None), atol=1e-5, rtol=1e-5)


def test_the_callers_model_is_left_alone_and_the_copy_follows_its_weights() -> None:
    torch.manual_seed(0)
    model = _with_running_stats(build("srresnet", num_blocks=1, channels=8)).train()
    first = ModelRunner(model, device="cpu")
    assert model.training and any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert ModelRunner(model, device="cpu").inference_model is first.inference_model  # cached
    x = torch.rand(1, 1, 12, 12)
    before = first(x, (4.0, 4.0))
    with torch.no_grad():
        model.tail.bias.add_(0.25)  # an in-place update (an optimiser step) invalidates it
    second = ModelRunner(model, device="cpu")
    assert second.inference_model is not first.inference_model
    torch.testing.assert_close(second(x, (4.0, 4.0)), before + 0.25, atol=1e-5, rtol=0)


def test_fold_skips_batchnorm_in_training_mode() -> None:
    block = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    assert fold_batchnorm(block) == 0
    assert fold_batchnorm(block.eval()) == 1 and isinstance(block[1], nn.Identity)


def test_even_tiles_recompute_only_the_overlaps() -> None:
    starts, length = even_starts(1024, 528, 32)
    assert starts == [0, 496] and length == 528  # 2 tiles sharing 32 pixels
    starts, length = even_starts(1024, 512, 32)  # 3 tiles of 363, not 512-wide ones
    assert len(starts) == 3 and length == 363 and starts[-1] + length == 1024
    starts, length = even_starts(1760, 600, 32)  # ceil(1728 / 568) = 4 tiles of 464
    assert len(starts) == 4 and 4 * length <= 1760 + 3 * 32 + 4
    starts, length = even_starts(101, 40, 10, q=2)
    assert all(s % 2 == 0 for s in starts) and starts[-1] + length >= 101 - 1  # + q - 1
    overlaps = [a + length - b for a, b in itertools.pairwise(starts)]
    assert min(overlaps) >= 10


def test_memory_budget_decides_tiling() -> None:
    assert parse_memory("2G") == 2 << 30 and parse_memory("512MiB") == 512 << 20
    assert parse_memory("1000") == 1000
    with pytest.raises(ConfigError, match="max-memory"):
        parse_memory("lots")
    assert memory_tile((1024, 1024), 1000.0, 2 << 30, 32) is None  # 1 GB fits in 2 GiB
    side = memory_tile((1024, 1024), 1000.0, 256 << 20, 32)
    assert side is not None and side % 16 == 0 and 1000.0 * side * side <= 256 << 20


def test_small_budget_tiles_and_matches_the_whole_forward() -> None:
    from medsr.image import MedicalImage

    torch.manual_seed(0)
    model = build("srresnet", num_blocks=1, channels=8).eval()
    runner = ModelRunner(model, device="cpu")
    bpp = runner.bytes_per_pixel((4.0, 4.0))
    assert 8 * 4 < bpp < 1e5  # at least one 8-channel float map per pixel
    image = MedicalImage(torch.rand(96, 80).numpy(), (1.0, 1.0))
    logs: list[str] = []
    whole = upscale_image(image, runner, UpscaleSettings(scale=4))
    tiled = upscale_image(
        image, runner, UpscaleSettings(scale=4, max_memory=int(bpp * 64 * 64)), log=logs.append
    )
    assert any("tiling automatically" in line for line in logs)
    assert abs(tiled.image.pixels - whole.image.pixels).max() < 1e-4


def test_compile_that_fails_is_one_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("no C++ compiler\nlong traceback text")

    monkeypatch.setattr(runner_module.torch, "compile", broken)
    model = build("srresnet", num_blocks=1, channels=8)
    with pytest.raises(
        ConfigError, match=r"--compile failed .*no C\+\+ compiler\); run without it$"
    ):
        ModelRunner(model, device="cpu", compile=True)
