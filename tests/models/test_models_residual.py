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


def test_residual_needs_matching_channels() -> None:
    with pytest.raises(ConfigError, match="in_channels must equal"):
        models.build("srresnet", residual=True, in_channels=1, out_channels=3)
