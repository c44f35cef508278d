"""The app's model list, descriptions and suggestion: each zoo model described by its own
shipped network, and the same choice as ``medsr upscale`` (:func:`choose_model`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest

from medsr.app import logic
from medsr.image import MedicalImage, Modality

if TYPE_CHECKING:
    from tests.app.conftest import AppZoo


def flat(modality: Modality) -> MedicalImage:
    return MedicalImage(np.zeros((16, 16), np.float32), (1.0, 1.0), modality=modality)


def test_a_zoo_model_is_described_by_its_own_network(app_zoo: AppZoo) -> None:
    from medsr.models import build, info

    generic, mr_kspace = app_zoo.generic, app_zoo.mr_kspace
    summary = logic.model_summary(generic)
    assert summary.startswith("SRResNet, 3 blocks x 12 channels, ")
    parameters = sum(
        p.numel() for p in build("srresnet", scale=2, num_blocks=3, channels=12).parameters()
    )
    assert f"{parameters / 1e6:.2f} M parameters (CPU-sized" in summary
    assert "16 residual blocks" not in summary and "64 channels" not in summary
    assert summary.endswith("trained for bicubic input (any modality), reference bicubic")
    # what the sidebar shows for the loaded model is the same line
    assert logic.describe_model(logic.load_model(generic)).summary == summary
    mr = logic.model_summary(mr_kspace)
    assert "1 block x 8 channels" in mr
    assert "adds its output to zero-filled k-space" in mr
    assert mr.endswith("trained for mr-kspace input (MR), reference zero-fill")
    # a bare architecture or a baseline keeps the registry's summary
    assert logic.model_summary("srresnet") == info("srresnet")["summary"]
    assert logic.model_summary("zero-fill") == info("zero-fill")["summary"]


def test_every_shipped_zoo_model_states_its_own_size(monkeypatch: pytest.MonkeyPatch) -> None:
    from medsr.zoo.describe import describe_zoo_model
    from medsr.zoo.manifest import ZOO_ENV, zoo_models

    monkeypatch.delenv(ZOO_ENV, raising=False)
    for name, entry in zoo_models().items():
        summary = logic.model_summary(name)
        assert summary == describe_zoo_model(name)
        config = entry.get("config") or {}
        if "num_blocks" in config:
            assert f"{config['num_blocks']} blocks" in summary, name
        if "channels" in config:
            assert f"{config['channels']} channels" in summary, name


@pytest.mark.parametrize(
    ("modality", "expected", "why"),
    [
        (Modality.MR, "mr_kspace", "trained for modality MR (mr-kspace)"),
        (Modality.OTHER, "generic", "the file states no modality"),
        (Modality.CT, "generic", "no shipped model for modality CT (ct-sparse-view)"),
    ],
)
def test_the_suggestion_is_choose_model(
    app_zoo: AppZoo, modality: Modality, expected: str, why: str
) -> None:
    from medsr.zoo.choice import choose_model

    suggested = logic.model_for_image(flat(modality), 2.0)
    assert suggested == choose_model(2.0, modality=modality)
    assert suggested.name == getattr(app_zoo, expected)
    assert why in suggested.reason
    assert logic.available_models(first=suggested.name)[0] == suggested.name


def test_suggestion_without_an_image_and_model_order(app_zoo: AppZoo) -> None:
    generic, mr_kspace = app_zoo.generic, app_zoo.mr_kspace
    assert logic.model_for_image(None, 2.0).name == logic.default_model() == generic
    names = logic.available_models()
    assert names == [generic, mr_kspace, *logic.BASELINES]
    # a baseline may lead (an empty zoo's choice is bicubic); an unknown name may not
    assert logic.available_models(first="zero-fill")[0] == "zero-fill"
    assert logic.available_models(first="no-such-model")[0] == generic
