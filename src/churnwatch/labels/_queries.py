"""The label queries: one sqlglot expression per kind, every cutoff at once.

Each query answers one row per candidate ``(account_id, cutoff)`` with

- ``_exists``: 1 when the account was created before the cutoff;
- ``_at_risk``: 1 when it had not already churned at the cutoff (it is
  inside an active period, had a recent event, was enabled, was not yet
  paying ...);
- ``_in_lead``: 1 when the outcome already happened during the lead time
  ``[cutoff, cutoff + lead)``, before the window opens;
- ``_value_<i>``: the label over horizon ``i`` (shortest first).

Censoring is left to the caller, which knows the observation end. Only
constant day counts, column names and the user's event types / product enter
the SQL, always as sqlglot literals and identifiers.
"""

from __future__ import annotations

from sqlglot import exp

from churnwatch.labels._spec import LabelSpec

__all__ = ["CANDIDATES", "label_query", "subscription_periods"]

#: Name of the candidates CTE every query starts from.
CANDIDATES = "cw_candidates"

# A period still running has no end: it is given one far past any data, so
# that window arithmetic needs no NULL cases (MySQL's DATETIME stops at 9999).
_FAR_FUTURE = "3000-01-01 00:00:00"


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _plus_days(expr: exp.Expr, days: int) -> exp.Expr:
    if days == 0:
        return expr
    return exp.DateAdd(this=expr, expression=exp.Literal.number(days), unit=exp.var("DAY"))


def _flag(condition: exp.Expr) -> exp.Expr:
    """1 where ``condition`` holds, else 0 (also when it is NULL)."""
    return exp.Case(ifs=[exp.If(this=condition, true=exp.Literal.number(1))]).else_(
        exp.Literal.number(0)
    )


def _between(value: exp.Expr, start: exp.Expr, end: exp.Expr) -> exp.Expr:
    """``start <= value < end``: half-open, as every window is."""
    return exp.and_(value >= start, value < end)


def _table(name: str, alias: str) -> exp.Table:
    table = exp.to_table(name)
    table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    return table


def candidates(cutoffs_table: str | None, days_after_signup: int | None) -> exp.Select:
    """Every ``(account_id, cutoff, created_at)`` the schedule asks about."""
    if cutoffs_table is not None:
        return (
            exp.select(_col("account_id", "a"), _col("cutoff", "k"), _col("created_at", "a"))
            .from_(_table("accounts", "a"))
            .join(_table(cutoffs_table, "k"), join_type="cross")
        )
    return (
        exp.select(
            _col("account_id", "a"),
            exp.alias_(_plus_days(_col("created_at", "a"), days_after_signup or 0), "cutoff"),
            _col("created_at", "a"),
        )
        .from_(_table("accounts", "a"))
        .where(_col("created_at", "a").is_(exp.null()).not_())
    )


def _window(spec: LabelSpec, index: int) -> tuple[exp.Expr, exp.Expr]:
    cutoff = _col("cutoff", "c")
    return (
        _plus_days(cutoff, spec.lead_days),
        _plus_days(cutoff, spec.lead_days + spec.horizon_days[index]),
    )


def _outputs(at_risk: exp.Expr, in_lead: exp.Expr, values: list[exp.Expr]) -> list[exp.Expr]:
    exists = exp.and_(
        _col("created_at", "c").is_(exp.null()).not_(),
        _col("created_at", "c") < _col("cutoff", "c"),
    )
    return [
        _col("account_id", "c"),
        _col("cutoff", "c"),
        exp.alias_(_flag(exists), "_exists"),
        exp.alias_(at_risk, "_at_risk"),
        exp.alias_(in_lead, "_in_lead"),
        *[exp.alias_(value, f"_value_{i}") for i, value in enumerate(values)],
    ]


def _same_candidate(alias: str) -> exp.Expr:
    return exp.and_(
        _col("account_id", alias).eq(_col("account_id", "c")),
        _col("cutoff", alias).eq(_col("cutoff", "c")),
    )


def _event_counts(spec: LabelSpec, lookback_days: int) -> exp.Select:
    """Per candidate: events before the cutoff (lookback) and in each window."""
    cutoff = _col("cutoff", "c")
    when = _col("event_time", "e")
    on = exp.and_(
        _col("account_id", "e").eq(_col("account_id", "c")),
        when >= _plus_days(cutoff, -lookback_days),
        when < _plus_days(cutoff, spec.lead_days + spec.horizon_days[-1]),
    )
    if spec.event_types is not None:
        on = exp.and_(
            on, _col("event_type", "e").isin(*[exp.Literal.string(t) for t in spec.event_types])
        )
    sums = [
        exp.alias_(exp.func("SUM", _flag(_between(when, *_window(spec, i)))), f"n_{i}")
        for i in range(len(spec.horizon_days))
    ]
    before = exp.func("SUM", _flag(when < cutoff))
    return (
        exp.select(
            _col("account_id", "c"), _col("cutoff", "c"), exp.alias_(before, "n_before"), *sums
        )
        .from_(_table(CANDIDATES, "c"))
        .join(_table("events", "e"), on=on, join_type="inner")
        .group_by(_col("account_id", "c"), _col("cutoff", "c"))
    )


def _inactivity(spec: LabelSpec, base: exp.Select) -> exp.Select:
    def count(name: str) -> exp.Expr:
        return exp.func("COALESCE", _col(name, "h"), exp.Literal.number(0))

    values = [_flag(count(f"n_{i}").eq(0)) for i in range(len(spec.horizon_days))]
    if spec.kind == "activity":
        values = [count(f"n_{i}") for i in range(len(spec.horizon_days))]
        at_risk: exp.Expr = exp.Literal.number(1)
    else:
        at_risk = _flag(count("n_before") > 0)
    lookback = spec.inactivity_days if spec.kind == "inactivity" else 0
    return (
        base.with_("cw_hits", as_=_event_counts(spec, lookback))
        .select(*_outputs(at_risk, exp.Literal.number(0), values))
        .from_(_table(CANDIDATES, "c"))
        .join(_table("cw_hits", "h"), on=_same_candidate("h"), join_type="left")
    )


def _revenue(spec: LabelSpec, base: exp.Select) -> exp.Select:
    cutoff = _col("cutoff", "c")
    when = _col("paid_at", "p")
    on = exp.and_(
        _col("account_id", "p").eq(_col("account_id", "c")),
        _col("status", "p").eq(exp.Literal.string("succeeded")),
        when >= _plus_days(cutoff, spec.lead_days),
        when < _plus_days(cutoff, spec.lead_days + spec.horizon_days[-1]),
    )
    sums = [
        exp.alias_(
            exp.func(
                "SUM",
                exp.Case(
                    ifs=[exp.If(this=_between(when, *_window(spec, i)), true=_col("amount", "p"))]
                ).else_(exp.Literal.number(0)),
            ),
            f"r_{i}",
        )
        for i in range(len(spec.horizon_days))
    ]
    paid = (
        exp.select(_col("account_id", "c"), _col("cutoff", "c"), *sums)
        .from_(_table(CANDIDATES, "c"))
        .join(_table("payments", "p"), on=on, join_type="inner")
        .group_by(_col("account_id", "c"), _col("cutoff", "c"))
    )
    values: list[exp.Expr] = [
        exp.func("COALESCE", _col(f"r_{i}", "r"), exp.Literal.number(0))
        for i in range(len(spec.horizon_days))
    ]
    return (
        base.with_("cw_paid", as_=paid)
        .select(*_outputs(exp.Literal.number(1), exp.Literal.number(0), values))
        .from_(_table(CANDIDATES, "c"))
        .join(_table("cw_paid", "r"), on=_same_candidate("r"), join_type="left")
    )


def subscription_periods(
    grace_days: int, *, started_by: exp.Expr | None = None
) -> list[tuple[str, exp.Select]]:
    """The CTEs that chain subscriptions into active periods, the last one ``cw_periods``.

    ``cw_periods`` holds ``account_id, period_start, period_end``: a
    subscription starting within ``grace_days`` of the end of every earlier
    one of its account continues that period. A period still running ends
    far in the future. ``started_by`` keeps only subscriptions starting
    at or before that instant (survival curves stop reading at the
    observation end; labels read them all).

    Examples
    --------
    >>> [name for name, _ in subscription_periods(7)]
    ['cw_subs', 'cw_opens', 'cw_numbered', 'cw_periods']
    """
    far = exp.cast(exp.Literal.string(_FAR_FUTURE), exp.DataType.build("timestamp"))
    by_account = [_col("account_id")]
    order = exp.Order(
        expressions=[exp.Ordered(this=_col("started_at")), exp.Ordered(this=_col("ended_at"))]
    )
    subs = exp.select(
        _col("account_id"),
        _col("started_at"),
        exp.alias_(exp.func("COALESCE", _col("ended_at", "s"), far), "ended_at"),
    ).from_(_table("subscriptions", "s"))
    if started_by is not None:
        subs = subs.where(_col("started_at", "s") <= started_by)
    # Gaps and islands: a subscription opens a new period when it starts
    # more than grace_days after every earlier subscription of the account ended.
    previous_end = exp.Window(
        this=exp.func("MAX", _col("ended_at")),
        partition_by=by_account,
        order=order.copy(),
        spec=exp.WindowSpec(
            kind="ROWS",
            start="UNBOUNDED",
            start_side="PRECEDING",
            end=exp.Literal.number(1),
            end_side="PRECEDING",
        ),
    )
    opens = exp.select(
        _col("account_id"),
        _col("started_at"),
        _col("ended_at"),
        exp.alias_(
            exp.Case(
                ifs=[
                    exp.If(
                        this=_col("started_at") <= _plus_days(previous_end, grace_days),
                        true=exp.Literal.number(0),
                    )
                ]
            ).else_(exp.Literal.number(1)),
            "opens",
        ),
    ).from_("cw_subs")
    numbered = exp.select(
        _col("account_id"),
        _col("started_at"),
        _col("ended_at"),
        exp.alias_(
            exp.Window(
                this=exp.func("SUM", _col("opens")),
                partition_by=by_account,
                order=order.copy(),
                spec=exp.WindowSpec(
                    kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW"
                ),
            ),
            "period",
        ),
    ).from_("cw_opens")
    periods = (
        exp.select(
            _col("account_id"),
            exp.alias_(exp.func("MIN", _col("started_at")), "period_start"),
            exp.alias_(exp.func("MAX", _col("ended_at")), "period_end"),
        )
        .from_("cw_numbered")
        .group_by(_col("account_id"), _col("period"))
    )
    return [
        ("cw_subs", subs),
        ("cw_opens", opens),
        ("cw_numbered", numbered),
        ("cw_periods", periods),
    ]


def _subscription(spec: LabelSpec, base: exp.Select) -> exp.Select:
    for name, query in subscription_periods(spec.grace_days):
        base = base.with_(name, as_=query)
    cutoff = _col("cutoff", "c")
    end = _col("period_end", "p")
    # Active at the cutoff: the period began before it and ends after it. A
    # period ending exactly at the cutoff has churned already (half-open).
    on = exp.and_(
        _col("account_id", "p").eq(_col("account_id", "c")),
        _col("period_start", "p") < cutoff,
        end > cutoff,
    )
    at_risk = _flag(end.is_(exp.null()).not_())
    in_lead = _flag(end < _plus_days(cutoff, spec.lead_days))
    values = [_flag(end < _window(spec, i)[1]) for i in range(len(spec.horizon_days))]
    return (
        base.select(*_outputs(at_risk, in_lead, values))
        .from_(_table(CANDIDATES, "c"))
        .join(_table("cw_periods", "p"), on=on, join_type="left")
    )


def _conversion(spec: LabelSpec, base: exp.Select) -> exp.Select:
    first_paid = (
        exp.select(
            _col("account_id"), exp.alias_(exp.func("MIN", _col("started_at")), "first_paid")
        )
        .from_("subscriptions")
        .where(_col("mrr") > exp.Literal.number(0))
        .group_by(_col("account_id"))
    )
    cutoff = _col("cutoff", "c")
    first = _col("first_paid", "f")
    at_risk = _flag(exp.or_(first.is_(exp.null()), first >= cutoff))
    in_lead = _flag(_between(first, cutoff, _plus_days(cutoff, spec.lead_days)))
    values = [_flag(_between(first, *_window(spec, i))) for i in range(len(spec.horizon_days))]
    return (
        base.with_("cw_first_paid", as_=first_paid)
        .select(*_outputs(at_risk, in_lead, values))
        .from_(_table(CANDIDATES, "c"))
        .join(
            _table("cw_first_paid", "f"),
            on=_col("account_id", "f").eq(_col("account_id", "c")),
            join_type="left",
        )
    )


def _adoption(spec: LabelSpec, base: exp.Select) -> exp.Select:
    product = exp.func("COALESCE", _col("product"), exp.Literal.string(""))
    previous = exp.Window(
        this=exp.func("LAG", _col("is_enabled")),
        partition_by=[_col("account_id"), product.copy()],
        order=exp.Order(expressions=[exp.Ordered(this=_col("snapshot_date"))]),
    )
    snaps = exp.select(
        _col("account_id"),
        exp.alias_(product, "product"),
        # A snapshot dated d tells the state from d's midnight (UTC) on.
        exp.alias_(exp.cast(_col("snapshot_date"), exp.DataType.build("timestamp")), "seen_at"),
        exp.alias_(_flag(_col("is_enabled").eq(exp.true())), "enabled"),
        exp.alias_(_flag(previous.eq(exp.true())), "was_enabled"),
    ).from_("adoption_snapshots")
    if spec.product is not None:
        snaps = snaps.where(_col("product").eq(exp.Literal.string(spec.product)))
    cutoff = _col("cutoff", "c")
    seen = _col("seen_at", "s")
    latest = exp.Window(
        this=exp.func("ROW_NUMBER"),
        partition_by=[_col("account_id", "c"), cutoff.copy(), _col("product", "s")],
        order=exp.Order(expressions=[exp.Ordered(this=seen.copy(), desc=True)]),
    )
    last_before = (
        exp.select(
            _col("account_id", "c"),
            _col("cutoff", "c"),
            _col("enabled", "s"),
            exp.alias_(latest, "recency"),
        )
        .from_(_table(CANDIDATES, "c"))
        .join(
            _table("cw_snaps", "s"),
            on=exp.and_(_col("account_id", "s").eq(_col("account_id", "c")), seen < cutoff),
            join_type="inner",
        )
    )
    enabled = (
        exp.select(
            _col("account_id"),
            _col("cutoff"),
            exp.alias_(exp.func("MAX", _col("enabled")), "is_on"),
        )
        .from_("cw_last_before")
        .where(_col("recency").eq(1))
        .group_by(_col("account_id"), _col("cutoff"))
    )
    turned_off = exp.and_(_col("was_enabled", "s").eq(1), _col("enabled", "s").eq(0))
    window_sums = [
        exp.alias_(exp.func("MAX", _flag(_between(seen, *_window(spec, i)))), f"off_{i}")
        for i in range(len(spec.horizon_days))
    ]
    offs = (
        exp.select(
            _col("account_id", "c"),
            _col("cutoff", "c"),
            exp.alias_(
                exp.func("MAX", _flag(_between(seen, cutoff, _plus_days(cutoff, spec.lead_days)))),
                "off_lead",
            ),
            *window_sums,
        )
        .from_(_table(CANDIDATES, "c"))
        .join(
            _table("cw_snaps", "s"),
            on=exp.and_(
                _col("account_id", "s").eq(_col("account_id", "c")),
                turned_off,
                seen >= cutoff,
                seen < _plus_days(cutoff, spec.lead_days + spec.horizon_days[-1]),
            ),
            join_type="inner",
        )
        .group_by(_col("account_id", "c"), _col("cutoff", "c"))
    )

    def found(name: str) -> exp.Expr:
        return _flag(_col(name, "o").eq(1))

    return (
        base.with_("cw_snaps", as_=snaps)
        .with_("cw_last_before", as_=last_before)
        .with_("cw_enabled", as_=enabled)
        .with_("cw_offs", as_=offs)
        .select(
            *_outputs(
                _flag(_col("is_on", "n").eq(1)),
                found("off_lead"),
                [found(f"off_{i}") for i in range(len(spec.horizon_days))],
            )
        )
        .from_(_table(CANDIDATES, "c"))
        .join(_table("cw_enabled", "n"), on=_same_candidate("n"), join_type="left")
        .join(_table("cw_offs", "o"), on=_same_candidate("o"), join_type="left")
    )


_BUILDERS = {
    "inactivity": _inactivity,
    "activity": _inactivity,
    "revenue": _revenue,
    "subscription": _subscription,
    "conversion": _conversion,
    "adoption": _adoption,
}


def label_query(
    spec: LabelSpec, *, cutoffs_table: str | None, days_after_signup: int | None
) -> exp.Select:
    """The one query that labels every candidate of the schedule.

    Parameters
    ----------
    spec : LabelSpec
        What to label.
    cutoffs_table : str, optional
        A table with one ``cutoff`` column: fixed cutoffs shared by all accounts.
    days_after_signup : int, optional
        Used when ``cutoffs_table`` is ``None``: each account's cutoff is its
        ``created_at`` plus this many days.

    Examples
    --------
    >>> sql = label_query(LabelSpec("conversion"), cutoffs_table="k", days_after_signup=None)
    >>> "first_paid" in sql.sql("postgres")
    True
    """
    base = exp.select().with_(CANDIDATES, as_=candidates(cutoffs_table, days_after_signup))
    return _BUILDERS[spec.kind](spec, base)
