"""The retention commands: churnwatch segments and churnwatch health."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pandas as pd
import pytest
import tomli_w
from typer.testing import CliRunner, Result

from churnwatch.cli import app
from churnwatch.config import DataSettings, ProjectSettings, Settings, save_settings
from churnwatch.ingest.presets import preset_sources
from churnwatch.simulate import simulate

runner = CliRunner()


def invoke(*arguments: str) -> Result:
    """Run the CLI; a crash (anything but a clean exit) fails the test with its output."""
    result = runner.invoke(app, list(arguments))
    assert "Traceback" not in result.output, result.output
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder with a simulated business ingested into its DuckDB warehouse."""
    folder = tmp_path_factory.mktemp("cli_segments")
    result = simulate(folder / "data", n_accounts=400, seed=4, events_per_account=30)
    settings = Settings(
        project=ProjectSettings(name="cli-test"),
        data=DataSettings(observation_end=str(result.observation_end)),
        sources=preset_sources("churnwatch_simulator", Path("data"), base_dir=folder),
    )
    save_settings(settings, folder)
    loaded = invoke("ingest", "-p", str(folder))
    assert loaded.exit_code == 0, loaded.output
    return folder


def test_segments_prints_named_segments_and_writes_assignments(
    project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "segments.csv"
    result = invoke("segments", "-p", str(project), "--as-of", "2024-11-30", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "segments (lowest BIC)" in result.output
    assert "churn rate: share of the segment's accounts" in result.output
    written = pd.read_csv(out)
    assert list(written.columns[:3]) == ["account_id", "cutoff", "segment_id"]
    for name in written["segment"].unique():
        assert name.split()[0] in result.output


def test_health_prints_tiers_and_backtest(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "health.parquet"
    result = invoke("health", "-p", str(project), "--backtest", "--out", str(out))
    assert result.exit_code == 0, result.output
    for text in ("health components", "Thriving", "Critical", "backtest against churn_30d"):
        assert text in result.output
    assert "no churn_30d scores in risk_scores" in result.output
    written = pd.read_parquet(out)
    assert written["health_score"].between(0, 100).all()


def test_health_with_a_bad_component_names_the_key(project: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    data = tomllib.loads((project / "churnwatch.toml").read_text(encoding="utf-8"))
    data["health"] = {"components": [{"metric": "events_30d", "direction": "up"}]}
    (broken / "churnwatch.toml").write_text(tomli_w.dumps(data), encoding="utf-8")
    result = invoke("health", "-p", str(broken))
    assert result.exit_code == 2
    assert "health.components[0].direction" in result.output


def test_a_bad_date_is_a_user_error(project: Path) -> None:
    result = invoke("segments", "-p", str(project), "--as-of", "30/11/2024")
    assert result.exit_code == 2
    assert "expected a date such as" in result.output
