"""The per-account tables: the account list, risk history and weekly activity.

The warehouse does the grouping (one query per source table, results of one
row per account or per account and week); the joins of those per-account
results run in an in-process DuckDB over Arrow, so a million accounts never
pass through a Python loop.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlglot import exp

from churnwatch.errors import ChurnwatchError
from churnwatch.features._portable import days_between, instant
from churnwatch.labels import LabelSpec, accounts_at_risk
from churnwatch.scoring import RISK_SCORES_TABLE
from churnwatch.store import TRACKER_ACCOUNTS
from churnwatch.views._inputs import MissingInputError, RefreshInputs

__all__ = [
    "ACCOUNT_COLUMNS",
    "ACTIVITY_WEEKS",
    "HISTORY_DAYS",
    "HISTORY_RUNS",
    "accounts_table",
    "activity_table",
    "health_frame",
    "risk_history_table",
    "segment_frame",
    "segmentation",
    "tracker_frame",
    "weekly_runs",
]

#: The columns of ``accounts``, in order.
ACCOUNT_COLUMNS = (
    "account_id",
    "name",
    "email",
    "plan",
    "region",
    "platform",
    "csm_id",
    "created_at",
    "status",
    "mrr",
    "churn_risk",
    "risk_tier",
    "revenue_at_risk",
    "reason_1",
    "reason_2",
    "reason_3",
    "predicted_days_to_churn",
    "health_score",
    "health_band",
    "segment",
    "tracker_state",
    "scored_at",
)
#: Weeks of activity kept per account (the account page's timeline).
ACTIVITY_WEEKS = 26
#: Days of risk history kept, and weekly runs at most (see risk_history_table).
HISTORY_DAYS = 182
HISTORY_RUNS = 26
#: When an account has several products, the state shown is the most urgent.
_STATE_RANK = ("churned", "active", "never_enabled")


_HEALTH = {"health_score": pa.float64(), "health_band": pa.string()}


def _text(name: str) -> dict[str, pa.DataType]:
    return {name: pa.string()}


def _frame(columns: dict[str, pa.DataType]) -> pa.Table:
    return pa.table({name: pa.array([], kind) for name, kind in columns.items()})


def accounts_table(inputs: RefreshInputs, notes: dict[str, str]) -> pa.Table:
    """One row per account: attributes, status, risk and reasons, health, segment, tracker.

    - ``status`` is ``active`` for the accounts the churn label would take as
      examples at the read model's instant (current customers:
      :func:`churnwatch.labels.accounts_at_risk`), ``churned`` for the others;
    - ``email`` is the first (in text order) e-mail of the account's users;
    - ``mrr`` is the subscription MRR at scoring, else the account's own;
    - risk, tier, revenue at risk, reasons and days to churn are the latest
      scoring run's (:mod:`churnwatch.scoring`), health the rule-based score
      (:func:`churnwatch.health.account_health`), segment the
      segmentation's name (:func:`churnwatch.segments.segment_accounts`) and
      tracker state the store's (the most urgent over the account's products).

    Parameters
    ----------
    inputs : RefreshInputs
        The refresh's sources.
    notes : dict
        Receives ``accounts.<column>: reason`` for each group of columns left
        null because its input is missing.

    Returns
    -------
    pyarrow.Table
        :data:`ACCOUNT_COLUMNS`, riskiest first (unscored accounts last).
    """
    wh = inputs.warehouse
    base = wh.query(
        exp.select(
            *(
                exp.column(c)
                for c in ("account_id", "name", "plan", "region", "platform", "csm_id")
            ),
            exp.column("created_at"),
            exp.alias_(exp.cast(exp.column("mrr"), exp.DataType.Type.DOUBLE), "account_mrr"),
        ).from_("accounts")
    )
    emails = wh.query(
        exp.select(
            exp.column("account_id"),
            exp.alias_(exp.func("MIN", exp.column("email")), "email"),
        )
        .from_("users")
        .where(exp.column("email").is_(exp.null()).not_())
        .group_by(exp.column("account_id"))
    )
    moment = inputs.moment()
    spec = LabelSpec.from_settings(inputs.settings.churn)
    active = accounts_at_risk(wh, spec, moment).select(["account_id"])
    scores = _scores(inputs, notes)
    health = _part(notes, "health_score", lambda: health_frame(inputs), _HEALTH)
    segments = _part(notes, "segment", lambda: segment_frame(inputs), _text("segment"))
    tracker = _part(notes, "tracker_state", lambda: tracker_frame(inputs), _text("tracker_state"))
    connection = duckdb.connect()
    try:
        for name, table in {
            "base": base,
            "emails": emails,
            "active": active,
            "scores": scores,
            "health": health,
            "segments": segments,
            "tracker": tracker,
        }.items():
            connection.register(name, table)
        result = connection.execute(_ACCOUNTS_SQL).to_arrow_table()
    finally:
        connection.close()
    return result.select(list(ACCOUNT_COLUMNS))


_ACCOUNTS_SQL = """
SELECT
    CAST(b.account_id AS VARCHAR) AS account_id, b.name, e.email, b.plan, b.region,
    b.platform, b.csm_id, b.created_at,
    CASE WHEN a.account_id IS NULL THEN 'churned' ELSE 'active' END AS status,
    coalesce(s.mrr, b.account_mrr) AS mrr,
    s.score AS churn_risk, s.risk_tier, s.revenue_at_risk,
    s.reason_1, s.reason_2, s.reason_3, s.predicted_days_to_churn,
    h.health_score, h.health_band, g.segment, t.tracker_state, s.scored_at
FROM base b
LEFT JOIN emails e ON e.account_id = b.account_id
LEFT JOIN active a ON a.account_id = b.account_id
LEFT JOIN scores s ON s.account_id = b.account_id
LEFT JOIN health h ON h.account_id = b.account_id
LEFT JOIN segments g ON g.account_id = b.account_id
LEFT JOIN tracker t ON t.account_id = b.account_id
ORDER BY churn_risk DESC NULLS LAST, account_id
"""

_SCORE_COLUMNS: dict[str, pa.DataType] = {
    "account_id": pa.string(),
    "score": pa.float64(),
    "risk_tier": pa.string(),
    "mrr": pa.float64(),
    "revenue_at_risk": pa.float64(),
    "reason_1": pa.string(),
    "reason_2": pa.string(),
    "reason_3": pa.string(),
    "predicted_days_to_churn": pa.float64(),
    "scored_at": pa.timestamp("us", tz="UTC"),
}


def _scores(inputs: RefreshInputs, notes: dict[str, str]) -> pa.Table:
    try:
        found = inputs.latest_scores()
    except ChurnwatchError as exc:
        notes["accounts.churn_risk"] = str(exc)
        return _frame(_SCORE_COLUMNS)
    present = [c for c in _SCORE_COLUMNS if c in found.column_names]
    table = found.select(present)
    for name, kind in _SCORE_COLUMNS.items():
        if name not in present:  # a risk_scores table from before the column existed
            table = table.append_column(name, pa.nulls(table.num_rows, kind))
    return table


def _part(
    notes: dict[str, str], column: str, build: Callable[[], pa.Table], empty: dict[str, pa.DataType]
) -> pa.Table:
    """A per-account part of the list, or no rows (and a note) when its input is missing."""
    try:
        return build()
    except ChurnwatchError as exc:
        notes[f"accounts.{column}"] = str(exc)
        return _frame({"account_id": pa.string(), **empty})


def health_frame(inputs: RefreshInputs) -> pa.Table:
    """``account_id, health_score, health_band`` of every current customer."""
    from churnwatch.health import account_health

    scored = inputs.shared(
        "health", lambda: account_health(inputs.warehouse, inputs.settings)
    ).scores
    return pa.table(
        {
            "account_id": scored["account_id"].astype(str).to_numpy(),
            "health_score": scored["health_score"].to_numpy(dtype=float),
            "health_band": scored["health_tier"].astype(object).to_numpy(),
        }
    )


def segmentation(inputs: RefreshInputs) -> Any:
    """The segmentation of the current customers (shared by three tables)."""
    from churnwatch.segments import segment_accounts

    return inputs.shared("segments", lambda: segment_accounts(inputs.warehouse, inputs.settings))


def segment_frame(inputs: RefreshInputs) -> pa.Table:
    """``account_id, segment`` of every segmented account."""
    found: pd.DataFrame = segmentation(inputs).assignments
    return pa.table(
        {
            "account_id": found["account_id"].astype(str).to_numpy(),
            "segment": found["segment"].astype(str).to_numpy(),
        }
    )


def tracker_frame(inputs: RefreshInputs) -> pa.Table:
    """``account_id, tracker_state``: the most urgent state over the account's products."""
    rows = inputs.store_rows(sa.select(TRACKER_ACCOUNTS.c.account_id, TRACKER_ACCOUNTS.c.state))
    connection = duckdb.connect()
    try:
        connection.register("states", rows)
        ranks = ", ".join(f"('{state}', {rank})" for rank, state in enumerate(_STATE_RANK))
        # Unknown states rank last; the query text holds only constants of this module.
        return connection.execute(
            "SELECT CAST(account_id AS VARCHAR) AS account_id, "
            "arg_min(state, coalesce(r.rank, 99)) AS tracker_state "
            f"FROM states LEFT JOIN (VALUES {ranks}) r(name, rank) ON r.name = states.state "
            "GROUP BY account_id"
        ).to_arrow_table()
    finally:
        connection.close()


def risk_history_table(inputs: RefreshInputs) -> pa.Table:
    """``account_id, scored_at, target, score``: the weekly story of each account's risk.

    The runs of the risk target (the one the account list shows) over the
    last HISTORY_DAYS, one a week at most, counted back from the latest run,
    HISTORY_RUNS of them at most: with daily scoring of a million accounts,
    every run would be hundreds of millions of rows, and a weekly point is
    what a risk chart shows.

    Raises
    ------
    MissingInputError
        When nothing was scored yet.
    """
    target, latest = inputs.scored_target()
    wh = inputs.warehouse
    since = latest - dt.timedelta(days=HISTORY_DAYS)
    mine = exp.and_(
        exp.column("target").eq(exp.Literal.string(target)),
        exp.column("scored_at") >= instant(since, wh.dialect),
    )
    found = wh.query(
        exp.select(exp.column("scored_at")).distinct().from_(RISK_SCORES_TABLE).where(mine)
    )
    runs = weekly_runs([_aware(v) for v in found.column("scored_at").to_pylist()])
    if not runs:
        raise MissingInputError(f"no {target} scores in the last {HISTORY_DAYS} days")
    return wh.query(
        exp.select(
            exp.alias_(exp.cast(exp.column("account_id"), exp.DataType.Type.VARCHAR), "account_id"),
            exp.column("scored_at"),
            exp.column("target"),
            exp.column("score"),
        )
        .from_(RISK_SCORES_TABLE)
        .where(
            exp.and_(
                exp.column("target").eq(exp.Literal.string(target)),
                exp.column("scored_at").isin(*(instant(run, wh.dialect) for run in runs)),
            )
        )
        .order_by(exp.column("account_id"), exp.column("scored_at"))
    )


def weekly_runs(runs: list[dt.datetime], *, most: int | None = None) -> list[dt.datetime]:
    """The latest run, then each run at least a week before the last one kept.

    Examples
    --------
    >>> days = [dt.datetime(2024, 1, d) for d in range(1, 20)]
    >>> [r.day for r in weekly_runs(days)]
    [5, 12, 19]
    >>> [r.day for r in weekly_runs(days, most=2)]
    [12, 19]
    """
    kept: list[dt.datetime] = []
    for run in sorted(runs, reverse=True):
        if not kept or run <= kept[-1] - dt.timedelta(days=7):
            kept.append(run)
    return sorted(kept[: most or HISTORY_RUNS])


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def activity_table(inputs: RefreshInputs) -> pa.Table:
    """Events, active days and time spent per account and week, the last ACTIVITY_WEEKS weeks.

    Weeks are counted back from the end of the data (the read model's
    instant), so the latest week is always a whole one: ``week`` is the
    first day of the 7-day window.
    """
    wh = inputs.warehouse
    end = inputs.moment()
    start = end - dt.timedelta(weeks=ACTIVITY_WEEKS)
    at = instant(start, wh.dialect)
    # FLOOR(days since the window's start / 7): the same week number on every engine.
    age = days_between(exp.column("event_time"), at, wh.dialect)
    week = exp.Floor(this=exp.Div(this=exp.paren(age), expression=exp.Literal.number(7)))
    day = exp.Floor(this=age)
    grouped = (
        exp.select(
            exp.column("account_id"),
            exp.alias_(week, "week_number"),
            exp.alias_(exp.func("COUNT", exp.Star()), "events"),
            exp.alias_(
                exp.func("COUNT", exp.Distinct(expressions=[day])),
                "active_days",
            ),
            exp.alias_(
                exp.func(
                    "COALESCE",
                    exp.func("SUM", exp.column("duration_s")),
                    exp.Literal.number(0),
                ),
                "duration_s",
            ),
        )
        .from_("events")
        .where(
            exp.and_(
                exp.column("event_time") >= at,
                exp.column("event_time") < instant(end, wh.dialect),
            )
        )
        .group_by(exp.column("account_id"), week)
    )
    found = wh.query(grouped)
    if found.num_rows == 0:
        raise MissingInputError(f"no events in the {ACTIVITY_WEEKS} weeks before {end:%Y-%m-%d}")
    connection = duckdb.connect()
    try:
        connection.register("weeks", found)
        return connection.execute(
            "SELECT CAST(account_id AS VARCHAR) AS account_id, "
            "CAST(CAST(? AS DATE) + 7 * CAST(week_number AS INTEGER) AS DATE) AS week, "
            "CAST(events AS BIGINT) AS events, CAST(active_days AS BIGINT) AS active_days, "
            "CAST(duration_s AS DOUBLE) AS duration_s "
            "FROM weeks ORDER BY account_id, week",
            [start.date()],
        ).to_arrow_table()
    finally:
        connection.close()
