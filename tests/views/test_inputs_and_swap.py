"""Absent inputs become reasons, not errors; readers keep their generation during a refresh."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pyarrow as pa
import pytest
from tests.views.conftest import Business
from typer.testing import CliRunner

from churnwatch.cli import app
from churnwatch.config import Settings, load_settings
from churnwatch.daily import run_daily
from churnwatch.notify import FileChannel
from churnwatch.store import open_store
from churnwatch.tracker import snapshot_dates
from churnwatch.views import TABLES, ReadModel, current_generation, refresh_views
from churnwatch.warehouse import connect


def test_an_empty_warehouse_gives_an_empty_list_and_reasons(tmp_path: Path) -> None:
    """No data, no model, no store: accounts is empty and every other table says why."""
    with connect("duckdb:///:memory:") as wh:
        wh.ensure_schema()
        result = refresh_views(Settings(), wh, tmp_path / "views")
    generation = result.generation
    assert generation.tables == ["accounts"]
    assert generation.read("accounts").num_rows == 0
    missing = generation.meta["missing"]
    assert set(missing) >= set(TABLES) - {"accounts"}
    assert "churnwatch train" in missing["model_metrics"]
    assert "churnwatch score" in missing["risk_history"] or "train" in missing["risk_history"]
    assert "store" in missing["accounts.tracker_state"]
    assert generation.meta["kpis"]["revenue_recovered"] is None
    assert generation.meta["scored_at"] is None


def test_no_model_and_no_store(business: Business, copy_of: Path, tmp_path: Path) -> None:
    """Without a registry or a store, the model tables and tracker states are said missing."""
    with connect(f"duckdb:///{copy_of / 'churnwatch.duckdb'}") as wh:
        result = refresh_views(business.settings, wh, tmp_path / "views")
    tables = set(result.generation.tables)
    assert {"accounts", "cohort_retention", "survival_curves", "risk_history"} <= tables
    for name in ("model_metrics", "model_curves", "importance", "pdp", "drift", "features"):
        assert name not in tables
        assert "promoted" in result.missing[name]
    accounts = result.generation.read("accounts").to_pandas()
    assert accounts["tracker_state"].isna().all()
    assert accounts["churn_risk"].notna().any()  # the scores are in the warehouse


def test_a_reader_keeps_its_generation_while_a_new_one_is_written(
    business: Business, copy_of: Path
) -> None:
    """A reader that resolved a generation reads it whole through a refresh; then moves on."""
    root = copy_of / "views"
    with connect(f"duckdb:///{copy_of / 'churnwatch.duckdb'}") as wh:
        first = refresh_views(business.settings, wh, root).generation
        reader = ReadModel(root, recheck_seconds=0.0)
        assert reader.generation.path == first.path
        expected = first.read("accounts")
        seen: list[int] = []
        failures: list[BaseException] = []
        stop = threading.Event()

        def read_first() -> None:
            # Keeps reading the generation it started on, as a dashboard session does.
            while not stop.is_set():
                try:
                    seen.append(first.read("accounts").num_rows)
                except BaseException as exc:
                    failures.append(exc)
                    return

        thread = threading.Thread(target=read_first)
        thread.start()
        try:
            second = refresh_views(business.settings, wh, root).generation
        finally:
            stop.set()
            thread.join()
    assert not failures
    assert seen
    assert set(seen) == {expected.num_rows}
    assert second.path != first.path
    assert first.read("accounts").equals(expected)  # still there for late readers
    assert current_generation(root).path == second.path
    assert reader.generation.path == second.path


def test_the_cli_refreshes_a_project(copy_of: Path) -> None:
    """'churnwatch views refresh DIR' writes the read model and lists its tables."""
    result = CliRunner().invoke(app, ["views", "refresh", str(copy_of)])
    assert result.exit_code == 0, result.output
    assert "accounts" in result.output
    assert "wrote" in result.output
    generation = current_generation(copy_of / "views")
    assert generation.read("accounts").num_rows == 300
    assert generation.meta["store_url"] == f"sqlite:///{(copy_of / 'ops.sqlite').resolve()}"


def test_the_cli_says_what_is_wrong(tmp_path: Path) -> None:
    """A folder without a project file is one readable error, exit code 2."""
    result = CliRunner().invoke(app, ["views", "refresh", str(tmp_path)])
    assert result.exit_code == 2
    assert "error" in result.output.lower()
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_the_daily_run_refreshes_last(copy_of: Path, tmp_path: Path) -> None:
    """run_daily with a views folder leaves a generation describing the run's scores."""
    settings = load_settings(copy_of)
    root = copy_of / "views"
    with (
        connect(f"duckdb:///{copy_of / 'churnwatch.duckdb'}") as wh,
        open_store(f"sqlite:///{copy_of / 'ops.sqlite'}") as store,
    ):
        day = snapshot_dates(wh, "adoption_snapshots")[-1] + dt.timedelta(days=1)
        steps: list[str] = []
        run_daily(
            store,
            date=day,
            settings=settings,
            channels={"file": FileChannel(tmp_path / "out.jsonl")},
            snapshot=pa.table(
                {"account_id": pa.array([], pa.string()), "is_enabled": pa.array([], pa.bool_())}
            ),
            warehouse=wh,
            base_dir=copy_of,
            views_root=root,
            on_step=steps.append,
        )
    assert steps[-1] == "views"
    generation = current_generation(root)
    assert generation.read("accounts").num_rows == 300
    assert generation.meta["kpis"]["revenue_recovered"] is not None
