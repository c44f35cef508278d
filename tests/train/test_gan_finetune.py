"""The two-stage GAN recipe on tiny settings: a PSNR warm-up, then an adversarial fine-tune
started from its weights (``init_from``) that keeps intensities (the low-frequency lock and
the bicubic skip); and sparse-view CT trained against the full-view FBP."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medsr.errors import ConfigError, InputError
from medsr.infer.weights import load_generator
from medsr.train.config import Config, load_config
from medsr.train.trainer import Trainer

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _tiny(stage: dict[str, object], *sets: str) -> Config:
    """Swift-SRGAN x4 with the bicubic skip, 1 block x 8 channels, on 32 px X-ray patches."""
    base = {
        "name": "tiny-gan",
        "model": {"name": "swift-srgan", "scale": 4, "residual": True},
        "discriminator": {"name": "swift"},
        "degradation": {"name": "bicubic", "scale": 4},
        "loss": {"preset": "swift-srgan", "terms": {"perceptual": 0.0, "feature_matching": 0.006}},
        "stages": [stage],
        "optim": {"generator": {"lr": 1e-4}, "discriminator": {"lr": 1e-4}},
    }
    return load_config(None, [CONFIGS / "tiny.yaml"], sets, base=base)


def test_gan_finetune_from_the_warmup_keeps_the_mean_intensity(tmp_path: Path) -> None:
    warm = Trainer(
        _tiny(
            {"name": "warmup", "iterations": 8, "loss": {"stage": "warmup"}},
            "train.stage_iterations=8",
            "validation.every=8",
        ),
        tmp_path / "warm",
        device="cpu",
    )
    warm.fit()
    init = tmp_path / "warm" / "best_ema.safetensors"
    start = load_generator(init)

    cfg = _tiny(
        {"name": "gan", "iterations": 24, "loss": {"stage": "gan", "terms": {"lowfreq": 1.0}}},
        f"init_from={init}",
        "train.stage_iterations=24",
        "validation.every=24",
        "validation.patches=4",
        "optim.generator.lr=1e-3",  # ten times the recipe's rate: drift would show
    )
    gan = Trainer(cfg, tmp_path / "gan", device="cpu")
    for key, value in start.state_dict().items():  # the fine-tune starts at the warm-up
        assert torch.equal(gan.generator.state_dict()[key], value), key
    gan.fit()
    assert gan.validation is not None
    ((_, lr, _),) = gan.validation.groups
    model = gan.ema.module if gan.ema is not None else gan.generator
    with torch.no_grad():
        sr = model(lr).clamp(0, 1)
        before = start(lr).clamp(0, 1)
    assert float((sr - before).abs().max()) > 1e-4, "the fine-tune did not change the output"
    drift = (sr.mean(dim=(1, 2, 3)) - lr.mean(dim=(1, 2, 3))).abs()
    assert float(drift.max()) < 0.002  # 0.2% of the data range, per patch


def test_init_from_refuses_a_missing_or_mismatched_file(tmp_path: Path) -> None:
    stage = {"name": "warmup", "iterations": 1, "loss": {"stage": "warmup"}}
    with pytest.raises(InputError, match="no such weights file"):
        Trainer(_tiny(stage, f"init_from={tmp_path / 'none.safetensors'}"), tmp_path, "cpu")
    from medsr import models
    from medsr.infer.weights import save_generator

    other = tmp_path / "plain.safetensors"
    save_generator(models.build("swift-srgan", scale=4, num_blocks=1, channels=8), other)
    with pytest.raises(InputError, match="init_from: holds swift-srgan"):
        Trainer(_tiny(stage, f"init_from={other}"), tmp_path, "cpu")  # residual differs
    with pytest.raises(ConfigError, match="init_from"):
        _tiny(stage, "init_from=3")


def test_sparse_view_ct_trains_against_the_full_view_fbp(tmp_path: Path) -> None:
    from medsr.degrade import build
    from medsr.metrics import psnr

    cfg = load_config(
        CONFIGS / "zoo" / "sisr-ct-sparse-view.yaml",
        [CONFIGS / "tiny.yaml"],
        ["data.patch_size=32", "data.val_options=null", "validation.patches=2", "init_from=null"],
    )
    trainer = Trainer(cfg, tmp_path, device="cpu")
    assert trainer.validation is not None
    _, lr, target = trainer.validation.groups[0]
    patches = torch.from_numpy(
        trainer.val_data.fixed_patches(2, trainer.patch_size, cfg["validation"]["seed"])
    )
    deg = build(dict(cfg["degradation"]))
    want_lr, want_target = deg.apply_pair(patches, deg.validation_params(2))
    torch.testing.assert_close(lr, want_lr)
    torch.testing.assert_close(target, want_target)
    assert not torch.allclose(target, patches)  # the reference is not the HR patch
    expected = float(psnr(lr, target, 1.0).mean())
    assert trainer.validation.bicubic_psnr == pytest.approx(expected, rel=1e-9)
    with torch.no_grad():  # identity at initialisation: exactly the FBP input's score
        assert trainer.validate()["val/psnr"] == pytest.approx(expected, rel=1e-9)
    summary = trainer.fit()
    assert summary["iterations"] == 2
