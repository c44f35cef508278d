"""The ``medsr`` command line.

Each subcommand lives beside the code it drives, in a module with
``add_parser(subparsers)`` that registers its parser and sets ``handler`` (a
function taking the parsed arguments and returning an exit code). Those modules
import torch and friends lazily inside the handler, so ``medsr --help`` is fast.

A :class:`~medsr.errors.MedsrError` raised anywhere ends in one line on stderr
and exit code 2, never a traceback; so does an operating-system error (a full disk,
a folder medsr may not write). Warnings from the libraries underneath are held back
and printed, one line each, only when the command succeeds. SIGTERM is turned into
an exception so temporary outputs are removed as on Ctrl-C. Anything else is a bug
in medsr: one line, exit code 1, and ``MEDSR_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import NoReturn

from medsr import __version__
from medsr.errors import MedsrError

#: Set to 1 to see the traceback of an unexpected error.
DEBUG_ENV = "MEDSR_DEBUG"


class Terminated(BaseException):
    """SIGTERM arrived; raised so that ``finally`` blocks remove temporary outputs."""


#: Modules that register subcommands, in the order ``medsr --help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "medsr.io.cli",  # info, samples
    "medsr.data.cli",  # corpus
    "medsr.degrade.cli",  # degrade
    "medsr.models.cli",  # models
    "medsr.train.cli",  # train
    "medsr.evaluate.cli",  # eval, demo
    "medsr.infer.cli",  # upscale, export
    "medsr.zoo.cli",  # zoo cards, zoo train, zoo export
    "medsr.app.cli",  # app
)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (and exit code 2), like every
    other medsr error; ``--help`` still shows the full usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
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


def _one_line(text: object) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return " ".join(lines)[:500] if lines else ""


def _os_error(exc: OSError) -> str:
    """``path: reason`` for an operating-system error (full disk, permissions...)."""
    reason = exc.strerror or _one_line(exc) or type(exc).__name__
    where = exc.filename if exc.filename is not None else None
    return f"{where}: {reason}" if where is not None else reason


#: Libraries whose log records (pydicom: "VR lookup failed", nibabel: header fixes) are held
#: back like warnings instead of reaching stderr through logging's last-resort handler.
QUIET_LOGGERS = ("pydicom", "nibabel", "PIL")


class _Collector(logging.Handler):
    """Keeps the records of warning level and above."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def _held_library_logs() -> Iterator[_Collector]:
    """Route the :data:`QUIET_LOGGERS` to one collector for the duration of the block."""
    collector = _Collector()
    saved = []
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.propagate))
        logger.addHandler(collector)
        logger.propagate = False
    try:
        yield collector
    finally:
        for logger, propagate in saved:
            logger.removeHandler(collector)
            logger.propagate = propagate


@contextmanager
def _terminate_on_sigterm() -> Iterator[None]:
    """Raise :class:`Terminated` on SIGTERM while the block runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    code = 1
    with (
        warnings.catch_warnings(record=True) as caught,
        _held_library_logs() as logs,
        _terminate_on_sigterm(),
    ):
        warnings.simplefilter("default")
        try:
            code = int(handler(args) or 0)
        except MedsrError as exc:
            print(f"medsr: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"medsr: error: {_one_line(_os_error(exc))}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("medsr: interrupted", file=sys.stderr)
            return 130
        except Terminated:
            print("medsr: terminated", file=sys.stderr)
            return 143
        except MemoryError:
            print("medsr: error: out of memory", file=sys.stderr)
            return 2
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            print(
                f"medsr: internal error: {type(exc).__name__}: {_one_line(exc)} "
                f"(a bug in medsr; {DEBUG_ENV}=1 shows the traceback)",
                file=sys.stderr,
            )
            return 1
    messages: list[object] = [warning.message for warning in caught]
    messages += [record.getMessage() for record in logs.records]
    for text in _warning_lines(messages):
        print(f"medsr: warning: {text}", file=sys.stderr)
    return code


def _warning_lines(messages: Sequence[object]) -> list[str]:
    """One line per distinct warning (or log record). A library message that a reader
    also issued naming its file ("path: message", see :mod:`medsr.io.file_warnings`) is
    kept only in that form: another look at the same file, outside the reader, said it
    again without a name."""
    texts = [_one_line(message) for message in messages]
    named = [text for text in texts if ": " in text]
    lines: list[str] = []
    for text in texts:
        if not text or text in lines:
            continue
        if any(other.endswith(f": {text}") for other in named):
            continue
        lines.append(text)
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
