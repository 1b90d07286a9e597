"""MRR movements: where each month's change in MRR comes from.

Each account's MRR in month *m* is compared with its MRR in month *m - 1*
(month-end MRR, in cents: see :mod:`churnwatch.cohorts._revenue`):

============  ==========================================================
new           0 last month, > 0 now, and never had MRR before
reactivation  0 last month, > 0 now, and had MRR in an earlier month
expansion     > 0 last month and more now: the increase
contraction   > 0 last month and less, but not 0, now: the decrease
churned       > 0 last month, 0 now: last month's MRR
============  ==========================================================

so that, exactly and every month,
``MRR(m) - MRR(m - 1) = new + expansion + reactivation - contraction - churned``.
The first month is the month of the earliest subscription start, whose
previous month holds no MRR.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlglot import exp

from churnwatch.cohorts._periods import ObservationEnd, period_start
from churnwatch.cohorts._revenue import account_mrr, mrr_months
from churnwatch.config import Settings
from churnwatch.warehouse import Warehouse

__all__ = ["MOVEMENTS", "MRRMovements", "mrr_movements"]

#: The movements, in the order they are reported: the first three add to MRR.
MOVEMENTS = ("new", "expansion", "reactivation", "contraction", "churned")

#: Columns of :attr:`MRRMovements.cents`, as the query returns them.
_COLUMNS = (
    "mrr",
    "previous_mrr",
    *MOVEMENTS,
    "accounts",
    *(f"{m}_accounts" for m in MOVEMENTS),
)


@dataclass(frozen=True)
class MRRMovements:
    """MRR and its movements per month.

    Parameters
    ----------
    cents : pandas.DataFrame
        Indexed by month (its first day, named ``month``): ``mrr`` and
        ``previous_mrr`` (the month before), the five movements, all in
        integer cents; ``accounts`` with MRR, and ``<movement>_accounts``, the
        accounts behind each movement.
    observation_end : ObservationEnd
        The end of the data, and where it comes from.
    """

    cents: pd.DataFrame
    observation_end: ObservationEnd

    @property
    def frame(self) -> pd.DataFrame:
        """The same table in currency units, with ``net_change``."""
        frame = self.cents.astype(float)
        money = ["mrr", "previous_mrr", *MOVEMENTS]
        frame[money] = frame[money] / 100.0
        frame["net_change"] = frame["mrr"] - frame["previous_mrr"]
        return frame

    def to_arrow(self) -> pa.Table:
        """One row per month, amounts in currency units, ``month`` as a date."""
        frame = self.frame
        columns: dict[str, pa.Array] = {
            "month": pa.array([m.date() for m in frame.index], pa.date32())
        }
        for name in frame.columns:
            kind = pa.int64() if name.endswith("accounts") else pa.float64()
            values = frame[name].to_numpy()
            columns[name] = pa.array(
                values.astype(np.int64) if kind == pa.int64() else values, kind
            )
        return pa.table(columns)


def mrr_movements(
    warehouse: Warehouse,
    settings: Settings | None = None,
    *,
    observation_end: str | dt.date | dt.datetime | None = None,
) -> MRRMovements:
    """New, expansion, reactivation, contraction and churned MRR per month.

    Parameters
    ----------
    warehouse : Warehouse
        Holds the canonical tables.
    settings : Settings, optional
        The project's settings: ``[data] observation_end`` is read from them.
    observation_end : str, date or datetime, optional
        The instant the data is complete up to; default: the settings', else
        midnight after the latest subscription start.

    Returns
    -------
    MRRMovements
        Every month from the earliest subscription's to the last that ended by
        the observation end.

    Raises
    ------
    AnalysisError
        Without subscriptions, or without a whole month of them.

    Examples
    --------
    >>> from churnwatch.warehouse import connect
    >>> with connect("duckdb:///:memory:") as wh:
    ...     wh.ensure_schema()
    ...     _ = wh.execute(exp.insert(
    ...         "VALUES ('a', '2024-01-10', '2024-02-10', 100), ('a', '2024-02-10', NULL, 150),"
    ...         " ('b', '2024-01-20', '2024-02-20', 50)", "subscriptions",
    ...         columns=["account_id", "started_at", "ended_at", "mrr"]))
    ...     moves = mrr_movements(wh, observation_end="2024-03-01")
    >>> moves.frame[["mrr", "new", "expansion", "churned", "net_change"]].to_numpy().tolist()
    [[150.0, 150.0, 0.0, 0.0, 150.0], [150.0, 0.0, 50.0, 50.0, 0.0]]
    """
    months = mrr_months(warehouse, settings, observation_end)
    found = warehouse.query(_movements_query(account_mrr(months, warehouse.dialect), months.last))
    by_month = {
        int(month): [int(found.column(c)[row].as_py()) for c in _COLUMNS]
        for row, month in enumerate(found.column("month_index").to_pylist())
    }
    # A month no account had MRR in, or the month before, has no row: all zeros.
    values = np.array(
        [by_month.get(m, [0] * len(_COLUMNS)) for m in months.indices], dtype=np.int64
    ).reshape(-1, len(_COLUMNS))
    index = pd.DatetimeIndex(
        [period_start(m, "month").replace(tzinfo=None) for m in months.indices], name="month"
    )
    return MRRMovements(
        pd.DataFrame(values, index=index, columns=list(_COLUMNS)), months.observation_end
    )


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table, quoted=True)


def _movements_query(base: exp.Select, last: int) -> exp.Select:
    zero, one = exp.Literal.number(0), exp.Literal.number(1)
    # Each account-month with MRR is the current month of one pair and the
    # previous month of the next: one pass, no self-join.
    pairs = exp.union(
        exp.select(
            _col("account_id"),
            _col("month_index"),
            exp.alias_(_col("mrr_cents"), "now_cents"),
            exp.alias_(exp.cast(zero.copy(), "BIGINT"), "before_cents"),
        ).from_("account_mrr"),
        exp.select(
            _col("account_id"),
            exp.alias_(exp.Add(this=_col("month_index"), expression=one.copy()), "month_index"),
            exp.alias_(exp.cast(zero.copy(), "BIGINT"), "now_cents"),
            exp.alias_(_col("mrr_cents"), "before_cents"),
        )
        .from_("account_mrr")
        .where(_col("month_index") < exp.Literal.number(last)),
        distinct=False,
    )
    changes = (
        exp.select(
            _col("account_id"),
            _col("month_index"),
            exp.alias_(exp.func("SUM", _col("now_cents")), "now_cents"),
            exp.alias_(exp.func("SUM", _col("before_cents")), "before_cents"),
        )
        .from_(pairs.subquery("pairs"))
        .group_by(_col("account_id"), _col("month_index"))
    )
    firsts = (
        exp.select(
            _col("account_id"), exp.alias_(exp.func("MIN", _col("month_index")), "first_index")
        )
        .from_("account_mrr")
        .group_by(_col("account_id"))
    )
    now, before = _col("now_cents", "x"), _col("before_cents", "x")
    month = _col("month_index", "x")
    is_first = month.eq(_col("first_index", "f"))
    rises = exp.and_(before.eq(zero.copy()), now > zero.copy())
    kinds: dict[str, tuple[exp.Expr, exp.Expr]] = {
        "new": (exp.and_(rises, is_first), now.copy()),
        "expansion": (
            exp.and_(before.copy() > zero.copy(), now.copy() > before.copy()),
            exp.Sub(this=now.copy(), expression=before.copy()),
        ),
        "reactivation": (exp.and_(rises.copy(), is_first.copy().not_()), now.copy()),
        "contraction": (
            exp.and_(now.copy() > zero.copy(), now.copy() < before.copy()),
            exp.Sub(this=before.copy(), expression=now.copy()),
        ),
        "churned": (
            exp.and_(before.copy() > zero.copy(), now.copy().eq(zero.copy())),
            before.copy(),
        ),
    }

    def total(condition: exp.Expr, value: exp.Expr) -> exp.Expr:
        return exp.func(
            "SUM", exp.Case(ifs=[exp.If(this=condition, true=value)], default=zero.copy())
        )

    return (
        exp.select(
            month.copy(),
            exp.alias_(exp.func("SUM", now.copy()), "mrr"),
            exp.alias_(exp.func("SUM", before.copy()), "previous_mrr"),
            *[exp.alias_(total(c, v), name) for name, (c, v) in kinds.items()],
            exp.alias_(total(now.copy() > zero.copy(), one.copy()), "accounts"),
            *[
                exp.alias_(total(c.copy(), one.copy()), f"{name}_accounts")
                for name, (c, _) in kinds.items()
            ],
        )
        .with_("account_mrr", as_=base)
        .from_(changes.subquery("x"))
        .join(
            exp.to_table("firsts").as_("f"), on=_col("account_id", "f").eq(_col("account_id", "x"))
        )
        .with_("firsts", as_=firsts)
        .group_by(month.copy())
    )
