"""End to end in a real headless browser: Debian's Chromium driven by Playwright's Python API.

`playwright install` cannot download a browser here, so the test uses /usr/bin/chromium and
installs it through the Makefile (`make browser-deps`: apt-get install chromium) when missing;
it skips, saying why, only when that is impossible.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser


def _ensure_chromium() -> None:
    if CHROMIUM.exists():
        return
    makefile = ROOT / "Makefile"
    if makefile.is_file() and "browser-deps:" in makefile.read_text() and shutil.which("make"):
        subprocess.run(["make", "-C", str(ROOT), "browser-deps"], capture_output=True, timeout=900)
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium and `make browser-deps` could not install it "
                    "(needs root and a reachable Debian apt mirror)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import uvicorn

    from srgan.inference import Upscaler
    from srgan.models import build_generator, save_generator
    from srgan.web.app import WebConfig, create_app

    args = {"scale": 4, "num_feat": 4, "num_block": 1}
    torch.manual_seed(0)
    weights = save_generator(build_generator("srresnet", **args), tmp_path_factory.mktemp("w") / "tiny.safetensors",
                             "srresnet", args)
    config = WebConfig(models=(str(weights),), max_upload_bytes=200_000, max_input_pixels=128 * 128)
    app = create_app(config, upscalers={"tiny": Upscaler(str(weights), device="cpu")})
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def page(server):
    _ensure_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        tab = browser.new_page()
        # Offline: any request leaving this server fails the test.
        outside: list[str] = []
        tab.on("request", lambda request: None if request.url.startswith(server) or request.url.startswith("blob:")
               else outside.append(request.url))
        tab.goto(server)
        yield tab
        browser.close()
        assert outside == [], f"the page requested outside assets: {outside}"


def test_upload_compare_download(page, tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "photo.png")
    page.wait_for_function("document.querySelector('#model').options.length > 0")
    assert page.input_value("#scale") == "4"  # the model's own scale is preselected
    page.set_input_files("#file", str(tmp_path / "photo.png"))
    page.select_option("#scale", "2")
    page.click("#go")
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    size = page.evaluate("[document.querySelector('#after').naturalWidth, document.querySelector('#after').naturalHeight]")
    assert size == [80, 48]
    assert page.inner_text("#info").startswith("40x24 → 80x48")
    assert page.get_attribute("#download", "download") == "photo_x2.png"
    # the comparison slider moves the boundary between before and after
    page.fill("#slider", "25")
    page.dispatch_event("#slider", "input")
    assert page.evaluate("document.querySelector('#before-clip').style.width") == "25%"
    with page.expect_download() as download_info:
        page.click("#download")
    saved = tmp_path / "downloaded.png"
    download_info.value.save_as(saved)
    assert Image.open(saved).size == (80, 48)


def test_too_large_image_shows_a_clear_message(page, tmp_path):
    Image.new("RGB", (200, 200), "white").save(tmp_path / "big.png")
    page.set_input_files("#file", str(tmp_path / "big.png"))
    page.click("#go")
    page.wait_for_selector("#status.error", timeout=30_000)
    assert "over the limit" in page.inner_text("#status")
