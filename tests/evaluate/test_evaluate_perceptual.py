"""medsr eval's perceptual measures and bias on a known case, and model labels that never
merge two weights files with the same name."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medsr.evaluate.runner import EvalImage, _unique_label, load_models, run_evaluation
from medsr.image import Modality, Normalization


def test_two_files_with_one_stem_keep_separate_labels() -> None:
    taken: set[str] = set()
    for name in ("runs/a/best_ema.safetensors", "runs/b/best_ema.safetensors", "c/b/best_ema.pt"):
        taken.add(_unique_label(name, taken))
    assert taken == {"best_ema", "b/best_ema", "b/best_ema (2)"}
    assert _unique_label("bicubic", set()) == "bicubic"


def test_scale_one_identity_scores_and_bias() -> None:
    """At scale 1 bicubic is the identity: GMSD 0, HaarPSI 1, bias 0; a 2% brighter copy
    of the HR as 'SR' would read +2%, so the figure is the mean shift in range units."""
    rng = np.random.default_rng(0)
    hr = rng.uniform(0, 1000, (48, 48)).astype(np.float32)
    item = EvalImage("img", hr, Modality.OTHER, Normalization(0.0, 1000.0, "test"))
    run = run_evaluation(load_models([], ["bicubic"]), [item], scale=1.0)
    score = run.models["bicubic"].scores[0]
    assert score.gmsd == pytest.approx(0.0, abs=1e-9)
    assert score.haarpsi == pytest.approx(1.0, abs=1e-9)
    assert score.bias == pytest.approx(0.0, abs=1e-6)
    assert run.models["bicubic"].max_abs_bias() == pytest.approx(0.0, abs=1e-6)
    assert run.reference == "HR image"
    small = EvalImage("tiny", hr[:12, :12], Modality.OTHER, Normalization(0.0, 1000.0, "t"))
    tiny = run_evaluation(load_models([], ["bicubic"]), [small], scale=1.0).models["bicubic"]
    assert math.isnan(tiny.scores[0].haarpsi) and not math.isnan(tiny.scores[0].bias)
