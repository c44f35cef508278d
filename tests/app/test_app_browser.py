"""The running app in a real browser: headless Chromium uploads a sample DICOM and runs x2.

Needs Debian's chromium at /usr/bin/chromium and the Playwright package (both set up by
``dev.sh``); the test is skipped, saying which is missing, when they are not there.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from medsr.app.cli import streamlit_command
from medsr.samples import get_sample

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT_DIR = Path(os.environ.get("MEDSR_SCREENSHOT_DIR", "/tmp/medsr-app-screenshots"))

pytest.importorskip("streamlit", reason="the web app needs streamlit (pip install 'medsr[app]')")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser test needs the playwright package"
)
if not CHROMIUM.exists():
    pytest.skip(f"the browser test needs Debian's chromium at {CHROMIUM}", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    """The app served by ``streamlit run`` on a free localhost port; always stopped after."""
    port = free_port()
    log = (tmp_path / "streamlit.log").open("wb")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen(
        streamlit_command(port, "127.0.0.1", 200), stdout=log, stderr=subprocess.STDOUT, env=env
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(
                        "streamlit did not start:\n" + (tmp_path / "streamlit.log").read_text()
                    )
                time.sleep(0.25)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()


def wait_until_idle(page: object) -> None:
    """Wait until the script run has finished, so no stale element is faded out."""
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => { const app = document.querySelector('[data-testid=stApp]');"
        " return app !== null && app.getAttribute('data-test-script-state') === 'notRunning'; }"
    )


@contextlib.contextmanager
def uploaded_and_run(url: str, upload: Path, timeout_ms: int) -> Iterator[Any]:
    """A headless Chromium page at ``url`` that uploaded a file and pressed Super-resolve."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(timeout_ms)
            page.goto(url)
            page.locator('input[type="file"]').set_input_files(str(upload))
            page.get_by_text(f"{upload.name}", exact=False).first.wait_for()
            page.get_by_role("button", name="Super-resolve").click()
            yield page
        finally:
            browser.close()


def test_upload_dicom_and_super_resolve_x2(app_url: str, tmp_path: Path) -> None:
    sample = get_sample("ct-head-693")
    url = f"{app_url}/?source=upload&model=bicubic&scale=2"
    with uploaded_and_run(url, sample.path, 30_000) as page:
        caption = "Super-resolved · bicubic ×2 · 1024×1024"
        figure = page.locator('[data-testid="stImage"]', has_text=caption)
        figure.wait_for()
        image = figure.locator("img")
        image.wait_for()
        page.get_by_role("button", name="Download the result").wait_for()
        wait_until_idle(page)
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
        )
        natural = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        box = image.bounding_box()
        assert page.locator('[data-testid="stException"]').count() == 0
        page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
        shot = image.screenshot()

    assert natural == [1024, 1024]
    assert box is not None and box["width"] > 300 and box["height"] > 300
    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("L"))
    # a head CT in the soft-tissue window: black air, grey brain, white skull
    assert len(np.unique(pixels)) > 64
    assert pixels.std() > 30
    assert (pixels < 20).mean() > 0.2 and (pixels > 235).mean() > 0.01
    page_shot = np.asarray(Image.open(tmp_path / "app.png").convert("RGB"))
    assert page_shot.shape[0] >= 1000 and len(np.unique(page_shot.reshape(-1, 3), axis=0)) > 256
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copy(tmp_path / "app.png", SCREENSHOT_DIR / "upload_x2.png")


def test_default_model_keeps_the_brain_hounsfield_units(app_url: str, tmp_path: Path) -> None:
    """The app opens with its default model selected; Super-resolve on the bundled head CT
    must keep the mean HU of a brain region within 5 HU of the input's (no washed-out
    tissue), checked on the DICOM file the app offers for download."""
    from medsr.io import read

    sample = get_sample("ct-head-693")
    with uploaded_and_run(f"{app_url}/?source=upload", sample.path, 120_000) as page:
        button = page.get_by_role("button", name="Download the result")
        button.wait_for()
        wait_until_idle(page)
        assert page.locator('[data-testid="stException"]').count() == 0
        with page.expect_download() as info:
            button.click()
        target = tmp_path / info.value.suggested_filename
        info.value.save_as(str(target))

    import re

    import pydicom

    from medsr.app import logic

    hr = read(sample.path)
    sr = read(target)
    # the app runs CPU models on a central crop; the derived file says which
    description = str(pydicom.dcmread(target).DerivationDescription)
    crop = re.search(r"cropped rows (\d+):(\d+), columns (\d+):(\d+)", description)
    top, _, left, right = (int(v) for v in crop.groups()) if crop else (0, 512, 0, 512)
    factor = sr.pixels.shape[-1] / (right - left)
    assert factor > 1 and logic.default_model() in description  # the zoo's default model
    # brain parenchyma of this slice: rows 200-320, columns 180-330 (tissue 20-50 HU)
    region = hr.pixels[200:320, 180:330]
    assert 0 < float(region.mean()) < 80
    r0, r1 = (round((v - top) * factor) for v in (200, 320))
    c0, c1 = (round((v - left) * factor) for v in (180, 330))
    assert abs(float(sr.pixels[r0:r1, c0:c1].mean()) - float(region.mean())) < 5.0
