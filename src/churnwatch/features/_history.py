"""All-time event features, from partial aggregates over the intervals between cutoffs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlglot import exp

from churnwatch.features._context import (
    INTERVAL_COLUMN,
    PREVIOUS_CUTOFF_COLUMN,
    _all,
    _case,
    _col,
    _Context,
    _count_if,
    _when,
)
from churnwatch.features._events import _event_filter, _support_filter
from churnwatch.features._portable import days_after, instant
from churnwatch.features._spec import FeatureSpec


class _Partials:
    """All-time aggregates as partial aggregates over intervals, and their totals.

    Three ways, by what is known of the cutoffs:

    - ``single``: each account has one cutoff; the interval is all time
      before it, and a partial is its own total;
    - ``running``: intervals run between an account's consecutive cutoffs
      (joined by time range), and totals are running window aggregates;
    - ``grid``: the cutoffs are a few instants shared by all accounts (a
      schedule); each event's interval is found from its time alone, so
      events are aggregated per (account, interval) without any join, and
      each cutoff sums the intervals up to its own.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.table = "p" if mode == "grid" else "t"
        #: The per-interval aggregates by their SQL (a repeated one is computed once).
        self.inner: dict[str, exp.Expr] = {}

    def total(self, aggregate: exp.Expr, combine: type[exp.AggFunc]) -> exp.Expr:
        """Register ``aggregate`` per interval; return its total up to each cutoff."""
        key = aggregate.sql()
        if key not in self.inner:
            if self.mode == "grid" and combine is exp.Sum:
                # Summed as DOUBLE: an engine sums BIGINTs into a 128-bit
                # integer or a decimal, slower to add and to return, and a
                # double holds every count exactly up to 2**53.
                aggregate = exp.cast(aggregate, exp.DataType.Type.DOUBLE)
            self.inner[key] = exp.alias_(aggregate, f"_p{len(self.inner)}", quoted=True)
        column = _col(self.inner[key].alias_or_name, self.table)
        if self.mode == "single":
            return column
        if self.mode == "grid":
            total: exp.Expr = combine(this=column)
            if combine is exp.Sum:  # an account without events has no interval rows
                total = exp.Coalesce(this=total, expressions=[exp.Literal.number(0)])
            return total
        return exp.Window(
            this=combine(this=column),
            partition_by=[_col("account_id", "t")],
            order=exp.Order(expressions=[exp.Ordered(this=_col("cutoff", "t"))]),
            spec=exp.WindowSpec(
                kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW"
            ),
        )

    def first_week_end(self) -> exp.Expr:
        """The end of the account's first week, as the outer query sees it."""
        if self.mode == "grid":  # the outer query joins the accounts itself
            return exp.Max(this=_col("first_week_end", "a"))
        return self.total(exp.Max(this=_col("first_week_end", "a")), exp.Max)


def _history_feature(spec: FeatureSpec, partials: _Partials, outer: _Context) -> exp.Expr:
    time = _col("event_time", "e")
    present = time.is_(exp.null()).not_()
    matching = _event_filter(spec, outer)
    if spec.kind == "recency":
        latest = partials.total(exp.Max(this=_when(_all(matching, present), time)), exp.Max)
        return outer.days_since(latest)
    if spec.kind == "support":
        return partials.total(_count_if(exp.and_(*_support_filter(spec, outer))), exp.Sum)
    if spec.kind == "first_week":
        first_days = [
            time >= _col("created_at", "a"),
            time < _col("first_week_end", "a"),
            *matching,
        ]
        count = partials.total(_count_if(exp.and_(*first_days)), exp.Sum)
        # Only a week that ended before the cutoff is complete and free of leakage.
        return _case(partials.first_week_end() <= outer.cutoff, count)
    # aggregate: count, sum, min or max over all time
    if spec.column is None:
        return partials.total(_count_if(_all(matching, present)), exp.Sum)
    measure = _col(spec.column, "e")
    if spec.function == "count":
        return partials.total(
            _count_if(exp.and_(*matching, measure.is_(exp.null()).not_())), exp.Sum
        )
    picked = _when(_all(matching, present), measure)
    if spec.function == "sum":
        total = partials.total(exp.Sum(this=picked), exp.Sum)
        return exp.Coalesce(this=total, expressions=[exp.Literal.number(0)])
    combine = exp.Min if spec.function == "min" else exp.Max
    return partials.total(combine(this=picked), combine)


def _first_weeks() -> exp.Subquery:
    """Accounts with the end of their first week, computed once per account."""
    created = _col("created_at", "accounts")
    return (
        exp.select(
            _col("account_id", "accounts"),
            created,
            exp.alias_(days_after(created.copy(), 7), "first_week_end", quoted=True),
        )
        .from_("accounts")
        .subquery("a")
    )


def _history_query(
    specs: Sequence[FeatureSpec],
    ctx: _Context,
    running: bool,
    grid: Sequence[dt.datetime] | None = None,
) -> exp.Select:
    """All-time features from per-interval partial aggregates and their totals."""
    if grid:
        return _history_on_grid(specs, ctx, grid)
    outer = ctx.outer()
    partials = _Partials("running" if running else "single")
    features = [
        exp.alias_(_history_feature(s, partials, outer), s.name, quoted=True) for s in specs
    ]
    time = _col("event_time", "e")
    on: list[exp.Expr] = [_col("account_id", "e").eq(ctx.account_id), time < ctx.cutoff]
    if running:
        on.append(time >= _col(PREVIOUS_CUTOFF_COLUMN, "c"))
    on.extend(ctx.constant_bounds(time, None))
    inner = ctx.base().join(exp.to_table("events").as_("e"), on=exp.and_(*on), join_type="LEFT")
    if any(s.kind == "first_week" for s in specs):
        inner = inner.join(
            _first_weeks(), on=_col("account_id", "a").eq(ctx.account_id), join_type="LEFT"
        )
    keys = [*ctx.keys(), ctx.account_id.copy()] if running else ctx.keys()
    inner = inner.select(*keys[1:], *partials.inner.values()).group_by(*keys)
    return exp.select(outer.row, *features).from_(inner.subquery("t"))


def _history_on_grid(
    specs: Sequence[FeatureSpec], ctx: _Context, grid: Sequence[dt.datetime]
) -> exp.Select:
    """All-time features when every cutoff is one of the instants of ``grid``.

    Events are aggregated per account and interval (the index of the first
    grid instant after the event), with no join to the cutoffs; a cutoff at
    grid instant ``k`` then combines its account's intervals ``0 .. k``.
    """
    partials = _Partials("grid")
    features = [exp.alias_(_history_feature(s, partials, ctx), s.name, quoted=True) for s in specs]
    time = _col("event_time", "e")
    first_week = any(s.kind == "first_week" for s in specs)
    # The interval of an event: a binary search over the grid, written as
    # nested CASEs (log2(n) comparisons per event rather than up to n).
    interval = _interval_of(time, sorted(grid), 0, len(grid), ctx.dialect)
    inner = (
        exp.select(
            exp.alias_(_col("account_id", "e"), "account_id", quoted=True),
            exp.alias_(interval, INTERVAL_COLUMN, quoted=True),
            *partials.inner.values(),
        )
        .from_(exp.to_table("events").as_("e"))
        .where(time.copy() < instant(max(grid), ctx.dialect))
        .group_by(_col("account_id", "e"), interval.copy())
    )
    if first_week:
        inner = inner.join(
            _first_weeks(), on=_col("account_id", "a").eq(_col("account_id", "e")), join_type="LEFT"
        )
    query = ctx.base().join(
        inner.subquery("p"),
        on=exp.and_(
            _col("account_id", "p").eq(ctx.account_id),
            _col(INTERVAL_COLUMN, "p") <= _col(INTERVAL_COLUMN, "c"),
        ),
        join_type="LEFT",
    )
    if first_week:
        query = query.join(
            _first_weeks(), on=_col("account_id", "a").eq(ctx.account_id), join_type="LEFT"
        )
    return query.select(*features).group_by(*ctx.keys())


def _interval_of(
    time: exp.Expr, grid: Sequence[dt.datetime], low: int, high: int, dialect: str
) -> exp.Expr:
    """Index of the first instant of ``grid[low:high]`` after ``time`` (``high`` if none)."""
    if low == high:
        return exp.Literal.number(low)
    middle = (low + high) // 2
    return _case(
        time < instant(grid[middle], dialect),
        _interval_of(time.copy(), grid, low, middle, dialect),
        _interval_of(time.copy(), grid, middle + 1, high, dialect),
    )
