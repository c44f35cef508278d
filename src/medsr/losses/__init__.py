"""Training losses: pixel, perceptual (VGG19 / MobileNetV2), adversarial, structural,
and the published objectives as presets built from a config dict.

Every term is differentiable end to end, so each one really trains the
generator. Start from :func:`build_generator_loss` and
:func:`build_discriminator_loss`::

    g_loss = build_generator_loss({"preset": "blimsr", "vgg_weights": "vgg19-dcbb9e9d.pth"})
    d_loss = build_discriminator_loss({"preset": "blimsr"})
    terms = g_loss(sr, hr, discriminator)      # {"perceptual": ..., ..., "total": ...}
    d_terms = d_loss(discriminator, hr, sr)    # {"d_real": ..., "d_fake": ..., "total": ...}
"""

from __future__ import annotations

from medsr.losses.adversarial import AdversarialLoss, GanKind, gradient_penalty
from medsr.losses.perceptual import (
    FeatureNetwork,
    MobileNetV2Features,
    PerceptualLoss,
    VGG19Features,
    build_feature_extractor,
    load_torchvision_features,
)
from medsr.losses.pixel import CharbonnierLoss, L1Loss, LowFrequencyLoss, MSELoss
from medsr.losses.presets import (
    PRESETS,
    DiscriminatorLoss,
    GeneratorLoss,
    Preset,
    available_presets,
    build_discriminator_loss,
    build_generator_loss,
)
from medsr.losses.structural import (
    DSSIMLoss,
    FeatureMatchingLoss,
    GradientLoss,
    SSIMLoss,
    TotalVariationLoss,
)

__all__ = [
    "PRESETS",
    "AdversarialLoss",
    "CharbonnierLoss",
    "DSSIMLoss",
    "DiscriminatorLoss",
    "FeatureMatchingLoss",
    "FeatureNetwork",
    "GanKind",
    "GeneratorLoss",
    "GradientLoss",
    "L1Loss",
    "LowFrequencyLoss",
    "MSELoss",
    "MobileNetV2Features",
    "PerceptualLoss",
    "Preset",
    "SSIMLoss",
    "TotalVariationLoss",
    "VGG19Features",
    "available_presets",
    "build_discriminator_loss",
    "build_feature_extractor",
    "build_generator_loss",
    "gradient_penalty",
    "load_torchvision_features",
]
