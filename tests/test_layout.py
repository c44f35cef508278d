"""The house rules a reader relies on: no module a reader must scroll through (over 600
lines), and one package each for the zoo and self-supervised SR."""

from __future__ import annotations

from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "medsr"
MAX_LINES = 600


def test_no_module_is_over_600_lines() -> None:
    long = {
        str(p.relative_to(SRC)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"split these along their seams: {long}"


def test_the_zoo_and_selfsup_are_packages_with_one_entry_point() -> None:
    import medsr.selfsup
    import medsr.zoo.cli

    assert (SRC / "zoo" / "manifest.json").is_file()  # weights and cards are package data
    assert not (SRC / "infer" / "zoo.py").exists() and not (SRC / "infer" / "selfsup.py").exists()
    assert hasattr(medsr.selfsup, "upscale_self_supervised")
    assert callable(medsr.zoo.cli.add_parser)
