"""Moved: the cards are ``medsr zoo cards`` (:mod:`medsr.zoo.cards`); this wrapper runs it
from the repository root with the same arguments."""

from __future__ import annotations

import sys
from pathlib import Path

from medsr.cli import main

if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    raise SystemExit(main(["zoo", "cards", "--root", str(root), *sys.argv[1:]]))
