"""The cohorts command of the CLI: retention matrices, revenue retention, MRR movements.

A thin layer over :mod:`churnwatch.cohorts`; registered on the application by
:mod:`churnwatch.cli`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import typer
from rich.table import Table as RichTable

from churnwatch.cli import (
    ProjectOption,
    WarehouseOption,
    _check_out,
    _open,
    _user_errors,
    _write_frame,
    app,
    console,
)

__all__ = ["cohorts"]


@app.command()
@_user_errors
def cohorts(
    project: ProjectOption = Path("."),
    period: Annotated[
        Literal["month", "week"], typer.Option(help="Cohorts and periods by month or by week.")
    ] = "month",
    basis: Annotated[
        Literal["activity", "subscription"],
        typer.Option(help="Active means an event in the period, or a running subscription."),
    ] = "activity",
    cohort_by: Annotated[
        Literal["signup", "first_event", "first_subscription"],
        typer.Option(help="What places an account in its cohort."),
    ] = "signup",
    periods: Annotated[
        int, typer.Option(help="Periods after the cohort's to show (columns).", min=1)
    ] = 12,
    revenue: Annotated[
        bool, typer.Option("--revenue", help="Revenue retention by cohort, with GRR and NRR.")
    ] = False,
    movements: Annotated[
        bool, typer.Option("--movements", help="MRR movements per month.")
    ] = False,
    lookback: Annotated[
        int, typer.Option(help="GRR and NRR over this many months (12: yearly).", min=1)
    ] = 1,
    observation_end: Annotated[
        str | None,
        typer.Option(help="The data is complete up to this date; default [data] or inferred."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write the result as .parquet or .csv; with --revenue and --movements, "
            "one file each (NAME_revenue, NAME_movements)."
        ),
    ] = None,
    warehouse: WarehouseOption = None,
) -> None:
    """Cohort retention: logo retention by default, or --revenue and --movements."""
    from churnwatch.cohorts import logo_retention, mrr_movements, revenue_retention

    _check_out(out)
    results: dict[str, pa.Table] = {}
    with _open(project, warehouse) as (settings, wh):
        if not (revenue or movements):
            table = logo_retention(
                wh,
                settings,
                period=period,
                basis=basis,
                cohort_by=cohort_by,
                periods_count=periods,
                observation_end=observation_end,
            )
            console.print(table.describe())
            console.print(_matrix(table.rates, table.sizes, period, "retention"))
            results["retention"] = table.to_arrow()
        if revenue:
            found = revenue_retention(
                wh,
                settings,
                periods_count=periods,
                lookback_months=lookback,
                observation_end=observation_end,
            )
            end = found.observation_end
            console.print(
                "Revenue retention by first paying month; MRR at each month's end; observation "
                f"end {end.at.date().isoformat()} ({end.reason})."
            )
            console.print(_matrix(found.rates, found.accounts, "month", "revenue retention"))
            console.print(_by_month(found.by_month, lookback))
            results["revenue"] = found.to_arrow()
        if movements:
            moves = mrr_movements(wh, settings, observation_end=observation_end)
            console.print(_movements(moves.frame))
            results["movements"] = moves.to_arrow()
    if out is not None:
        for name, frame in results.items():
            target = out if len(results) == 1 else out.with_stem(f"{out.stem}_{name}")
            _write_frame(frame, target)
            console.print(f"wrote {frame.num_rows:,} rows to {target}")


def _percent(value: float) -> str:
    return "" if np.isnan(value) else f"{100 * value:.0f}%"


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _matrix(rates: pd.DataFrame, sizes: pd.Series, period: str, title: str) -> RichTable:
    shown = RichTable("cohort", "size", *[str(k) for k in rates.columns], title=title)
    pattern = "%Y-%m" if period == "month" else "%Y-%m-%d"
    for cohort, size, row in zip(
        pd.DatetimeIndex(rates.index), sizes.to_numpy(), rates.to_numpy(), strict=True
    ):
        shown.add_row(
            cohort.strftime(pattern), f"{int(size):,}", *[_percent(float(v)) for v in row]
        )
    return shown


def _by_month(by_month: pd.DataFrame, lookback: int) -> RichTable:
    title = "GRR and NRR" + ("" if lookback == 1 else f" over {lookback} months")
    shown = RichTable(
        "month", "starting MRR", "expansion", "contraction", "churned", "GRR", "NRR", title=title
    )
    for month, row in by_month.iterrows():
        shown.add_row(
            pd.Timestamp(month).strftime("%Y-%m"),  # type: ignore[arg-type]
            _money(row["starting_mrr"]),
            _money(row["expansion"]),
            _money(row["contraction"]),
            _money(row["churned"]),
            _percent(row["grr"]),
            _percent(row["nrr"]),
        )
    return shown


def _movements(frame: pd.DataFrame) -> RichTable:
    names = ["mrr", "new", "expansion", "reactivation", "contraction", "churned", "net_change"]
    shown = RichTable("month", *[n.replace("_", " ") for n in names], title="MRR movements")
    for month, row in frame.iterrows():
        shown.add_row(
            pd.Timestamp(month).strftime("%Y-%m"),  # type: ignore[arg-type]
            *[_money(row[n]) for n in names],
        )
    return shown
