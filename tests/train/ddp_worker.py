"""Run by ``torch.distributed.run`` from test_distributed.py: train the tiny config on
this rank and save what the test compares (not collected by pytest)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from medsr.train.config import load_config
from medsr.train.trainer import BatchSource, Trainer


def main() -> None:
    config, overrides, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    cfg = load_config(config, [overrides], sys.argv[4:])
    trainer = Trainer(cfg, out / "run", device="cpu")
    rank = trainer.ctx.rank
    init = {k: v.detach().clone() for k, v in trainer.generator.state_dict().items()}
    source = BatchSource(
        trainer.train_data,
        trainer.batch_size,
        trainer.patch_size,
        trainer.augment,
        trainer.seed,
        trainer.ctx,
        0,
        trainer.scales,
    )
    first_batch = torch.from_numpy(source.make(0)[0])
    trainer.fit()
    assert trainer.discriminator is not None
    torch.save(
        {
            "world_size": trainer.ctx.world_size,
            "init": init,
            "generator": trainer.generator.state_dict(),
            "discriminator": trainer.discriminator.state_dict(),
            "first_batch": first_batch,
        },
        out / f"rank{rank}.pt",
    )
    trainer.close()


if __name__ == "__main__":
    main()
