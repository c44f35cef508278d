"""Discriminators: any input size, output shapes, spectral norm, gradients, paper widths."""

from __future__ import annotations

import pytest
import torch
import torch.nn.utils.parametrize

from medsr import models
from medsr.errors import ConfigError

SIZES = [(17, 23), (64, 64), (96, 80)]


@pytest.mark.parametrize("name", ["srgan-vgg", "swift", "resnet-sn", "unet-sn"])
def test_any_input_size(name: str) -> None:
    disc = models.build_discriminator(name, width=8).eval()
    for h, w in SIZES:
        out = disc(torch.rand(2, 1, h, w))
        expected = (2, 1, h, w) if disc.per_pixel else (2, 1)
        assert out.shape == expected, (name, h, w)


@pytest.mark.parametrize("name", ["srgan-vgg", "swift", "resnet-sn", "unet-sn"])
def test_gradients_reach_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    disc = models.build_discriminator(name, width=8, in_channels=3)
    disc(torch.rand(2, 3, 24, 20)).square().mean().backward()
    for pname, p in disc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


def test_srgan_vgg_layout() -> None:
    disc = models.build_discriminator("srgan-vgg")
    convs = [m for m in disc.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in disc.modules()) == 7
    no_bn = models.build_discriminator("srgan-vgg", batch_norm=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in no_bn.modules())
    # a 96x96 crop ends in exactly the 6x6 map the original's Dense layer read
    assert disc.features(torch.rand(1, 1, 96, 96)).shape == (1, 512, 6, 6)


def test_swift_discriminator_is_separable() -> None:
    disc = models.build_discriminator("swift")
    depthwise = [
        m
        for m in disc.modules()
        if isinstance(m, torch.nn.Conv2d) and m.groups == m.in_channels > 1
    ]
    assert len(depthwise) == 7  # the first conv has one input channel


@pytest.mark.parametrize("name", ["resnet-sn", "unet-sn"])
def test_spectral_norm_bounds_the_convs(name: str) -> None:
    from torch.nn.utils import parametrize

    disc = models.build_discriminator(name, width=8)
    normalised = [m for m in disc.modules() if parametrize.is_parametrized(m, "weight")]
    assert len(normalised) >= 6
    disc.train()
    for _ in range(30):  # power iterations converge
        disc(torch.rand(1, 1, 16, 16))
    disc.eval()
    for m in normalised:
        sigma = float(torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2))
        assert sigma == pytest.approx(1.0, abs=0.05)


def test_unknown_discriminator() -> None:
    with pytest.raises(ConfigError, match="unknown discriminator"):
        models.build_discriminator("patchgan")


def test_blimsr_discriminator_as_published() -> None:
    """Block 1 keeps 64 channels, the skips hold no parameters, LeakyReLU 0.01, and with
    pool=64 a 512x512 slice reaches the original's Linear(64*64*512, 1): 13.0 M parameters."""
    from medsr.models.discriminators import _SNResidualBlock

    with torch.device("meta"):
        disc = models.build_discriminator("resnet-sn", pool=64)
    blocks = [m for m in disc.features if isinstance(m, _SNResidualBlock)]
    convs = [b.body[0].parametrizations.weight.original for b in blocks]
    assert [(c.shape[1], c.shape[0]) for c in convs] == [
        (64, 64),
        (64, 128),
        (128, 128),
        (128, 256),
        (256, 256),
        (256, 512),
        (512, 512),
    ]
    assert [b.stride for b in blocks] == [1, 2, 1, 2, 1, 2, 1]
    assert all(len(list(b.parameters())) == 4 for b in blocks)  # two convs, weight and bias
    slopes = {m.negative_slope for m in disc.modules() if isinstance(m, torch.nn.LeakyReLU)}
    assert slopes == {0.01}
    count = sum(p.numel() for p in disc.parameters())
    assert count == 640 + 10_915_456 + 64 * 64 * 512 + 1 == 13_013_249


def test_blimsr_discriminator_skip_is_bicubic_half_and_duplication() -> None:
    from medsr.models.discriminators import _SNResidualBlock

    torch.manual_seed(0)
    block = _SNResidualBlock(2, 4, 2, 0.01)
    for conv in (block.body[0], block.body[2]):  # a zero body leaves only the skip
        torch.nn.utils.parametrize.remove_parametrizations(conv, "weight")
        torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
    x = torch.rand(1, 2, 10, 9)
    half = torch.nn.functional.interpolate(x, size=(5, 5), mode="bicubic", align_corners=False)
    expected = torch.nn.functional.leaky_relu(torch.cat([half, half], 1), 0.01)
    torch.testing.assert_close(block(x), expected)
