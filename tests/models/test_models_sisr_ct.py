"""SISR-CT: the published encoder/decoder layout, the identity at initialisation (residual),
and the earlier single-unshuffle layout still building for old weights."""

from __future__ import annotations

import pytest
import torch

from medsr import models
from medsr.errors import ConfigError


@pytest.mark.parametrize("downscale", [1, 2, 4])
def test_residual_sisr_ct_is_the_identity_at_initialisation(downscale: int) -> None:
    torch.manual_seed(0)
    model = models.build(
        "sisr-ct", layout="published", downscale=downscale, num_blocks=1, channels=8
    ).eval()
    fbp = torch.rand(2, 1, 19, 22)  # not a multiple of the downscale: padded and cropped back
    with torch.no_grad():
        torch.testing.assert_close(model(fbp), fbp, atol=0, rtol=0)


def test_residual_sisr_ct_learns_a_correction() -> None:
    torch.manual_seed(0)
    model = models.build("sisr-ct", layout="published", downscale=2, num_blocks=1, channels=8)
    fbp, target = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):
        optimiser.zero_grad()
        torch.nn.functional.mse_loss(model(fbp), target).backward()
        optimiser.step()
    assert not torch.allclose(model(fbp), fbp)
    silent = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert silent == []


def test_published_layout_stages() -> None:
    """log2(r) [conv3, space-to-depth, PReLU] stages, a conv3 head, a mirrored decoder."""
    model = models.build("sisr-ct", layout="published", downscale=4, num_blocks=2, channels=8)
    kinds = [type(m).__name__ for m in model.encode]
    assert kinds == ["Conv2d", "PixelUnshuffle", "PReLU"] * 2
    assert [type(m).__name__ for m in model.decode] == ["Conv2d", "PixelShuffle", "PReLU"] * 2
    assert model.head[0].kernel_size == (3, 3) and model.tail.kernel_size == (3, 3)
    assert model.encode[3].in_channels == 4 * 8 and model.head[0].in_channels == 4 * 8
    assert model.config["layout"] == "published"
    with pytest.raises(ConfigError, match="power of two"):
        models.build("sisr-ct", layout="published", downscale=3)


@pytest.mark.parametrize("downscale", [1, 2])
def test_unshuffle_layout_is_the_identity_at_initialisation_too(downscale: int) -> None:
    model = models.build("sisr-ct", layout="unshuffle", downscale=downscale, channels=8).eval()
    fbp = torch.rand(1, 1, 15, 12)
    with torch.no_grad():
        torch.testing.assert_close(model(fbp), fbp, atol=0, rtol=0)


def test_unshuffle_layout_keeps_its_state_dict_names() -> None:
    """The default until the shipped weights are retrained: old manifest configs load."""
    model = models.build("sisr-ct", num_blocks=1, channels=8)
    assert model.config["layout"] == "unshuffle"
    names = set(model.state_dict())
    assert "trunk.head.0.weight" in names and "tail.weight" in names
    assert model.tail.kernel_size == (9, 9)
    with pytest.raises(ConfigError, match="layout"):
        models.build("sisr-ct", layout="strided")
