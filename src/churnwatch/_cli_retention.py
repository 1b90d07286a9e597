"""The retention-analytics commands of the CLI (survival, ...).

A thin layer over :mod:`churnwatch.survival` (and the other retention
analyses); registered on the application by :mod:`churnwatch.cli`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import pyarrow as pa
import typer
from rich.table import Table as RichTable

from churnwatch.cli import (
    ProjectOption,
    WarehouseOption,
    _open,
    _user_errors,
    _write_frame,
    app,
    console,
)
from churnwatch.errors import AnalysisError

if TYPE_CHECKING:
    from churnwatch.survival import Basis

__all__ = ["survival"]

_OUT_SUFFIXES = (".html", ".csv", ".parquet")


@app.command()
@_user_errors
def survival(
    project: ProjectOption = Path("."),
    by: Annotated[
        str | None,
        typer.Option(
            help="Split by this account attribute: plan, region, platform, referral_source, "
            "or a key of the accounts' attributes."
        ),
    ] = None,
    basis: Annotated[
        str | None,
        typer.Option(
            help="subscription (active periods), activity (first event to inactivity) or "
            "snapshot (tenure_days and churned of one-snapshot tables); default from [churn]."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write the Kaplan-Meier figure (.html) or the curves table (.csv, .parquet)."
        ),
    ] = None,
    warehouse: WarehouseOption = None,
) -> None:
    """Survival curves: median lifetime, retention at days 7/30/90, log-rank across groups."""
    from churnwatch.survival import analyze_survival

    if out is not None and out.suffix.lower() not in _OUT_SUFFIXES:
        raise AnalysisError(f"--out {out}: write to a .html, .csv or .parquet file")
    if basis is not None and basis not in ("subscription", "activity", "snapshot"):
        raise AnalysisError(f"--basis {basis!r}: expected subscription, activity or snapshot")
    with _open(project, warehouse) as (settings, wh):
        analysis = analyze_survival(wh, settings, by=by, basis=cast("Basis | None", basis))
    console.print(analysis.describe(), markup=False, highlight=False)
    medians = RichTable(
        "group", "accounts", "churned", "median days", "95% CI", title="median lifetime"
    )
    for row in analysis.medians.itertuples():
        if row.median_reached:
            upper = "∞" if row.ci_upper == float("inf") else f"{row.ci_upper:.0f}"
            median, band = f"{row.median_days:.0f}", f"{row.ci_lower:.0f}–{upper}"
        else:
            median, band = f"> {row.followed_days:.0f}", ""
        medians.add_row(str(row.group), f"{row.accounts:,}", f"{row.churned:,}", median, band)
    console.print(medians)
    order = list(dict.fromkeys(analysis.retention["group"]))
    retention = analysis.retention.pivot(index="group", columns="day", values="retention")
    retention = retention.reindex(order)
    table = RichTable("group", *[f"day {day}" for day in retention.columns], title="retention")
    for group, values in retention.iterrows():
        table.add_row(
            str(group), *["n/a" if value != value else f"{value:.1%}" for value in values]
        )
    console.print(table)
    curves = analysis.by_group
    if curves is not None and curves.logrank is not None and len(curves.logrank.pairwise) > 1:
        pairs = RichTable("group", "group", "chi2", "p", title="log-rank, pairs")
        for pair in curves.logrank.pairwise.itertuples():
            pairs.add_row(
                str(pair.group_a), str(pair.group_b), f"{pair.statistic:.2f}", f"{pair.p_value:.3g}"
            )
        console.print(pairs)
    if out is not None:
        if out.suffix.lower() == ".html":
            out.parent.mkdir(parents=True, exist_ok=True)
            analysis.figure().write_html(out, include_plotlyjs="cdn")
        else:
            _write_frame(pa.Table.from_pandas(analysis.curves.survival, preserve_index=False), out)
        console.print(f"wrote {out}")
