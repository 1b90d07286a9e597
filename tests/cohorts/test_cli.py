"""The cohorts command on the tiny business of conftest.py."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from churnwatch.cli import app
from churnwatch.config import DataSettings, Settings, save_settings
from churnwatch.warehouse import connect

from .conftest import END, load

runner = CliRunner()


def invoke(*arguments: str) -> Result:
    result = runner.invoke(app, list(arguments))
    assert "Traceback" not in result.output, result.output
    return result


@pytest.fixture
def project(tmp_path: Path) -> Path:
    save_settings(Settings(data=DataSettings(observation_end=END)), tmp_path)
    with connect(f"duckdb:///{tmp_path / 'churnwatch.duckdb'}") as wh:
        load(wh)
    return tmp_path


def test_logo_retention_printed_and_written(project: Path) -> None:
    out = project / "retention.csv"
    result = invoke("cohorts", "-p", str(project), "--periods", "4", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "2024-01" in result.output
    assert "50%" in result.output
    frame = pd.read_csv(out)
    assert frame.columns.tolist() == [
        "cohort", "cohort_size", "period_number", "active_accounts", "retention"
    ]  # fmt: skip
    assert len(frame) == 8  # the known cells


def test_revenue_and_movements_write_one_file_each(project: Path) -> None:
    out = project / "cohorts.parquet"
    result = invoke("cohorts", "-p", str(project), "--revenue", "--movements", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "GRR and NRR" in result.output
    assert "MRR movements" in result.output
    movements = pd.read_parquet(project / "cohorts_movements.parquet")
    assert movements["net_change"].tolist() == [150.0, 80.0, -60.0, 20.5]
    revenue = pd.read_parquet(project / "cohorts_revenue.parquet")
    assert revenue["mrr"].iloc[0] == 150.0
    assert not out.exists()


def test_user_mistakes_are_one_line(project: Path) -> None:
    result = invoke("cohorts", "-p", str(project), "--observation-end", "2023-01-01")
    assert result.exit_code == 2
    assert "no account has a cohort" in result.output
    result = invoke("cohorts", "-p", str(project), "--out", str(project / "x.json"))
    assert result.exit_code == 2
    assert ".parquet or .csv" in result.output
