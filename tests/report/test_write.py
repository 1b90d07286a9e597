"""The report file: self-contained, every section present, absent parts explained."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from churnwatch.cli import app
from churnwatch.report import write_report
from churnwatch.warehouse import connect

SECTIONS = ["kpis", "cohorts", "survival", "segments", "health", "model"]


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
