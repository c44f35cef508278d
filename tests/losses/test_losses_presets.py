"""Published objectives: SPEC weights, every term trains the generator, config errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from medsr.errors import ConfigError
from medsr.losses import (
    GanKind,
    PerceptualLoss,
    available_presets,
    build_discriminator_loss,
    build_generator_loss,
)


class TinyGenerator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(x))


class TinyDiscriminator(nn.Module):
    """Two strided convs; exposes its hidden features for feature matching."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.c2 = nn.Conv2d(4, 1, 3, stride=2, padding=1)

    def forward(
        self, x: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        hidden = F.leaky_relu(self.c1(x), 0.2)
        out = self.c2(hidden).flatten(1).mean(dim=1)
        return (out, [hidden]) if return_features else out


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 1, 32, 32, generator=g), torch.rand(2, 1, 32, 32, generator=g)


def assert_every_term_trains_the_generator(config: dict) -> set[str]:
    torch.manual_seed(0)
    generator, discriminator = TinyGenerator(), TinyDiscriminator()
    loss = build_generator_loss(config, allow_random_init=True)
    lr, hr = batch()
    terms = loss(generator(lr), hr, discriminator)
    names = set(terms) - {"total"}
    assert names == set(loss.weights)
    total = sum(v.detach() for k, v in terms.items() if k != "total")
    assert terms["total"].item() == pytest.approx(float(total), rel=1e-6)
    for name in sorted(names):
        generator.zero_grad()
        terms[name].backward(retain_graph=True)
        grad = generator.conv.weight.grad
        assert grad is not None and float(grad.abs().sum()) > 0, (
            f"{config}: {name} gives no gradient"
        )
    return names


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"preset": "swift-srgan"}, {"mse", "adversarial", "perceptual", "tv"}),
        ({"preset": "srgan"}, {"l1", "adversarial"}),
        ({"preset": "srgan", "terms": {"perceptual": 0.006}}, {"l1", "adversarial", "perceptual"}),
        ({"preset": "blimsr"}, {"perceptual", "adversarial", "l1", "gradient", "dssim"}),
        ({"preset": "miassr"}, {"l1", "perceptual", "adversarial"}),
        ({"preset": "miassr", "gan": "ragan"}, {"l1", "perceptual", "adversarial"}),
        ({"preset": "miassr", "gan": "wgan-gp"}, {"l1", "perceptual", "adversarial"}),
        ({"preset": "miassr", "stage": "warmup"}, {"l1"}),
    ],
)
def test_every_term_of_every_preset_gives_a_nonzero_generator_gradient(
    config: dict, expected: set[str]
) -> None:
    assert assert_every_term_trains_the_generator(config) == expected


@pytest.mark.parametrize("kind", [k.value for k in GanKind])
def test_every_gan_kind_and_feature_matching_train_the_generator(kind: str) -> None:
    config = {
        "gan": kind,
        "terms": {"charbonnier": 1.0, "adversarial": 0.1, "feature_matching": 1.0},
    }
    assert assert_every_term_trains_the_generator(config) == {
        "charbonnier",
        "adversarial",
        "feature_matching",
    }


def test_presets_carry_the_published_weights() -> None:
    assert available_presets() == ["blimsr", "miassr", "srgan", "swift-srgan"]
    swift = build_generator_loss("swift-srgan", allow_random_init=True)
    assert swift.weights == {"mse": 1.0, "adversarial": 0.001, "perceptual": 0.006, "tv": 2e-8}
    swift_vgg = swift.image_terms["perceptual"]
    assert isinstance(swift_vgg, PerceptualLoss)
    assert swift_vgg.network.value == "mobilenet_v2" and swift_vgg.criterion == "mse"

    assert build_generator_loss("srgan").weights == {"l1": 1000.0, "adversarial": 1.0}

    blimsr = build_generator_loss("blimsr", allow_random_init=True)
    assert blimsr.weights == {
        "perceptual": 1.0,
        "adversarial": 0.01,
        "l1": 0.1,
        "gradient": 1.0,
        "dssim": 1.0,
    }
    vgg = blimsr.image_terms["perceptual"]
    assert isinstance(vgg, PerceptualLoss) and vgg.criterion == "l1"
    assert vgg.layer_weights == {
        "conv1_2": 0.5,
        "conv2_2": 0.25,
        "conv3_4": 0.125,
        "conv4_4": 0.0625,
        "conv5_4": 0.0625,
    }

    miassr = build_generator_loss("miassr", allow_random_init=True)
    assert miassr.weights == {"l1": 1.0, "perceptual": 0.006, "adversarial": 0.001}
    relu22 = miassr.image_terms["perceptual"]
    assert isinstance(relu22, PerceptualLoss)
    assert relu22.layer_weights == {"relu2_2": 1.0} and relu22.criterion == "mse"
    assert build_discriminator_loss("miassr", gan="wgan-gp").gp_weight == 10.0


def test_warmup_needs_no_discriminator_and_no_weights() -> None:
    loss = build_generator_loss({"preset": "blimsr", "stage": "warmup"})
    assert loss.weights == {"l1": 1.0} and not loss.needs_discriminator
    lr, hr = batch()
    assert loss(lr, hr)["total"].item() == pytest.approx(F.l1_loss(lr, hr).item())


def test_overrides_add_change_and_remove_terms() -> None:
    loss = build_generator_loss(
        {
            "preset": "blimsr",
            "allow_random_init": True,
            "terms": {
                "adversarial": 0,
                "perceptual": {"layers": ["relu1_1"]},
                "edges": {"type": "tv", "kind": "l1", "weight": 0.5},
            },
        }
    )
    assert loss.weights == {
        "perceptual": 1.0,
        "l1": 0.1,
        "gradient": 1.0,
        "dssim": 1.0,
        "edges": 0.5,
    }
    assert not loss.needs_discriminator
    vgg = loss.image_terms["perceptual"]
    assert isinstance(vgg, PerceptualLoss) and vgg.layer_weights == {"relu1_1": 1.0}


def test_discriminator_losses_train_the_discriminator_only() -> None:
    lr, hr = batch()
    for kind in GanKind:
        torch.manual_seed(0)
        generator, discriminator = TinyGenerator(), TinyDiscriminator()
        d_loss = build_discriminator_loss({"gan": kind.value})
        terms = d_loss(discriminator, hr, generator(lr))
        assert ("gp" in terms) == (kind is GanKind.WGAN_GP)
        terms["total"].backward()
        assert generator.conv.weight.grad is None
        # The last bias cancels out of relativistic and Wasserstein losses; weights must move.
        for p in (discriminator.c1.weight, discriminator.c2.weight, discriminator.c1.bias):
            assert p.grad is not None and float(p.grad.abs().sum()) > 0, kind


def test_config_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match=r"set loss\.vgg_weights"):
        build_generator_loss("blimsr")
    with pytest.raises(ConfigError, match=r"set loss\.mobilenet_weights"):
        build_generator_loss("swift-srgan")
    with pytest.raises(ConfigError, match=r"set loss\.vgg_weights"):
        build_generator_loss({"preset": "srgan", "terms": {"perceptual": 0.006}})
    with pytest.raises(ConfigError, match="unknown loss preset 'esrgan'"):
        build_generator_loss("esrgan")
    with pytest.raises(ConfigError, match="unknown loss option"):
        build_generator_loss({"preset": "srgan", "vgg_wieghts": "x"})
    with pytest.raises(ConfigError, match=r"loss\.terms\.l1: unknown option"):
        build_generator_loss({"terms": {"l1": {"weight": 1, "eps": 2}}})
    with pytest.raises(ConfigError, match="unknown term type"):
        build_generator_loss({"terms": {"focal": 1.0}})
    with pytest.raises(ConfigError, match="stage"):
        build_generator_loss({"preset": "srgan", "stage": "finetune"})
    with pytest.raises(ConfigError, match="no terms"):
        build_generator_loss({"terms": {"l1": 0}})
    lr, hr = batch()
    with pytest.raises(ConfigError, match="needs the discriminator"):
        build_generator_loss("srgan")(lr, hr)


class SequentialDiscriminator(nn.Module):
    """Like medsr's discriminators: a ``features`` Sequential with in-place activations."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(4, 4, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.head = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def test_feature_matching_hooks_a_features_sequential() -> None:
    torch.manual_seed(0)
    generator, discriminator = TinyGenerator(), SequentialDiscriminator()
    loss = build_generator_loss({"terms": {"l1": 1.0, "feature_matching": 1.0}})
    lr, hr = batch()
    sr = generator(lr)
    terms = loss(sr, hr, discriminator)
    with torch.no_grad():
        f1 = F.leaky_relu(discriminator.features[0](sr), 0.2)
        f2 = F.leaky_relu(discriminator.features[2](f1), 0.2)
        r1 = F.leaky_relu(discriminator.features[0](hr), 0.2)
        r2 = F.leaky_relu(discriminator.features[2](r1), 0.2)
    expected = (F.l1_loss(f1, r1) + F.l1_loss(f2, r2)) / 2
    assert terms["feature_matching"].item() == pytest.approx(expected.item(), rel=1e-5)
    terms["feature_matching"].backward()
    assert generator.conv.weight.grad is not None
    assert float(generator.conv.weight.grad.abs().sum()) > 0
    assert not discriminator.features[0]._forward_hooks


@pytest.mark.parametrize("name", ["srgan-vgg", "resnet-sn"])
def test_feature_matching_works_with_medsr_discriminators(name: str) -> None:
    models = pytest.importorskip("medsr.models")
    torch.manual_seed(0)
    generator = TinyGenerator()
    discriminator = models.build_discriminator(name, width=8)
    loss = build_generator_loss({"terms": {"adversarial": 0.01, "feature_matching": 1.0}})
    lr, hr = batch()
    terms = loss(generator(lr), hr, discriminator)
    for term in ("adversarial", "feature_matching"):
        generator.zero_grad()
        terms[term].backward(retain_graph=True)
        assert float(generator.conv.weight.grad.abs().sum()) > 0, term
