"""Generators and baselines: paper sizes, output shapes, scale checks, gradients, receptive fields."""

from __future__ import annotations

import math

import pytest
import torch

from medsr import models
from medsr.degrade.resize import imresize
from medsr.degrade.resize import output_size as imresize_output_size
from medsr.errors import ConfigError

#: small versions of every generator, for speed
TINY: dict[str, dict] = {
    "srresnet": {"num_blocks": 2, "channels": 8},
    "swift-srgan": {"num_blocks": 2, "channels": 8},
    "blimsr": {"num_groups": 2, "num_blocks": 1, "channels": 16},
    "blimsr-lite": {"channels": 16},
    "miassr": {"num_blocks": 2, "channels": 8, "mlp_hidden": 16},
    "sisr-us": {"num_blocks": 2, "channels": 8},
    "sisr-ct": {"num_blocks": 2, "channels": 8, "residual": False, "layout": "published"},
}
BASELINES = ("nearest", "bilinear", "bicubic", "lanczos", "zero-fill")


def test_registry_lists_every_model() -> None:
    assert models.available() == [*TINY, *BASELINES]
    assert models.available_discriminators() == ["srgan-vgg", "swift", "resnet-sn", "unet-sn"]


@pytest.mark.parametrize(
    ("name", "paper_millions"),
    [("swift-srgan", 0.20), ("miassr", 1.4), ("blimsr", 19.0), ("srresnet", 1.55)],
)
def test_parameter_count_at_paper_settings(name: str, paper_millions: float) -> None:
    count = models.info(name)["parameters"]  # built on the meta device
    assert abs(count / 1e6 - paper_millions) <= 0.10 * paper_millions, count


def test_blimsr_lite_is_small() -> None:
    assert models.info("blimsr-lite")["parameters"] < 300_000


@pytest.mark.parametrize("name", ["srresnet", "swift-srgan", "blimsr-lite"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_fixed_scale_shapes_on_odd_sizes(name: str, scale: int) -> None:
    model = models.build(name, scale=scale, **TINY[name])
    out = model(torch.rand(2, 1, 7, 9))
    assert out.shape == (2, 1, 7 * scale, 9 * scale)
    assert model.default_scale == (scale, scale) and model.supported_scales == ((scale, scale),)


def test_srresnet_x8_has_three_shuffle_stages() -> None:
    model = models.build("srresnet", scale=8, **TINY["srresnet"])
    assert sum(isinstance(m, torch.nn.PixelShuffle) for m in model.modules()) == 3
    assert model(torch.rand(1, 1, 3, 5)).shape == (1, 1, 24, 40)


@pytest.mark.parametrize("scale", [1.5, 2.0, 2.7, 3.0, 3.3, 4.0, (1.0, 4.0), (2.5, 1.0)])
def test_miassr_any_scale_shapes(scale: float | tuple[float, float]) -> None:
    model = models.build("miassr", **TINY["miassr"])
    out = model(torch.rand(2, 1, 7, 9), scale=scale)
    sy, sx = models.as_scale_pair(scale)
    assert out.shape == (2, 1, math.ceil(7 * sy - 1e-9), math.ceil(9 * sx - 1e-9))


@pytest.mark.parametrize("upsampler", ["width-shuffle", "strided"])
@pytest.mark.parametrize("scale", [2, 4])
def test_sisr_us_upsamples_width_only(upsampler: str, scale: int) -> None:
    model = models.build("sisr-us", scale=scale, upsampler=upsampler, **TINY["sisr-us"])
    assert model.default_scale == (1.0, scale)
    assert model(torch.rand(2, 1, 7, 9)).shape == (2, 1, 7, 9 * scale)


def test_width_shuffle_interleaves_channel_pairs() -> None:
    from medsr.models.sisr import WidthShuffle

    x = torch.arange(2 * 2 * 1 * 3, dtype=torch.float32).view(1, 4, 1, 3)  # C=2 of r=2
    out = WidthShuffle(2)(x)
    assert out.shape == (1, 2, 1, 6)
    assert out[0, 0, 0].tolist() == [0, 3, 1, 4, 2, 5]


@pytest.mark.parametrize("downscale", [2, 4])
def test_sisr_ct_keeps_the_size(downscale: int) -> None:
    model = models.build("sisr-ct", downscale=downscale, **TINY["sisr-ct"])
    assert model.default_scale == (1.0, 1.0)
    assert model(torch.rand(2, 1, 7, 9)).shape == (2, 1, 7, 9)


@pytest.mark.parametrize("name", BASELINES[:-1])
def test_baselines_match_imresize(name: str) -> None:
    model = models.build(name)
    lr = torch.rand(2, 1, 7, 9)
    kernel = {"nearest": "nearest", "bilinear": "linear", "bicubic": "cubic", "lanczos": "lanczos3"}
    for scale in (2.7, (1.0, 4.0)):
        expected = imresize(lr, scale=scale, kernel=kernel[name])
        torch.testing.assert_close(model(lr, scale), expected)
    assert model.is_baseline and model.arbitrary_scale and models.count_parameters(model) == 0


def test_zero_fill_baseline_is_the_k_space_zero_fill() -> None:
    """The zero-fill baseline inverts mr-kspace on band-limited content (any scale)."""
    from medsr.degrade.mr import MRKSpace

    model = models.build("zero-fill")
    y, x = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    hr = 0.5 + 0.2 * torch.cos(2 * torch.pi * 3 * x / 32) * torch.sin(2 * torch.pi * 2 * y / 32)
    lr = MRKSpace(4).apply(hr[None, None], {})
    torch.testing.assert_close(model(lr, 4), hr[None, None], atol=1e-5, rtol=0)
    assert model(lr, 2.5).shape == (1, 1, 20, 20)
    assert model.is_baseline and model.grid == "dft" and models.count_parameters(model) == 0


def test_nearest_x2_repeats_pixels() -> None:
    lr = torch.rand(1, 1, 3, 4)
    expected = lr.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    torch.testing.assert_close(models.build("nearest")(lr, 2), expected)


@pytest.mark.parametrize("scale", [1.5, 2.7, 3.3, (1.0, 4.0), 4.0])
def test_output_size_agrees_with_imresize(scale: float | tuple[float, float]) -> None:
    for h, w in ((7, 9), (10, 10), (33, 1)):
        assert models.output_size(h, w, scale) == imresize_output_size(h, w, scale)


def test_unsupported_scale_names_the_supported_one() -> None:
    model = models.build("srresnet", **TINY["srresnet"])
    with pytest.raises(ConfigError, match="x4"):
        model(torch.rand(1, 1, 4, 4), scale=2)
    with pytest.raises(ConfigError, match=r"\[1, 4\]"):
        models.build("miassr", **TINY["miassr"])(torch.rand(1, 1, 4, 4), scale=4.5)
    with pytest.raises(ConfigError, match=r"x\(1,4\)"):
        models.build("sisr-us", **TINY["sisr-us"])(torch.rand(1, 1, 4, 4), scale=4)


def test_build_errors_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown model 'edsr'"):
        models.build("edsr")
    with pytest.raises(ConfigError, match="num_blok"):
        models.build("srresnet", num_blok=3)
    with pytest.raises(ConfigError, match="power of two"):
        models.build("srresnet", scale=6)
    with pytest.raises(ConfigError, match="expects a"):
        models.build("srresnet", **TINY["srresnet"])(torch.rand(1, 3, 4, 4))


@pytest.mark.parametrize("name", list(TINY))
def test_config_rebuilds_the_same_architecture(name: str) -> None:
    model = models.build(name, **TINY[name])
    again = models.build(name, **model.config)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert shapes == {k: v.shape for k, v in again.state_dict().items()}
    assert again.name == name


@pytest.mark.parametrize("name", ["srresnet", "swift-srgan", "blimsr-lite", "miassr", "sisr-us"])
def test_multichannel_override(name: str) -> None:
    model = models.build(name, in_channels=3, out_channels=3, **TINY[name])
    out = model(torch.rand(1, 3, 5, 6))
    assert out.shape[:2] == (1, 3) and model.in_channels == model.out_channels == 3


@pytest.mark.parametrize("name", list(TINY))
def test_gradients_reach_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    model = models.build(name, **TINY[name])
    scale = 2.5 if name == "miassr" else None  # the gather path of Meta-Upscale
    lr = torch.rand(2, 1, 6, 7)
    out = model(lr, scale)
    loss = torch.nn.functional.mse_loss(out, torch.rand_like(out))
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert p.grad.abs().sum() > 0, pname


def test_swift_and_blimsr_outputs_are_bounded() -> None:
    lr = torch.rand(1, 1, 6, 6) * 10
    for name in ("swift-srgan", "blimsr-lite"):
        out = models.build(name, **TINY[name])(lr)
        assert out.min() >= 0 and out.max() <= 1


def _gradient_reach(model: models.SRModel, size: int) -> int:
    """Largest LR distance (in pixels, either axis) from an HR pixel's source at which the
    input gets a non-zero gradient."""
    model.eval().double()
    lr = torch.rand(1, model.in_channels, size, size, dtype=torch.float64, requires_grad=True)
    out = model(lr)
    sy, sx = model.default_scale
    i, j = out.shape[2] // 2, out.shape[3] // 2
    out[0, 0, i, j].backward()
    assert lr.grad is not None
    ys, xs = torch.nonzero(lr.grad[0].abs().sum(0), as_tuple=True)
    cy, cx = math.floor(i / sy), math.floor(j / sx)
    return int(max((ys - cy).abs().max(), (xs - cx).abs().max()))


@pytest.mark.parametrize("name", [*TINY, "bicubic", "lanczos"])
def test_receptive_field_is_tight(name: str) -> None:
    torch.manual_seed(1)
    model = models.build(name, **TINY.get(name, {}))
    rf = model.receptive_field
    reach = _gradient_reach(model, 2 * rf + 9)
    assert rf - 2 <= reach <= rf, (reach, rf)


def test_stride_one_transposed_conv_equals_torch() -> None:
    from medsr.models.blimsr import StrideOneTransposedConv2d

    layer = StrideOneTransposedConv2d(3, 5, 5)
    reference = torch.nn.ConvTranspose2d(3, 5, 5, padding=2)
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(2, 3, 7, 6)
    torch.testing.assert_close(layer(x), reference(x))
