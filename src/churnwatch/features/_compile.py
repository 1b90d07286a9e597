"""One compiler: feature specs -> one query per source table, for every engine.

The cutoffs (``account_id``, ``cutoff``) are uploaded to a temporary table,
and each source table the specs read is scanned once for all its features
and all cutoffs together::

    SELECT c.account_id, c.cutoff,
           SUM(CASE WHEN e.event_time >= c.cutoff - INTERVAL '30' DAY
                     AND e.event_type = 'login' THEN 1 ELSE 0 END) AS logins_30d,
           ...
    FROM cutoffs AS c
    LEFT JOIN events AS e
      ON e.account_id = c.account_id AND e.event_time < c.cutoff
    GROUP BY c.account_id, c.cutoff

Every query starts from the cutoffs and left-joins its table, so each returns
exactly one row per (account, cutoff), and an account without rows gets
counts of 0 rather than no row. The join condition ``time < cutoff`` is the
point-in-time guarantee: no expression ever sees a row at or after the
cutoff. Each query names the temporary table once, which MySQL requires.

Running the queries and assembling the frame is :mod:`._compute`'s part.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
from sqlglot import exp

from churnwatch.errors import ConfigError
from churnwatch.features._portable import (
    days_after,
    days_before,
    days_between,
    json_text,
    ratio,
    seconds_between,
)
from churnwatch.features._spec import SUPPORT_EVENT_TYPES, FeatureSpec, Source

__all__ = ["compile_features", "window_start_column"]

_SOURCE_ORDER: tuple[Source, ...] = ("accounts", "events", "users", "payments", "subscriptions")
_CUTOFF_TYPE = pa.timestamp("us", tz="UTC")


def _col(name: str, table: str) -> exp.Column:
    return exp.column(name, table, quoted=True)


def _lit(value: str) -> exp.Literal:
    return exp.Literal.string(value)


def _case(condition: exp.Expr, value: exp.Expr, otherwise: exp.Expr | None = None) -> exp.Expr:
    # CASE rather than IF: Spark's IF needs its third argument, MySQL's is a function.
    case = exp.Case().when(condition, value, copy=False)
    return case.else_(otherwise, copy=False) if otherwise is not None else case


def _count_if(condition: exp.Expr) -> exp.Expr:
    return exp.Sum(this=_case(condition, exp.Literal.number(1), exp.Literal.number(0)))


def _when(condition: exp.Expr, value: exp.Expr) -> exp.Expr:
    return _case(condition, value)


def _all(conditions: Sequence[exp.Expr], fallback: exp.Expr) -> exp.Expr:
    return exp.and_(*conditions) if conditions else fallback


class _Context:
    """Names and dialect shared by the expressions of one query."""

    def __init__(self, dialect: str, cutoffs_table: str, bounds: set[int] | None = None) -> None:
        self.dialect = dialect
        self.cutoffs_table = cutoffs_table
        # When set, window starts are columns of the cutoffs table, computed
        # once per cutoff: ``cutoff - INTERVAL`` per event and per feature is
        # calendar arithmetic, the most costly part of the whole query.
        self.bounds = bounds
        self.account_id = _col("account_id", "c")
        self.cutoff = _col("cutoff", "c")

    def base(self) -> exp.Select:
        return exp.select(self.account_id, self.cutoff).from_(
            exp.to_table(self.cutoffs_table).as_("c")
        )

    def seconds_since(self, instant: exp.Expr) -> exp.Expr:
        return seconds_between(self.cutoff, instant, self.dialect)

    def days_since(self, instant: exp.Expr) -> exp.Expr:
        return days_between(self.cutoff, instant, self.dialect)

    def since(self, time: exp.Expr, days: int | None) -> list[exp.Expr]:
        """``time`` inside the window of ``days`` before the cutoff (none: all time)."""
        return [] if days is None else [time >= self.before(days)]

    def before(self, days: int) -> exp.Expr:
        """The instant ``days`` before the cutoff."""
        if self.bounds is None:
            return days_before(self.cutoff, days)
        self.bounds.add(int(days))
        return _col(window_start_column(days), "c")


# -- events ----------------------------------------------------------------------------


def _event_span_days(spec: FeatureSpec) -> int | None:
    """How far back before the cutoff a feature reads events (None: all time)."""
    if spec.kind == "trend":
        return 2 * int(spec.window_days or 0)
    if spec.kind == "consistency":
        return 7 * int(spec.weeks or 0)
    if spec.kind == "first_week":
        return None
    return spec.window_days


def _event_filter(spec: FeatureSpec, ctx: _Context) -> list[exp.Expr]:
    conditions: list[exp.Expr] = []
    if spec.event_type is not None:
        conditions.append(_col("event_type", "e").eq(_lit(spec.event_type)))
    if spec.property_name is not None and spec.property_value is not None:
        found = json_text(_col("properties", "e"), spec.property_name, ctx.dialect)
        conditions.append(found.eq(_lit(spec.property_value)))
    return conditions


def _event_feature(spec: FeatureSpec, ctx: _Context) -> exp.Expr:
    time = _col("event_time", "e")
    present = time.is_(exp.null()).not_()
    matching = _event_filter(spec, ctx)
    within = [*ctx.since(time, spec.window_days), *matching]
    function = spec.function
    if spec.kind == "aggregate":
        if function in ("active_days", "active_weeks"):
            period = 86_400 if function == "active_days" else 7 * 86_400
            # Periods are counted back from the cutoff: (c - 1 day, c] is day 1.
            bucket = exp.Ceil(
                this=exp.Div(
                    this=exp.paren(ctx.seconds_since(time)), expression=exp.Literal.number(period)
                )
            )
            return exp.Count(this=exp.Distinct(expressions=[_when(_all(within, present), bucket)]))
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
    if spec.kind == "users":  # active_users; the share is computed from users
        return exp.Count(
            this=exp.Distinct(expressions=[_when(_all(within, present), _col("user_id", "e"))])
        )
    if spec.kind == "recency":
        return ctx.days_since(exp.Max(this=_when(_all(within, present), time)))
    if spec.kind == "support":
        kinds = _col("event_type", "e").isin(*[_lit(t) for t in SUPPORT_EVENT_TYPES])
        conditions = [*within, kinds]
        if function == "negative_count":
            sentiment = json_text(_col("properties", "e"), "sentiment", ctx.dialect)
            negative = exp.or_(
                _col("value", "e") < exp.Literal.number(0), sentiment.eq(_lit("negative"))
            )
            conditions.append(exp.paren(negative))
        return _count_if(exp.and_(*conditions))
    if spec.kind == "consistency":
        weeks = int(spec.weeks or 0)
        window = [*ctx.since(time, 7 * weeks), *matching]
        week = exp.Ceil(
            this=exp.Div(
                this=exp.paren(ctx.seconds_since(time)), expression=exp.Literal.number(7 * 86_400)
            )
        )
        active = exp.Count(this=exp.Distinct(expressions=[_when(exp.and_(*window), week)]))
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
    if spec.kind == "first_week":
        created = _col("created_at", "a")
        first_days = [time >= created, time < days_after(created, 7), *matching]
        # Only a week that ended before the cutoff is complete and free of leakage.
        ended = days_after(exp.Max(this=created), 7) <= ctx.cutoff
        return _case(ended, _count_if(exp.and_(*first_days)))
    raise ConfigError(f"feature {spec.name!r}: kind {spec.kind!r} does not read events")


def _events_query(specs: Sequence[FeatureSpec], ctx: _Context) -> exp.Select:
    on: list[exp.Expr] = [
        _col("account_id", "e").eq(ctx.account_id),
        _col("event_time", "e") < ctx.cutoff,
    ]
    spans = [_event_span_days(s) for s in specs]
    if all(span is not None for span in spans):
        # Every feature is windowed: the join itself skips older events.
        on.extend(ctx.since(_col("event_time", "e"), max(int(s or 0) for s in spans)))
    query = ctx.base().join(exp.to_table("events").as_("e"), on=exp.and_(*on), join_type="LEFT")
    if any(s.kind == "first_week" for s in specs):
        query = query.join(
            exp.to_table("accounts").as_("a"),
            on=_col("account_id", "a").eq(ctx.account_id),
            join_type="LEFT",
        )
    return query.select(
        *[exp.alias_(_event_feature(s, ctx), s.name, quoted=True) for s in specs]
    ).group_by(ctx.account_id, ctx.cutoff)


# -- users -----------------------------------------------------------------------------


def _users_query(specs: Sequence[FeatureSpec], ctx: _Context) -> exp.Select:
    user = _col("user_id", "u")
    created = _col("created_at", "u")
    time = _col("event_time", "e")
    # A user without created_at carries no time, so is known at every cutoff.
    known = exp.or_(created < ctx.cutoff, created.is_(exp.null()))
    on_events: list[exp.Expr] = [
        _col("account_id", "e").eq(_col("account_id", "u")),
        _col("user_id", "e").eq(user),
        time < ctx.cutoff,
    ]
    if all(s.window_days is not None for s in specs):
        on_events.extend(ctx.since(time, max(int(s.window_days or 0) for s in specs)))
    query = (
        ctx.base()
        .join(
            exp.to_table("users").as_("u"),
            on=exp.and_(_col("account_id", "u").eq(ctx.account_id), exp.paren(known)),
            join_type="LEFT",
        )
        .join(exp.to_table("events").as_("e"), on=exp.and_(*on_events), join_type="LEFT")
    )
    known_users = exp.Count(this=exp.Distinct(expressions=[user]))
    features = []
    for spec in specs:
        within = [*ctx.since(time, spec.window_days), *_event_filter(spec, ctx)]
        active = exp.Count(
            this=exp.Distinct(
                expressions=[_when(_all(within, time.is_(exp.null()).not_()), user.copy())]
            )
        )
        features.append(exp.alias_(ratio(active, known_users.copy()), spec.name, quoted=True))
    return query.select(*features).group_by(ctx.account_id, ctx.cutoff)


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
    return query.select(*features).group_by(ctx.account_id, ctx.cutoff)


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
    partition = [ctx.account_id.copy(), ctx.cutoff.copy()]
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
    outer = _Context(ctx.dialect, ctx.cutoffs_table)
    outer.account_id, outer.cutoff = _col("account_id", "t"), _col("cutoff", "t")
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
    return (
        exp.select(outer.account_id, outer.cutoff, *features)
        .from_(periods.subquery("t"))
        .group_by(outer.account_id.copy(), outer.cutoff.copy())
    )


# -- accounts --------------------------------------------------------------------------


def _accounts_query(specs: Sequence[FeatureSpec], ctx: _Context) -> exp.Select:
    created = _col("created_at", "a")
    # An account created at or after the cutoff did not exist yet: nothing of it is seen.
    exists = exp.or_(created < ctx.cutoff, created.is_(exp.null()))
    query = ctx.base().join(
        exp.to_table("accounts").as_("a"),
        on=exp.and_(_col("account_id", "a").eq(ctx.account_id), exp.paren(exists)),
        join_type="LEFT",
    )
    features = [
        exp.alias_(
            ctx.days_since(created.copy()) if s.kind == "tenure" else _col(str(s.column), "a"),
            s.name,
            quoted=True,
        )
        for s in specs
    ]
    return query.select(*features)


_BUILDERS = {
    "events": _events_query,
    "users": _users_query,
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
) -> dict[Source, exp.Select]:
    """Build one query per source table computing all its features for all cutoffs.

    Parameters
    ----------
    specs : sequence of FeatureSpec
        The features; names must be unique.
    dialect : str
        sqlglot dialect the queries are written for (``duckdb``, ``postgres``,
        ``mysql``, ``spark``); render them with ``query.sql(dialect)``.
    cutoffs_table : str
        Table holding the ``account_id`` and ``cutoff`` columns.
    window_bounds : set of int, optional
        When given, window starts are read from columns of the cutoffs table
        named by :func:`window_start_column` (``cutoff - n days``) rather than
        computed per row, and the set receives every ``n`` the queries need.

    Returns
    -------
    dict of str to sqlglot Select
        The queries by source table, each returning ``account_id``, ``cutoff``
        and one column per feature of that table.

    Raises
    ------
    ConfigError
        If two specs share a name.

    Examples
    --------
    >>> from churnwatch.features import FeatureSpec
    >>> queries = compile_features([FeatureSpec("tenure_days", "tenure")], "spark")
    >>> print(queries["accounts"].sql("spark"))  # doctest: +NORMALIZE_WHITESPACE
    SELECT `c`.`account_id`, `c`.`cutoff`, ((UNIX_MICROS(`c`.`cutoff`) -
    UNIX_MICROS(`a`.`created_at`)) / 1000000.0E0) / 86400 AS `tenure_days`
    FROM cutoffs AS c LEFT JOIN accounts AS a ON `a`.`account_id` = `c`.`account_id`
    AND (`a`.`created_at` < `c`.`cutoff` OR `a`.`created_at` IS NULL)
    """
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise ConfigError(f"feature {spec.name!r} is declared twice; names must be unique")
        seen.add(spec.name)
    ctx = _Context(dialect, cutoffs_table, window_bounds)
    queries: dict[Source, exp.Select] = {}
    for source in _SOURCE_ORDER:
        mine = [s for s in specs if s.source == source]
        if mine:
            queries[source] = _BUILDERS[source](mine, ctx)
    return queries
