"""The ``medsr`` command line.

Each subcommand lives beside the code it drives, in a module with
``add_parser(subparsers)`` that registers its parser and sets ``handler`` (a
function taking the parsed arguments and returning an exit code). Those modules
import torch and friends lazily inside the handler, so ``medsr --help`` is fast.

A :class:`~medsr.errors.MedsrError` raised anywhere ends in one line on stderr
and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from medsr import __version__
from medsr.errors import MedsrError

#: Modules that register subcommands, in the order ``medsr --help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "medsr.io.cli",  # info, samples
    "medsr.degrade.cli",  # degrade
    "medsr.models.cli",  # models
    "medsr.train.cli",  # train
    "medsr.evaluate.cli",  # eval, demo
    "medsr.infer.cli",  # upscale, export
    "medsr.app.cli",  # app
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medsr",
        description="Medical image super-resolution: read, degrade, train, evaluate, upscale.",
    )
    parser.add_argument("--version", action="version", version=f"medsr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that command is not part of this build
                continue
            raise
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except MedsrError as exc:
        print(f"medsr: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("medsr: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
