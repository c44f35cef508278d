"""``medsr train CONFIG [--overrides FILE]... [--set key=value]... [--resume PATH|auto]``.

Under ``torchrun --nproc_per_node N -m medsr train CONFIG`` the same command
trains with DistributedDataParallel; only rank 0 prints, logs and checkpoints.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train",
        help="train a model from a YAML config (one GPU, CPU, or torchrun DDP)",
        description=(
            "Train a super-resolution model from a YAML config (configs/*.yaml). "
            "Values may be overridden with --overrides FILE and --set key.sub=value "
            "(YAML-typed). Launch with torchrun for multi-process training."
        ),
    )
    parser.add_argument("config", type=Path, help="YAML training config")
    parser.add_argument(
        "--overrides",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="YAML override set merged on top of CONFIG (repeatable, e.g. configs/tiny.yaml)",
    )
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one key, value parsed as YAML (repeatable): --set optim.generator.lr=1e-5",
    )
    parser.add_argument(
        "--resume",
        default=None,
        metavar="PATH|auto",
        help="continue from a checkpoint; 'auto' uses OUT/checkpoints/last.pt when present",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="run folder (default runs/<config name>)"
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    parser.add_argument(
        "--stop-after",
        type=_iterations,
        default=None,
        metavar="N",
        help="stop (with a checkpoint) once N iterations are done; resume later",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    parser.set_defaults(handler=run)


def _iterations(text: str) -> int:
    """A whole number of iterations, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    from medsr.train.config import load_config
    from medsr.train.trainer import Trainer

    sets = list(args.sets)
    if args.no_progress:
        sets.append("logging.progress=false")
    cfg = load_config(args.config, args.overrides, sets)
    out = args.out or Path("runs") / cfg["name"]
    logging.basicConfig(level=logging.INFO, format="medsr: %(message)s")
    trainer = Trainer(cfg, out, device=args.device, resume=args.resume)
    try:
        summary = trainer.fit(stop_after=args.stop_after)
        if trainer.ctx.is_main:
            print(json.dumps(summary, indent=2))
    finally:
        trainer.close()
    return 0
