"""The commands of acting on churn: ``outcome``, ``kpis`` and ``daily``.

A thin layer over :mod:`churnwatch.outcomes`, :mod:`churnwatch.daily` and
:mod:`churnwatch.api`; registered on the application by :mod:`churnwatch.cli`.
Secrets (channel tokens, the Slack signing secret) are read from the
environment here, at the edge.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import typer
from rich.markup import escape
from rich.table import Table as RichTable

from churnwatch._cli_notify import StoreOption, _channels, _store
from churnwatch.cli import ProjectOption, WarehouseOption, _open, _user_errors, app, console, errors
from churnwatch.config import load_settings
from churnwatch.errors import OutcomeError
from churnwatch.outcomes import (
    OUTCOME_KINDS,
    Kpis,
    compute_kpis,
    import_crm_activity,
    record_outcome,
)
from churnwatch.warehouse import Warehouse

__all__ = ["outcome_app"]

outcome_app = typer.Typer(
    help="Record CSM answers about at-risk accounts; import CRM activity.",
    no_args_is_help=True,
)
app.add_typer(outcome_app, name="outcome")


@outcome_app.command("record")
@_user_errors
def record_command(
    outcome: Annotated[str, typer.Argument(help=f"One of {', '.join(OUTCOME_KINDS)}.")],
    episode: Annotated[
        str | None, typer.Option(help="The episode id the notification carries.")
    ] = None,
    account: Annotated[
        str | None, typer.Option(help="Or the account whose open episode is answered.")
    ] = None,
    product: Annotated[
        str | None, typer.Option(help="The product, when the account has several open.")
    ] = None,
    notes: Annotated[str | None, typer.Option(help="Free text.")] = None,
    useful: Annotated[
        bool | None, typer.Option("--useful/--not-useful", help="Was the notification useful?")
    ] = None,
    csm: Annotated[str | None, typer.Option(help="Who answers (default: the CSM).")] = None,
    project: ProjectOption = Path("."),
    store_url: StoreOption = None,
) -> None:
    """Record a CSM's answer (won, lost, not_useful); it stops the follow-ups."""
    settings = load_settings(project)
    with _store(project, settings, store_url) as store:
        stored = record_outcome(
            store,
            outcome,
            episode_id=episode,
            account_id=account,
            product=product,
            csm_id=csm,
            useful=useful,
            notes=notes,
            source="cli",
        )
    console.print(
        f"recorded {stored.outcome} for episode {escape(stored.episode_id)} "
        f"(account {escape(stored.account_id)}); its follow-ups stop at the next tracked day.",
        soft_wrap=True,
    )


@outcome_app.command("import-crm")
@_user_errors
def import_crm_command(
    file: Annotated[Path, typer.Argument(help="CSV with account, csm, time, kind, notes.")],
    project: ProjectOption = Path("."),
    store_url: StoreOption = None,
) -> None:
    """Import CRM activity (calls, e-mails, meetings) to time the first contact after churn."""
    settings = load_settings(project)
    with _store(project, settings, store_url) as store:
        added = import_crm_activity(store, file)
    console.print(f"{added} CRM activit{'y' if added == 1 else 'ies'} added from {file.name}.")


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _print_kpis(kpis: Kpis) -> None:
    console.print(f"[bold]KPIs as of {kpis.as_of.isoformat()}[/] ({kpis.episodes} churn episodes)")
    head = RichTable("", "accounts", "revenue", "GMV", title="totals")
    head.add_row(
        "at risk",
        str(kpis.accounts_at_risk),
        _money(kpis.revenue_at_risk),
        _money(kpis.gmv_at_risk),
    )
    head.add_row("recovered", str(kpis.accounts_recovered), _money(kpis.revenue_recovered), "")
    console.print(head)
    cells = RichTable(
        "since churn",
        "at risk",
        "revenue at risk",
        "GMV at risk",
        "churned",
        "revenue lost",
        "won",
        "revenue won",
        title="by time since churn",
    )
    for row in kpis.buckets:
        cells.add_row(
            row.bucket,
            str(row.at_risk_accounts),
            _money(row.at_risk_revenue),
            _money(row.at_risk_gmv),
            str(row.churned_accounts),
            _money(row.revenue_lost),
            str(row.won_accounts),
            _money(row.revenue_won),
        )
    console.print(cells)
    classes = RichTable("outcome", "episodes", "revenue", title="who brought it back")
    for name, counted in kpis.classes.items():
        classes.add_row(
            name.replace("_", " "), str(counted["episodes"]), _money(counted["revenue"])
        )
    console.print(classes)
    if kpis.recovered_by_region:
        regions = RichTable("region", "revenue recovered", title="by region")
        for region, value in kpis.recovered_by_region.items():
            regions.add_row(escape(region), _money(value))
        console.print(regions)
    if kpis.median_hours_to_first_contact is not None:
        console.print(
            f"first CRM contact after churn: {kpis.contacted_episodes} episode(s), median "
            f"{kpis.median_hours_to_first_contact:.1f} h"
        )
    impact = kpis.impact
    if impact.incremental_rate is None:
        console.print(f"impact: {impact.note}")
        return
    level = round(impact.confidence * 100)
    revenue = ""
    if impact.incremental_revenue is not None:
        revenue = (
            f"; incremental revenue {_money(impact.incremental_revenue)} "
            f"[{_money(impact.incremental_revenue_low or 0.0)}, "
            f"{_money(impact.incremental_revenue_high or 0.0)}]"
        )
    console.print(
        f"impact: recovery {impact.rate_notified:.1%} notified ({impact.episodes_notified}) "
        f"against {impact.rate_holdout:.1%} holdout ({impact.episodes_holdout}); incremental "
        f"{impact.incremental_rate:+.1%} [{impact.incremental_rate_low:+.1%}, "
        f"{impact.incremental_rate_high:+.1%}] ({level}% Newcombe){revenue}",
        soft_wrap=True,
    )


@app.command("kpis")
@_user_errors
def kpis_command(
    as_of: Annotated[
        str | None, typer.Option(help="Snapshot date YYYY-MM-DD (default: the last tracked).")
    ] = None,
    window_days: Annotated[
        int | None, typer.Option(min=1, help="Recovery window of the impact report, in days.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    project: ProjectOption = Path("."),
    store_url: StoreOption = None,
) -> None:
    """Revenue recovered, accounts at risk by time since churn, true and self-service wins."""
    settings = load_settings(project)
    day = _date(as_of, "--as-of") if as_of else None
    with _store(project, settings, store_url) as store:
        kpis = compute_kpis(store, as_of=day, tracker=settings.tracker, window_days=window_days)
    if as_json:
        typer.echo(json.dumps(kpis.as_json(), indent=2))
    else:
        _print_kpis(kpis)


def _date(text: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise OutcomeError(f"{option} {text!r} is not a date; write it YYYY-MM-DD") from None


def _read_snapshot_file(path: Path) -> pa.Table:
    if not path.exists():
        raise OutcomeError(f"no snapshot file {path}")
    if path.suffix.lower() == ".parquet":
        return pq.read_table(path)
    if path.suffix.lower() == ".csv":
        return pacsv.read_csv(path)
    raise OutcomeError(f"cannot read {path.name}: give a .parquet or .csv snapshot file")


@contextlib.contextmanager
def _maybe_warehouse(project: Path, url: str | None, needed: bool) -> Iterator[Warehouse | None]:
    if not needed:
        yield None
        return
    with _open(project, url) as (_, warehouse):
        yield warehouse


@app.command("daily")
@_user_errors
def daily_command(
    date: Annotated[
        str | None, typer.Option(help="Snapshot date YYYY-MM-DD (default: today, UTC).")
    ] = None,
    snapshot: Annotated[
        Path | None,
        typer.Option(help="The day's snapshot file; default: the warehouse's adoption_snapshots."),
    ] = None,
    ingest_sources: Annotated[
        bool | None,
        typer.Option("--ingest/--no-ingest", help="Load the sources first (default: if any)."),
    ] = None,
    score: Annotated[
        bool, typer.Option("--score/--no-score", help="Score with the promoted models, if any.")
    ] = True,
    project: ProjectOption = Path("."),
    store_url: StoreOption = None,
    warehouse: WarehouseOption = None,
) -> None:
    """Ingest, score, track and notify for one date; for cron (a second run waits its turn)."""
    from churnwatch._cli_models import registry_root
    from churnwatch.daily import run_daily
    from churnwatch.models import ModelRegistry

    settings = load_settings(project)
    day = _date(date, "--date") if date else dt.datetime.now(dt.UTC).date()
    rows = _read_snapshot_file(snapshot) if snapshot is not None else None
    ingesting = bool(settings.sources) if ingest_sources is None else ingest_sources
    root = registry_root(project)
    registry = ModelRegistry(root) if score and root.exists() else None
    needed = ingesting or registry is not None or rows is None
    wanted: set[str] = {str(c) for c in settings.tracker.channels} or {settings.notify.channel}
    with (
        _store(project, settings, store_url) as store,
        _maybe_warehouse(project, warehouse, needed) as wh,
    ):
        channels, missing = _channels(settings, project, warehouse, wanted)
        try:
            report = run_daily(
                store,
                date=day,
                settings=settings,
                channels=channels,
                snapshot=rows,
                warehouse=wh,
                ingest_sources=ingesting,
                base_dir=project,
                registry=registry,
                on_step=lambda name: console.print(f"[dim]{name}…[/]"),
                views_root=project / "views",
            )
        finally:
            for channel in channels.values():
                close = getattr(channel, "close", None)
                if close is not None:
                    close()
    if report.drained is not None and report.drained.drained:
        drained = report.drained
        console.print(
            f"API events: {drained.loaded:,} loaded into the warehouse, "
            f"{drained.quarantined:,} quarantined."
        )
    tracked = report.tracked
    if tracked is None:
        console.print(f"no snapshot rows for {day.isoformat()}: nothing tracked.")
    elif tracked.already_tracked:
        console.print(f"{day.isoformat()} was already tracked: nothing changed.")
    else:
        counts = ", ".join(f"{k} {v}" for k, v in tracked.counts.items()) or "no change"
        console.print(f"tracked {day.isoformat()} ({tracked.rows:,} rows): {counts}.")
    if report.risk is not None:
        alerts = report.risk.counts
        console.print(
            f"risk alerts: {alerts.get('risk_alert', 0)} opened, "
            f"{alerts.get('queued', 0)} notification(s) queued."
        )
    sent = report.dispatched
    console.print(
        f"notifications: {sent.sent} sent, {sent.retrying} to retry, {sent.dead} given up."
    )
    for name, reason in missing.items():
        errors.print(
            f"[yellow]waiting:[/] notifications for channel {name!r}: {escape(reason)}",
            soft_wrap=True,
        )
