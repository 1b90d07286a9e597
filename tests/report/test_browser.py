"""The report in a real browser: every chart draws, no script error.

Headless Chromium (Debian's ``chromium``) driven by Playwright; CI installs
the browser (``.ci/run``). The test is skipped only when no Chromium is
installed at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from churnwatch.config import load_settings
from churnwatch.report import write_report
from churnwatch.warehouse import connect

CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_every_chart_draws_without_error(project: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    out = tmp_path / "report.html"
    with connect(f"duckdb:///{project / 'churnwatch.duckdb'}") as wh:
        write_report(wh, load_settings(project), out)
    page_errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.on(
                "console",
                lambda message: (
                    page_errors.append(message.text) if message.type == "error" else None
                ),
            )
            # Offline on purpose: a self-contained report needs no network.
            page.route(
                "**/*",
                lambda route: (
                    route.continue_() if route.request.url.startswith("file:") else route.abort()
                ),
            )
            page.goto(out.as_uri())
            page.wait_for_selector(".plotly-graph-div .main-svg")
            charts = page.locator(".plotly-graph-div").count()
            drawn = page.locator(".plotly-graph-div .main-svg").count()
            sections = page.locator("section").evaluate_all("nodes => nodes.map(n => n.id)")
            titles = page.locator(".plotly-graph-div .gtitle").all_text_contents()
        finally:
            browser.close()
    assert sections == ["kpis", "cohorts", "survival", "segments", "health", "model"]
    assert charts >= 8
    # Plotly draws two SVG layers per chart (the plot and its overlay).
    assert drawn >= charts
    assert any("Survival" in t for t in titles)
    assert not page_errors
