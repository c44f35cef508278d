"""``medsr app``: the streamlit command line it runs, and its one-line errors."""

from __future__ import annotations

import importlib.util
import subprocess

import pytest

from medsr.app import cli as app_cli
from medsr.cli import main


def test_app_runs_streamlit_headless_on_the_port(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "call", lambda command: calls.append(command) or 0)
    assert main(["app", "--port", "8765", "--host", "127.0.0.1"]) == 0
    (command,) = calls
    assert command[1:4] == ["-m", "streamlit", "run"]
    assert command[4] == str(app_cli.APP_SCRIPT) and app_cli.APP_SCRIPT.is_file()
    options = dict(zip(command[5::2], command[6::2]))
    assert options["--server.port"] == "8765"
    assert options["--server.address"] == "127.0.0.1"
    assert options["--server.headless"] == "true"
    assert options["--browser.gatherUsageStats"] == "false"
    assert options["--server.maxUploadSize"] == "200"


def test_app_errors_are_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["app", "--port", "70000"]) == 2
    assert capsys.readouterr().err.strip() == "medsr: error: --port must be in 1..65535, got 70000"
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "streamlit" else real_find_spec(name, *a),
    )
    assert main(["app"]) == 2
    assert "pip install 'medsr[app]'" in capsys.readouterr().err
