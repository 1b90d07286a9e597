"""Screenshots of the retention report, one PNG per section, for the docs.

Opens the report in headless Chromium (Debian's ``chromium``, driven by
Playwright; no browser is downloaded) and saves each section:

    python scripts/screenshots.py demo/reports/report.html docs/report

``churnwatch demo`` writes the report first.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="The report's HTML file.")
    parser.add_argument("out", type=Path, help="Folder for the PNG files.")
    parser.add_argument("--width", type=int, default=1280, help="Viewport width in pixels.")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": args.width, "height": 900})
        page.goto(args.report.resolve().as_uri())
        page.wait_for_selector(".plotly-graph-div .main-svg")
        # The navigation bar sticks to the top of the viewport: unstick it so
        # it does not cover the sections being captured.
        page.add_style_tag(content="nav { position: static; }")
        for index, section in enumerate(page.query_selector_all("section"), start=1):
            path = args.out / f"report-{index}-{section.get_attribute('id')}.png"
            section.screenshot(path=str(path))
            print(path)
        browser.close()


if __name__ == "__main__":
    main()
