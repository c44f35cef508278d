"""Cards: the acquisition table (the acquisition a model's figures hold for, and how it does
on the others), the shipping rule applied to claimed settings only, and the shipped cards'
figures regenerating from a fresh evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest

from medsr.zoo.cards import render, scoring
from medsr.zoo.cards.settings import SETTINGS, Setting

ROOT = Path(__file__).resolve().parents[2]


def test_card_of_an_mr_model_has_its_acquisition_table(
    tiny_zoo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medsr.zoo.manifest import zoo_models

    settings = [
        Setting("mr-kspace", (2.0, 2.0), ("MR",)),
        Setting("bicubic", (2.0, 2.0), ("MR",), claimed=False),
    ]
    monkeypatch.setitem(SETTINGS, "mr-kspace-x2", settings)
    results = {"corpus": scoring.evaluate(["mr-kspace-x2"], "samples", tiny_zoo)}
    summary = render.write_card(
        "mr-kspace-x2", zoo_models()["mr-kspace-x2"], results, tiny_zoo, ROOT
    )
    card = (tiny_zoo / "mr-kspace-x2.md").read_text()
    assert "Its figures hold for **mr-kspace** input (MR)" in card
    table = [line for line in card.splitlines() if line.startswith("| mr-kspace |")]
    table += [line for line in card.splitlines() if line.startswith("| bicubic | bicubic x2")]
    assert len(table) == 2
    kspace, bicubic = (line.split("|")[1:-1] for line in table)
    assert [c.strip() for c in kspace[:4]] == ["mr-kspace", "mr-kspace x2", "MR", "zero-fill"]
    # a zero-initialised zero-fill skip is ZIP, up to the k-space data consistency it runs with
    assert abs(float(kspace[6].strip(" *"))) <= 0.05
    assert kspace[-1].strip() == "yes"
    assert [c.strip() for c in bicubic[:4]] == ["bicubic", "bicubic x2", "MR", "bicubic"]
    assert bicubic[-1].strip() == "shown"
    # ZIP on a bicubic-shrunk input sits on the wrong grid: far below bicubic, and shown only
    assert float(bicubic[6].strip(" *")) < -1.0
    figures = summary["settings"]
    assert figures["mr-kspace x2"]["reference"] == "zero-fill"
    assert figures["mr-kspace x2"]["claimed"] and not figures["bicubic x2"]["claimed"]
    # the verdict comes from the claimed setting only: ZIP itself is not better than ZIP
    assert summary["status"] == "experimental"
    assert summary["reasons"]
    assert all(r.startswith("MR mr-kspace x2: ") for r in summary["reasons"])


def test_acquisition_defaults_come_from_claimed_settings_only() -> None:
    from medsr.zoo.rule import choose_defaults

    def summary(name: str, acquisition: str, settings: dict) -> dict:
        return {"name": name, "status": "shipped", "kind": "PSNR", "acquisition": acquisition,
                "arbitrary_scale": False, "settings": settings}  # fmt: skip

    generic = summary(
        "generic-x2",
        "bicubic",
        {
            "bicubic x2": {"scale_key": "2", "scale": [2, 2], "acquisition": "bicubic",
                           "psnr_gain": 3.0},
            "mr-kspace x2": {"scale_key": "2", "scale": [2, 2], "acquisition": "mr-kspace",
                             "psnr_gain": 9.0},
        },
    )  # fmt: skip
    mr = summary(
        "mr-x2",
        "mr-kspace",
        {"mr-kspace x2": {"scale_key": "2", "scale": [2, 2], "acquisition": "mr-kspace",
                          "psnr_gain": 1.2}},
    )  # fmt: skip
    assert choose_defaults([generic, mr]) == {
        "2": "generic-x2",
        "default": "generic-x2",
        "mr-kspace:x2": "mr-x2",
    }


@pytest.mark.parametrize("name", ["srresnet-x2", "srresnet-mr-kspace-x2"])
def test_shipped_cards_regenerate_to_the_same_figures(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bundled-samples figures in a shipped card come back from a fresh evaluation."""
    from medsr.zoo.manifest import zoo_folder, zoo_models

    monkeypatch.delenv("MEDSR_ZOO_DIR", raising=False)
    if name not in zoo_models():
        pytest.skip(f"{name} is not in this build's zoo")
    stored = render.card_summary(zoo_folder(), name)
    assert stored is not None
    headline = SETTINGS[name][0]
    monkeypatch.setitem(SETTINGS, name, [headline])
    fresh = scoring.evaluate([name], "samples", ROOT / "corpus")[(name, headline)]
    figures = scoring.summarise(fresh["rows"])
    want = stored["samples"][headline.label]
    assert figures["psnr"] == pytest.approx(want["psnr"], abs=2e-3)
    assert figures["psnr_gain"] == pytest.approx(want["psnr_gain"], abs=2e-3)
    assert figures["ssim_gain"] == pytest.approx(want["ssim_gain"], abs=2e-4)
