"""DDP: two CPU processes (gloo) under torch.distributed.run on the tiny config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
CONFIGS = HERE.parents[1] / "configs"


def test_two_ranks_hold_identical_weights_after_training(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(HERE / "ddp_worker.py"),
        str(CONFIGS / "swift-srgan-cxr-x4.yaml"),
        str(CONFIGS / "tiny.yaml"),
        str(tmp_path),
        "train.stage_iterations=2",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["world_size"] == r1["world_size"] == 2
    # each rank trained on its own shard of the global batch
    assert not torch.equal(r0["first_batch"], r1["first_batch"])
    for net in ("generator", "discriminator"):
        assert r0[net].keys() == r1[net].keys()
        for key in r0[net]:
            assert torch.equal(r0[net][key], r1[net][key]), f"{net}.{key} differs between ranks"
    moved = [k for k, v in r0["generator"].items() if not torch.equal(v, r0["init"][k])]
    assert moved, "the generator did not train"
    # only rank 0 writes the run folder
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
