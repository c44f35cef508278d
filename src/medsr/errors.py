"""Exceptions a user can cause. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations

from pathlib import Path


class MedsrError(Exception):
    """A user-facing error: bad input file, bad option, missing weights."""


class InputError(MedsrError):
    """An input file or folder that cannot be read as a medical image."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(MedsrError):
    """A configuration value, option or parameter that is invalid."""
