"""Logo retention: of the accounts that started in a period, how many are still there.

An account's *cohort* is the period it started in, read from one of:

- ``signup``: ``accounts.created_at`` (ingest fills it from the first
  subscription or event when the source has no signup time);
- ``first_event``: its earliest event;
- ``first_subscription``: its earliest subscription start.

It is *active in period k* (k = 0 is the cohort's own period) when, under the

- ``activity`` basis, it has at least one event in the k-th period after its
  cohort's;
- ``subscription`` basis, one of its subscriptions runs during some of that
  period (starts before the period ends, ends after it starts, or never).

Only the matrix comes back from the warehouse: one query counts active
accounts per cohort and period, another sizes the cohorts. Events dated
before an account's cohort period are not counted, and a period that had not
ended by the observation end is unknown (NaN), not 0.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlglot import exp

from churnwatch.cohorts._periods import (
    Grain,
    ObservationEnd,
    check_grain,
    check_periods_count,
    check_tables,
    index_of,
    last_known_index,
    period_index,
    period_numbers,
    period_start,
    resolve_observation_end,
)
from churnwatch.config import Settings
from churnwatch.errors import AnalysisError
from churnwatch.features._portable import instant
from churnwatch.warehouse import Warehouse

__all__ = ["Basis", "CohortBy", "CohortTable", "logo_retention"]

Basis = Literal["activity", "subscription"]
CohortBy = Literal["signup", "first_event", "first_subscription"]

_BASES = ("activity", "subscription")
_COHORT_BY = ("signup", "first_event", "first_subscription")


@dataclass(frozen=True)
class CohortTable:
    """A logo-retention matrix: active accounts per cohort and period.

    Parameters
    ----------
    counts : pandas.DataFrame
        One row per cohort (indexed by the first day of its period, named
        ``cohort``), one column per period number ``k`` (0 = the cohort's own
        period): the accounts active in that period. NaN where the period had
        not ended by the observation end.
    sizes : pandas.Series
        Accounts per cohort (same index).
    period : {"month", "week"}
        The grain of cohorts and periods.
    basis : {"activity", "subscription"}
        What "active" means.
    cohort_by : {"signup", "first_event", "first_subscription"}
        What places an account in its cohort.
    observation_end : ObservationEnd
        The end of the data, and where it comes from.
    """

    counts: pd.DataFrame
    sizes: pd.Series
    period: Grain
    basis: Basis
    cohort_by: CohortBy
    observation_end: ObservationEnd

    @property
    def rates(self) -> pd.DataFrame:
        """Share of each cohort active in each period (0 to 1; NaN where unknown)."""
        return self.counts.div(self.sizes.astype(float), axis=0)

    def to_arrow(self) -> pa.Table:
        """The matrix in long form, one row per known cell.

        Columns: ``cohort`` (date), ``cohort_size``, ``period_number``,
        ``active_accounts`` and ``retention`` (a share).
        """
        counts = self.counts.to_numpy(dtype=float)
        rates = self.rates.to_numpy(dtype=float)
        rows, columns = np.nonzero(~np.isnan(counts))
        cohorts = [d.date() for d in pd.DatetimeIndex(self.counts.index)]
        sizes = self.sizes.to_numpy(dtype=np.int64)
        return pa.table(
            {
                "cohort": pa.array([cohorts[r] for r in rows], pa.date32()),
                "cohort_size": pa.array(sizes[rows], pa.int64()),
                "period_number": pa.array(self.counts.columns.to_numpy()[columns], pa.int64()),
                "active_accounts": pa.array(counts[rows, columns].astype(np.int64), pa.int64()),
                "retention": pa.array(rates[rows, columns], pa.float64()),
            }
        )

    def describe(self) -> str:
        """How the matrix was made, in plain words."""
        active = (
            "at least one event in the period"
            if self.basis == "activity"
            else "a subscription running during the period"
        )
        return (
            f"Logo retention by {self.period}ly cohort ({self.cohort_by.replace('_', ' ')}), "
            f"{len(self.sizes)} cohorts of {int(self.sizes.sum())} accounts; active = {active}; "
            f"observation end {self.observation_end.at.isoformat()} "
            f"({self.observation_end.reason}): later periods are unknown."
        )


def logo_retention(
    warehouse: Warehouse,
    settings: Settings | None = None,
    *,
    period: Grain = "month",
    basis: Basis = "activity",
    cohort_by: CohortBy = "signup",
    periods_count: int = 12,
    observation_end: str | dt.date | dt.datetime | None = None,
) -> CohortTable:
    """Count the accounts of each cohort active in each later period.

    Parameters
    ----------
    warehouse : Warehouse
        Holds the canonical tables.
    settings : Settings, optional
        The project's settings: ``[data] observation_end`` is read from them.
    period : {"month", "week"}
        Cohorts and periods by calendar month or by week (from Monday), in UTC.
    basis : {"activity", "subscription"}
        Active means an event in the period, or a subscription running in it.
    cohort_by : {"signup", "first_event", "first_subscription"}
        What places an account in its cohort (see the module's notes).
    periods_count : int
        Columns of the matrix: periods 0 to ``periods_count - 1``.
    observation_end : str, date or datetime, optional
        The instant the data is complete up to; default: the settings', else
        midnight after the latest event (activity) or subscription start.

    Returns
    -------
    CohortTable
        Counts, cohort sizes and rates.

    Raises
    ------
    AnalysisError
        For an unknown period, basis or cohort choice, a missing table, or
        when no account has a cohort before the observation end.

    Examples
    --------
    >>> from churnwatch.warehouse import connect
    >>> with connect("duckdb:///:memory:") as wh:
    ...     wh.ensure_schema()
    ...     _ = wh.execute(exp.insert("VALUES ('a', '2024-01-05'), ('b', '2024-02-01')",
    ...                               "accounts", columns=["account_id", "created_at"]))
    ...     _ = wh.execute(exp.insert("VALUES ('a', '2024-01-05', 'x'), ('a', '2024-03-02', 'x')",
    ...                               "events", columns=["account_id", "event_time", "event_type"]))
    ...     table = logo_retention(wh, periods_count=3, observation_end="2024-04-01")
    >>> table.sizes.tolist()
    [1, 1]
    >>> table.counts.to_numpy().tolist()
    [[1.0, 0.0, 1.0], [0.0, 0.0, nan]]
    """
    grain = check_grain(period)
    if basis not in _BASES:
        raise AnalysisError(f"basis must be 'activity' or 'subscription', not {basis!r}")
    if cohort_by not in _COHORT_BY:
        raise AnalysisError(
            f"cohort_by must be 'signup', 'first_event' or 'first_subscription', not {cohort_by!r}"
        )
    count = check_periods_count(periods_count)
    source: Literal["events", "subscriptions"] = (
        "events" if basis == "activity" else "subscriptions"
    )
    needed = {"signup": "accounts", "first_event": "events", "first_subscription": "subscriptions"}
    check_tables(warehouse, source, needed[cohort_by])
    end = resolve_observation_end(warehouse, settings, observation_end, source)
    last = last_known_index(end.at, grain)
    dialect = warehouse.dialect

    cohorts = _cohorts(cohort_by, grain, dialect, end.at)
    sizes_raw = warehouse.query(
        exp.select(
            exp.column("cohort_index"), exp.alias_(exp.func("COUNT", exp.Star()), "accounts")
        )
        .from_(cohorts.subquery("c"))
        .group_by(exp.column("cohort_index"))
    )
    if sizes_raw.num_rows == 0:
        raise AnalysisError(
            f"no account has a cohort ({cohort_by.replace('_', ' ')}) before the observation "
            f"end {end.at.isoformat()}: load accounts, or choose another cohort_by"
        )
    sizes_py = {
        int(i): int(n)
        for i, n in zip(
            sizes_raw.column("cohort_index").to_pylist(),
            sizes_raw.column("accounts").to_pylist(),
            strict=True,
        )
    }
    first_cohort = min(sizes_py)
    if last < first_cohort:  # no cohort's first period has ended: every cell is unknown
        cells = pa.table({"cohort_index": [], "period_number": [], "active_accounts": []})
    else:
        if basis == "activity":
            active = _activity(grain, dialect, end.at)
        else:
            active = _subscribed(first_cohort, last, grain, dialect)
        cells = warehouse.query(_cells_query(cohorts, active, count))
    first = _first_known(warehouse, grain) if basis == "activity" else None
    return _assemble(sizes_py, cells, grain, count, (first, last), basis, cohort_by, end)


def _first_known(warehouse: Warehouse, grain: Grain) -> int | None:
    """The period the event log begins in.

    Accounts often predate the event export (a CRM table reaches back years,
    the analytics events only months): a period that ended before the log
    began saw no event because none was recorded, not because the account
    was idle, so it is unknown rather than 0. The period the log starts in
    counts as known: the log usually starts with the business's own start.
    """
    start = (
        warehouse.query(exp.select(exp.func("MIN", exp.column("event_time"))).from_("events"))
        .column(0)[0]
        .as_py()
    )
    if start is None:
        return None
    if start.tzinfo is None:
        start = start.replace(tzinfo=dt.UTC)
    return index_of(start, grain)


def _cohorts(cohort_by: CohortBy, grain: Grain, dialect: str, end: dt.datetime) -> exp.Select:
    """``account_id, cohort_index`` of every account with a cohort before ``end``."""
    table, column = {
        "signup": ("accounts", "created_at"),
        "first_event": ("events", "event_time"),
        "first_subscription": ("subscriptions", "started_at"),
    }[cohort_by]
    when = exp.column(column, quoted=True)
    before_end = when.copy() < instant(end, dialect)
    if cohort_by == "signup":
        return (
            exp.select(
                exp.column("account_id", quoted=True),
                exp.alias_(period_index(when, grain, dialect), "cohort_index"),
            )
            .from_(table)
            .where(exp.and_(when.copy().is_(exp.null()).not_(), before_end))
        )
    first = exp.func("MIN", when)
    return (
        exp.select(
            exp.column("account_id", quoted=True),
            exp.alias_(period_index(first, grain, dialect), "cohort_index"),
        )
        .from_(table)
        .group_by(exp.column("account_id", quoted=True))
        .having(first.copy() < instant(end, dialect))
    )


def _activity(grain: Grain, dialect: str, end: dt.datetime) -> exp.Select:
    """Distinct ``account_id, period_index`` of the events before ``end``."""
    when = exp.column("event_time", quoted=True)
    return (
        exp.select(
            exp.column("account_id", quoted=True),
            exp.alias_(period_index(when, grain, dialect), "period_index"),
        )
        .distinct()
        .from_("events")
        .where(when.copy() < instant(end, dialect))
    )


def _subscribed(first: int, last: int, grain: Grain, dialect: str) -> exp.Select:
    """Distinct ``account_id, period_index`` of the periods a subscription runs during.

    A subscription runs during period *p* when it starts before *p* ends (its
    start's period is at most *p*) and ends after *p* starts, or never: the
    period of its last instant, a microsecond before its end, is at least
    *p*. One that ends where it starts runs during no period.
    """
    started = exp.column("started_at", quoted=True)
    ended = exp.column("ended_at", quoted=True)
    last_instant = exp.Sub(
        this=ended.copy(),
        expression=exp.Interval(this=exp.Literal.string("1"), unit=exp.var("MICROSECOND")),
    )
    until = exp.Case(
        ifs=[exp.If(this=ended.is_(exp.null()), true=exp.Literal.number(last))],
        default=period_index(last_instant, grain, dialect),
    )
    spans = (
        exp.select(
            exp.column("account_id", quoted=True),
            exp.alias_(period_index(started, grain, dialect), "first_period"),
            exp.alias_(until, "last_period"),
        )
        .from_("subscriptions")
        .where(exp.or_(ended.copy().is_(exp.null()), ended.copy() > started.copy()))
    )
    period = exp.column("period_index", "n")
    return (
        exp.select(exp.column("account_id", "s", quoted=True), period)
        .distinct()
        .from_(spans.subquery("s"))
        .join(
            period_numbers(first, last).subquery("n"),
            on=exp.and_(
                period.copy() >= exp.column("first_period", "s"),
                period.copy() <= exp.column("last_period", "s"),
            ),
        )
    )


def _cells_query(cohorts: exp.Select, active: exp.Select, periods_count: int) -> exp.Select:
    """Active accounts per ``cohort_index`` and ``period_number`` in ``[0, periods_count)``."""
    number = exp.Sub(
        this=exp.column("period_index", "a"), expression=exp.column("cohort_index", "c")
    )
    return (
        exp.select(
            exp.column("cohort_index", "c"),
            exp.alias_(number, "period_number"),
            exp.alias_(exp.func("COUNT", exp.Star()), "active_accounts"),
        )
        .from_(cohorts.subquery("c"))
        .join(
            active.subquery("a"),
            on=exp.column("account_id", "a", quoted=True).eq(
                exp.column("account_id", "c", quoted=True)
            ),
        )
        .where(
            exp.and_(
                exp.column("period_index", "a") >= exp.column("cohort_index", "c"),
                exp.column("period_index", "a")
                < exp.Add(
                    this=exp.column("cohort_index", "c"),
                    expression=exp.Literal.number(periods_count),
                ),
            )
        )
        .group_by(exp.column("cohort_index", "c"), number.copy())
    )


def _assemble(
    sizes: dict[int, int],
    cells: pa.Table,
    grain: Grain,
    periods_count: int,
    known: tuple[int | None, int],
    basis: Basis,
    cohort_by: CohortBy,
    end: ObservationEnd,
) -> CohortTable:
    """The matrix: zeros where nothing was active, NaN where the period is unknown.

    ``known`` is the first (``None``: no lower bound) and last period index
    the data covers whole.
    """
    first, last = known
    cohort_indices = sorted(sizes)
    position = {index: row for row, index in enumerate(cohort_indices)}
    values = np.zeros((len(cohort_indices), periods_count))
    for cohort, k, active in zip(
        cells.column("cohort_index").to_pylist(),
        cells.column("period_number").to_pylist(),
        cells.column("active_accounts").to_pylist(),
        strict=True,
    ):
        values[position[int(cohort)], int(k)] = float(active)
    numbers = np.arange(periods_count)
    for row, cohort in enumerate(cohort_indices):
        values[row, cohort + numbers > last] = np.nan
        if first is not None:
            values[row, cohort + numbers < first] = np.nan
    index = pd.DatetimeIndex(
        [period_start(i, grain).replace(tzinfo=None) for i in cohort_indices], name="cohort"
    )
    columns = pd.RangeIndex(periods_count, name="period")
    counts = pd.DataFrame(values, index=index, columns=columns)
    sizes_series = pd.Series(
        [sizes[i] for i in cohort_indices], index=index.copy(), name="cohort_size", dtype="int64"
    )
    return CohortTable(counts, sizes_series, grain, basis, cohort_by, end)
