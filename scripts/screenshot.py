"""Screenshot of a page of a running server in headless Chromium (the README's picture):

    .venv/bin/python scripts/screenshot.py 'http://127.0.0.1:3000/explore?m=...' docs/explore.png

Uses Debian's chromium (scripts/install-browser.sh) through Playwright, like the browser test.
"""

from __future__ import annotations

import argparse

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("output")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1100)
    args = parser.parse_args()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(args.url)
        page.wait_for_selector("body[data-ready='1']", timeout=15_000)
        if "/explore/model" not in args.url:
            page.wait_for_selector("body[data-runs]", timeout=15_000)
        page.screenshot(path=args.output)
        browser.close()


if __name__ == "__main__":
    main()
