"""A headless-Chromium screenshot of a demo report shows its images (skipped without Chromium)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from medsr.cli import main
from medsr.evaluate import cli as eval_cli

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshot_report.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("screenshot_report", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_screenshot_of_demo_report_shows_every_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shot = _script()
    if shot.find_chromium() is None:
        pytest.skip("Chromium not installed (/usr/bin/chromium): apt-get install -y chromium")
    monkeypatch.setattr(eval_cli, "DEMO_CROP", 96)
    monkeypatch.setattr(eval_cli, "DEFAULT_PLOT_SCALES", "2,3,4")
    assert main(["demo", "-o", str(tmp_path)]) == 0
    html = (tmp_path / "report.html").read_text()
    sources = re.findall(r'<img[^>]*src="([^"]*)"', html)
    assert len(sources) == html.count("<img") > 0
    assert all(re.fullmatch(r"data:image/png;base64,[A-Za-z0-9+/=]{40,}", s) for s in sources)

    png = shot.screenshot(tmp_path / "report.html", tmp_path / "shot.png", 1400, 5000)
    rgb = np.asarray(Image.open(png).convert("RGB")).astype(np.int32)
    assert rgb.shape == (5000, 1400, 3)
    assert shot.distinct_colours(png) > 500  # a blank page has a handful of colours
    # the error maps' colour map (strongly coloured, unlike the grey page and grey images)
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    assert (chroma > 60).sum() > 20_000
    # grey medical images: many mid-grey pixels that are neither page background nor text
    grey = (chroma < 6) & (rgb[..., 0] > 30) & (rgb[..., 0] < 220)
    assert grey.sum() > 100_000


def test_script_reports_missing_chromium(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shot = _script()
    monkeypatch.setattr(shot, "find_chromium", lambda explicit=None: None)
    report = tmp_path / "r.html"
    report.write_text("<html><body>x</body></html>")
    assert shot.main([str(report)]) == 2
    assert "apt-get install -y chromium" in capsys.readouterr().err
