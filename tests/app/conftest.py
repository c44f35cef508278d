"""A temporary zoo for the app's tests: a generic (bicubic-trained) x2 SRResNet of its own
size (3 blocks x 12 channels, not the published 16 x 64) and an MR k-space x2 SRResNet
(zero-fill skip), both shipped and random, named in ``$MEDSR_ZOO_DIR``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import pytest
import torch

GENERIC = "generic-srresnet-x2"
MR_KSPACE = "mr-kspace-srresnet-x2"


def write_app_zoo(folder: Path) -> Path:
    from medsr.infer.weights import save_generator
    from medsr.models import build
    from medsr.zoo.manifest import sha256_of

    folder.mkdir(parents=True, exist_ok=True)
    specs = {
        GENERIC: ({"num_blocks": 3, "channels": 12, "residual": True}, "bicubic"),
        MR_KSPACE: ({"num_blocks": 1, "channels": 8, "residual": "zero-fill"}, "mr-kspace"),
    }
    models = {}
    torch.manual_seed(0)
    for name, (size, degradation) in specs.items():
        model = build("srresnet", scale=2, **size)
        path = save_generator(model, folder / f"{name}.safetensors")
        models[name] = {
            "file": path.name,
            "sha256": sha256_of(path),
            "architecture": "srresnet",
            "config": model.config,
            "scale": [2.0, 2.0],
            "degradation": {"name": degradation, "scale": 2},
            "kind": "psnr",
            "status": "shipped",
        }
    defaults = {"2": GENERIC, "default": GENERIC, "mr-kspace:x2": MR_KSPACE}
    (folder / "manifest.json").write_text(json.dumps({"models": models, "defaults": defaults}))
    return folder


class AppZoo(NamedTuple):
    folder: Path
    generic: str
    mr_kspace: str


@pytest.fixture
def app_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppZoo:
    """The zoo above, in use for the test."""
    from medsr.zoo.manifest import ZOO_ENV

    zoo = write_app_zoo(tmp_path / "zoo")
    monkeypatch.setenv(ZOO_ENV, str(zoo))
    return AppZoo(zoo, GENERIC, MR_KSPACE)
