"""Screenshot an HTML report with headless Chromium: ``python scripts/screenshot_report.py REPORT.html [-o PNG]``.

Checks that ``/usr/bin/chromium`` (or ``--chromium``) exists and says how to
install it when it does not (``apt-get install -y chromium``). Prints the PNG's
path, its size and its number of distinct colours (a blank page has one).
Exit code 0 on success, 2 when Chromium is missing or produced no image.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_CHROMIUM = "/usr/bin/chromium"


def find_chromium(explicit: str | None = None) -> str | None:
    """The Chromium executable: ``explicit``, /usr/bin/chromium, or one on PATH."""
    for candidate in (explicit, DEFAULT_CHROMIUM):
        if candidate and Path(candidate).is_file():
            return candidate
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(
    html_path: Path,
    png_path: Path,
    width: int = 1400,
    height: int = 6000,
    chromium: str | None = None,
    timeout_s: float = 120.0,
) -> Path:
    """Render ``html_path`` headless into ``png_path`` (a ``width x height`` window)."""
    exe = find_chromium(chromium)
    if exe is None:
        raise FileNotFoundError(
            "Chromium not found at /usr/bin/chromium or on PATH; install it with "
            "`apt-get install -y chromium`"
        )
    png_path.parent.mkdir(parents=True, exist_ok=True)
    png_path.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="medsr-chromium-") as profile:
        command = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--screenshot={png_path.resolve()}",
            f"--window-size={width},{height}",
            "--virtual-time-budget=5000",
            html_path.resolve().as_uri(),
        ]
        subprocess.run(command, check=False, capture_output=True, timeout=timeout_s)
    if not png_path.is_file() or png_path.stat().st_size == 0:
        raise RuntimeError(f"Chromium wrote no screenshot for {html_path}")
    return png_path


def distinct_colours(png_path: Path) -> int:
    """Number of distinct RGB colours in a PNG (1 for a blank page)."""
    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(png_path).convert("RGB"), dtype=np.uint32)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    return int(np.unique(packed).size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="the report.html to render")
    parser.add_argument("-o", "--output", type=Path, default=None, help="PNG path")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=6000)
    parser.add_argument("--chromium", default=None, help="Chromium executable")
    args = parser.parse_args(argv)
    if not args.report.is_file():
        print(f"screenshot: {args.report}: no such file", file=sys.stderr)
        return 2
    png = args.output or args.report.with_suffix(".png")
    try:
        screenshot(args.report, png, args.width, args.height, args.chromium)
    except (FileNotFoundError, RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"screenshot: {exc}", file=sys.stderr)
        return 2
    from PIL import Image

    size = Image.open(png).size
    print(f"{png} {size[0]}x{size[1]}, {distinct_colours(png)} distinct colours")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
