"""The ``churnwatch track`` command: a day's adoption snapshot into the tracker.

A thin layer over :mod:`churnwatch.tracker`; registered on the application
by :mod:`churnwatch.cli`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import typer

from churnwatch.cli import ProjectOption, WarehouseOption, _open, _print_report, _user_errors, app
from churnwatch.cli import console as out_console
from churnwatch.config import Settings, SourceSpec
from churnwatch.errors import ChurnwatchError
from churnwatch.ingest import ingest
from churnwatch.schema import TABLES
from churnwatch.store import open_store
from churnwatch.tracker import (
    TrackResult,
    last_tracked_date,
    latest_risk_scores,
    read_snapshot,
    snapshot_dates,
    track_risk,
    track_snapshot,
)

__all__ = ["track"]

_CANONICAL = "adoption_snapshots"


def _day(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ChurnwatchError(f"--date {value!r}: expected a date such as 2024-06-30") from None


def _file_columns(path: Path) -> list[str]:
    try:
        if path.suffix.lower() == ".parquet":
            return list(pq.read_schema(path).names)
        with pacsv.open_csv(path) as reader:
            return list(reader.schema.names)
    except (OSError, ValueError) as exc:
        raise ChurnwatchError(f"cannot read the snapshot file {path}: {exc}") from None


def _snapshot_source(settings: Settings, path: Path) -> SourceSpec:
    """The project's adoption_snapshots mapping for this file, or one by column names."""
    declared = [s for s in settings.sources if s.table == _CANONICAL and s.path is not None]
    if declared:
        return declared[0].model_copy(update={"name": f"snapshot {path.name}", "path": str(path)})
    present = set(_file_columns(path))
    columns = {c: c for c in TABLES[_CANONICAL].column_names if c in present}
    try:
        return SourceSpec.model_validate(
            {
                "name": f"snapshot {path.name}",
                "table": _CANONICAL,
                "path": str(path),
                "columns": columns,
            }
        )
    except ValueError as exc:
        raise ChurnwatchError(
            f"the snapshot file {path} does not have the columns of adoption_snapshots "
            f"(snapshot_date, account_id, is_enabled, ...) and the project maps none: {exc}"
        ) from None


def _print(result: TrackResult) -> None:
    if result.already_tracked:
        out_console.print(f"{result.snapshot_date}: already tracked, nothing changed")
        return
    counts = ", ".join(f"{k} {v:,}" for k, v in result.counts.items())
    out_console.print(f"{result.snapshot_date}: {result.rows:,} rows; {counts}")


@app.command()
@_user_errors
def track(
    snapshot: Annotated[
        str,
        typer.Option(
            "--snapshot",
            help="A snapshot file (.parquet or .csv; bad rows are quarantined) or a warehouse "
            "table shaped like adoption_snapshots.",
        ),
    ] = _CANONICAL,
    date: Annotated[
        str | None,
        typer.Option(
            help="Track only this date (YYYY-MM-DD); default: every date not yet tracked."
        ),
    ] = None,
    risk: Annotated[
        bool, typer.Option(help="Also raise risk alerts from the latest risk_scores.")
    ] = True,
    project: ProjectOption = Path("."),
    warehouse: WarehouseOption = None,
) -> None:
    """Compare a day's adoption snapshot with the last state: churns, wins, follow-ups."""
    day = _day(date)
    with _open(project, warehouse) as (settings, wh):
        path = Path(snapshot) if Path(snapshot).is_absolute() else project / snapshot
        table = snapshot
        if path.is_file():
            source = _snapshot_source(settings, path)
            report = ingest(settings.model_copy(update={"sources": [source]}), wh, base_dir=project)
            _print_report(report)
            if report.errors:
                raise typer.Exit(1)
            table = _CANONICAL
        with open_store(settings.store.url, base_dir=project) as store:
            last = last_tracked_date(store)
            dates = [day] if day is not None else snapshot_dates(wh, table, after=last)
            if not dates:
                shown = last.isoformat() if last else "none"
                out_console.print(f"nothing new to track in {table} (last tracked: {shown})")
            for when in dates:
                _print(
                    track_snapshot(
                        store, read_snapshot(wh, table, when), date=when, settings=settings
                    )
                )
            if risk and dates:
                target = settings.tracker.risk_target or f"churn_{settings.churn.horizon_days}d"
                current, previous = latest_risk_scores(wh, target, as_of=dates[-1])
                if current is not None:
                    alerts = track_risk(
                        store, current, previous=previous, date=dates[-1], settings=settings
                    )
                    out_console.print(
                        f"risk alerts ({target}): {alerts.counts['risk_alert']:,} opened, "
                        f"{alerts.counts['queued']:,} notification(s) queued"
                    )
