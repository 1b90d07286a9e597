"""``churnwatch track``: files through ingestion and quarantine, tables by date, clear errors."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlglot import exp
from typer.testing import CliRunner

from churnwatch.cli import app
from churnwatch.store import OUTBOX, TRACKER_ACCOUNTS, open_store
from churnwatch.warehouse import connect

runner = CliRunner()
HEADER = "snapshot_date,account_id,is_enabled,name,csm_id,region,revenue,gmv\n"


def project(tmp_path: Path) -> Path:
    (tmp_path / "churnwatch.toml").write_text('[project]\nname = "shop"\n')
    (tmp_path / "day1.csv").write_text(
        HEADER
        + "2024-03-01,a,true,Shop A,csm1,EU,100,50\n"
        + "2024-03-01,b,true,Shop B,csm1,EU,200,80\n"
        + "2024-03-01,c,maybe,Shop C,csm2,NA,300,10\n"
    )
    (tmp_path / "day2.csv").write_text(
        HEADER
        + "2024-03-02,a,true,Shop A,csm1,EU,100,55\n"
        + "2024-03-02,b,false,Shop B,csm1,EU,200,0\n"
    )
    return tmp_path


def store_rows(folder: Path, table: sa.Table, *columns: str) -> list[tuple[object, ...]]:
    chosen = sa.select(*[table.c[c] for c in columns])
    store = open_store("sqlite:///churnwatch_ops.sqlite", base_dir=folder)
    with store, store.engine.connect() as connection:
        return sorted(tuple(r) for r in connection.execute(chosen))


def test_a_snapshot_file_is_loaded_checked_and_tracked(tmp_path: Path) -> None:
    folder = project(tmp_path)
    first = runner.invoke(app, ["track", "--snapshot", "day1.csv", "-p", str(folder)])
    assert first.exit_code == 0, first.output
    assert "2024-03-01: 2 rows; new 2, queued 0" in first.output
    assert "1 row(s) quarantined" in first.output
    assert store_rows(folder, TRACKER_ACCOUNTS, "account_id", "state") == [
        ("a", "active"),
        ("b", "active"),
    ]
    # The bad row is kept in quarantine with its file, row (third data row) and column.
    with connect(f"duckdb:///{folder / 'churnwatch.duckdb'}") as wh:
        kept = wh.query(
            exp.select("file", "row_number", "column_name").from_("quarantine")
        ).to_pylist()
    assert kept == [
        {"file": str(folder / "day1.csv"), "row_number": 3, "column_name": "is_enabled"}
    ]

    second = runner.invoke(app, ["track", "--snapshot", "day2.csv", "-p", str(folder)])
    assert second.exit_code == 0, second.output
    assert "2024-03-02: 2 rows; churned 1, queued 1" in second.output
    assert store_rows(folder, OUTBOX, "idempotency_key") == [("b||2024-03-02|snapshot|first|file",)]

    again = runner.invoke(app, ["track", "--snapshot", "day2.csv", "-p", str(folder)])
    assert again.exit_code == 0, again.output
    assert "nothing new to track" in again.output
    assert len(store_rows(folder, OUTBOX, "idempotency_key")) == 1
    repeated = runner.invoke(app, ["track", "--date", "2024-03-02", "-p", str(folder)])
    assert "2024-03-02: already tracked, nothing changed" in repeated.output


def test_an_older_date_or_an_unknown_table_is_a_clear_error(tmp_path: Path) -> None:
    folder = project(tmp_path)
    runner.invoke(app, ["track", "--snapshot", "day2.csv", "-p", str(folder)])
    older = runner.invoke(app, ["track", "--date", "2024-03-01", "-p", str(folder)])
    assert older.exit_code == 2
    assert "older than the last one tracked (2024-03-02)" in older.output
    assert "Traceback" not in older.output
    unknown = runner.invoke(app, ["track", "--snapshot", "nosuch", "-p", str(folder)])
    assert unknown.exit_code == 2
    assert "no file or warehouse table named 'nosuch'" in unknown.output
    bad_date = runner.invoke(app, ["track", "--date", "March 1", "-p", str(folder)])
    assert bad_date.exit_code == 2
    assert "expected a date such as" in bad_date.output
