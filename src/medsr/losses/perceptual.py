"""Perceptual losses on frozen ImageNet features: VGG19 and MobileNetV2.

The two feature extractors are written here with the module names of
torchvision's ``vgg19().features`` and ``mobilenet_v2().features``, so the
``features.N...`` entries of a torchvision weights file (``.pth`` or
``.safetensors``) load directly; torchvision itself is not needed. medsr ships
no ImageNet weights and never downloads: the user names a local file
(``loss.vgg_weights`` / ``loss.mobilenet_weights``). Random initialisation is
possible for tests only (``allow_random_init=True``): such features make the
loss meaningless for real training.

Inputs are images in [0, 1] with 1 or 3 channels; one channel is repeated to
three, then ImageNet mean/std normalisation is applied.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medsr.errors import ConfigError, InputError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "FeatureExtractor",
    "FeatureNetwork",
    "MobileNetV2Features",
    "PerceptualLoss",
    "VGG19Features",
    "build_feature_extractor",
    "load_torchvision_features",
    "mobilenet_v2_layer_names",
    "vgg19_layer_names",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: torchvision ``vgg19`` configuration: output channels of each conv, "M" for a max-pool.
_VGG19_CONFIG: tuple[int | str, ...] = (
    64, 64, "M",
    128, 128, "M",
    256, 256, 256, 256, "M",
    512, 512, 512, 512, "M",
    512, 512, 512, 512, "M",
)  # fmt: skip

#: torchvision ``mobilenet_v2`` inverted-residual settings: expansion t, channels c, repeats n, stride s.
_MOBILENET_V2_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class FeatureNetwork(str, enum.Enum):
    """The ImageNet feature networks a perceptual loss can use."""

    VGG19 = "vgg19"
    MOBILENET_V2 = "mobilenet_v2"

    @classmethod
    def parse(cls, value: str | FeatureNetwork) -> FeatureNetwork:
        if isinstance(value, FeatureNetwork):
            return value
        key = value.strip().lower().replace("-", "_").replace("mobilenetv2", "mobilenet_v2")
        try:
            return cls(key)
        except ValueError:
            raise ConfigError(
                f"unknown perceptual network {value!r}; choose vgg19 or mobilenet_v2"
            ) from None


#: What each network's weights option is called and which torchvision file fits it.
_WEIGHTS_HELP: dict[FeatureNetwork, tuple[str, str, str]] = {
    FeatureNetwork.VGG19: ("VGG19", "loss.vgg_weights", "vgg19 file (e.g. vgg19-dcbb9e9d.pth)"),
    FeatureNetwork.MOBILENET_V2: (
        "MobileNetV2",
        "loss.mobilenet_weights",
        "mobilenet_v2 file (e.g. mobilenet_v2-b0353104.pth)",
    ),
}


def vgg19_layer_names() -> list[str]:
    """Names of ``vgg19().features[i]`` by index: conv1_1, relu1_1, conv1_2, ..., pool5."""
    names: list[str] = []
    block, conv = 1, 1
    for item in _VGG19_CONFIG:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


def mobilenet_v2_layer_names() -> list[str]:
    """Names of ``mobilenet_v2().features[i]`` by index: features.0 ... features.18."""
    return [f"features.{i}" for i in range(19)]


def _kaiming_init(module: nn.Module) -> None:
    """Variance-preserving He-normal init (fan in, so depthwise convs keep their scale),
    unit BN, zero biases: only what random-init test runs see."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class FeatureExtractor(nn.Module):
    """A frozen ``features`` stack returning the outputs of named layers.

    Always in eval mode (``train()`` is a no-op) and without trainable
    parameters, so it never changes while a generator trains against it.
    """

    features: nn.Sequential
    mean: Tensor
    std: Tensor

    def __init__(self, layer_names: Sequence[str], wanted: Sequence[str]) -> None:
        super().__init__()
        self.all_layer_names = list(layer_names)
        unknown = [name for name in wanted if name not in self.all_layer_names]
        if unknown:
            raise ConfigError(
                f"unknown feature layer(s) {', '.join(unknown)}; "
                f"known: {', '.join(self.all_layer_names)}"
            )
        self.wanted = list(dict.fromkeys(wanted))
        self.last_index = max(self.all_layer_names.index(name) for name in self.wanted)
        self.register_buffer(
            "mean", torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1), persistent=False
        )

    def _freeze(self) -> None:
        for p in self.parameters():
            p.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> FeatureExtractor:
        return self

    def normalise(self, x: Tensor) -> Tensor:
        """[0, 1] images with 1 or 3 channels -> ImageNet-normalised 3-channel input."""
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ConfigError(
                f"perceptual features need (B, 1, H, W) or (B, 3, H, W) images; got {tuple(x.shape)}"
            )
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        h = self.normalise(x)
        for index, layer in enumerate(self.features):
            h = layer(h)
            name = self.all_layer_names[index]
            if name in self.wanted:
                out[name] = h
            if index >= self.last_index:
                break
        return out


class VGG19Features(FeatureExtractor):
    """torchvision ``vgg19().features`` up to the deepest wanted layer.

    ``convX_Y`` is a convolution's output before its ReLU, ``reluX_Y`` after it.
    """

    def __init__(self, layers: Sequence[str]) -> None:
        super().__init__(vgg19_layer_names(), layers)
        modules: list[nn.Module] = []
        channels = 3
        for item in _VGG19_CONFIG:
            if item == "M":
                modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                out = int(item)
                modules += [nn.Conv2d(channels, out, kernel_size=3, padding=1), nn.ReLU()]
                channels = out
        self.features = nn.Sequential(*modules[: self.last_index + 1])
        _kaiming_init(self)
        self._freeze()


class _ConvBNReLU6(nn.Sequential):
    """torchvision ``Conv2dNormActivation``: conv (no bias), BatchNorm, ReLU6."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(),
        )


class _InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear projection, identity skip."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_ConvBNReLU6(cin, hidden, kernel=1))
        layers += [
            _ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        return x + y if self.residual else y


class MobileNetV2Features(FeatureExtractor):
    """torchvision ``mobilenet_v2().features`` (width 1.0) up to the deepest wanted layer.

    Layers are named ``features.0`` (stride-2 stem) to ``features.18`` (1x1 conv
    to 1280 channels, output stride 32); ``features`` alone means the last one.
    """

    def __init__(self, layers: Sequence[str]) -> None:
        wanted = ["features.18" if name == "features" else name for name in layers]
        super().__init__(mobilenet_v2_layer_names(), wanted)
        modules: list[nn.Module] = [_ConvBNReLU6(3, 32, stride=2)]
        channels = 32
        for expand, out, repeats, stride in _MOBILENET_V2_SETTING:
            for i in range(repeats):
                modules.append(_InvertedResidual(channels, out, stride if i == 0 else 1, expand))
                channels = out
        modules.append(_ConvBNReLU6(channels, 1280, kernel=1))
        self.features = nn.Sequential(*modules[: self.last_index + 1])
        _kaiming_init(self)
        self._freeze()

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        out = super().forward(x)
        if "features.18" in out:
            out["features"] = out["features.18"]
        return out


def _read_state_dict(path: Path) -> Mapping[str, Tensor]:
    """Tensors of a ``.safetensors`` file or a ``torch.save``d state dict (loaded weights-only)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(path, f"cannot read weights: {exc}") from None
    if (
        isinstance(data, Mapping)
        and "state_dict" in data
        and isinstance(data["state_dict"], Mapping)
    ):
        data = data["state_dict"]
    if not isinstance(data, Mapping):
        raise InputError(
            path, "not a state dict (expected a mapping of parameter names to tensors)"
        )
    return data


def load_torchvision_features(module: FeatureExtractor, path: str | Path, arch: str) -> None:
    """Copy the ``features.*`` entries of a torchvision weights file into ``module``.

    Entries the truncated ``module`` does not have (deeper layers, the
    classifier) are ignored; a missing or mis-shaped entry raises InputError.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(p, f"{arch} weights file not found")
    source = _read_state_dict(p)
    target = module.state_dict()
    picked: dict[str, Tensor] = {}
    for key, value in target.items():
        if key not in source:
            raise InputError(p, f"not a torchvision {arch} weights file: it has no {key!r}")
        if tuple(source[key].shape) != tuple(value.shape):
            raise InputError(
                p,
                f"{key} has shape {tuple(source[key].shape)}, expected {tuple(value.shape)} "
                f"for torchvision {arch}",
            )
        picked[key] = source[key]
    module.load_state_dict(picked, strict=True)
    module._freeze()


def build_feature_extractor(
    network: str | FeatureNetwork,
    layers: Sequence[str],
    weights: str | Path | None,
    allow_random_init: bool = False,
) -> FeatureExtractor:
    """A frozen extractor for ``layers`` with ImageNet weights from a local file.

    ``weights=None`` raises ConfigError naming the option to set, unless
    ``allow_random_init`` (tests only: random features are useless for training).
    """
    net = FeatureNetwork.parse(network)
    extractor: FeatureExtractor = (
        VGG19Features(layers) if net is FeatureNetwork.VGG19 else MobileNetV2Features(layers)
    )
    title, option, example = _WEIGHTS_HELP[net]
    if weights is None or str(weights) == "":
        if allow_random_init:
            return extractor
        raise ConfigError(
            f"perceptual loss needs ImageNet {title} weights: set {option} to a local "
            f"torchvision {example}; none is bundled and medsr never downloads"
        )
    load_torchvision_features(extractor, weights, net.value)
    return extractor


class PerceptualLoss(nn.Module):
    """``sum_l w_l * D(phi_l(sr), phi_l(hr))`` over named feature layers, D = L1 or MSE.

    ``layers`` maps layer names to weights (or lists names, each weight 1).
    Target features are computed without a graph; the gradient flows to ``sr``
    only. Examples: BliMSR uses VGG19 conv1_2..conv5_4 with L1 and weights
    0.5, 0.25, 0.125, 0.0625, 0.0625; MIASSR VGG19 relu2_2 with MSE.
    """

    def __init__(
        self,
        layers: Mapping[str, float] | Sequence[str],
        network: str | FeatureNetwork = FeatureNetwork.VGG19,
        criterion: str = "l1",
        weights: str | Path | None = None,
        allow_random_init: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(layers, Mapping):
            self.layer_weights = {str(k): float(v) for k, v in layers.items()}
        else:
            self.layer_weights = {str(k): 1.0 for k in layers}
        if not self.layer_weights:
            raise ConfigError("perceptual loss needs at least one feature layer")
        if criterion not in ("l1", "mse"):
            raise ConfigError(f"perceptual criterion must be 'l1' or 'mse'; got {criterion!r}")
        self.criterion = criterion
        self.network = FeatureNetwork.parse(network)
        self.extractor = build_feature_extractor(
            self.network, list(self.layer_weights), weights, allow_random_init
        )

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        distance = F.l1_loss if self.criterion == "l1" else F.mse_loss
        with torch.no_grad():
            target = self.extractor(hr.detach())
        found = self.extractor(sr)
        total = sr.new_zeros(())
        for name, weight in self.layer_weights.items():
            total = total + weight * distance(found[name], target[name])
        return total

    def extra_repr(self) -> str:
        return (
            f"network={self.network.value}, criterion={self.criterion}, layers={self.layer_weights}"
        )
