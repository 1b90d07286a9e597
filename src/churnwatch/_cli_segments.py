"""The retention-analytics commands of the CLI: segments and health.

A thin layer over :mod:`churnwatch.segments` and :mod:`churnwatch.health`;
registered on the application by :mod:`churnwatch.cli`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import pandas as pd
import pyarrow as pa
import typer
from rich.table import Table as RichTable

from churnwatch.cli import ProjectOption, WarehouseOption, _open, _user_errors, _write_frame, app
from churnwatch.cli import console as out_console
from churnwatch.errors import ChurnwatchError

__all__ = ["health", "segments"]

AsOfOption = Annotated[
    str | None,
    typer.Option(
        help="Use the data up to the end of this day (YYYY-MM-DD); default: the last day of data."
    ),
]
OutOption = Annotated[
    Path | None, typer.Option(help="Also write the per-account result to this .parquet or .csv.")
]


def _day(as_of: str | None) -> dt.date | None:
    if as_of is None:
        return None
    try:
        return dt.date.fromisoformat(as_of)
    except ValueError:
        raise ChurnwatchError(f"--as-of {as_of!r}: expected a date such as 2024-06-30") from None


def _print_frame(frame: pd.DataFrame, title: str) -> None:
    table = RichTable(*[str(c) for c in frame.columns], title=title)
    for row in frame.itertuples(index=False):
        table.add_row(*[_cell(v) for v in row])
    out_console.print(table)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:,.3f}".rstrip("0").rstrip(".")
    return str(value)


@app.command()
@_user_errors
def segments(
    project: ProjectOption = Path("."),
    as_of: AsOfOption = None,
    out: OutOption = None,
    warehouse: WarehouseOption = None,
) -> None:
    """Group the current customers into named behaviour segments (k chosen by BIC)."""
    from churnwatch.segments import segment_accounts

    day = _day(as_of)
    with _open(project, warehouse) as (settings, wh):
        result = segment_accounts(wh, settings, as_of=day)
    profiles = result.profiles
    shown = ["segment_id", "segment", "accounts", "share", "churn_rate"]
    shown += [c for c in ("mrr_total", "mrr_mean") if c in profiles.columns]
    _print_frame(profiles.loc[:, shown], f"{result.k} segments (lowest BIC)")
    axes = profiles.loc[:, ["segment", *result.model.axes_]].round(2)
    _print_frame(axes, "profiles: standard deviations from the population")
    for note in result.notes:
        out_console.print(note, markup=False, highlight=False)
    if out is not None:
        _write_frame(pa.Table.from_pandas(result.assignments, preserve_index=False), out)
        out_console.print(f"wrote {out}")


@app.command()
@_user_errors
def health(
    project: ProjectOption = Path("."),
    as_of: AsOfOption = None,
    backtest: Annotated[
        bool,
        typer.Option("--backtest", help="Also set the score against later churn at past cutoffs."),
    ] = False,
    out: OutOption = None,
    warehouse: WarehouseOption = None,
) -> None:
    """Score every current customer's health (0-100) and tier; --backtest says how good it is."""
    from churnwatch.health import account_health, backtest_health, model_health, model_target

    day = _day(as_of)
    with _open(project, warehouse) as (settings, wh):
        result = account_health(wh, settings, as_of=day)
        target = model_target(settings)
        model = model_health(wh, target, as_of=day)
        tested = backtest_health(wh, settings) if backtest else None
    components = pd.DataFrame(
        {
            "component": [c.label for c in result.components],
            "metric": [c.metric for c in result.components],
            "direction": [c.direction for c in result.components],
            "weight": [c.weight / sum(x.weight for x in result.components)
                       for c in result.components],
            "scale": [f"bad {c.bad:g}, good {c.good:g}" if c.scaled else "percentile"
                      for c in result.components],
        }
    )  # fmt: skip
    _print_frame(components, "health components")
    _print_frame(result.tier_counts(), f"health of {len(result.scores):,} accounts")
    scores = result.scores
    if model.empty:
        out_console.print(f"model-based score: no {target} scores in risk_scores yet")
    else:
        scores = scores.merge(
            model.loc[:, ["account_id", "model_health", "model_tier"]], on="account_id", how="left"
        )
        scored = pd.Timestamp(model["scored_at"].iloc[0])
        out_console.print(
            f"model-based score ({target}, scored {scored:%Y-%m-%d}): mean "
            f"{model['model_health'].mean():.1f}, tiers "
            + ", ".join(f"{k} {v:,}" for k, v in model["model_tier"].value_counts().items())
        )
    for note in result.notes:
        out_console.print(note, markup=False, highlight=False)
    if tested is not None:
        _print_frame(tested.metrics, f"backtest against {tested.label}")
        _print_frame(tested.tiers.loc[tested.tiers["cutoff"] == "pooled"], "churn by tier (pooled)")
        for note in tested.notes:
            out_console.print(note, markup=False, highlight=False)
    if out is not None:
        _write_frame(pa.Table.from_pandas(scores, preserve_index=False), out)
        out_console.print(f"wrote {out}")
