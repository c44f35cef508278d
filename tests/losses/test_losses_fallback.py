"""perceptual_fallback: without an ImageNet weights file the perceptual term becomes
discriminator feature matching; with a local file it is used as published."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medsr.errors import ConfigError
from medsr.losses import MobileNetV2Features, build_generator_loss


def test_default_still_refuses_a_missing_weights_file() -> None:
    with pytest.raises(ConfigError, match="mobilenet_weights"):
        build_generator_loss({"preset": "swift-srgan", "stage": "gan"})


def test_feature_matching_stands_in_with_the_perceptual_weight() -> None:
    loss = build_generator_loss(
        {"preset": "swift-srgan", "stage": "gan", "perceptual_fallback": "feature_matching"}
    )
    assert loss.weights == {"mse": 1.0, "tv": 2e-8, "adversarial": 0.001, "feature_matching": 0.006}
    assert loss.needs_discriminator and "perceptual" not in loss.image_terms
    blimsr = build_generator_loss(
        {
            "preset": "blimsr",
            "perceptual_fallback": "feature-matching",
            "perceptual_fallback_weight": 0.1,
            "terms": {"lowfreq": 1.0},
        }
    )
    assert blimsr.weights["feature_matching"] == 0.1 and blimsr.weights["lowfreq"] == 1.0
    with pytest.raises(ConfigError, match="perceptual_fallback must be one of"):
        build_generator_loss({"preset": "blimsr", "perceptual_fallback": "vgg"})
    with pytest.raises(ConfigError, match="perceptual_fallback_weight"):
        build_generator_loss(
            {
                "preset": "blimsr",
                "perceptual_fallback": "feature_matching",
                "terms": {"feature_matching": 0.2},
            }
        )


def test_a_local_weights_file_is_used_as_published(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "mobilenet_v2.pth"
    features = MobileNetV2Features(["features.18"])
    torch.save({f"features.{k}": v for k, v in features.features.state_dict().items()}, path)
    loss = build_generator_loss(
        {
            "preset": "swift-srgan",
            "perceptual_fallback": "feature_matching",
            "mobilenet_weights": str(path),
        }
    )
    assert loss.weights["perceptual"] == 0.006 and "feature_matching" not in loss.weights
