"""What every feature query shares: column names, small SQL builders, the context.

A query reads the uploaded cutoffs table as ``c``; :class:`_Context` knows its
columns, the dialect, and how a window start is read (a column of the cutoffs
table rather than per-row instant arithmetic).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pyarrow as pa
from sqlglot import exp

from churnwatch.features._portable import days_before, days_between, instant, seconds_between

_CUTOFF_TYPE = pa.timestamp("us", tz="UTC")
#: Column of the cutoffs table holding the account's previous cutoff (see ``running``).
PREVIOUS_CUTOFF_COLUMN = "_previous_cutoff"
#: Column of the cutoffs table numbering its rows; every query returns it as its key.
ROW_COLUMN = "_row"
#: Column of the cutoffs table holding the cutoff's index in ``cutoff_grid``.
INTERVAL_COLUMN = "_interval"


def _col(name: str, table: str) -> exp.Column:
    return exp.column(name, table, quoted=True)


def _lit(value: str) -> exp.Literal:
    return exp.Literal.string(value)


def _case(condition: exp.Expr, value: exp.Expr, otherwise: exp.Expr | None = None) -> exp.Expr:
    # CASE rather than IF: Spark's IF needs its third argument, MySQL's is a function.
    case = exp.Case().when(condition, value, copy=False)
    return case.else_(otherwise, copy=False) if otherwise is not None else case


def _count_if(condition: exp.Expr) -> exp.Expr:
    # COUNT of a CASE without ELSE: a plain 64-bit counter on every engine,
    # where SUM(CASE ... ELSE 0 END) accumulates in 128 bits or decimals.
    return exp.Count(this=_case(condition, exp.Literal.number(1)))


def _when(condition: exp.Expr, value: exp.Expr) -> exp.Expr:
    return _case(condition, value)


def _all(conditions: Sequence[exp.Expr], fallback: exp.Expr) -> exp.Expr:
    return exp.and_(*conditions) if conditions else fallback


class _Context:
    """Names and dialect shared by the expressions of one query."""

    def __init__(
        self,
        dialect: str,
        cutoffs_table: str,
        bounds: set[int] | None = None,
        cutoff_range: tuple[dt.datetime, dt.datetime] | None = None,
    ) -> None:
        self.dialect = dialect
        self.cutoffs_table = cutoffs_table
        self.cutoff_range = cutoff_range
        # When set, window starts are columns of the cutoffs table, computed
        # once per cutoff: ``cutoff - INTERVAL`` per event and per feature is
        # calendar arithmetic, the most costly part of the whole query.
        self.bounds = bounds
        self.account_id = _col("account_id", "c")
        self.cutoff = _col("cutoff", "c")
        self.row = _col(ROW_COLUMN, "c")

    def base(self) -> exp.Select:
        return exp.select(self.row).from_(exp.to_table(self.cutoffs_table).as_("c"))

    def keys(self) -> list[exp.Expr]:
        """What a query groups by: the row number, and the cutoff its expressions read."""
        return [self.row.copy(), self.cutoff.copy()]

    def outer(self) -> _Context:
        """The context of a query over a subquery ``t`` that carries the keys."""
        outer = _Context(self.dialect, self.cutoffs_table)
        outer.account_id = _col("account_id", "t")
        outer.cutoff = _col("cutoff", "t")
        outer.row = _col(ROW_COLUMN, "t")
        return outer

    def seconds_since(self, instant: exp.Expr) -> exp.Expr:
        return seconds_between(self.cutoff, instant, self.dialect)

    def days_since(self, instant: exp.Expr) -> exp.Expr:
        return days_between(self.cutoff, instant, self.dialect)

    def since(self, time: exp.Expr, days: int | None) -> list[exp.Expr]:
        """``time`` inside the window of ``days`` before the cutoff (none: all time)."""
        return [] if days is None else [time >= self.before(days)]

    def constant_bounds(self, time: exp.Expr, span_days: int | None) -> list[exp.Expr]:
        """``time`` before the latest cutoff (and after the earliest window start), as literals.

        They repeat what the per-cutoff join conditions say, but as constants an
        engine filters rows by them while scanning, before the join, and skips
        whole blocks of a time-ordered table.
        """
        if self.cutoff_range is None:
            return []
        first, last = self.cutoff_range
        bounds: list[exp.Expr] = [time < instant(last, self.dialect)]
        if span_days is not None:
            start = first - dt.timedelta(days=int(span_days))
            bounds.append(time.copy() >= instant(start, self.dialect))
        return bounds

    def before(self, days: int) -> exp.Expr:
        """The instant ``days`` before the cutoff."""
        if self.bounds is None:
            return days_before(self.cutoff, days)
        self.bounds.add(int(days))
        return _col(window_start_column(days), "c")


def window_start_column(days: int) -> str:
    """Name of the cutoffs-table column holding ``cutoff - days``.

    Examples
    --------
    >>> window_start_column(30)
    '_from_30d'
    """
    return f"_from_{int(days)}d"
