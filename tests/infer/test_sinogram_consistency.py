"""Sinogram-domain data consistency for sparse-view CT restorers: the step, its geometry,
who gets it by default, the differentiable projector it trains through, and the trainer
option that trains through it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from medsr import models
from medsr.degrade.ct import CTSparseView, field_of_view, projector
from medsr.errors import ConfigError
from medsr.infer.consistency import wants_data_consistency
from medsr.infer.sinogram import STEP, SparseViews, project_views, sparse_views_of
from medsr.train.config import load_config
from medsr.train.trainer import Trainer

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _slice(n: int = 64) -> torch.Tensor:
    """A head-like slice in [0, 1]: a bright ring (skull), soft tissue and two lesions."""
    y, x = np.mgrid[:n, :n] - n / 2
    r = np.hypot(y, x)
    image = np.where(r < 0.40 * n, 0.45, 0.0) + np.where(np.abs(r - 0.38 * n) < 2, 0.5, 0.0)
    image = image + 0.2 * (np.hypot(y - 5, x + 6) < 4) - 0.1 * (np.hypot(y + 7, x - 4) < 3)
    return torch.from_numpy(np.clip(image, 0, 1).astype(np.float32))[None, None]


def _restorer(degradation: object) -> torch.nn.Module:
    model = models.build("sisr-ct", num_blocks=1, channels=4)
    model.medsr_degradation = degradation
    return model


def test_the_truth_is_a_fixed_point() -> None:
    views = SparseViews(120, 8)
    truth = _slice() * field_of_view(64)
    lr = views.degradation().apply(truth, {})
    torch.testing.assert_close(project_views(truth, lr, views), truth, atol=1e-6, rtol=0)


def test_one_step_removes_part_of_a_low_frequency_error_and_of_an_offset() -> None:
    views = SparseViews(120, 8)
    ct = views.degradation()
    truth = _slice()
    lr, target = ct.apply_pair(truth, {"view_step": 8})
    inside = field_of_view(64)
    # a restorer that got the mean level 3% too low and blurred the slice
    blurred = torch.nn.functional.avg_pool2d(target, 5, stride=1, padding=2)
    sr = ((blurred - 0.03) * inside).clamp(0, 1)
    out = project_views(sr, lr, views)

    def rms(x: torch.Tensor) -> float:
        return float(((x - target)[0, 0][inside] ** 2).mean().sqrt())

    def offset(x: torch.Tensor) -> float:
        return float((x - target)[0, 0][inside].mean())

    assert rms(out) < 0.75 * rms(sr)
    assert abs(offset(out)) < 0.6 * abs(offset(sr))  # about 1 - STEP of it is left
    assert float(out[0, 0][~inside].abs().max()) == 0.0
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_the_geometry_comes_from_the_training_degradation_unless_given() -> None:
    trained = {"name": "ct-sparse-view", "n_angles": 1000, "view_step": [16, 8, 16, 32]}
    assert sparse_views_of(_restorer(trained)) == SparseViews(1000, 16)
    assert sparse_views_of(_restorer(trained), view_step=8) == SparseViews(1000, 8)
    assert SparseViews(1000, 16).views == 63
    assert "63 of 1000 views" in SparseViews(1000, 16).describe()
    assert sparse_views_of(_restorer({"name": "bicubic", "scale": 2})) is None
    assert sparse_views_of(models.build("srresnet", scale=2, num_blocks=1, channels=4)) is None
    with pytest.raises(ConfigError, match="1 <= view_step < n_angles"):
        SparseViews(1000, 1000)


def test_sparse_view_restorers_get_it_by_default_and_the_user_decides() -> None:
    restorer = _restorer({"name": "ct-sparse-view", "n_angles": 1000, "view_step": 16})
    assert wants_data_consistency(restorer, None)
    assert not wants_data_consistency(restorer, False)
    assert not wants_data_consistency(_restorer({"name": "bicubic", "scale": 2}), None)


def test_a_non_square_slice_keeps_its_size_and_scanner_circle() -> None:
    views = SparseViews(90, 6)
    hr = _slice(64)[..., 8:56, :]  # 48 x 64
    lr = views.degradation().apply(hr, {})
    out = project_views(lr, lr, views)
    assert out.shape == hr.shape
    circle = field_of_view(64)[8:56, :]
    assert float(out[0, 0][~circle].abs().max()) == 0.0
    with pytest.raises(ConfigError, match="input's grid"):
        project_views(out[..., :40], lr, views)


def test_projector_is_differentiable_and_its_gradient_is_the_adjoint() -> None:
    """For the linear map f(x) = <w, FBP(R x)>, autograd's gradient at any pixel equals the
    change of f when that pixel changes by one (exact up to float rounding)."""
    ct = CTSparseView(n_angles=60, view_step=4)
    geometry = projector(32, ct.kept(4), torch.device("cpu"))
    weight = torch.rand(1, 32, 32, generator=torch.Generator().manual_seed(0))
    x = torch.rand(1, 32, 32, generator=torch.Generator().manual_seed(1)) * field_of_view(32)
    x.requires_grad_(True)
    value = (weight * geometry.fbp(geometry.radon(x, True))).sum()
    value.backward()
    assert x.grad is not None
    with torch.no_grad():
        for row, col in ((16, 16), (10, 20), (22, 9)):
            bumped = x.detach().clone()
            bumped[0, row, col] += 1.0
            changed = (weight * geometry.fbp(geometry.radon(bumped, True))).sum() - value.detach()
            assert math.isclose(float(changed), float(x.grad[0, row, col]), rel_tol=1e-3)
    # without autograd, the reused-buffer path gives the same numbers
    with torch.no_grad():
        again = (weight * geometry.fbp(geometry.radon(x.detach(), True))).sum()
    assert math.isclose(float(again), float(value.detach()), rel_tol=1e-6)


def test_training_through_the_step(tmp_path: Path) -> None:
    cfg = load_config(
        CONFIGS / "srresnet-ct-sparse-view.yaml", [CONFIGS / "tiny.yaml"], ["data_consistency=true"]
    )
    trainer = Trainer(cfg, tmp_path, device="cpu")
    before = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    summary = trainer.fit()
    assert any(not torch.equal(v, before[k]) for k, v in trainer.generator.state_dict().items())
    assert math.isfinite(summary["best_val_psnr"])
    # the step is what the loss saw: the batch's own view step
    lr = torch.rand(1, 1, 32, 32)
    sr = torch.rand(1, 1, 32, 32)
    views = SparseViews(trainer.degradation.n_angles, 8)
    torch.testing.assert_close(
        trainer._consistent(sr, lr, {"view_step": 8}), project_views(sr, lr, views, STEP)
    )


def test_the_option_is_refused_where_there_is_no_sinogram() -> None:
    with pytest.raises(ConfigError, match="data_consistency"):
        load_config(
            CONFIGS / "swift-srgan-cxr-x4.yaml", [CONFIGS / "tiny.yaml"], ["data_consistency=true"]
        )


@pytest.fixture
def restorer_file(tmp_path: Path) -> Path:
    """A tiny sparse-view CT restorer as training exports it: degradation and CT window in
    its metadata."""
    from medsr.infer.weights import save_generator

    model = models.build("sisr-ct", num_blocks=1, channels=4)
    degradation = {"name": "ct-sparse-view", "n_angles": 1000, "view_step": [16, 8]}
    extra = {"medsr.degradation": degradation, "medsr.window": "deeplesion"}
    return save_generator(model, tmp_path / "restorer.safetensors", extra)


def _head_ct(tmp_path: Path) -> Path:
    """A 64x64 crop of the head CT sample with skull (above 200 HU) as DICOM."""
    from medsr.image import MedicalImage
    from medsr.io import read, write
    from medsr.samples import get_sample

    image = read(get_sample("ct-head-693").path)
    crop = image.pixels[64:128, 224:288]
    assert float(crop.max()) > 200 and float(crop.min()) <= -1000
    cut = MedicalImage(crop, affine=image.affine, modality=image.modality, source=image.source)
    return write(cut, tmp_path / "in" / "head.dcm")


def test_upscale_runs_a_restorer_in_its_window_with_the_step(
    tmp_path: Path, restorer_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from medsr.cli import main
    from medsr.io import read

    source = _head_ct(tmp_path)
    out = tmp_path / "out.dcm"
    argv = ["upscale", str(source), "-o", str(out), "--model", str(restorer_file)]
    assert main([*argv, "--view-step", "8", "--consistency"]) == 0
    captured = capsys.readouterr()
    err = captured.out + captured.err
    assert "training window deeplesion (-1024 to 200 HU)" in err
    assert "125 of 1000 views over 180 degrees (view step 8)" in err
    assert "keep their input values" in err
    before, after = read(source).pixels, read(out).pixels
    assert after.shape == before.shape
    bone = before > 200
    np.testing.assert_array_equal(after[bone], before[bone])  # outside the window: as input
    inside = (before > -1024) & (before < 200)
    assert float(after[inside].max()) <= 200 and float(after[inside].min()) >= -1024
    assert not np.array_equal(after[inside], before[inside])


def test_view_step_is_for_restorers_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from medsr.cli import main

    source = _head_ct(tmp_path)
    argv = ["upscale", str(source), "-o", str(tmp_path / "o.dcm"), "--model", "bicubic"]
    assert main([*argv, "--scale", "2", "--view-step", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--view-step applies to sparse-view CT restorers" in err
    assert not (tmp_path / "o.dcm").exists()


def test_eval_scores_a_restorer_with_the_step_at_the_runs_geometry() -> None:
    from medsr.evaluate.runner import _forward, build_degradation

    model = _restorer({"name": "ct-sparse-view", "n_angles": 1000, "view_step": [16, 8]})
    model.eval()
    degradation = build_degradation('{"name": "ct-sparse-view", "view_step": 8}', 1.0)
    views = SparseViews.of_degradation(degradation)
    assert views == SparseViews(1000, 8)
    lr = degradation.apply(_slice(), {})
    with torch.inference_mode():
        raw = _forward(model, lr, (1.0, 1.0), False, views)
        stepped = _forward(model, lr, (1.0, 1.0), None, views)
    torch.testing.assert_close(stepped, project_views(raw, lr, views))
    assert not torch.equal(stepped, raw)
