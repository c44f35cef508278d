"""VGG19 / MobileNetV2 feature extractors: torchvision layout, weights loading, clear errors."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from medsr.errors import ConfigError, InputError
from medsr.losses import (
    MobileNetV2Features,
    PerceptualLoss,
    VGG19Features,
    build_feature_extractor,
    load_torchvision_features,
)
from medsr.losses.perceptual import vgg19_layer_names


def test_vgg19_layer_names_follow_torchvision_indices() -> None:
    names = vgg19_layer_names()
    assert len(names) == 37
    assert names.index("conv1_2") == 2
    assert names.index("relu2_2") == 8
    assert names.index("conv3_4") == 16
    assert names.index("conv4_4") == 25
    assert names.index("conv5_4") == 34
    assert names[-1] == "pool5"


def test_parameter_counts_match_torchvision() -> None:
    vgg = VGG19Features(["conv5_4"])
    assert sum(p.numel() for p in vgg.parameters()) == 20_024_384
    mobilenet = MobileNetV2Features(["features"])
    assert sum(p.numel() for p in mobilenet.parameters()) == 2_223_872
    keys = set(mobilenet.state_dict())
    assert {
        "features.0.0.weight",
        "features.1.conv.1.weight",
        "features.2.conv.3.running_var",
    } <= keys
    assert "features.18.1.num_batches_tracked" in keys


def test_missing_weights_raise_a_clear_config_error() -> None:
    with pytest.raises(ConfigError, match=r"set loss\.vgg_weights .*vgg19-dcbb9e9d\.pth"):
        PerceptualLoss(["relu2_2"], network="vgg19")
    with pytest.raises(ConfigError, match=r"loss\.mobilenet_weights"):
        build_feature_extractor("mobilenet_v2", ["features"], None)
    with pytest.raises(ConfigError, match="unknown feature layer"):
        VGG19Features(["relu9_9"])


def test_torchvision_format_file_loads_and_reproduces_features(tmp_path) -> None:
    torch.manual_seed(0)
    source = VGG19Features(["relu2_2", "conv3_1"])  # features.0 .. features.10
    state = dict(source.state_dict())
    state["classifier.0.weight"] = torch.zeros(2, 2)  # a full torchvision file has more keys
    pth = tmp_path / "vgg19-test.pth"
    torch.save(state, pth)
    st = tmp_path / "vgg19-test.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(st))

    x = torch.rand(1, 1, 32, 32)
    expected = source(x)["relu2_2"]
    for path in (pth, st):
        loaded = build_feature_extractor("vgg19", ["relu2_2"], path)
        assert torch.equal(loaded(x)["relu2_2"], expected)

    deeper = VGG19Features(["conv5_4"])
    with pytest.raises(InputError, match=r"features\.12\.weight"):
        load_torchvision_features(deeper, pth, "vgg19")
    with pytest.raises(InputError, match="not found"):
        build_feature_extractor("vgg19", ["relu2_2"], tmp_path / "absent.pth")


def test_mobilenet_state_dict_round_trip(tmp_path) -> None:
    torch.manual_seed(1)
    source = MobileNetV2Features(["features.6", "features"])
    for m in source.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "mobilenet_v2.pth"
    torch.save(source.state_dict(), path)
    loaded = build_feature_extractor("mobilenet_v2", ["features.6"], path)
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(loaded(x)["features.6"], source(x)["features.6"])
    full = build_feature_extractor("mobilenet_v2", ["features"], path)
    assert torch.equal(full(x)["features"], source(x)["features"])


def test_extractor_is_frozen_and_stays_in_eval_mode() -> None:
    loss = PerceptualLoss(["features"], network="mobilenet_v2", allow_random_init=True)
    loss.train()
    assert not loss.extractor.training
    assert all(not p.requires_grad for p in loss.parameters())
    before = loss.extractor.features[0][1].running_mean.clone()
    loss(torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32))
    assert torch.equal(before, loss.extractor.features[0][1].running_mean)


def test_single_channel_is_repeated_and_normalised() -> None:
    vgg = VGG19Features(["relu1_1"])
    gray = torch.rand(1, 1, 16, 16)
    assert torch.equal(vgg(gray)["relu1_1"], vgg(gray.repeat(1, 3, 1, 1))["relu1_1"])
    with pytest.raises(ConfigError, match="1, H, W"):
        vgg(torch.rand(1, 2, 16, 16))


def test_perceptual_loss_weights_layers_and_is_zero_on_identity() -> None:
    torch.manual_seed(2)
    sr = torch.rand(1, 1, 32, 32, requires_grad=True)
    hr = torch.rand(1, 1, 32, 32)
    both = PerceptualLoss({"conv1_2": 0.5, "relu2_2": 2.0}, allow_random_init=True)
    one = PerceptualLoss({"conv1_2": 1.0}, allow_random_init=True)
    two = PerceptualLoss({"relu2_2": 1.0}, allow_random_init=True)
    one.extractor.load_state_dict(both.extractor.state_dict(), strict=False)
    two.extractor.load_state_dict(both.extractor.state_dict())
    expected = 0.5 * one(sr, hr) + 2.0 * two(sr, hr)
    value = both(sr, hr)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    value.backward()
    assert sr.grad is not None and float(sr.grad.abs().sum()) > 0
    assert both(hr, hr).item() == 0.0
