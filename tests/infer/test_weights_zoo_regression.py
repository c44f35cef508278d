"""Zoo entries without a "config" rebuild from the file's metadata; misfits are one-line errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from medsr import models
from medsr.errors import InputError
from medsr.infer.weights import save_generator
from medsr.zoo.manifest import load_zoo_model


def _zoo(tmp_path: Path, entry_extra: dict[str, object], model_config: dict[str, object]) -> Path:
    model = models.build("srresnet", **model_config)
    weights = tmp_path / "m.safetensors"
    save_generator(model, weights)
    entry = {
        "file": "m.safetensors",
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "architecture": "srresnet",
        **entry_extra,
    }
    (tmp_path / "manifest.json").write_text(json.dumps({"models": {"m": entry}}))
    return tmp_path


def test_entry_without_config_uses_file_metadata(tmp_path: Path) -> None:
    zoo = _zoo(tmp_path, {}, {"num_blocks": 2, "channels": 16, "scale": 2})
    model = load_zoo_model("m", zoo_dir=zoo)
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in models.build("srresnet", num_blocks=2, channels=16, scale=2).parameters()
    )
    out = model(torch.rand(1, 1, 8, 8))
    assert out.shape == (1, 1, 16, 16)


def test_entry_whose_config_does_not_fit_is_a_clear_error(tmp_path: Path) -> None:
    zoo = _zoo(
        tmp_path,
        {"config": {"num_blocks": 2, "channels": 8, "scale": 2}},
        {"num_blocks": 2, "channels": 16, "scale": 2},
    )
    with pytest.raises(InputError, match="weights do not fit srresnet"):
        load_zoo_model("m", zoo_dir=zoo)
