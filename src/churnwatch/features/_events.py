"""Event features over windows before the cutoff, and the filters all event features share."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlglot import exp

from churnwatch.errors import ConfigError
from churnwatch.features._context import (
    _all,
    _col,
    _Context,
    _count_if,
    _lit,
    _when,
)
from churnwatch.features._portable import (
    SECONDS_PER_DAY,
    bit_count,
    json_text,
    micros_between,
    ratio,
    shift_left_one,
)
from churnwatch.features._spec import SUPPORT_EVENT_TYPES, FeatureSpec

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

    Periods are counted back from the cutoff: [c - 1 period, c) is the first,
    numbered 0. The number is an integer division of the event's age in
    microseconds where the engine has them (``(age - 1) DIV period``), else
    ``CEIL(seconds / period) - 1``; the division is exact and, evaluated once
    per joined event, much cheaper than the rounding of a DOUBLE. A window of
    at most 62 periods sets one bit per period in a BIGINT and counts the
    bits: a plain aggregate, many times faster than the
    ``COUNT(DISTINCT ...)`` that longer windows fall back to.
    """
    micros = micros_between(ctx.cutoff, _col("event_time", "e"), ctx.dialect)
    index: exp.Expr
    if micros is not None:
        # An event is before its cutoff, so its age is at least 1 microsecond.
        index = exp.paren(
            exp.IntDiv(
                this=exp.paren(exp.Sub(this=micros, expression=exp.Literal.number(1))),
                expression=exp.Literal.number(period_days * SECONDS_PER_DAY * 1_000_000),
            )
        )
    else:
        period = exp.Ceil(
            this=exp.Div(
                this=exp.paren(ctx.seconds_since(_col("event_time", "e"))),
                expression=exp.Literal.number(period_days * SECONDS_PER_DAY),
            )
        )
        index = exp.Sub(this=exp.cast(period, "BIGINT"), expression=exp.Literal.number(1))
    periods = None if window_days is None else -(-int(window_days) // period_days)
    if periods is None or periods > _MASK_PERIODS:
        return exp.Count(this=exp.Distinct(expressions=[_when(condition, index)]))
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
