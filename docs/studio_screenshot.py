"""Make the README's picture of the studio: LeNet-5 training on the bundled Fashion-MNIST sample.

    python docs/studio_screenshot.py                  # 60 s of training -> docs/images/studio.png
    python docs/studio_screenshot.py --seconds 20 --out /tmp/studio.png

Starts a studio server in this process, drives Debian's Chromium with Playwright (``/usr/bin/chromium``), starts
the run from the page, lowers the learning rate half-way (marked on the loss chart), clicks one unit of the
first conv layer (its formula appears), and saves the whole page while training goes on.
Only Fashion-MNIST (MIT-licensed) appears in the picture.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from pathlib import Path

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "images" / "studio.png")
    args = parser.parse_args()

    import uvicorn
    from playwright.sync_api import expect, sync_playwright

    from convnetpy.studio import create_app

    with tempfile.TemporaryDirectory() as runs:
        app = create_app(None, runs, download=False)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(120_000)
                page.goto(f"http://127.0.0.1:{sock.getsockname()[1]}/")
                page.get_by_test_id("spec-info").filter(has_text="parameters").wait_for()
                page.get_by_test_id("dataset-select").select_option("fashion-mnist-sample")
                page.get_by_test_id("model-select").select_option("lenet5")
                page.get_by_test_id("epochs-input").fill("100")
                page.get_by_test_id("start").click()
                page.wait_for_timeout(args.seconds * 1000 / 2)
                page.get_by_test_id("lr-input").fill("0.005")  # a live change, marked on the loss chart
                page.get_by_test_id("lr-input").dispatch_event("change")
                page.wait_for_timeout(args.seconds * 1000 / 2)
                page.get_by_test_id("layer").first.locator(".maps canvas").nth(2).click(position={"x": 30, "y": 24})
                expect(page.get_by_test_id("layer").first.locator(".formula")).to_contain_text("relu")
                page.wait_for_timeout(500)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out), full_page=True)
                browser.close()
        finally:
            server.should_exit = True
            thread.join(60)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
