"""Published training objectives as named, weighted terms, built from a config dict.

A generator objective returns ``{term: weight * value, ..., "total": sum}`` so
the trainer can log every term; a discriminator objective returns its real,
fake and gradient-penalty parts plus the total. Weights come from SPEC.md
section 1:

* ``swift-srgan``: MSE + 0.001 adversarial + 0.006 MobileNetV2-feature MSE + 2e-8 TV.
* ``srgan``: 1000 L1 + adversarial (BCE); VGG19 relu5_4 MSE available, off by default.
* ``blimsr``: VGG19 conv1_2..conv5_4 L1 (0.5, 0.25, 0.125, 0.0625, 0.0625)
  + 0.01 GAN + 0.1 L1 + 1 gradient + 1 D-SSIM.
* ``miassr``: L1 + 0.006 VGG19 relu2_2 MSE + 0.001 GAN (gan: vanilla, ragan or wgan-gp).

Every preset has a ``warmup`` stage (pixel loss only, no discriminator) and a
``gan`` stage. Config keys (the ``loss:`` section of a training YAML)::

    preset: blimsr            # optional; without it, ``terms`` lists everything
    stage: gan                # warmup | gan
    gan: vanilla              # vanilla | lsgan | hinge | ragan | wgan-gp
    gp_weight: 10.0           # WGAN-GP lambda
    real_label: 1.0           # < 1 for one-sided label smoothing
    vgg_weights: /path/vgg19-dcbb9e9d.pth
    mobilenet_weights: /path/mobilenet_v2-b0353104.pth
    allow_random_init: false  # tests only: random VGG/MobileNet features
    perceptual_fallback: error  # or feature_matching: see below
    perceptual_fallback_weight: null  # the stand-in's weight (default: the perceptual one)
    terms:                    # add terms or override a preset's: a weight, or a dict
      l1: 0.5
      perceptual: {weight: 0.01, layers: {relu3_4: 1.0}}
      edges: {type: gradient, weight: 0.2}

medsr ships no ImageNet weights. With ``perceptual_fallback: feature_matching`` a
perceptual term whose weights file is not given is replaced by discriminator feature
matching (weight ``perceptual_fallback_weight``, else the perceptual term's own), which
needs no pretrained network; when the file is given, the term is used as published.
The default, ``error``, refuses to build the loss without the file.

A weight of 0 removes a term. Term types: l1, mse, charbonnier, perceptual,
tv, gradient, ssim, dssim, lowfreq, adversarial, feature_matching. ``lowfreq``
(options ``factor``, default 4, and ``kernel``, default cubic) is L1 between the
outputs and targets resized by ``1 / factor``: it locks the band the LR input
determines, so a GAN cannot shift intensities (no published preset uses it).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from medsr.errors import ConfigError
from medsr.losses.adversarial import AdversarialLoss, GanKind, gradient_penalty
from medsr.losses.perceptual import FeatureNetwork, PerceptualLoss
from medsr.losses.pixel import CharbonnierLoss, L1Loss, LowFrequencyLoss, MSELoss
from medsr.losses.structural import (
    DSSIMLoss,
    FeatureMatchingLoss,
    GradientLoss,
    SSIMLoss,
    TotalVariationLoss,
)

__all__ = [
    "PRESETS",
    "DiscriminatorLoss",
    "GeneratorLoss",
    "Preset",
    "available_presets",
    "build_discriminator_loss",
    "build_generator_loss",
]

TermSpec = dict[str, Any]

#: Options each term type accepts besides ``type`` and ``weight``.
_TERM_OPTIONS: dict[str, tuple[str, ...]] = {
    "l1": (),
    "mse": (),
    "charbonnier": ("eps",),
    "perceptual": ("network", "layers", "criterion", "weights"),
    "tv": ("kind",),
    "gradient": (),
    "ssim": ("data_range",),
    "dssim": ("data_range",),
    "lowfreq": ("factor", "kernel"),
    "adversarial": (),
    "feature_matching": (),
}

_CONFIG_KEYS: tuple[str, ...] = (
    "preset",
    "stage",
    "gan",
    "gp_weight",
    "real_label",
    "vgg_weights",
    "mobilenet_weights",
    "allow_random_init",
    "perceptual_fallback",
    "perceptual_fallback_weight",
    "terms",
)

PERCEPTUAL_FALLBACKS: tuple[str, ...] = ("error", "feature_matching")

_STAGES: tuple[str, ...] = ("warmup", "gan")

_BLIMSR_VGG_LAYERS: dict[str, float] = {
    "conv1_2": 0.5,
    "conv2_2": 0.25,
    "conv3_4": 0.125,
    "conv4_4": 0.0625,
    "conv5_4": 0.0625,
}


@dataclass(frozen=True)
class Preset:
    """A published objective: its terms per stage and its default GAN kind."""

    name: str
    description: str
    gan_terms: Mapping[str, TermSpec]
    warmup_terms: Mapping[str, TermSpec]
    gan: GanKind = GanKind.VANILLA


PRESETS: dict[str, Preset] = {
    "swift-srgan": Preset(
        name="swift-srgan",
        description="MSE + 0.001 adversarial + 0.006 MobileNetV2 feature MSE + 2e-8 TV",
        gan_terms={
            "mse": {"weight": 1.0},
            "adversarial": {"weight": 0.001},
            "perceptual": {
                "weight": 0.006,
                "network": "mobilenet_v2",
                "layers": ["features"],
                "criterion": "mse",
            },
            "tv": {"weight": 2e-8, "kind": "squared"},
        },
        warmup_terms={"mse": {"weight": 1.0}},
    ),
    "srgan": Preset(
        name="srgan",
        description="1000 L1 + adversarial (BCE); VGG19 relu5_4 MSE optional (weight 0)",
        gan_terms={
            "l1": {"weight": 1000.0},
            "adversarial": {"weight": 1.0},
            "perceptual": {
                "weight": 0.0,
                "network": "vgg19",
                "layers": ["relu5_4"],
                "criterion": "mse",
            },
        },
        warmup_terms={"l1": {"weight": 1.0}},
    ),
    "blimsr": Preset(
        name="blimsr",
        description="VGG19 5-layer L1 + 0.01 GAN + 0.1 L1 + 1 gradient + 1 D-SSIM",
        gan_terms={
            "perceptual": {
                "weight": 1.0,
                "network": "vgg19",
                "layers": dict(_BLIMSR_VGG_LAYERS),
                "criterion": "l1",
            },
            "adversarial": {"weight": 0.01},
            "l1": {"weight": 0.1},
            "gradient": {"weight": 1.0},
            "dssim": {"weight": 1.0},
        },
        warmup_terms={"l1": {"weight": 1.0}},
    ),
    "miassr": Preset(
        name="miassr",
        description="warm-up L1; then L1 + 0.006 VGG19 relu2_2 MSE + 0.001 GAN",
        gan_terms={
            "l1": {"weight": 1.0},
            "perceptual": {
                "weight": 0.006,
                "network": "vgg19",
                "layers": ["relu2_2"],
                "criterion": "mse",
            },
            "adversarial": {"weight": 0.001},
        },
        warmup_terms={"l1": {"weight": 1.0}},
    ),
}


def available_presets() -> list[str]:
    """Names of the published objectives."""
    return sorted(PRESETS)


def _discriminate(
    discriminator: nn.Module, x: Tensor, features: bool
) -> tuple[Tensor, list[Tensor]]:
    """D's output on ``x`` and, when asked, its intermediate feature maps.

    Features come from ``forward(x, return_features=True) -> (logits, [maps])``
    when the discriminator offers it, otherwise from the outputs of the
    children of its ``features`` Sequential (captured with forward hooks).
    A DDP wrapper is looked through via ``.module``.
    """
    if not features:
        out = discriminator(x)
        return (out[0] if isinstance(out, tuple) else out), []
    core = getattr(discriminator, "module", discriminator)
    if "return_features" in inspect.signature(core.forward).parameters:
        out = discriminator(x, return_features=True)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise ConfigError(
                "discriminator(x, return_features=True) must return (logits, features)"
            )
        return out[0], list(out[1])
    stack = getattr(core, "features", None)
    if not isinstance(stack, nn.Sequential):
        raise ConfigError(
            f"feature matching needs a discriminator with forward(x, return_features=True) "
            f"or a 'features' Sequential; {type(core).__name__} has neither"
        )
    captured: dict[int, Tensor] = {}

    def keep(_module: nn.Module, _inputs: object, output: Tensor) -> None:
        captured[id(output)] = output  # in-place activations reuse the tensor: kept once

    handles = [child.register_forward_hook(keep) for child in stack]
    try:
        logits = discriminator(x)
    finally:
        for handle in handles:
            handle.remove()
    return (logits[0] if isinstance(logits, tuple) else logits), list(captured.values())


class GeneratorLoss(nn.Module):
    """Weighted sum of named generator terms.

    ``forward(sr, hr, discriminator)`` returns ``{name: weight * term, "total": sum}``.
    Image terms compare ``sr`` with ``hr``; the ``adversarial`` and
    ``feature_matching`` terms call the discriminator on ``sr`` (and, without a
    graph, on ``hr`` when RaGAN or feature matching need it).
    """

    def __init__(
        self,
        image_terms: Mapping[str, tuple[float, nn.Module]],
        adversarial: AdversarialLoss | None = None,
        adversarial_weight: float = 0.0,
        feature_matching_weight: float = 0.0,
        preset: str | None = None,
        stage: str = "gan",
    ) -> None:
        super().__init__()
        self.image_terms = nn.ModuleDict(
            {name: module for name, (_, module) in image_terms.items()}
        )
        self.weights: dict[str, float] = {name: float(w) for name, (w, _) in image_terms.items()}
        self.adversarial = adversarial
        if adversarial_weight and adversarial is None:
            raise ConfigError("an adversarial weight was given without a GAN loss")
        if adversarial_weight:
            self.weights["adversarial"] = float(adversarial_weight)
        self.feature_matching = FeatureMatchingLoss() if feature_matching_weight else None
        if feature_matching_weight:
            self.weights["feature_matching"] = float(feature_matching_weight)
        if not self.weights:
            raise ConfigError("the generator loss has no terms with a non-zero weight")
        self.preset = preset
        self.stage = stage

    @property
    def needs_discriminator(self) -> bool:
        """Whether a discriminator must be trained alongside (and passed to forward)."""
        return "adversarial" in self.weights or "feature_matching" in self.weights

    def forward(
        self, sr: Tensor, hr: Tensor, discriminator: nn.Module | None = None
    ) -> dict[str, Tensor]:
        terms: dict[str, Tensor] = {}
        for name, module in self.image_terms.items():
            terms[name] = self.weights[name] * module(sr, hr)
        if self.needs_discriminator:
            if discriminator is None:
                raise ConfigError(
                    f"the {self.stage} stage's generator loss needs the discriminator: "
                    "pass discriminator=..."
                )
            want_features = self.feature_matching is not None
            fake, fake_feats = _discriminate(discriminator, sr, want_features)
            real: Tensor | None = None
            real_feats: list[Tensor] = []
            need_real = want_features or (
                self.adversarial is not None and self.adversarial.kind.needs_real_for_generator
            )
            if need_real:
                with torch.no_grad():
                    real, real_feats = _discriminate(discriminator, hr.detach(), want_features)
            if self.adversarial is not None and "adversarial" in self.weights:
                value = self.adversarial.generator_loss(fake, real)
                terms["adversarial"] = self.weights["adversarial"] * value
            if self.feature_matching is not None:
                value = self.feature_matching(fake_feats, real_feats)
                terms["feature_matching"] = self.weights["feature_matching"] * value
        total = sr.new_zeros((), dtype=torch.float32)
        for value in terms.values():
            total = total + value.float()
        terms["total"] = total
        return terms

    def describe(self) -> str:
        """One line: ``preset (stage): w * term + ...``."""
        head = f"{self.preset or 'custom'} ({self.stage})"
        body = " + ".join(f"{w:g} * {name}" for name, w in self.weights.items())
        return f"{head}: {body}"


class DiscriminatorLoss(nn.Module):
    """Discriminator objective: ``forward(D, hr, sr)`` -> ``{d_real, d_fake[, gp], total}``.

    ``sr`` is detached inside, so the generator receives nothing from this loss.
    WGAN-GP adds ``gp_weight * gradient_penalty``.
    """

    def __init__(
        self,
        kind: str | GanKind = GanKind.VANILLA,
        gp_weight: float = 10.0,
        real_label: float = 1.0,
    ) -> None:
        super().__init__()
        self.adversarial = AdversarialLoss(kind, real_label=real_label)
        self.gp_weight = float(gp_weight)

    @property
    def kind(self) -> GanKind:
        return self.adversarial.kind

    def forward(
        self,
        discriminator: nn.Module,
        real: Tensor,
        fake: Tensor,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        fake = fake.detach()
        real_out, _ = _discriminate(discriminator, real, False)
        fake_out, _ = _discriminate(discriminator, fake, False)
        terms = self.adversarial.discriminator_terms(real_out, fake_out)
        if self.kind is GanKind.WGAN_GP and self.gp_weight:
            terms["gp"] = self.gp_weight * gradient_penalty(discriminator, real, fake, generator)
        total = real_out.new_zeros((), dtype=torch.float32)
        for value in terms.values():
            total = total + value.float()
        terms["total"] = total
        return terms


def _as_config(config: Mapping[str, Any] | str | None, overrides: Mapping[str, Any]) -> dict:
    if config is None:
        cfg: dict[str, Any] = {}
    elif isinstance(config, str):
        cfg = {"preset": config}
    elif isinstance(config, Mapping):
        cfg = copy.deepcopy(dict(config))
    else:
        raise ConfigError(f"loss config must be a mapping or a preset name; got {type(config)}")
    cfg.update(overrides)
    unknown = sorted(set(cfg) - set(_CONFIG_KEYS))
    if unknown:
        raise ConfigError(
            f"unknown loss option(s) {', '.join(unknown)}; known: {', '.join(_CONFIG_KEYS)}"
        )
    return cfg


def _preset(cfg: Mapping[str, Any]) -> Preset | None:
    name = cfg.get("preset")
    if name is None:
        return None
    key = str(name).strip().lower().replace("_", "-")
    if key not in PRESETS:
        raise ConfigError(
            f"unknown loss preset {name!r}; choose one of {', '.join(available_presets())}"
        )
    return PRESETS[key]


def _stage(cfg: Mapping[str, Any]) -> str:
    stage = str(cfg.get("stage", "gan")).strip().lower()
    if stage not in _STAGES:
        raise ConfigError(f"loss.stage must be one of {', '.join(_STAGES)}; got {stage!r}")
    return stage


def _gan_kind(cfg: Mapping[str, Any], preset: Preset | None) -> GanKind:
    if "gan" in cfg:
        return GanKind.parse(str(cfg["gan"]))
    return preset.gan if preset is not None else GanKind.VANILLA


def _merged_terms(cfg: Mapping[str, Any], preset: Preset | None, stage: str) -> dict[str, TermSpec]:
    """Preset terms of the stage with ``loss.terms`` merged in; zero weights dropped."""
    terms: dict[str, TermSpec] = {}
    if preset is not None:
        base = preset.warmup_terms if stage == "warmup" else preset.gan_terms
        terms = {name: copy.deepcopy(dict(spec)) for name, spec in base.items()}
    extra = cfg.get("terms") or {}
    if not isinstance(extra, Mapping):
        raise ConfigError("loss.terms must map term names to a weight or a dict of options")
    for name, value in extra.items():
        spec = terms.setdefault(str(name), {})
        if isinstance(value, bool) or not isinstance(value, (int, float, Mapping)):
            raise ConfigError(f"loss.terms.{name} must be a weight or a dict; got {value!r}")
        if isinstance(value, Mapping):
            spec.update(copy.deepcopy(dict(value)))
        else:
            spec["weight"] = float(value)
    out: dict[str, TermSpec] = {}
    for name, spec in terms.items():
        kind = str(spec.get("type", name))
        if kind not in _TERM_OPTIONS:
            raise ConfigError(
                f"loss.terms.{name}: unknown term type {kind!r}; "
                f"choose one of {', '.join(_TERM_OPTIONS)}"
            )
        allowed = {"type", "weight", *_TERM_OPTIONS[kind]}
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise ConfigError(
                f"loss.terms.{name}: unknown option(s) {', '.join(unknown)}; "
                f"a {kind} term takes {', '.join(sorted(allowed))}"
            )
        try:
            weight = float(spec.get("weight", 1.0))
        except (TypeError, ValueError):
            raise ConfigError(f"loss.terms.{name}.weight must be a number") from None
        if weight < 0:
            raise ConfigError(f"loss.terms.{name}.weight must be >= 0; got {weight}")
        if weight:
            out[name] = {**spec, "type": kind, "weight": weight}
    return out


def _image_term(name: str, spec: TermSpec, cfg: Mapping[str, Any]) -> nn.Module:
    kind = spec["type"]
    if kind == "l1":
        return L1Loss()
    if kind == "mse":
        return MSELoss()
    if kind == "charbonnier":
        return CharbonnierLoss(eps=float(spec.get("eps", 1e-3)))
    if kind == "tv":
        return TotalVariationLoss(kind=str(spec.get("kind", "squared")))
    if kind == "gradient":
        return GradientLoss()
    if kind == "ssim":
        return SSIMLoss(data_range=float(spec.get("data_range", 1.0)))
    if kind == "dssim":
        return DSSIMLoss(data_range=float(spec.get("data_range", 1.0)))
    if kind == "lowfreq":
        return LowFrequencyLoss(
            factor=float(spec.get("factor", 4.0)), kernel=str(spec.get("kernel", "cubic"))
        )
    if kind == "perceptual":
        network = FeatureNetwork.parse(str(spec.get("network", "vgg19")))
        option = "vgg_weights" if network is FeatureNetwork.VGG19 else "mobilenet_weights"
        layers = spec.get(
            "layers", ["relu5_4"] if network is FeatureNetwork.VGG19 else ["features"]
        )
        if isinstance(layers, str):
            layers = [part.strip() for part in layers.split(",") if part.strip()]
        return PerceptualLoss(
            layers=layers,
            network=network,
            criterion=str(spec.get("criterion", "l1")),
            weights=spec.get("weights", cfg.get(option)),
            allow_random_init=bool(cfg.get("allow_random_init", False)),
        )
    raise ConfigError(f"loss.terms.{name}: {kind} is not an image term")


def _apply_perceptual_fallback(
    specs: dict[str, TermSpec], cfg: Mapping[str, Any]
) -> dict[str, TermSpec]:
    """Replace perceptual terms that have no weights file by discriminator feature matching
    when ``perceptual_fallback`` is ``feature_matching`` (see the module docstring)."""
    fallback = str(cfg.get("perceptual_fallback", "error")).strip().lower().replace("-", "_")
    if fallback not in PERCEPTUAL_FALLBACKS:
        raise ConfigError(
            f"loss.perceptual_fallback must be one of {', '.join(PERCEPTUAL_FALLBACKS)}; "
            f"got {cfg.get('perceptual_fallback')!r}"
        )
    if fallback == "error" or cfg.get("allow_random_init"):
        return specs
    out: dict[str, TermSpec] = {}
    stand_in = 0.0
    for name, spec in specs.items():
        if spec["type"] != "perceptual":
            out[name] = spec
            continue
        network = FeatureNetwork.parse(str(spec.get("network", "vgg19")))
        option = "vgg_weights" if network is FeatureNetwork.VGG19 else "mobilenet_weights"
        if spec.get("weights", cfg.get(option)):
            out[name] = spec
        else:
            stand_in = max(stand_in, float(spec["weight"]))
    if stand_in:
        chosen = cfg.get("perceptual_fallback_weight")
        try:
            weight = stand_in if chosen is None else float(chosen)
        except (TypeError, ValueError):
            raise ConfigError("loss.perceptual_fallback_weight must be a number") from None
        if weight < 0:
            raise ConfigError(f"loss.perceptual_fallback_weight must be >= 0; got {weight}")
        if "feature_matching" in out:
            raise ConfigError(
                "loss.terms has feature_matching and perceptual_fallback would add it again; "
                "set the stand-in's weight with loss.perceptual_fallback_weight"
            )
        if weight:
            out["feature_matching"] = {"type": "feature_matching", "weight": weight}
    return out


def build_generator_loss(
    config: Mapping[str, Any] | str | None = None, **overrides: Any
) -> GeneratorLoss:
    """The generator objective described by a ``loss:`` config (see the module docstring)."""
    cfg = _as_config(config, overrides)
    preset = _preset(cfg)
    stage = _stage(cfg)
    specs = _apply_perceptual_fallback(_merged_terms(cfg, preset, stage), cfg)
    image_terms: dict[str, tuple[float, nn.Module]] = {}
    adversarial_weight = 0.0
    matching_weight = 0.0
    for name, spec in specs.items():
        if spec["type"] == "adversarial":
            if name != "adversarial" or adversarial_weight:
                raise ConfigError("only one adversarial term is allowed, named 'adversarial'")
            adversarial_weight = spec["weight"]
        elif spec["type"] == "feature_matching":
            if name != "feature_matching":
                raise ConfigError("the feature-matching term must be named 'feature_matching'")
            matching_weight = spec["weight"]
        else:
            image_terms[name] = (spec["weight"], _image_term(name, spec, cfg))
    adversarial = None
    if adversarial_weight:
        adversarial = AdversarialLoss(
            _gan_kind(cfg, preset), real_label=float(cfg.get("real_label", 1.0))
        )
    return GeneratorLoss(
        image_terms,
        adversarial=adversarial,
        adversarial_weight=adversarial_weight,
        feature_matching_weight=matching_weight,
        preset=preset.name if preset is not None else None,
        stage=stage,
    )


def build_discriminator_loss(
    config: Mapping[str, Any] | str | None = None, **overrides: Any
) -> DiscriminatorLoss:
    """The discriminator objective for the config's GAN kind (``gan``, ``gp_weight``)."""
    cfg = _as_config(config, overrides)
    preset = _preset(cfg)
    try:
        gp_weight = float(cfg.get("gp_weight", 10.0))
        real_label = float(cfg.get("real_label", 1.0))
    except (TypeError, ValueError):
        raise ConfigError("loss.gp_weight and loss.real_label must be numbers") from None
    return DiscriminatorLoss(_gan_kind(cfg, preset), gp_weight=gp_weight, real_label=real_label)
