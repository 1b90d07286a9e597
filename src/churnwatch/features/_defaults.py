"""The default feature set, generated from what the warehouse holds.

:func:`default_features` looks at which canonical tables have rows, which
event types are most frequent and which optional columns are filled, and
declares the features known to predict churn for such data: activity counts
per type over 7, 30 and 90 days, recency, velocity trends, weekly
consistency, first-week activation, tenure, payment failures, subscription
changes, support sentiment and the account's categorical attributes.
:func:`merge_features` then adds, overrides or drops features by name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from sqlglot import exp

from churnwatch.errors import FeatureError
from churnwatch.features._spec import ATTRIBUTE_COLUMNS, SUPPORT_EVENT_TYPES, FeatureSpec
from churnwatch.warehouse import Warehouse

__all__ = ["default_features", "merge_features"]

_ACTIVITY_WINDOWS_DAYS = (7, 30, 90)
#: Attributes worth a categorical (names and CSM ids identify, not describe).
_DEFAULT_ATTRIBUTES = tuple(c for c in ATTRIBUTE_COLUMNS if c not in ("name", "csm_id"))


def _slug(text: str, limit: int = 24) -> str:
    """A feature-name fragment of an event type: ``"Page View!"`` -> ``"page_view"``."""
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:limit].strip("_")
    return slug or "other"


def _filled(warehouse: Warehouse, table: str, columns: Sequence[str]) -> dict[str, int]:
    """Number of non-null values of each column of ``table``, in one query."""
    query = exp.select(
        *[exp.alias_(exp.Count(this=exp.column(c, quoted=True)), c, quoted=True) for c in columns]
    ).from_(table)
    row = warehouse.query(query).to_pylist()[0]
    return {c: int(row[c] or 0) for c in columns}


def _top_event_types(warehouse: Warehouse, limit: int) -> list[str]:
    count = exp.Count(this=exp.Star())
    query = (
        exp.select(exp.column("event_type", quoted=True), exp.alias_(count, "n", quoted=True))
        .from_("events")
        .group_by(exp.column("event_type", quoted=True))
        .order_by(exp.Ordered(this=count.copy(), desc=True), exp.column("event_type", quoted=True))
        .limit(limit)
    )
    return [str(t) for t in warehouse.query(query).column("event_type").to_pylist()]


def default_features(warehouse: Warehouse, top_event_types: int = 5) -> list[FeatureSpec]:
    """Declare a strong feature set for the data in ``warehouse``.

    Parameters
    ----------
    warehouse : Warehouse
        Holds the canonical tables (see :meth:`Warehouse.ensure_schema`).
    top_event_types : int
        Per-type features are declared for this many most frequent event types.

    Returns
    -------
    list of FeatureSpec
        Event activity, recency, trends and consistency when there are
        events; value and duration aggregates when those columns are filled;
        active-user share when there are users; payment, subscription and
        support features when those rows exist; tenure and attributes of
        accounts.

    Examples
    --------
    >>> from churnwatch.warehouse import connect
    >>> with connect("duckdb:///:memory:") as wh:
    ...     wh.ensure_schema()
    ...     [s.name for s in default_features(wh)]
    ['tenure_days']
    """
    if top_event_types < 0:
        raise FeatureError(f"top_event_types must be 0 or more, not {top_event_types}")
    specs: list[FeatureSpec] = [FeatureSpec("tenure_days", "tenure")]
    accounts = _filled(warehouse, "accounts", (*_DEFAULT_ATTRIBUTES, "csm_id"))
    specs += [
        FeatureSpec(column, "attribute", column=column)
        for column in _DEFAULT_ATTRIBUTES
        if accounts[column]
    ]
    if accounts["csm_id"]:
        # Which manager owns an account is an id, not a signal; whether one does is.
        specs.append(FeatureSpec("has_csm", "attribute", "is_set", column="csm_id"))
    events = _filled(warehouse, "events", ("event_time", "user_id", "value", "duration_s"))
    if events["event_time"]:
        specs += _activity_features(warehouse, events, top_event_types)
        if events["user_id"] and warehouse.count("users"):
            specs.append(
                FeatureSpec("active_user_share_30d", "users", "active_share", window_days=30)
            )
    if warehouse.count("payments"):
        specs += [
            FeatureSpec("payment_success_rate_90d", "payments", "success_rate", window_days=90),
            FeatureSpec("failed_payments_90d", "payments", "failed_count", window_days=90),
            FeatureSpec("failed_payments_all", "payments", "failed_count"),
            FeatureSpec("days_since_failed_payment", "payments", "days_since_failure"),
        ]
    if warehouse.count("subscriptions"):
        specs += [
            FeatureSpec("current_mrr", "subscription", "mrr"),
            FeatureSpec("current_plan", "subscription", "plan"),
            FeatureSpec("current_discount", "subscription", "discount"),
            FeatureSpec("upgrades", "subscription", "upgrades"),
            FeatureSpec("downgrades", "subscription", "downgrades"),
        ]
        if _filled(warehouse, "subscriptions", ("billing_period_months",))["billing_period_months"]:
            specs.append(FeatureSpec("billing_period_months", "subscription", "billing_period"))
    return specs


def _activity_features(
    warehouse: Warehouse, filled: dict[str, int], top_event_types: int
) -> list[FeatureSpec]:
    specs = [
        *[
            FeatureSpec(f"events_{days}d", "aggregate", "count", window_days=days)
            for days in _ACTIVITY_WINDOWS_DAYS
        ],
        FeatureSpec("events_all", "aggregate", "count"),
        FeatureSpec("active_days_30d", "aggregate", "active_days", window_days=30),
        FeatureSpec("active_weeks_90d", "aggregate", "active_weeks", window_days=90),
        FeatureSpec("days_since_last_event", "recency"),
        FeatureSpec("events_trend_ratio_30d", "trend", "ratio", window_days=30),
        FeatureSpec("events_trend_diff_30d", "trend", "difference", window_days=30),
        FeatureSpec("events_trend_ratio_7d", "trend", "ratio", window_days=7),
        FeatureSpec("weekly_consistency_8w", "consistency", weeks=8),
        FeatureSpec("first_week_events", "first_week"),
    ]
    if filled["user_id"]:
        specs.append(FeatureSpec("active_users_30d", "users", "active_users", window_days=30))
    for column in ("duration_s", "value"):
        if filled[column]:
            specs += [
                FeatureSpec(f"{column}_sum_30d", "aggregate", "sum", column, window_days=30),
                FeatureSpec(f"{column}_mean_30d", "aggregate", "mean", column, window_days=30),
            ]
    types = _top_event_types(warehouse, top_event_types)
    used: set[str] = set()
    for event_type in types:
        slug = _slug(event_type)
        while slug in used:
            slug += "_"
        used.add(slug)
        specs += [
            FeatureSpec(
                f"{slug}_{days}d", "aggregate", "count", window_days=days, event_type=event_type
            )
            for days in _ACTIVITY_WINDOWS_DAYS
        ]
        specs.append(FeatureSpec(f"days_since_{slug}", "recency", event_type=event_type))
        specs.append(
            FeatureSpec(
                f"{slug}_trend_ratio_30d", "trend", "ratio", window_days=30, event_type=event_type
            )
        )
    present = _top_event_types(warehouse, 1_000)
    if any(t in SUPPORT_EVENT_TYPES for t in present):
        specs += [
            FeatureSpec("support_contacts_90d", "support", "count", window_days=90),
            FeatureSpec("negative_support_90d", "support", "negative_count", window_days=90),
        ]
    return specs


def merge_features(
    base: Iterable[FeatureSpec],
    add: Iterable[FeatureSpec] = (),
    drop: Iterable[str] = (),
) -> list[FeatureSpec]:
    """Add, override (same name) and drop features of a feature set.

    Parameters
    ----------
    base : iterable of FeatureSpec
        The starting set, such as :func:`default_features`.
    add : iterable of FeatureSpec
        Features to add; one named like a base feature replaces it in place.
    drop : iterable of str
        Names of features to leave out.

    Raises
    ------
    FeatureError
        If a dropped name is not in the set.

    Examples
    --------
    >>> base = [FeatureSpec("tenure_days", "tenure"), FeatureSpec("plan", "attribute",
    ...                                                           column="plan")]
    >>> merged = merge_features(base, add=[FeatureSpec("events_7d", "aggregate", "count",
    ...                                                window_days=7)], drop=["plan"])
    >>> [s.name for s in merged]
    ['tenure_days', 'events_7d']
    """
    result = {s.name: s for s in base}
    for spec in add:
        result[spec.name] = spec
    for name in drop:
        if name not in result:
            raise FeatureError(
                f"cannot drop feature {name!r}: no such feature "
                f"(known: {', '.join(sorted(result)) or 'none'})"
            )
        del result[name]
    return list(result.values())
