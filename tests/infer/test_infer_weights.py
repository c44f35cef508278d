"""Weights: safetensors/weights-only round trips, refusal of code-running pickles, the zoo."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import pytest
import torch

import medsr
from medsr.errors import ConfigError, InputError
from medsr.infer.weights import load_generator, read_weights, save_generator
from medsr.models import build
from medsr.zoo.manifest import zoo_models


def _small() -> torch.nn.Module:
    torch.manual_seed(3)
    return build("srresnet", num_blocks=1, channels=8).eval()


def _same_outputs(a: torch.nn.Module, b: torch.nn.Module) -> float:
    x = torch.rand(1, 1, 12, 10, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return float((a(x) - b(x)).abs().max())


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_save_load_round_trip_rebuilds_architecture(tmp_path: Path, suffix: str) -> None:
    model = _small()
    path = save_generator(
        model, tmp_path / f"g{suffix}", {"medsr.degradation": {"name": "bicubic"}}
    )
    weights = read_weights(path)
    assert weights.metadata["medsr.model"] == "srresnet"
    assert json.loads(weights.metadata["medsr.config"])["channels"] == 8
    loaded = load_generator(path)
    assert loaded.config == model.config
    assert _same_outputs(model, loaded) == 0.0
    assert loaded.medsr_degradation == {"name": "bicubic"}


class _Payload:
    """Unpickling this calls os.system: the classic malicious checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_pickle_with_code_payload_is_refused_and_never_runs(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    obj = {"state_dict": _small().state_dict(), "extra": _Payload(marker)}
    if writer == "torch":
        torch.save(obj, path)
    else:
        with path.open("wb") as fh:
            pickle.dump(obj, fh)
    with pytest.raises(InputError, match="refusing to load") as info:
        medsr.load_model(path)
    assert str(path) in str(info.value)
    assert "system" in str(info.value)
    assert not marker.exists()


def _zoo(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    model = _small()
    file = save_generator(model, zoo / "tiny-x4.safetensors")
    manifest = {
        "models": {
            "tiny-x4": {
                "file": file.name,
                "sha256": hashlib.sha256(file.read_bytes()).hexdigest(),
                "architecture": "srresnet",
                "config": dict(model.config),
                "scale": [4, 4],
                "degradation": {"name": "bicubic", "scale": 4},
                "card": "tiny-x4.md",
            }
        }
    }
    (zoo / "manifest.json").write_text(json.dumps(manifest))
    return zoo, model


def test_zoo_model_loads_after_checksum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    zoo, model = _zoo(tmp_path)
    loaded = medsr.load_model("tiny-x4", zoo_dir=zoo)
    assert _same_outputs(model, loaded) == 0.0
    assert loaded.medsr_zoo_name == "tiny-x4"
    monkeypatch.setenv("MEDSR_ZOO_DIR", str(zoo))
    assert list(zoo_models()) == ["tiny-x4"]
    assert _same_outputs(model, medsr.load_model("tiny-x4")) == 0.0


def test_corrupted_zoo_weights_are_refused(tmp_path: Path) -> None:
    zoo, _ = _zoo(tmp_path)
    file = zoo / "tiny-x4.safetensors"
    data = bytearray(file.read_bytes())
    data[-5] ^= 0xFF
    file.write_bytes(bytes(data))
    with pytest.raises(InputError, match="SHA-256 checksum mismatch"):
        medsr.load_model("tiny-x4", zoo_dir=zoo)


def test_missing_zoo_means_no_shipped_weights(tmp_path: Path) -> None:
    assert zoo_models(tmp_path / "nowhere") == {}


def test_architecture_without_weights_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no weights shipped") as info:
        medsr.load_model("srresnet", zoo_dir=tmp_path)
    assert "weights file" in str(info.value)
    baseline = medsr.load_model("bicubic")
    assert baseline.is_baseline and baseline.arbitrary_scale
    with pytest.raises(ConfigError, match="unknown model"):
        medsr.load_model("no-such-model")
    with pytest.raises(InputError, match="no such weights file"):
        medsr.load_model(tmp_path / "missing.safetensors")


def test_garbage_files_are_input_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(InputError, match="safetensors"):
        load_generator(bad)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00\x01garbage")
    with pytest.raises(InputError, match=r"junk\.pt"):
        load_generator(junk)


def test_training_checkpoint_loads_its_generator(tmp_path: Path) -> None:
    """The layout `medsr train` writes: model name/config beside the generator state."""
    model = _small()
    checkpoint = {
        "version": 1,
        "iteration": 10,
        "config": {"train": {"lr": 1e-4}, "model": {"name": "srresnet"}},
        "model": {"name": "srresnet", "config": dict(model.config)},
        "generator": model.state_dict(),
        "opt_g": {"state": {}, "param_groups": [{"lr": 1e-4}]},
    }
    path = tmp_path / "last.pt"
    torch.save(checkpoint, path)
    assert _same_outputs(model, medsr.load_model(path)) == 0.0
