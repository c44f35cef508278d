"""Data consistency as the default for GAN-trained models: who gets it, and that it removes
an intensity shift and keeps the invented texture above the input's band."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from medsr import models
from medsr.degrade.resize import imresize
from medsr.infer.consistency import (
    downscale,
    model_kind,
    project_consistent,
    wants_data_consistency,
)
from medsr.infer.weights import save_generator
from medsr.zoo.manifest import load_zoo_model, sha256_of


def _tagged(kind: str | None, degradation: object = None) -> torch.nn.Module:
    model = models.build("srresnet", scale=2, num_blocks=1, channels=4)
    if kind is not None:
        model.medsr_kind = kind
    model.medsr_degradation = degradation or {"name": "bicubic", "scale": 2}
    return model


def test_default_is_on_for_gan_models_only_and_the_user_decides() -> None:
    assert wants_data_consistency(_tagged("gan"), None)
    assert wants_data_consistency(_tagged("GAN"), None)
    assert not wants_data_consistency(_tagged("psnr"), None)
    assert not wants_data_consistency(_tagged(None), None)
    assert not wants_data_consistency(_tagged("gan"), False)
    assert wants_data_consistency(_tagged("psnr"), True)
    # a GAN trained on another degradation: the resize projection would invert the wrong operator
    assert not wants_data_consistency(_tagged("gan", {"name": "blind", "scale": 2}), None)


def test_kind_comes_from_the_zoo_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = models.build("swift-srgan", scale=2, num_blocks=1, channels=4, residual=True)
    save_generator(model, tmp_path / "tiny-gan.safetensors")
    entry = {
        "file": "tiny-gan.safetensors",
        "sha256": sha256_of(tmp_path / "tiny-gan.safetensors"),
        "architecture": "swift-srgan",
        "config": dict(model.config),
        "degradation": {"name": "bicubic", "scale": 2},
        "kind": "gan",
    }
    (tmp_path / "manifest.json").write_text(json.dumps({"models": {"tiny-gan": entry}}))
    monkeypatch.setenv("MEDSR_ZOO_DIR", str(tmp_path))
    loaded = load_zoo_model("tiny-gan")
    assert getattr(loaded, "medsr_kind", None) == "gan"  # tagged at load: no manifest re-read
    assert model_kind(loaded) == "gan" and wants_data_consistency(loaded, None)


def test_projection_removes_a_mean_shift_and_keeps_the_texture() -> None:
    """A fake GAN output: bicubic + 2% of the range + a checkerboard at the HR Nyquist
    frequency. After the projection the mean matches bicubic's within 1e-4 and the
    checkerboard, which re-degrades to almost nothing, is still there."""
    torch.manual_seed(0)
    lr = torch.rand(1, 1, 16, 16)
    base = imresize(lr, scale=4, kernel="cubic")
    i = torch.arange(64)
    texture = 0.05 * (-1.0) ** (i[:, None] + i[None, :])
    fake = base + 0.02 + texture
    projected = project_consistent(fake, lr)
    assert float((fake.mean() - base.mean()).abs()) == pytest.approx(0.02, abs=1e-3)
    assert float((projected.mean() - base.mean()).abs()) < 1e-4
    torch.testing.assert_close(downscale(projected, (16, 16)), lr, atol=1e-5, rtol=0)
    kept = ((projected - base) * texture).sum() / (texture * texture).sum()
    assert float(kept) > 0.95


def test_eval_scores_a_gan_as_upscale_delivers_it() -> None:
    """``medsr eval`` (run_evaluation's forward) applies the same default: a GAN-tagged
    model's output re-degrades to its input unless --no-data-consistency is given."""
    from medsr.evaluate.runner import _forward

    torch.manual_seed(0)
    model = _tagged("gan").eval()
    with torch.no_grad():  # an intensity shift the projection must remove
        model.tail.bias.add_(0.05)  # type: ignore[union-attr, operator]
    lr = torch.rand(1, 1, 24, 20)
    with torch.inference_mode():
        projected = _forward(model, lr, (2.0, 2.0))
        raw = _forward(model, lr, (2.0, 2.0), data_consistency=False)
    assert float((downscale(projected, (24, 20)) - lr).abs().max()) < 1e-4
    assert float((downscale(raw, (24, 20)) - lr).abs().mean()) > 0.01
    assert abs(float(projected.mean() - lr.mean())) < 2e-3 < abs(float(raw.mean() - lr.mean()))
