"""One compiler: feature specs -> one query per source table, for every engine.

The cutoffs (``_row``, ``account_id``, ``cutoff``, and the window starts
``cutoff - n days``) are uploaded to a temporary table, and each source table
the specs read is scanned once for all its features and all cutoffs
together::

    SELECT c._row,
           COUNT(CASE WHEN e.event_time >= c._from_30d
                       AND e.event_type = 'login' THEN 1 END) AS logins_30d,
           ...
    FROM cutoffs AS c
    LEFT JOIN events AS e
      ON e.account_id = c.account_id AND e.event_time < c.cutoff
     AND e.event_time >= c._from_90d
    GROUP BY c._row, c.cutoff

Every query starts from the cutoffs and left-joins its table, so each returns
exactly one row per cutoffs row (numbered by ``_row``, a small integer key
that is cheap to group by), and an account without rows gets counts of 0
rather than no row. The join condition ``time < cutoff`` is the
point-in-time guarantee: no expression ever sees a row at or after the
cutoff. Each query names the temporary table once, which MySQL requires.

Running the queries and assembling the frame is :mod:`._compute`'s part.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import pyarrow as pa
from sqlglot import exp

from churnwatch.errors import ConfigError
from churnwatch.features._portable import (
    SECONDS_PER_DAY,
    bit_count,
    days_after,
    days_before,
    days_between,
    instant,
    json_text,
    ratio,
    seconds_between,
    shift_left_one,
)
from churnwatch.features._spec import SUPPORT_EVENT_TYPES, FeatureSpec, Source

__all__ = [
    "INTERVAL_COLUMN",
    "KNOWN_USERS_COLUMN",
    "PREVIOUS_CUTOFF_COLUMN",
    "ROW_COLUMN",
    "active_users_column",
    "compile_features",
    "window_start_column",
]

_SOURCE_ORDER: tuple[Source, ...] = ("accounts", "events", "users", "payments", "subscriptions")
_CUTOFF_TYPE = pa.timestamp("us", tz="UTC")
#: Column of the cutoffs table holding the account's previous cutoff (see ``running``).
PREVIOUS_CUTOFF_COLUMN = "_previous_cutoff"
#: Column of the cutoffs table numbering its rows; every query returns it as its key.
ROW_COLUMN = "_row"
#: Column of the cutoffs table holding the cutoff's index in ``cutoff_grid``.
INTERVAL_COLUMN = "_interval"
#: Column of the ``users_known`` query: users of the account known at the cutoff.
KNOWN_USERS_COLUMN = "_known_users"


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


# -- events ----------------------------------------------------------------------------
#
# Event features fall in three families, each compiled to a query of its own:
#
# - windowed (``events``): the feature reads a bounded span before the cutoff,
#   so the join keeps only events inside the widest span; with monthly cutoffs
#   and 90-day windows an event meets at most four cutoffs, and with one cutoff
#   the many windowed aggregates only see the last months of events;
# - history (``events_history``): all-time counts, sums, minimums, maximums,
#   recency and first-week activity decompose over time, so each event is read
#   once, in the interval between its account's previous cutoff and the next,
#   and running totals over the intervals give every cutoff's value;
# - all time (``events_all``): what does not decompose (distinct counts and
#   means over all time) joins every earlier event to each cutoff;
#
# Active users (all, or the share of those known) are the ``users`` query's.


def _event_span_days(spec: FeatureSpec) -> int | None:
    """How far back before the cutoff a feature reads events (None: all time)."""
    if spec.kind == "trend":
        return 2 * int(spec.window_days or 0)
    if spec.kind == "consistency":
        return 7 * int(spec.weeks or 0)
    if spec.kind == "first_week":
        return None
    return spec.window_days


def _event_family(spec: FeatureSpec) -> str:
    """Which events query computes ``spec`` (see the comment above)."""
    if _event_span_days(spec) is not None:
        return "events"
    if spec.kind in ("recency", "support", "first_week"):
        return "events_history"
    if spec.kind == "aggregate" and spec.function in ("count", "sum", "min", "max"):
        return "events_history"
    return "events_all"


def _event_filter(spec: FeatureSpec, ctx: _Context) -> list[exp.Expr]:
    conditions: list[exp.Expr] = []
    if spec.event_type is not None:
        conditions.append(_col("event_type", "e").eq(_lit(spec.event_type)))
    if spec.property_name is not None and spec.property_value is not None:
        found = json_text(_col("properties", "e"), spec.property_name, ctx.dialect)
        conditions.append(found.eq(_lit(spec.property_value)))
    return conditions


def _support_filter(spec: FeatureSpec, ctx: _Context) -> list[exp.Expr]:
    conditions: list[exp.Expr] = [
        _col("event_type", "e").isin(*[_lit(t) for t in SUPPORT_EVENT_TYPES])
    ]
    if spec.function == "negative_count":
        sentiment = json_text(_col("properties", "e"), "sentiment", ctx.dialect)
        negative = exp.or_(
            _col("value", "e") < exp.Literal.number(0), sentiment.eq(_lit("negative"))
        )
        conditions.append(exp.paren(negative))
    return conditions


#: Distinct periods are counted in a 64-bit mask when a window holds this many or fewer.
_MASK_PERIODS = 62


def _distinct_periods(
    condition: exp.Expr, window_days: int | None, period_days: int, ctx: _Context
) -> exp.Expr:
    """Number of distinct periods of ``period_days``, counted back from the cutoff, with events.

    Periods are counted back from the cutoff: (c - 1 period, c] is the first.
    A window of at most 62 periods sets one bit per period in a BIGINT and
    counts the bits: a plain aggregate, many times faster than the
    ``COUNT(DISTINCT ...)`` that longer windows fall back to.
    """
    period = exp.Ceil(
        this=exp.Div(
            this=exp.paren(ctx.seconds_since(_col("event_time", "e"))),
            expression=exp.Literal.number(period_days * SECONDS_PER_DAY),
        )
    )
    periods = None if window_days is None else -(-int(window_days) // period_days)
    if periods is None or periods > _MASK_PERIODS:
        return exp.Count(this=exp.Distinct(expressions=[_when(condition, period)]))
    index = exp.Sub(this=exp.cast(period, "BIGINT"), expression=exp.Literal.number(1))
    mask = exp.BitwiseOrAgg(this=_when(condition, shift_left_one(index, ctx.dialect)))
    return exp.Coalesce(this=bit_count(mask, ctx.dialect), expressions=[exp.Literal.number(0)])


def _event_feature(spec: FeatureSpec, ctx: _Context) -> exp.Expr:
    """A windowed or all-time feature as one aggregate over the joined events."""
    time = _col("event_time", "e")
    present = time.is_(exp.null()).not_()
    matching = _event_filter(spec, ctx)
    within = [*ctx.since(time, spec.window_days), *matching]
    function = spec.function
    if spec.kind == "aggregate":
        if function in ("active_days", "active_weeks"):
            period = 1 if function == "active_days" else 7
            return _distinct_periods(_all(within, present), spec.window_days, period, ctx)
        if spec.column is None:
            return _count_if(_all(within, present))
        measure = _col(spec.column, "e")
        if function == "count":
            return _count_if(exp.and_(*within, measure.is_(exp.null()).not_()))
        picked = _when(_all(within, present), measure)
        if function == "sum":
            return exp.Coalesce(this=exp.Sum(this=picked), expressions=[exp.Literal.number(0)])
        aggregate = {"mean": exp.Avg, "min": exp.Min, "max": exp.Max, "std": exp.StddevSamp}
        return aggregate[str(function)](this=picked)
    if spec.kind == "recency":
        return ctx.days_since(exp.Max(this=_when(_all(within, present), time)))
    if spec.kind == "support":
        return _count_if(exp.and_(*within, *_support_filter(spec, ctx)))
    if spec.kind == "consistency":
        weeks = int(spec.weeks or 0)
        window = [*ctx.since(time, 7 * weeks), *matching]
        active = _distinct_periods(exp.and_(*window), 7 * weeks, 7, ctx)
        return ratio(active, exp.Literal.number(weeks))
    if spec.kind == "trend":
        days = int(spec.window_days or 0)
        last = _count_if(exp.and_(*ctx.since(time, days), *matching))
        earlier = _count_if(
            exp.and_(
                time >= ctx.before(2 * days),
                time < ctx.before(days),
                *matching,
            )
        )
        if function == "ratio":
            return ratio(last, earlier)
        return exp.Sub(this=last, expression=earlier)
    raise ConfigError(f"feature {spec.name!r}: kind {spec.kind!r} is not a windowed event feature")


def _events_query(specs: Sequence[FeatureSpec], ctx: _Context) -> exp.Select:
    on: list[exp.Expr] = [
        _col("account_id", "e").eq(ctx.account_id),
        _col("event_time", "e") < ctx.cutoff,
    ]
    spans = [_event_span_days(s) for s in specs]
    widest = None if None in spans else max(int(s or 0) for s in spans)
    if widest is not None:
        # Every feature is windowed: the join itself skips older events.
        on.extend(ctx.since(_col("event_time", "e"), widest))
    # No constant time bounds here: with many cutoffs they make DuckDB build
    # its hash table on the (fewer) filtered events and probe it with the
    # cutoffs, 1.6 times slower at 12 monthly cutoffs; with one, no faster.
    query = ctx.base().join(exp.to_table("events").as_("e"), on=exp.and_(*on), join_type="LEFT")
    return query.select(
        *[exp.alias_(_event_feature(s, ctx), s.name, quoted=True) for s in specs]
    ).group_by(*ctx.keys())


def _two_step_distinct(
    inner: exp.Select,
    key: exp.Column,
    flags: Sequence[exp.Expr],
    features: Sequence[Callable[[list[exp.Expr]], exp.Expr]],
    names: Sequence[str],
    ctx: _Context,
) -> exp.Select:
    """Distinct counts per cutoff as a group by (cutoff, key), then a count per cutoff.

    ``inner`` joins the rows; it is grouped by the cutoff and ``key`` (a
    user), with one 0/1 flag per condition (``MAX(CASE WHEN ... THEN 1
    END)``). Each feature is then built from counts of the flagged keys.
    This is the same number as ``COUNT(DISTINCT CASE WHEN ... THEN key
    END)``, which keeps a hash set per group and per feature and is several
    times slower on DuckDB.
    """
    inner = inner.select(
        *ctx.keys()[1:],
        exp.alias_(key.copy(), "_key", quoted=True),
        *[exp.alias_(exp.Max(this=f), f"_f{i}", quoted=True) for i, f in enumerate(flags)],
    ).group_by(*ctx.keys(), key.copy())
    outer = ctx.outer()
    present = _col("_key", "t").is_(exp.null()).not_()
    counts = [
        _count_if(exp.and_(present.copy(), _col(f"_f{i}", "t").eq(exp.Literal.number(1))))
        for i in range(len(flags))
    ]
    return (
        exp.select(
            outer.row,
            *[
                exp.alias_(build(counts), name, quoted=True)
                for build, name in zip(features, names, strict=True)
            ],
        )
        .from_(inner.subquery("t"))
        .group_by(outer.row.copy())
    )


def _widest_window(specs: Sequence[FeatureSpec]) -> int | None:
    """The longest window of ``specs`` in days (None if one is all time)."""
    windows = [s.window_days for s in specs]
    return None if None in windows else max(int(w or 0) for w in windows)


def _events_before_cutoff(specs: Sequence[FeatureSpec], ctx: _Context) -> list[exp.Expr]:
    """Join conditions for the account's events that ``specs``' windows can read."""
    time = _col("event_time", "e")
    on: list[exp.Expr] = [_col("account_id", "e").eq(ctx.account_id), time < ctx.cutoff]
    widest = _widest_window(specs)
    if widest is not None:
        on.extend(ctx.since(time.copy(), widest))
    on.extend(ctx.constant_bounds(time.copy(), widest))
    return on


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
    interval: exp.Expr = exp.Case()
    for index, instant_ in enumerate(sorted(grid)):
        interval = interval.when(  # type: ignore[attr-defined]
            time < instant(instant_, ctx.dialect), exp.Literal.number(index), copy=False
        )
    first_week = any(s.kind == "first_week" for s in specs)
    inner = (
        exp.select(
            exp.alias_(_col("account_id", "e"), "account_id", quoted=True),
            exp.alias_(interval, INTERVAL_COLUMN, quoted=True),
            *partials.inner.values(),
        )
        .from_(exp.to_table("events").as_("e"))
        .where(time < instant(max(grid), ctx.dialect))
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


# -- users -----------------------------------------------------------------------------


def _users_query(specs: Sequence[FeatureSpec], ctx: _Context) -> exp.Select:
    """Distinct active users per window: all of them, and those known at the cutoff.

    ``active_users`` features count the distinct users with events in their
    window. ``active_share`` features return their numerator, the active
    users known at the cutoff, as ``_active_<name>``; the denominator comes
    from :func:`_known_users_query`, and :func:`compute_features` divides.
    One query for both would join every cutoff to every user of its account
    before the events, a product that outgrows memory with many cutoffs.
    """
    time = _col("event_time", "e")
    user = _col("user_id", "u")
    created = _col("created_at", "u")
    on = _events_before_cutoff(specs, ctx)
    inner = ctx.base().join(exp.to_table("events").as_("e"), on=exp.and_(*on), join_type="LEFT")
    shares = [s for s in specs if s.function == "active_share"]
    if shares:
        inner = inner.join(
            exp.to_table("users").as_("u"),
            on=exp.and_(
                _col("account_id", "u").eq(_col("account_id", "e")),
                user.eq(_col("user_id", "e")),
            ),
            join_type="LEFT",
        )
    present = time.is_(exp.null()).not_()
    # A user without created_at carries no time, so is known at every cutoff.
    known = [
        user.is_(exp.null()).not_(),
        exp.paren(exp.or_(created < ctx.cutoff, created.is_(exp.null()))),
    ]
    flags = []
    for spec in specs:
        conditions = [present.copy(), *ctx.since(time, spec.window_days), *_event_filter(spec, ctx)]
        if spec.function == "active_share":
            conditions += [k.copy() for k in known]
        flags.append(_when(exp.and_(*conditions), exp.Literal.number(1)))
    features = [(lambda counts, i=i: counts[i]) for i in range(len(specs))]
    names = [active_users_column(s.name) if s.function == "active_share" else s.name for s in specs]
    return _two_step_distinct(inner, _col("user_id", "e"), flags, features, names, ctx)


def _known_users_query(ctx: _Context) -> exp.Select:
    """Number of users of the account known at the cutoff (``_known_users``)."""
    created = _col("created_at", "u")
    # In the aggregate, not the join: a disjunction in a join condition
    # turns DuckDB's hash join into a nested loop.
    known = exp.and_(
        _col("user_id", "u").is_(exp.null()).not_(),
        exp.paren(exp.or_(created < ctx.cutoff, created.is_(exp.null()))),
    )
    return (
        ctx.base()
        .select(exp.alias_(_count_if(known), KNOWN_USERS_COLUMN, quoted=True))
        .join(
            exp.to_table("users").as_("u"),
            on=_col("account_id", "u").eq(ctx.account_id),
            join_type="LEFT",
        )
        .group_by(*ctx.keys())
    )


def active_users_column(name: str) -> str:
    """The column of the users query holding the numerator of share feature ``name``."""
    return f"_active_{name}"


# -- payments --------------------------------------------------------------------------


def _payments_query(specs: Sequence[FeatureSpec], ctx: _Context) -> exp.Select:
    time = _col("paid_at", "p")
    status = exp.Lower(this=_col("status", "p"))
    succeeded = status.eq(_lit("succeeded"))
    failed = status.copy().eq(_lit("failed"))
    query = ctx.base().join(
        exp.to_table("payments").as_("p"),
        on=exp.and_(_col("account_id", "p").eq(ctx.account_id), time < ctx.cutoff),
        join_type="LEFT",
    )
    features = []
    for spec in specs:
        within = ctx.since(time, spec.window_days)
        if spec.function == "success_rate":
            settled = status.copy().isin(_lit("succeeded"), _lit("failed"))
            value = ratio(
                _count_if(exp.and_(*within, succeeded.copy())),
                _count_if(exp.and_(*within, settled)),
            )
        elif spec.function == "failed_count":
            value = _count_if(exp.and_(*within, failed.copy()))
        else:
            value = ctx.days_since(exp.Max(this=_when(exp.and_(*within, failed.copy()), time)))
        features.append(exp.alias_(value, spec.name, quoted=True))
    return query.select(*features).group_by(*ctx.keys())


# -- subscriptions ---------------------------------------------------------------------


def _subscriptions_query(specs: Sequence[FeatureSpec], ctx: _Context) -> exp.Select:
    started = _col("started_at", "s")
    ended = _col("ended_at", "s")
    # Active at the cutoff: started before it, and not ended before it (an end
    # at or after the cutoff was still in the future then).
    active = _case(
        exp.and_(
            started.is_(exp.null()).not_(),
            exp.paren(exp.or_(ended.is_(exp.null()), ended >= ctx.cutoff)),
        ),
        exp.Literal.number(1),
        exp.Literal.number(0),
    )
    partition = [ctx.row.copy()]
    tie_breakers = [_col(c, "s") for c in ("mrr", "plan", "subscription_id")]
    previous = exp.Window(
        this=exp.func("LAG", _col("mrr", "s")),
        partition_by=partition,
        order=exp.Order(
            expressions=[
                exp.Ordered(this=started.copy()),
                *[exp.Ordered(this=c) for c in tie_breakers],
            ]
        ),
    )
    latest = exp.Window(
        this=exp.RowNumber(),
        partition_by=[p.copy() for p in partition],
        order=exp.Order(
            expressions=[
                exp.Ordered(this=active.copy(), desc=True),
                exp.Ordered(this=started.copy(), desc=True),
                *[exp.Ordered(this=c.copy(), desc=True) for c in tie_breakers],
            ]
        ),
    )
    periods = (
        ctx.base()
        .select(
            ctx.cutoff.copy(),
            exp.alias_(started.copy(), "started_at", quoted=True),
            exp.alias_(_col("mrr", "s"), "mrr", quoted=True),
            exp.alias_(_col("plan", "s"), "plan", quoted=True),
            exp.alias_(_col("discount", "s"), "discount", quoted=True),
            exp.alias_(active, "is_active", quoted=True),
            exp.alias_(previous, "previous_mrr", quoted=True),
            exp.alias_(latest, "recency_rank", quoted=True),
        )
        .join(
            exp.to_table("subscriptions").as_("s"),
            on=exp.and_(_col("account_id", "s").eq(ctx.account_id), started < ctx.cutoff),
            join_type="LEFT",
        )
    )
    outer = ctx.outer()
    is_active = _col("is_active", "t").eq(exp.Literal.number(1))
    current = exp.and_(is_active, _col("recency_rank", "t").eq(exp.Literal.number(1)))
    features = []
    for spec in specs:
        function = spec.function
        if function == "mrr":
            value: exp.Expr = exp.Coalesce(
                this=exp.Sum(this=_when(is_active.copy(), _col("mrr", "t"))),
                expressions=[exp.Literal.number(0)],
            )
        elif function in ("plan", "discount"):
            value = exp.Max(this=_when(current.copy(), _col(str(function), "t")))
        else:
            change = exp.GT if function == "upgrades" else exp.LT
            value = _count_if(
                exp.and_(
                    *outer.since(_col("started_at", "t"), spec.window_days),
                    change(this=_col("mrr", "t"), expression=_col("previous_mrr", "t")),
                )
            )
        features.append(exp.alias_(value, spec.name, quoted=True))
    return exp.select(outer.row, *features).from_(periods.subquery("t")).group_by(*outer.keys())


# -- accounts --------------------------------------------------------------------------


def _accounts_query(specs: Sequence[FeatureSpec], ctx: _Context) -> exp.Select:
    created = _col("created_at", "a")
    # An account created at or after the cutoff did not exist yet: nothing of it
    # is seen. Tested in the values rather than the join condition, where a
    # disjunction makes DuckDB join by nested loop.
    exists = exp.paren(exp.or_(created < ctx.cutoff, created.is_(exp.null())))
    query = ctx.base().join(
        exp.to_table("accounts").as_("a"),
        on=_col("account_id", "a").eq(ctx.account_id),
        join_type="LEFT",
    )
    features = [
        exp.alias_(
            _when(
                exists.copy(),
                ctx.days_since(created.copy()) if s.kind == "tenure" else _col(str(s.column), "a"),
            ),
            s.name,
            quoted=True,
        )
        for s in specs
    ]
    return query.select(*features)


_BUILDERS: dict[str, Callable[[Sequence[FeatureSpec], _Context], exp.Select]] = {
    "payments": _payments_query,
    "subscriptions": _subscriptions_query,
    "accounts": _accounts_query,
}


def window_start_column(days: int) -> str:
    """Name of the cutoffs-table column holding ``cutoff - days``.

    Examples
    --------
    >>> window_start_column(30)
    '_from_30d'
    """
    return f"_from_{int(days)}d"


def compile_features(
    specs: Sequence[FeatureSpec],
    dialect: str,
    cutoffs_table: str = "cutoffs",
    *,
    window_bounds: set[int] | None = None,
    running: bool = True,
    cutoff_range: tuple[dt.datetime, dt.datetime] | None = None,
    cutoff_grid: Sequence[dt.datetime] | None = None,
) -> dict[str, exp.Select]:
    """Build the queries computing all features for all cutoffs: one per source table.

    Events are read by up to three queries, ``events`` (windowed features),
    ``events_history`` (all-time features that decompose over time) and
    ``events_all`` (the other all-time features); active users by one
    (``users``), whichever table their spec names; every other table by one.
    The share of active users is returned as two columns, ``_active_<name>``
    (query ``users``) and ``_known_users`` (query ``users_known``), whose
    ratio :func:`compute_features` takes.

    Parameters
    ----------
    specs : sequence of FeatureSpec
        The features; names must be unique.
    dialect : str
        sqlglot dialect the queries are written for (``duckdb``, ``postgres``,
        ``mysql``, ``spark``); render them with ``query.sql(dialect)``.
    cutoffs_table : str
        Table holding the columns ``_row`` (a distinct integer per row),
        ``account_id`` and ``cutoff``.
    window_bounds : set of int, optional
        When given, window starts are read from columns of the cutoffs table
        named by :func:`window_start_column` (``cutoff - n days``) rather than
        computed per row, and the set receives every ``n`` the queries need.
    running : bool
        Whether an account may have several cutoffs. All-time features are
        then summed over the intervals between an account's cutoffs, and the
        cutoffs table needs the column ``_previous_cutoff`` (the account's
        previous cutoff, or an instant before any data for its first one).
        False when each account has one cutoff, which spares that step.
    cutoff_range : (datetime, datetime), optional
        The earliest and latest cutoff. When given, events are also bounded
        by constants (before the latest cutoff, after the earliest window
        start), which engines apply while scanning.
    cutoff_grid : sequence of datetime, optional
        Every cutoff is one of these few instants (a schedule shared by all
        accounts), and the cutoffs table has the column ``_interval``, each
        cutoff's index in the sorted grid. All-time features are then
        aggregated per account and interval without joining the cutoffs,
        which many cutoffs per account make much cheaper.

    Returns
    -------
    dict of str to sqlglot Select
        The queries by name, each returning ``_row`` and one column per
        feature it computes.

    Raises
    ------
    ConfigError
        If two specs share a name.

    Examples
    --------
    >>> from churnwatch.features import FeatureSpec
    >>> queries = compile_features([FeatureSpec("tenure_days", "tenure")], "spark")
    >>> print(queries["accounts"].sql("spark"))  # doctest: +NORMALIZE_WHITESPACE
    SELECT `c`.`_row`, CASE WHEN (`a`.`created_at` < `c`.`cutoff` OR
    `a`.`created_at` IS NULL) THEN ((UNIX_MICROS(`c`.`cutoff`) -
    UNIX_MICROS(`a`.`created_at`)) / 1000000.0E0) / 86400 END AS `tenure_days`
    FROM cutoffs AS c LEFT JOIN accounts AS a ON `a`.`account_id` = `c`.`account_id`
    """
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise ConfigError(f"feature {spec.name!r} is declared twice; names must be unique")
        seen.add(spec.name)
    ctx = _Context(dialect, cutoffs_table, window_bounds, cutoff_range)
    queries: dict[str, exp.Select] = {}
    # Active users and the share of known users read the same (account,
    # cutoff, user) groups, so they share one query whichever table they name.
    users = [s for s in specs if s.kind == "users"]
    for source in _SOURCE_ORDER:
        if source == "users":
            if any(s.function == "active_share" for s in users):
                queries["users_known"] = _known_users_query(ctx)
            if users:
                queries["users"] = _users_query(users, ctx)
            continue
        mine = [s for s in specs if s.source == source and s.kind != "users"]
        if not mine:
            continue
        if source != "events":
            queries[source] = _BUILDERS[source](mine, ctx)
            continue
        for family in ("events", "events_history", "events_all"):
            members = [s for s in mine if _event_family(s) == family]
            if not members:
                continue
            if family == "events_history":
                queries[family] = _history_query(members, ctx, running, cutoff_grid)
            else:
                queries[family] = _events_query(members, ctx)
    return queries
