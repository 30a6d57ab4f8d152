"""The page in a real browser: Playwright driving Debian's Chromium, headless, against a live studio server.

Without /usr/bin/chromium these tests skip with the reason, except in CI (``CI`` set), where they fail: .ci/run
installs it. The screenshot taken during training goes to $CONVNETPY_STUDIO_SCREENSHOT, or into the test's
temporary folder.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio_helpers import FASHION_SPECS

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
TIMEOUT = 60_000  # ms: the machine may be busy
DIGIT_SPECS = [{"type": "input", "shape": [1, 28, 28]},
               {"type": "conv", "filters": 2, "size": 4, "stride": 4, "activation": "relu"},
               {"type": "softmax", "classes": 10}]

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium for the browser tests")
    pytest.skip(f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
pytest.importorskip("uvicorn", reason="the studio extra is not installed: pip install -e '.[studio]'")
sync_api.expect.set_options(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    """A studio server on a free port, in a thread; its URL."""
    import uvicorn

    from convnetpy.studio import create_app

    app = create_app(data_dir, tmp_path_factory.mktemp("runs"), download=False, viz_interval=0.5)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    end = time.monotonic() + 60
    while not server.started and time.monotonic() < end:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    server.should_exit = True
    thread.join(60)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server)
    page.get_by_test_id("spec-info").filter(has_text="parameters").wait_for()
    yield page
    page.close()
    assert not errors, f"JavaScript errors: {errors}"


def by(page, testid: str):
    return page.get_by_test_id(testid)


def wait_for_number(page, testid: str, attribute: str, above: int) -> int:
    """Wait until ``data-<attribute>`` of the element exceeds ``above``; return it."""
    selector = f'[data-testid="{testid}"]'
    page.wait_for_function(f"Number(document.querySelector('{selector}').getAttribute('data-{attribute}')) > {above}")
    return int(page.get_attribute(selector, f"data-{attribute}"))


def start(page, dataset: str, specs: list[dict]) -> None:
    by(page, "dataset-select").select_option(dataset)
    by(page, "spec-editor").fill(json.dumps(specs))
    by(page, "epochs-input").fill("1000")
    by(page, "start").click()
    sync_api.expect(by(page, "status")).to_have_text("running")


def stop(page) -> None:
    by(page, "stop").click()
    sync_api.expect(by(page, "status")).to_have_text("stopped")


def pause(page) -> None:
    """Pause, and wait for the trainer to finish its step and publish its last numbers."""
    by(page, "pause").click()
    sync_api.expect(by(page, "status")).to_have_text("paused")
    sync_api.expect(by(page, "stats")).to_have_attribute("data-state", "paused")


def test_training_on_the_fashion_sample(page, tmp_path):
    expect = sync_api.expect
    start(page, "fashion-mnist-sample", FASHION_SPECS)

    points = wait_for_number(page, "loss-chart", "points", 1)
    wait_for_number(page, "loss-chart", "points", points)  # and gains more
    expect(by(page, "val-accuracy")).to_have_text(re.compile(r"\d+\.\d%"))
    wait_for_number(page, "accuracy-chart", "val-points", 0)
    expect(by(page, "test-card")).to_have_count(12)
    for card in by(page, "test-card").all():
        expect(card.get_by_test_id("top3-bar")).to_have_count(3)
    expect(by(page, "layer")).to_have_count(5)  # conv, relu, pool, flatten, dense
    expect(by(page, "confusion-matrix").locator("tr")).to_have_count(11)
    shot = Path(os.environ.get("CONVNETPY_STUDIO_SCREENSHOT") or tmp_path / "studio.png")
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")

    pause(page)
    seen = by(page, "examples-seen").inner_text()
    page.wait_for_timeout(700)
    expect(by(page, "examples-seen")).to_have_text(seen)
    by(page, "layer").first.locator("canvas").first.click()  # a unit of the first conv layer: its formula
    expect(by(page, "layer").first.locator(".formula")).to_contain_text("sum(patch*weights)")
    by(page, "pause").click()  # now labelled Resume
    expect(by(page, "status")).to_have_text("running")
    expect(by(page, "examples-seen")).not_to_have_text(seen)

    by(page, "lr-input").fill("0.02")
    by(page, "lr-input").dispatch_event("change")
    page.wait_for_function("document.querySelector('[data-testid=stats]').innerText.includes('lr 0.0200')")

    image = Image.fromarray(np.tile(np.linspace(0, 255, 40, dtype=np.uint8), (40, 1)))
    upload = tmp_path / "mine.png"
    image.save(upload)
    by(page, "upload").set_input_files(str(upload))
    expect(by(page, "upload-result").get_by_test_id("top3-bar")).to_have_count(3)
    stop(page)


def test_a_broken_spec_shows_its_error(page):
    expect = sync_api.expect
    by(page, "spec-editor").fill('[{"type": "input", "shape": [1, 28, 28]},\n {"type": "conv", "filters": 4}]')
    expect(by(page, "spec-error")).to_have_text("layer 1 (conv): missing key 'size'")
    by(page, "spec-editor").fill('[{"type": "input", "shape": [1, 28, 28]} {"type": "pool"}]')
    expect(by(page, "spec-error")).to_contain_text("not valid JSON: Expecting ',' delimiter at line 1, column 42")
    by(page, "start").click()
    expect(by(page, "spec-error")).to_contain_text("not valid JSON")
    expect(by(page, "status")).not_to_have_text("running")


def test_draw_a_digit_and_see_the_prediction(page):
    expect = sync_api.expect
    start(page, "folder:digits", DIGIT_SPECS)
    canvas = by(page, "draw")
    expect(canvas).to_be_visible()
    canvas.scroll_into_view_if_needed()  # the mouse draws in the viewport
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 100, box["y"] + 30)
    page.mouse.down()
    page.mouse.move(box["x"] + 100, box["y"] + 170, steps=8)
    page.mouse.up()
    expect(by(page, "upload-result").get_by_test_id("top3-bar")).to_have_count(3)
    stop(page)


def test_a_bad_upload_shows_a_message(page, tmp_path):
    start(page, "folder:digits", DIGIT_SPECS)
    bad = tmp_path / "notes.png"
    bad.write_bytes(io.BytesIO(b"these are not pixels").getvalue())
    by(page, "upload").set_input_files(str(bad))
    sync_api.expect(by(page, "upload-result")).to_contain_text("not an image")
    stop(page)


def test_a_1d_net_draws_signals_and_maps_as_line_plots(page, tmp_path):
    pytest.importorskip("mnist1d", reason="the mnist1d package generates MNIST-1D: pip install 'convnetpy[mnist1d]'")
    from convnetpy.models import mnist1d_cnn

    expect = sync_api.expect
    start(page, "mnist1d", mnist1d_cnn())
    expect(by(page, "test-card").first.locator("canvas.line")).to_have_count(1)
    expect(by(page, "layer").first.locator(".maps canvas.line")).to_have_count(25)
    signal = tmp_path / "signal.txt"
    signal.write_text(" ".join(f"{np.sin(i / 4):.3f}" for i in range(40)))
    by(page, "upload").set_input_files(str(signal))
    expect(by(page, "upload-result").get_by_test_id("top3-bar")).to_have_count(3)
    pause(page)
    by(page, "layer").first.locator(".maps canvas").first.click()
    expect(by(page, "layer").first.locator(".formula")).to_contain_text("relu(")
    stop(page)
