"""residual=True: a generator starts as bicubic exactly and learns only SR - bicubic."""

from __future__ import annotations

import pytest
import torch

from medsr import models
from medsr.degrade.resize import imresize
from medsr.errors import ConfigError


@pytest.mark.parametrize(
    ("name", "overrides", "scale"),
    [
        ("srresnet", {"scale": 2, "num_blocks": 2, "channels": 8}, 2.0),
        ("srresnet", {"scale": 4, "num_blocks": 2, "channels": 8}, 4.0),
        ("miassr", {"num_blocks": 2, "channels": 8, "mlp_hidden": 16}, 2.7),
        ("miassr", {"num_blocks": 2, "channels": 8, "mlp_hidden": 16}, (1.0, 4.0)),
        ("swift-srgan", {"scale": 4, "num_blocks": 2, "channels": 8}, 4.0),
        ("swift-srgan", {"scale": 2, "num_blocks": 1, "channels": 8}, 2.0),
        ("blimsr-lite", {"scale": 4, "channels": 16}, 4.0),
        ("blimsr", {"scale": 2, "num_groups": 1, "num_blocks": 1, "channels": 16}, 2.0),
    ],
)
def test_residual_model_starts_as_bicubic_and_trains(
    name: str, overrides: dict[str, object], scale: float | tuple[float, float]
) -> None:
    torch.manual_seed(0)
    model = models.build(name, residual=True, **overrides)
    lr = torch.rand(2, 1, 9, 11)
    expected = imresize(lr, scale=scale, kernel="cubic")
    torch.testing.assert_close(model(lr, scale), expected)
    # one optimiser step moves it away from bicubic, and the next step reaches every parameter
    target = torch.rand_like(expected)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):
        optimiser.zero_grad()
        torch.nn.functional.mse_loss(model(lr, scale), target).backward()
        optimiser.step()
    assert not torch.allclose(model(lr, scale), expected)
    silent = [
        n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0
    ]
    assert silent == []
    rebuilt = models.build(name, **model.config)
    assert rebuilt.residual


@pytest.mark.parametrize("name", ["srresnet", "swift-srgan", "blimsr-lite"])
def test_residual_needs_matching_channels(name: str) -> None:
    with pytest.raises(ConfigError, match="in_channels must equal"):
        models.build(name, residual=True, in_channels=1, out_channels=3)


@pytest.mark.parametrize("name", ["swift-srgan", "blimsr-lite"])
def test_gan_generator_with_the_skip_keeps_a_flat_input_flat(name: str) -> None:
    """At initialisation a flat 0.1 stays 0.1 everywhere (no pixel-shuffle texture, no
    intensity mapping): the defect the non-residual GAN generators showed after training."""
    torch.manual_seed(0)
    model = models.build(name, scale=4, residual=True, channels=8).eval()
    with torch.no_grad():
        out = model(torch.full((1, 1, 12, 12), 0.1))
    torch.testing.assert_close(out, torch.full((1, 1, 48, 48), 0.1), atol=1e-6, rtol=0)
