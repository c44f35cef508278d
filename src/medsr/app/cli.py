"""``medsr app``: start the Streamlit web app on a local port."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

from medsr.errors import ConfigError

APP_SCRIPT = Path(__file__).resolve().parent / "streamlit_app.py"


def streamlit_command(port: int, host: str, max_upload_mb: int) -> list[str]:
    """The ``streamlit run`` command line: headless, no usage statistics, no file watcher."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_SCRIPT),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--server.maxUploadSize",
        str(max_upload_mb),
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
        "--theme.base",
        "light",
    ]


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "app",
        help="start the web app (upload or pick a scan, super-resolve, compare, download)",
        description="Start the medsr web app (Streamlit) and print its address.",
    )
    parser.add_argument("--port", type=int, default=8501, help="port to listen on (8501)")
    parser.add_argument(
        "--host", default="localhost", help="address to listen on (localhost; 0.0.0.0 for all)"
    )
    parser.set_defaults(handler=run_app)


def run_app(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("streamlit") is None:
        raise ConfigError("the web app needs Streamlit: pip install 'medsr[app]'")
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be in 1..65535, got {args.port}")
    from medsr.app.logic import MAX_UPLOAD_BYTES

    command = streamlit_command(args.port, args.host, MAX_UPLOAD_BYTES // 2**20)
    print(f"medsr app: http://{args.host}:{args.port} (Ctrl+C stops it)", file=sys.stderr)
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 130
