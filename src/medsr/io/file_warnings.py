"""Warnings that name their file.

Reading a defective file makes the libraries underneath warn or log what they repaired
(pydicom: an invalid UID, excess pixel padding, implicit VR under an explicit transfer
syntax; nibabel: a wrong sizeof_hdr, a zero or negative pixdim) without saying which file
it is. :func:`naming_the_file` wraps the reading of one file and issues each of those
messages once, on one line, as a :class:`FileWarning` "path: message", so that every
entry point (the CLI, the Python API, the web app) says which file a warning is about.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Libraries that report repairs through logging (pydicom logs what it also warns;
#: nibabel logs its header fixes on ``nibabel.global``).
LIBRARY_LOGGERS = ("pydicom", "nibabel", "PIL")


class FileWarning(UserWarning):
    """Something repaired or assumed in one input file; the message starts with its path."""


def _one_line(text: object) -> str:
    """``text`` with its lines joined by spaces."""
    return " ".join(line.strip() for line in str(text).strip().splitlines() if line.strip())


class _LogCapture(logging.Filter):
    """On each library logger: hands the records of warning level and above to the
    innermost block of the thread that logs them, so that no handler prints them. Records
    logged outside any block, and lower levels, pass as usual."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    def blocks(self) -> list[list[tuple[str, bool]]]:
        """This thread's blocks, innermost last."""
        if not hasattr(self._local, "blocks"):
            self._local.blocks = []
        blocks: list[list[tuple[str, bool]]] = self._local.blocks
        return blocks

    def filter(self, record: logging.LogRecord) -> bool:
        blocks = self.blocks()
        if record.levelno < logging.WARNING or not blocks:
            return True
        blocks[-1].append((_one_line(record.getMessage()), False))
        return False


_LOG_CAPTURE = _LogCapture()


def _library_loggers() -> list[logging.Logger]:
    """The :data:`LIBRARY_LOGGERS` and their descendants that exist: a logger's filter sees
    only the records logged on that very logger, not those its children pass up. A logger
    made later (``nibabel.global``, when nibabel is imported inside the block) is missed,
    so each reader enters its own block after importing its library."""
    names = {
        name
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger) and name.split(".")[0] in LIBRARY_LOGGERS
    }
    return [logging.getLogger(name) for name in sorted(names | set(LIBRARY_LOGGERS))]


@contextmanager
def _held_messages() -> Iterator[list[tuple[str, bool]]]:
    """Hold back the warnings and library log records of the block; yields their texts in
    order, each with whether it already names a file (an inner :class:`FileWarning`).

    Warning filters stay as they are (an "ignore" or "error" still applies); like
    :func:`warnings.catch_warnings`, which it uses, it is not thread-safe for warnings.
    """
    messages: list[tuple[str, bool]] = []

    def hold(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
        messages.append((_one_line(message), issubclass(category, FileWarning)))

    for logger in _library_loggers():
        logger.addFilter(_LOG_CAPTURE)  # once per logger; it stays, idle outside blocks
    blocks = _LOG_CAPTURE.blocks()
    with warnings.catch_warnings():
        warnings.showwarning = hold
        blocks.append(messages)
        try:
            yield messages
        finally:
            blocks.pop()


@contextmanager
def naming_the_file(path: str | Path) -> Iterator[None]:
    """Issue each warning and library log record of the block once, as a
    :class:`FileWarning` "path: message"; those an inner block already issued for one file
    of a folder pass through as they are. When the block raises, nothing is issued: the
    error, which names the file, is what matters."""
    with _held_messages() as messages:
        yield
    seen: set[str] = set()
    for text, named in messages:
        line = text if named else f"{path}: {text}"
        if text and line not in seen:
            seen.add(line)
            warnings.warn(FileWarning(line), stacklevel=3)


@contextmanager
def silenced_library_messages() -> Iterator[None]:
    """Drop the warnings and library log records of the block (a first look at a file that
    is read, and reported on, again later)."""
    with _held_messages():
        yield
