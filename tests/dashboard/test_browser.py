"""The dashboard in a real browser: ``churnwatch dashboard`` served, Debian's Chromium driving.

Opens every page through the sidebar menu (one browser session, as a person
clicks through), checks its key elements render and no error element
appears, and that a sidebar filter set on one page holds on the next.

The read model is that of the project named by ``CHURNWATCH_BROWSER_PROJECT``
(``scripts/dashboard_screenshots.py`` sets it to a demo project), else the
sample project of ``conftest.py``: the test sees the same data on every machine.
With ``CHURNWATCH_SCREENSHOTS=1`` a full-page screenshot of each page is written
to ``docs/dashboard/<page>.png``::

    CHURNWATCH_SCREENSHOTS=1 pytest -m slow tests/dashboard/test_browser.py
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "docs" / "dashboard"
#: A project folder to open instead of the demo's (scripts/dashboard_screenshots.py sets it).
PROJECT_ENV = "CHURNWATCH_BROWSER_PROJECT"

#: (file stem, menu title, CSS selector of a key element, how many at least).
PAGES = (
    ("overview", "Overview", '[data-testid="stMetric"]', 5),
    ("at_risk", "At-risk accounts", '[data-testid="stDataFrame"]', 1),
    ("account", "Account", '[data-testid="stMetric"]', 6),
    ("retention", "Retention", ".js-plotly-plot", 2),
    ("segments", "Segments", ".js-plotly-plot", 3),
    ("model", "Model", ".js-plotly-plot", 5),
    ("interventions", "Interventions", '[data-testid="stMetric"]', 6),
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project named by the environment, else a fresh sample project."""
    chosen = os.environ.get(PROJECT_ENV)
    if chosen:
        return Path(chosen).resolve()
    # Loaded by path: test folders are not packages, and every one has a conftest.
    spec = importlib.util.spec_from_file_location("dashboard_sample", HERE / "conftest.py")
    assert spec is not None
    assert spec.loader is not None
    sample = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sample)
    built: Path = sample.build_sample_project(tmp_path_factory.mktemp("browser") / "project")
    return built


@pytest.fixture(scope="module")
def server(project: Path) -> Iterator[str]:
    """``churnwatch dashboard`` on a free port; its URL."""
    port = _free_port()
    churnwatch = shutil.which("churnwatch", path=str(Path(sys.executable).parent))
    assert churnwatch is not None
    process = subprocess.Popen(
        [churnwatch, "dashboard", str(project), "--port", str(port), "--headless"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: streamlit runs as a child
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                message = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(f"the dashboard did not start: {message}")
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
        if process.stderr:
            process.stderr.close()


def _settled(page: object) -> None:
    """Wait until Streamlit is done running the script and charts are drawn."""
    page.wait_for_function(  # type: ignore[attr-defined]
        """() => !document.querySelector('[data-testid="stStatusWidget"] button')
                 && document.querySelectorAll('[data-testid="stSkeleton"]').length === 0""",
        timeout=30_000,
    )


def _screenshot(page: object, name: str) -> None:
    height = page.evaluate(  # type: ignore[attr-defined]
        """() => Math.max(...[...document.querySelectorAll(
                 '[data-testid="stMain"], [data-testid="stMainBlockContainer"]')]
                 .map(e => e.scrollHeight), 900)"""
    )
    page.set_viewport_size({"width": 1440, "height": int(height) + 40})  # type: ignore[attr-defined]
    page.wait_for_timeout(1_000)  # type: ignore[attr-defined]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]
    page.set_viewport_size({"width": 1440, "height": 900})  # type: ignore[attr-defined]


def test_every_page_renders_in_chromium(server: str, project: Path) -> None:
    from playwright.sync_api import sync_playwright

    sample = not (project / "data").exists()  # the sample project has no raw data
    timings: dict[str, float] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            started = time.monotonic()
            page.goto(server)
            page.get_by_role("heading", name="Overview").wait_for(timeout=60_000)
            _settled(page)
            timings["first visit"] = time.monotonic() - started
            page.wait_for_timeout(1_200)
            for stem, title, selector, least in PAGES:
                started = time.monotonic()
                page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
                page.get_by_role("heading", name=title, exact=True).first.wait_for()
                if sample:
                    # Timed until the page's key elements are all there.
                    page.wait_for_function(
                        "([css, least]) => document.querySelectorAll(css).length >= least",
                        arg=[selector, least],
                        timeout=30_000,
                    )
                _settled(page)
                timings[stem] = time.monotonic() - started
                page.wait_for_timeout(1_200)  # for charts to finish drawing
                errors = page.locator('[data-testid="stException"]')
                assert errors.count() == 0, f"{title}: {errors.first.inner_text()}"
                found = page.locator(selector).count()
                if sample:
                    # Every table exists in the sample: every element must be there.
                    assert found >= least, f"{title}: {found} x {selector}, expected {least}"
                else:
                    # The demo may lack a table: then its page says how to compute it.
                    hints = page.locator('[data-testid="stAlertContentInfo"]').count()
                    assert found or hints, f"{title}: neither {selector} nor an info box"
                if os.environ.get("CHURNWATCH_SCREENSHOTS") == "1":
                    _screenshot(page, stem)
            # A filter set in the sidebar holds on the next page of the same session.
            region = page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]').nth(2)
            region.click()
            page.get_by_role("option").first.click()
            page.keyboard.press("Escape")
            _settled(page)
            page.wait_for_timeout(1_200)
            nav = page.locator('[data-testid="stSidebarNav"]')
            nav.get_by_text("At-risk accounts", exact=True).click()
            page.get_by_role("heading", name="At-risk accounts").wait_for()
            _settled(page)
            page.get_by_text("Filtered — Region").wait_for(timeout=15_000)
        finally:
            browser.close()
    print("page render times (s):", {k: round(v, 2) for k, v in timings.items()})
