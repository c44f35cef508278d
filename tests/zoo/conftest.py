"""A tiny zoo in a temporary folder: a generic (bicubic-trained) model and an MR k-space
model, each a zero-initialised residual SRResNet, so each is exactly its skip (bicubic,
zero-filled k-space) and its figures are known."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medsr import models
from medsr.infer.weights import save_generator


def write_zoo(folder: Path, entries: dict[str, dict[str, Any]], defaults: dict[str, str]) -> Path:
    from medsr.zoo.manifest import sha256_of

    folder.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"models": {}, "defaults": defaults}
    for name, spec in entries.items():
        config = {"scale": spec["scale"], "num_blocks": 1, "channels": 8, "residual": spec["skip"]}
        path = save_generator(models.build("srresnet", **config), folder / f"{name}.safetensors")
        manifest["models"][name] = {
            "file": path.name,
            "sha256": sha256_of(path),
            "architecture": "srresnet",
            "config": config,
            "scale": [float(spec["scale"])] * 2,
            "degradation": {"name": spec["degradation"], "scale": spec["scale"]},
            "card": f"{name}.md",
            "kind": "psnr",
            "status": spec.get("status", "shipped"),
        }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture
def tiny_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    zoo = write_zoo(
        tmp_path / "zoo",
        {
            "generic-x2": {"scale": 2, "skip": True, "degradation": "bicubic"},
            "mr-kspace-x2": {"scale": 2, "skip": "zero-fill", "degradation": "mr-kspace"},
            "mr-kspace-x4": {
                "scale": 4,
                "skip": "zero-fill",
                "degradation": "mr-kspace",
                "status": "experimental",
            },
        },
        {
            "2": "generic-x2",
            "default": "generic-x2",
            "mr-kspace:x2": "mr-kspace-x2",
            "mr-kspace:x4": "mr-kspace-x4",
        },
    )
    monkeypatch.setenv("MEDSR_ZOO_DIR", str(zoo))
    return zoo
