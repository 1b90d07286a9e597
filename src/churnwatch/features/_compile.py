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

from sqlglot import exp

from churnwatch.errors import ConfigError
from churnwatch.features._context import (
    INTERVAL_COLUMN,
    PREVIOUS_CUTOFF_COLUMN,
    ROW_COLUMN,
    _case,
    _col,
    _Context,
    _count_if,
    _lit,
    _when,
    window_start_column,
)
from churnwatch.features._events import (
    _event_family,
    _event_filter,
    _events_before_cutoff,
    _events_query,
    _two_step_distinct,
)
from churnwatch.features._history import _history_query
from churnwatch.features._portable import ratio
from churnwatch.features._spec import FeatureSpec, Source

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
#: Column of the ``users_known`` query: users of the account known at the cutoff.
KNOWN_USERS_COLUMN = "_known_users"


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
            exp.alias_(_col("billing_period_months", "s"), "billing_period", quoted=True),
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
        elif function in ("plan", "discount", "billing_period"):
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
        exp.alias_(_when(exists.copy(), _account_value(s, ctx, created)), s.name, quoted=True)
        for s in specs
    ]
    return query.select(*features)


def _account_value(spec: FeatureSpec, ctx: _Context, created: exp.Expr) -> exp.Expr:
    if spec.kind == "tenure":
        return ctx.days_since(created.copy())
    column = _col(str(spec.column), "a")
    if spec.function == "is_set":
        # Unknown for an account with no row (as every attribute is), else 0 or 1.
        return exp.Case(
            ifs=[
                exp.If(this=_col("account_id", "a").is_(exp.null()), true=exp.null()),
                exp.If(this=column.is_(exp.null()), true=exp.Literal.number(0)),
            ],
            default=exp.Literal.number(1),
        )
    return column


_BUILDERS: dict[str, Callable[[Sequence[FeatureSpec], _Context], exp.Select]] = {
    "payments": _payments_query,
    "subscriptions": _subscriptions_query,
    "accounts": _accounts_query,
}


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
