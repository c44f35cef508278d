"""The trainer: every published config end to end on the bundled samples, exact resume,
validation against the bicubic baseline, EMA, AMP, checkpoints and logs."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from medsr.cli import main
from medsr.errors import ConfigError
from medsr.train.config import Config, load_config
from medsr.train.trainer import (
    ModelEMA,
    Trainer,
    arbitrary_scale_lr,
    gaussian_blur3,
    scale_choices,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
METHODS = (
    "swift-srgan-cxr-x4",
    "srgan-us-lateral-x4",
    "srresnet-ct-sparse-view",
    "blimsr-ct-x4",
    "miassr-mr-arbitrary",
)


def tiny(method: str, *sets: str) -> Config:
    return load_config(CONFIGS / f"{method}.yaml", [CONFIGS / "tiny.yaml"], sets)


def _params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _assert_same(a: dict[str, Any], b: dict[str, Any], where: str) -> None:
    assert a.keys() == b.keys(), where
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, dict):
            _assert_same(x, y, f"{where}.{key}")
        elif isinstance(x, torch.Tensor):
            assert torch.equal(x, y), f"{where}.{key} differs"
        elif isinstance(x, list):
            assert len(x) == len(y), where
            for i, (u, v) in enumerate(zip(x, y)):
                if isinstance(u, dict):
                    _assert_same(u, v, f"{where}.{key}[{i}]")
                else:
                    assert u == v, f"{where}.{key}[{i}]"
        else:
            assert x == y, f"{where}.{key}"


@pytest.mark.parametrize("method", METHODS)
def test_published_config_trains_end_to_end_on_the_samples(method: str, tmp_path: Path) -> None:
    trainer = Trainer(tiny(method), tmp_path, device="cpu")
    g0 = _params(trainer.generator)
    d0 = _params(trainer.discriminator) if trainer.discriminator is not None else None
    summary = trainer.fit()
    assert summary["iterations"] == trainer.total == 2 * len(trainer.stages)
    changed = [k for k, v in trainer.generator.state_dict().items() if not torch.equal(v, g0[k])]
    assert changed, "the generator did not move"
    if any(stage.trains_discriminator for stage in trainer.stages):
        assert d0 is not None and trainer.discriminator is not None
        assert any(
            not torch.equal(v, d0[k]) for k, v in trainer.discriminator.state_dict().items()
        ), "the discriminator did not move"
    assert math.isfinite(summary["best_val_psnr"])
    assert math.isfinite(summary["bicubic_psnr"]) and 0 < summary["bicubic_ssim"] <= 1
    assert (tmp_path / "best_ema.safetensors").is_file()
    assert (tmp_path / "summary.json").is_file() and (tmp_path / "config.yaml").is_file()
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert state["iteration"] == trainer.total
    assert not list((tmp_path / "checkpoints").glob(".*tmp"))


def test_cli_trains_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "train",
            str(CONFIGS / "srresnet-ct-sparse-view.yaml"),
            "--overrides",
            str(CONFIGS / "tiny.yaml"),
            "--set",
            "train.stage_iterations=1",
            "--device",
            "cpu",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert '"iterations": 1' in capsys.readouterr().out


def test_cli_reports_config_errors_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", str(CONFIGS / "tiny.yaml"), "--device", "cpu"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medsr: error: config key model.name") and "\n" not in err


def _run(cfg: Config, out: Path, resume: str | None = None, stop: int | None = None) -> Trainer:
    trainer = Trainer(cfg, out, device="cpu", resume=resume)
    trainer.fit(stop_after=stop)
    return trainer


@pytest.mark.parametrize("method", ["miassr-mr-arbitrary", "swift-srgan-cxr-x4"])
def test_resumed_run_ends_with_exactly_the_same_weights(method: str, tmp_path: Path) -> None:
    # miassr: warm-up then GAN across the interruption, one random scale per batch;
    # swift: blind-free bicubic, AdamW, BN in G and D, EMA.
    cfg = tiny(method, "train.stage_iterations=3", "validation.every=2")
    whole = _run(copy.deepcopy(cfg), tmp_path / "whole")
    stop = whole.total - 2
    _run(copy.deepcopy(cfg), tmp_path / "split", stop=stop)
    part = torch.load(tmp_path / "split" / "checkpoints" / "last.pt", weights_only=True)
    assert part["iteration"] == stop
    resumed = _run(copy.deepcopy(cfg), tmp_path / "split", resume="auto")
    a, b = whole.state_dict(), resumed.state_dict()
    assert a["iteration"] == b["iteration"] == whole.total
    for key in ("generator", "ema", "opt_g", "sched_g", "scaler_g", "best"):
        _assert_same(a[key], b[key], key)
    if "discriminator" in a:
        for key in ("discriminator", "opt_d", "sched_d"):
            _assert_same(a[key], b[key], key)
    assert any(not torch.equal(v, part["generator"][k]) for k, v in b["generator"].items())


def test_channels_last_trains_the_same_model_and_resumes_across_layouts(tmp_path: Path) -> None:
    """channels_last (the default) changes the memory layout only: after a warm-up and a GAN step
    the weights match a default-layout run to float rounding, and a checkpoint written in
    one layout resumes in the other."""
    sets = ("train.stage_iterations=2", "validation.every=2")
    nchw = _run(tiny("miassr-mr-arbitrary", *sets, "channels_last=false"), tmp_path / "nchw")
    nhwc = _run(tiny("miassr-mr-arbitrary", *sets), tmp_path / "nhwc")
    convs = [
        p for p in nhwc.generator.parameters() if p.ndim == 4 and min(p.shape[1], p.shape[-1]) > 1
    ]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert not all(p.is_contiguous() for p in convs)
    a, b = nchw.state_dict()["generator"], nhwc.state_dict()["generator"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-4), key
    moved = tiny("miassr-mr-arbitrary", "train.stage_iterations=3", "validation.every=2")
    resumed = _run(moved, tmp_path / "nchw", resume="auto")
    assert resumed.iteration == resumed.total > nchw.iteration
    assert all(torch.isfinite(p).all() for p in resumed.generator.parameters())


def test_resume_rejects_a_checkpoint_of_another_model(tmp_path: Path) -> None:
    _run(tiny("srresnet-ct-sparse-view", "train.stage_iterations=1"), tmp_path)
    with pytest.raises(Exception, match="checkpoint holds sisr-ct"):
        Trainer(
            tiny("srresnet-ct-sparse-view", "model.channels=4"),
            tmp_path,
            device="cpu",
            resume=str(tmp_path / "checkpoints" / "last.pt"),
        )


def test_missing_perceptual_weights_stop_training_at_start_up(tmp_path: Path) -> None:
    cfg = tiny("miassr-mr-arbitrary", "loss.allow_random_init=false")
    with pytest.raises(ConfigError, match=r"loss\.vgg_weights"):
        Trainer(cfg, tmp_path, device="cpu")


def test_a_gan_stage_without_discriminator_is_a_config_error(tmp_path: Path) -> None:
    cfg = tiny("srgan-us-lateral-x4")
    cfg["discriminator"] = None
    with pytest.raises(ConfigError, match=r"stages\.1\.loss: the gan stage has an adversarial"):
        Trainer(cfg, tmp_path, device="cpu")


def test_scale_mismatch_is_a_config_error(tmp_path: Path) -> None:
    cfg = tiny("swift-srgan-cxr-x4", "degradation.scale=2")
    with pytest.raises(ConfigError, match=r"config key degradation: its scale \(2.0, 2.0\)"):
        Trainer(cfg, tmp_path, device="cpu")


def test_validation_lr_is_the_configured_degradation_and_bicubic_baseline(tmp_path: Path) -> None:
    from medsr.degrade.resize import imresize
    from medsr.metrics import psnr

    trainer = Trainer(tiny("swift-srgan-cxr-x4", "validation.patches=3"), tmp_path, device="cpu")
    assert trainer.validation is not None
    ((scale, lr, hr),) = trainer.validation.groups
    assert scale is None and hr.shape == (3, 1, 32, 32) and lr.shape == (3, 1, 8, 8)
    want_lr = imresize(hr, scale=0.25, kernel="cubic")
    assert torch.allclose(lr, want_lr, atol=1e-6)
    base = imresize(lr, size=(32, 32), kernel="cubic").clamp(0, 1)
    expected = float(psnr(base, hr, data_range=1.0, shave=4).mean())
    assert trainer.validation.bicubic_psnr == pytest.approx(expected, rel=1e-9)


def test_tensorboard_logs_and_bf16_autocast_on_cpu(tmp_path: Path) -> None:
    cfg = tiny(
        "srgan-us-lateral-x4",
        "train.stage_iterations=1",
        "logging.tensorboard=true",
        "amp.enabled=true",
        "amp.dtype=bf16",
    )
    summary = Trainer(cfg, tmp_path, device="cpu").fit()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert math.isfinite(summary["last_metrics"]["val/psnr"])


# -- pieces -------------------------------------------------------------------------------
def test_scale_choices_and_arbitrary_scale_lr() -> None:
    choices = scale_choices({"min": 1.1, "max": 4.0, "step": 0.1})
    assert len(choices) == 30 and choices[0] == 1.1 and choices[-1] == 4.0 and 2.5 in choices
    hr = torch.rand(2, 1, 96, 96)
    assert arbitrary_scale_lr(hr, 3.7, 0.5).shape == (2, 1, 26, 26)  # ceil(96 / 3.7)
    assert arbitrary_scale_lr(hr, 1.1, 0.5).shape == (2, 1, 88, 88)


@pytest.mark.parametrize("scale", [1.5, 2.7, 3.3, 4.0])
def test_arbitrary_scale_lr_is_the_evaluation_degradation(scale: float) -> None:
    """Training LR at scale s equals the bicubic degradation eval uses, on any patch size,
    so what a model learns about sub-pixel offsets holds on whole images."""
    from medsr.degrade import build

    torch.manual_seed(0)
    for size in (48, 96, 97):
        hr = torch.rand(1, 1, size, size)
        expected = build("bicubic", scale=scale)(hr)
        torch.testing.assert_close(arbitrary_scale_lr(hr, scale, 0.0), expected)


def test_gaussian_blur3_weights() -> None:
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1.0
    y = gaussian_blur3(x, 0.5)
    g = math.exp(-1 / (2 * 0.25))
    k1 = torch.tensor([g, 1.0, g]) / (1 + 2 * g)
    assert torch.allclose(y[0, 0, 1:4, 1:4], k1[:, None] * k1[None, :], atol=1e-7)
    assert float(y.sum()) == pytest.approx(1.0, abs=1e-6)
    flat = torch.full((1, 1, 4, 4), 0.3)
    assert torch.allclose(gaussian_blur3(flat, 1.0), flat)


def test_ema_update_is_the_exponential_average() -> None:
    model = torch.nn.Linear(2, 1)
    ema = ModelEMA(model, decay=0.9)
    ema.updates = 1000  # past the warm-up: the configured decay applies
    before = ema.module.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    assert torch.allclose(ema.module.weight, 0.9 * before + 0.1 * model.weight.detach())


def test_ema_warm_up_decay() -> None:
    ema = ModelEMA(torch.nn.Linear(2, 1), decay=0.999)
    assert ema.current_decay() == pytest.approx(0.1)  # first update: 90 % live weights
    ema.updates = 90
    assert ema.current_decay() == pytest.approx(91 / 100)
    ema.updates = 100_000
    assert ema.current_decay() == pytest.approx(0.999)


def test_short_run_ema_is_not_pulled_towards_the_init() -> None:
    """After 300 steps at decay 0.995 a plain EMA keeps 0.995**300 = 22 % of the random
    init; the warmed-up EMA keeps a negligible share of it."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    init = model.weight.detach().clone()
    target = torch.full_like(init, 3.0)
    ema = ModelEMA(model, decay=0.995)
    for _ in range(300):
        with torch.no_grad():
            model.weight.copy_(target)  # the live weights jump to the trained value
        ema.update(model)
    share_of_init = float(((ema.module.weight - target) / (init - target)).abs().max())
    assert share_of_init < 1e-3
    assert 0.995**300 > 0.2  # what the EMA without warm-up would still hold


def test_validation_uses_held_out_images_and_selects_by_psnr_and_ssim(tmp_path: Path) -> None:
    """val_options takes validation images from their own role (no split of the training
    images), and a checkpoint below bicubic's SSIM never beats one above it."""
    cfg = tiny(
        "miassr-mr-arbitrary",
        "data.layout=samples",
        "data.options={role: train, modality: CT}",
        "data.val_options={role: test, modality: null}",
        "data.balance=modality",
    )
    trainer = Trainer(cfg, tmp_path, device="cpu")
    assert not trainer.val_shares_training
    train_files = {r.path for r in trainer.train_data.records}
    val_files = {r.path for r in trainer.val_data.records}
    assert train_files.isdisjoint(val_files)
    assert len({r.modality for r in trainer.val_data.records}) == 4
    assert trainer.validation is not None
    base = trainer.validation.bicubic_ssim
    assert trainer._better({"val/psnr": 20.0, "val/ssim": base - 0.01})  # first result
    trainer.best_psnr, trainer.best_ssim, trainer.best_iteration = 20.0, base - 0.01, 1
    assert trainer._better({"val/psnr": 19.0, "val/ssim": base + 0.01})  # SSIM now beats bicubic
    trainer.best_psnr, trainer.best_ssim = 19.0, base + 0.01
    assert not trainer._better({"val/psnr": 30.0, "val/ssim": base - 0.001})
    assert trainer._better({"val/psnr": 19.5, "val/ssim": base + 0.001})
    trainer.close()


def test_perceptual_selection_takes_the_lowest_gmsd_within_the_psnr_floor(tmp_path: Path) -> None:
    """GAN runs (validation.select=perceptual): the sharpest checkpoint by GMSD whose PSNR
    is within 0.5 dB of bicubic wins, not the highest PSNR (the pixel warm-up's)."""
    cfg = tiny("swift-srgan-cxr-x4", "validation.select=perceptual")
    trainer = Trainer(cfg, tmp_path, device="cpu")
    assert trainer.validation is not None
    metrics = trainer.validate()
    assert 0 <= metrics["val/gmsd"] < 1  # measured on the validation patches
    floor = trainer.validation.bicubic_psnr - 0.5
    assert trainer._better({"val/psnr": floor + 2, "val/ssim": 0.9, "val/gmsd": 0.05})
    trainer.best_psnr, trainer.best_gmsd, trainer.best_iteration = floor + 2, 0.05, 1
    assert trainer._better({"val/psnr": floor + 0.1, "val/ssim": 0.8, "val/gmsd": 0.04})
    assert not trainer._better({"val/psnr": floor + 3, "val/ssim": 0.95, "val/gmsd": 0.06})
    assert not trainer._better({"val/psnr": floor - 0.1, "val/ssim": 0.95, "val/gmsd": 0.01})
    trainer.close()
    with pytest.raises(ConfigError, match=r"validation\.select"):
        tiny("swift-srgan-cxr-x4", "validation.select=lpips")


def test_val_options_sharing_a_subject_with_training_is_refused(tmp_path: Path) -> None:
    cfg = tiny(
        "miassr-mr-arbitrary",
        "data.layout=samples",
        "data.options={role: train, modality: CT}",
        "data.val_options={role: train, modality: CT}",
    )
    with pytest.raises(ConfigError, match="both the training and validation"):
        Trainer(cfg, tmp_path, device="cpu")
