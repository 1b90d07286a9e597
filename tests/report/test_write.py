"""The report file: self-contained, every section present, absent parts explained."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from churnwatch.cli import app
from churnwatch.config import DataSettings, Settings, save_settings
from churnwatch.ingest import ingest
from churnwatch.ingest.presets import preset_sources
from churnwatch.report import write_report
from churnwatch.simulate import simulate
from churnwatch.warehouse import connect

SECTIONS = ["kpis", "cohorts", "survival", "segments", "health", "model"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated business, ingested, with no model trained."""
    folder = tmp_path_factory.mktemp("report")
    result = simulate(folder / "data", n_accounts=300, seed=5, events_per_account=20)
    settings = Settings(
        data=DataSettings(observation_end=str(result.observation_end)),
        sources=preset_sources("churnwatch_simulator", folder / "data"),
    )
    save_settings(settings, folder)
    with connect(f"duckdb:///{folder / 'churnwatch.duckdb'}") as wh:
        report = ingest(settings, wh, now=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        assert not report.errors
    return folder


def test_the_report_stands_alone_and_explains_what_is_missing(
    project: Path, tmp_path: Path
) -> None:
    from churnwatch.config import load_settings

    settings = load_settings(project)
    out = tmp_path / "deep" / "report.html"
    with connect(f"duckdb:///{project / 'churnwatch.duckdb'}") as wh:
        written = write_report(wh, settings, out, registry=None)
    assert written.path == out
    assert list(written.sections) == SECTIONS
    # Nothing is scored yet: the KPIs say so, the model section too.
    assert written.sections["kpis"].startswith("No risk scores yet")
    assert written.sections["model"].startswith("No promoted model")
    for key, status in written.sections.items():
        if key not in ("kpis", "model"):
            assert status == "ok", (key, status)
    page = out.read_text(encoding="utf-8")
    # Self-contained: no script, style sheet or image fetched from anywhere.
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=", page)
    assert not re.search(r"<img[^>]+src=[\"']http", page)
    assert "Plotly.newPlot" in page
    for key in written.sections:
        assert f'<section id="{key}">' in page
    assert not list(out.parent.glob("*.tmp"))


def test_the_report_command(project: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", "-p", str(project), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.exists()
    assert "model: No promoted model" in result.output
    bad = runner.invoke(app, ["report", "-p", str(project), "--as-of", "someday"])
    assert bad.exit_code == 2
    assert "as_of" in bad.output
