"""Revenue retention: how much of a cohort's MRR is still there, and GRR / NRR.

**Which MRR counts for a month.** An account's MRR in a month is the MRR of
its subscriptions running *at the month's end* (started before the first
instant of the next month, not ended before it), summed. Counting every
subscription that ran at any instant of the month would count an upgrade
twice in the month it happens (the old plan and the new one both ran in it),
and a trial that ended mid-month as recurring revenue; a month-end snapshot
counts each account once, as it stands when the month closes, which is how
MRR is reported. Months that had not ended by the observation end are
unknown.

MRR is summed in **cents** (each subscription's ``mrr`` rounded to the cent):
integer sums are exact and identical on every engine, so that the movements
(see :mod:`churnwatch.cohorts._movements`) add up to the change in MRR
exactly. A subscription without ``mrr`` counts as 0.

**Revenue cohorts** are by an account's first month with MRR (its ``new``
month), not by signup: a signup cohort's month-0 MRR would leave out every
account that starts paying later, and its "retention" would exceed 100% for
reasons that are not retention.

**GRR and NRR** of month *m* (over ``lookback_months`` = L, 1 by default;
12 gives the yearly figures) look at the accounts with MRR in month *m - L*:

- NRR = (starting MRR + expansion - contraction - churned) / starting MRR,
- GRR = (starting MRR - contraction - churned) / starting MRR, at most 1,

where the movements are those accounts' changes from *m - L* to *m*; new
accounts and reactivations are left out by construction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlglot import exp

from churnwatch.cohorts._periods import (
    ObservationEnd,
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
from churnwatch.warehouse import Warehouse

__all__ = ["MRRMonths", "RevenueRetention", "account_mrr", "mrr_months", "revenue_retention"]


@dataclass(frozen=True)
class MRRMonths:
    """The months MRR is known for, and where the data ends.

    Parameters
    ----------
    first, last : int
        Month indices (see :func:`~churnwatch.cohorts._periods.period_index`) of
        the month of the earliest subscription start and of the latest month
        that ended by the observation end.
    observation_end : ObservationEnd
        The end of the data, and where it comes from.
    """

    first: int
    last: int
    observation_end: ObservationEnd

    @property
    def indices(self) -> range:
        """Every known month, oldest first."""
        return range(self.first, self.last + 1)


def mrr_months(
    warehouse: Warehouse,
    settings: Settings | None,
    observation_end: str | dt.date | dt.datetime | None,
) -> MRRMonths:
    """The known months of the subscriptions table, or an :class:`AnalysisError`."""
    check_tables(warehouse, "subscriptions")
    end = resolve_observation_end(warehouse, settings, observation_end, "subscriptions")
    found = warehouse.query(
        exp.select(exp.func("MIN", exp.column("started_at", quoted=True))).from_("subscriptions")
    )
    earliest = found.column(0)[0].as_py()
    if earliest is None:
        raise AnalysisError("table 'subscriptions' is empty: revenue needs subscriptions with mrr")
    first = index_of(earliest, "month")
    last = last_known_index(end.at, "month")
    if last < first:
        raise AnalysisError(
            f"no month ended between the first subscription ({earliest.isoformat()}) and the "
            f"observation end ({end.at.isoformat()}): revenue retention needs a whole month"
        )
    return MRRMonths(first, last, end)


def account_mrr(months: MRRMonths, dialect: str) -> exp.Select:
    """``account_id, month_index, mrr_cents`` of every account with MRR at a month's end.

    A subscription runs at the end of month *m* when it started before month
    *m + 1* began and did not end before it: its start's month is at most
    *m* and its end's month (if any) at least *m + 1*. Each subscription is
    joined to the months from its start's to the one before its end's.
    """
    started = period_index(exp.column("started_at", quoted=True), "month", dialect)
    ended = exp.column("ended_at", quoted=True)
    last = exp.Literal.number(months.last)
    until = exp.Case(
        ifs=[exp.If(this=ended.is_(exp.null()), true=last)],
        default=exp.Sub(
            this=period_index(ended.copy(), "month", dialect), expression=exp.Literal.number(1)
        ),
    )
    cents = exp.cast(
        exp.Floor(
            this=exp.Add(
                this=exp.Mul(
                    this=exp.func(
                        "COALESCE", exp.column("mrr", quoted=True), exp.Literal.number(0)
                    ),
                    expression=exp.Literal.number(100),
                ),
                expression=exp.Literal.number("0.5"),
            )
        ),
        "BIGINT",
    )
    spans = exp.select(
        exp.column("account_id", quoted=True),
        exp.alias_(started, "first_month"),
        exp.alias_(until, "last_month"),
        exp.alias_(cents, "cents"),
    ).from_("subscriptions")
    month = exp.column("period_index", "n")
    total = exp.func("SUM", exp.column("cents", "s"))
    return (
        exp.select(
            exp.column("account_id", "s", quoted=True),
            exp.alias_(month, "month_index"),
            exp.alias_(total, "mrr_cents"),
        )
        .from_(spans.subquery("s"))
        .join(
            period_numbers(months.first, months.last).subquery("n"),
            on=exp.and_(
                month.copy() >= exp.column("first_month", "s"),
                month.copy() <= exp.column("last_month", "s"),
            ),
        )
        .group_by(exp.column("account_id", "s", quoted=True), month.copy())
        .having(total.copy() > exp.Literal.number(0))
    )


@dataclass(frozen=True)
class RevenueRetention:
    """Revenue cohorts and monthly gross / net revenue retention.

    Parameters
    ----------
    mrr : pandas.DataFrame
        One row per revenue cohort (indexed by its first month, named
        ``cohort``), one column per month number ``k``: the cohort's MRR in
        its k-th month (currency units). NaN where the month is unknown.
    accounts : pandas.Series
        Accounts per cohort.
    by_month : pandas.DataFrame
        Indexed by month: ``starting_mrr`` (of the accounts with MRR
        ``lookback_months`` earlier), ``expansion``, ``contraction``,
        ``churned``, ``grr`` and ``nrr`` (shares; NaN with no starting MRR).
    lookback_months : int
        How far back the starting MRR of ``by_month`` is taken.
    observation_end : ObservationEnd
        The end of the data, and where it comes from.
    """

    mrr: pd.DataFrame
    accounts: pd.Series
    by_month: pd.DataFrame
    lookback_months: int
    observation_end: ObservationEnd

    @property
    def rates(self) -> pd.DataFrame:
        """Each cohort's MRR in month k over its MRR in month 0."""
        return self.mrr.div(self.mrr[0], axis=0)

    def to_arrow(self) -> pa.Table:
        """The cohort matrix in long form, one row per known cell.

        Columns: ``cohort`` (date), ``cohort_accounts``, ``period_number``,
        ``mrr`` and ``revenue_retention`` (MRR over month-0 MRR).
        """
        mrr = self.mrr.to_numpy(dtype=float)
        rates = self.rates.to_numpy(dtype=float)
        rows, columns = np.nonzero(~np.isnan(mrr))
        cohorts = [d.date() for d in pd.DatetimeIndex(self.mrr.index)]
        accounts = self.accounts.to_numpy(dtype=np.int64)
        return pa.table(
            {
                "cohort": pa.array([cohorts[r] for r in rows], pa.date32()),
                "cohort_accounts": pa.array(accounts[rows], pa.int64()),
                "period_number": pa.array(self.mrr.columns.to_numpy()[columns], pa.int64()),
                "mrr": pa.array(mrr[rows, columns], pa.float64()),
                "revenue_retention": pa.array(rates[rows, columns], pa.float64()),
            }
        )


def revenue_retention(
    warehouse: Warehouse,
    settings: Settings | None = None,
    *,
    periods_count: int = 12,
    lookback_months: int = 1,
    observation_end: str | dt.date | dt.datetime | None = None,
) -> RevenueRetention:
    """Revenue cohort matrix and GRR / NRR per month, from ``subscriptions``.

    Parameters
    ----------
    warehouse : Warehouse
        Holds the canonical tables.
    settings : Settings, optional
        The project's settings: ``[data] observation_end`` is read from them.
    periods_count : int
        Columns of the cohort matrix: months 0 to ``periods_count - 1``.
    lookback_months : int
        GRR and NRR compare each month with this many months before (1:
        monthly figures; 12: yearly).
    observation_end : str, date or datetime, optional
        The instant the data is complete up to; default: the settings', else
        midnight after the latest subscription start.

    Returns
    -------
    RevenueRetention

    Raises
    ------
    AnalysisError
        Without subscriptions, without a whole month of them, or for a bad
        ``periods_count`` or ``lookback_months``.

    Examples
    --------
    >>> from churnwatch.warehouse import connect
    >>> with connect("duckdb:///:memory:") as wh:
    ...     wh.ensure_schema()
    ...     _ = wh.execute(exp.insert(
    ...         "VALUES ('a', '2024-01-10', '2024-02-10', 100), ('a', '2024-02-10', NULL, 150),"
    ...         " ('b', '2024-01-20', '2024-02-20', 50)", "subscriptions",
    ...         columns=["account_id", "started_at", "ended_at", "mrr"]))
    ...     revenue = revenue_retention(wh, periods_count=2, observation_end="2024-03-01")
    >>> revenue.mrr.to_numpy().tolist()
    [[150.0, 150.0]]
    >>> revenue.by_month[["starting_mrr", "expansion", "churned", "nrr"]].to_numpy().tolist()
    [[150.0, 50.0, 50.0, 1.0]]
    """
    count = check_periods_count(periods_count)
    if isinstance(lookback_months, bool) or not isinstance(lookback_months, int):
        raise AnalysisError(f"lookback_months must be a whole number, not {lookback_months!r}")
    if not 1 <= lookback_months <= 120:
        raise AnalysisError(f"lookback_months must be between 1 and 120, not {lookback_months}")
    months = mrr_months(warehouse, settings, observation_end)
    dialect = warehouse.dialect
    base = account_mrr(months, dialect)
    cells = warehouse.query(_cohort_query(base, count))
    changes = warehouse.query(_retention_query(base, lookback_months, months.last))
    mrr, accounts = _cohort_matrix(cells, count, months.last)
    by_month = _by_month(changes, months, lookback_months)
    return RevenueRetention(mrr, accounts, by_month, lookback_months, months.observation_end)


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table, quoted=True)


def _cohort_query(base: exp.Select, periods_count: int) -> exp.Select:
    firsts = (
        exp.select(
            _col("account_id"), exp.alias_(exp.func("MIN", _col("month_index")), "cohort_index")
        )
        .from_("account_mrr")
        .group_by(_col("account_id"))
    )
    number = exp.Sub(this=_col("month_index", "a"), expression=_col("cohort_index", "f"))
    return (
        exp.select(
            _col("cohort_index", "f"),
            exp.alias_(number, "period_number"),
            exp.alias_(exp.func("SUM", _col("mrr_cents", "a")), "mrr_cents"),
            exp.alias_(exp.func("COUNT", exp.Star()), "accounts"),
        )
        .with_("account_mrr", as_=base)
        .with_("firsts", as_=firsts)
        .from_(exp.to_table("account_mrr").as_("a"))
        .join(
            exp.to_table("firsts").as_("f"), on=_col("account_id", "a").eq(_col("account_id", "f"))
        )
        .where(number.copy() < exp.Literal.number(periods_count))
        .group_by(_col("cohort_index", "f"), number.copy())
    )


def _retention_query(base: exp.Select, lookback_months: int, last: int) -> exp.Select:
    start = _col("mrr_cents", "s")
    now = _col("mrr_cents", "c")
    month = exp.Add(this=_col("month_index", "s"), expression=exp.Literal.number(lookback_months))
    zero = exp.Literal.number(0)

    def case(condition: exp.Expr, value: exp.Expr) -> exp.Expr:
        return exp.func(
            "SUM", exp.Case(ifs=[exp.If(this=condition, true=value)], default=zero.copy())
        )

    return (
        exp.select(
            exp.alias_(month, "month_index"),
            exp.alias_(exp.func("SUM", start.copy()), "starting_cents"),
            exp.alias_(
                case(now > start, exp.Sub(this=now.copy(), expression=start.copy())),
                "expansion_cents",
            ),
            exp.alias_(
                case(now.copy() < start.copy(), exp.Sub(this=start.copy(), expression=now.copy())),
                "contraction_cents",
            ),
            exp.alias_(case(now.copy().is_(exp.null()), start.copy()), "churned_cents"),
        )
        .with_("account_mrr", as_=base)
        .from_(exp.to_table("account_mrr").as_("s"))
        .join(
            exp.to_table("account_mrr").as_("c"),
            on=exp.and_(
                _col("account_id", "c").eq(_col("account_id", "s")),
                _col("month_index", "c").eq(month.copy()),
            ),
            join_type="LEFT",
        )
        .where(month.copy() <= exp.Literal.number(last))
        .group_by(month.copy())
    )


def _ints(table: pa.Table, column: str) -> list[int]:
    return [int(v) for v in table.column(column).to_pylist()]


def _cohort_matrix(
    cells: pa.Table, periods_count: int, last: int
) -> tuple[pd.DataFrame, pd.Series]:
    cohorts = sorted(set(_ints(cells, "cohort_index")))
    position = {index: row for row, index in enumerate(cohorts)}
    values = np.zeros((len(cohorts), periods_count), dtype=np.int64)
    sizes = np.zeros(len(cohorts), dtype=np.int64)
    for cohort, k, cents, accounts in zip(
        _ints(cells, "cohort_index"),
        _ints(cells, "period_number"),
        _ints(cells, "mrr_cents"),
        _ints(cells, "accounts"),
        strict=True,
    ):
        values[position[cohort], k] = cents
        if k == 0:
            sizes[position[cohort]] = accounts
    mrr = values / 100.0
    numbers = np.arange(periods_count)
    for row, cohort in enumerate(cohorts):
        mrr[row, cohort + numbers > last] = np.nan
    index = _month_index(cohorts, "cohort")
    return (
        pd.DataFrame(mrr, index=index, columns=pd.RangeIndex(periods_count, name="period")),
        pd.Series(sizes, index=index.copy(), name="cohort_accounts"),
    )


def _by_month(changes: pa.Table, months: MRRMonths, lookback_months: int) -> pd.DataFrame:
    wanted = list(range(months.first + lookback_months, months.last + 1))
    found = dict(
        zip(
            _ints(changes, "month_index"),
            zip(
                _ints(changes, "starting_cents"),
                _ints(changes, "expansion_cents"),
                _ints(changes, "contraction_cents"),
                _ints(changes, "churned_cents"),
                strict=True,
            ),
            strict=True,
        )
    )
    cents = np.array([found.get(m, (0, 0, 0, 0)) for m in wanted], dtype=np.int64).reshape(-1, 4)
    starting, expansion, contraction, churned = (cents[:, i] for i in range(4))
    with np.errstate(divide="ignore", invalid="ignore"):
        denominator = np.where(starting > 0, starting, np.nan)
        grr = (starting - contraction - churned) / denominator
        nrr = (starting + expansion - contraction - churned) / denominator
    return pd.DataFrame(
        {
            "starting_mrr": starting / 100.0,
            "expansion": expansion / 100.0,
            "contraction": contraction / 100.0,
            "churned": churned / 100.0,
            "grr": grr,
            "nrr": nrr,
        },
        index=_month_index(wanted, "month"),
    )


def _month_index(indices: list[int], name: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(
        [period_start(i, "month").replace(tzinfo=None) for i in indices], name=name
    )
