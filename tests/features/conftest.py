"""A tiny hand-computed business for the feature tests.

Three accounts around one cutoff ``C`` (2024-03-01 UTC): ``a1`` with a bit of
everything, ``a2`` signed up two days before ``C``, ``a3`` with no rows at
all. Rows dated at or after ``C`` are mixed in: no feature may see them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import pyarrow as pa
import pytest

from churnwatch.features import FeatureSpec
from churnwatch.warehouse import Warehouse, arrow_schema

UTC = dt.UTC
C = dt.datetime(2024, 3, 1, tzinfo=UTC)
C0 = dt.datetime(2024, 2, 1, tzinfo=UTC)


def at(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


ACCOUNTS = [
    {
        "account_id": "a1",
        "created_at": at(2024, 1, 1),
        "plan": "pro",
        "region": "eu",
        "platform": "web",
        "referral_source": "ads",
        "csm_id": "c1",
    },
    {"account_id": "a2", "created_at": at(2024, 2, 28), "plan": "basic"},
]
USERS = [
    {"user_id": "u1", "account_id": "a1", "created_at": at(2024, 1, 1)},
    {"user_id": "u2", "account_id": "a1", "created_at": at(2024, 2, 1)},
    {"user_id": "u4", "account_id": "a1", "created_at": at(2024, 2, 10)},
    {"user_id": "u5", "account_id": "a1", "created_at": at(2024, 3, 5)},  # future
    {"user_id": "u3", "account_id": "a2", "created_at": at(2024, 2, 28)},
]
_WEB = '{"platform": "web"}'
EVENTS = [
    # a1
    {"account_id": "a1", "user_id": "u1", "event_time": at(2024, 2, 29), "event_type": "login",
     "duration_s": 60.0},
    {"account_id": "a1", "user_id": "u2", "event_time": at(2024, 2, 29, 12), "event_type": "login",
     "duration_s": 120.0},
    {"account_id": "a1", "user_id": "u1", "event_time": at(2024, 2, 20), "event_type": "session",
     "duration_s": 300.0, "properties": '{"platform": "ios"}'},
    {"account_id": "a1", "user_id": "u1", "event_time": at(2024, 1, 21), "event_type": "login",
     "properties": _WEB},
    {"account_id": "a1", "user_id": "u1", "event_time": at(2024, 1, 3),
     "event_type": "feature_use"},
    {"account_id": "a1", "user_id": "u1", "event_time": at(2024, 2, 25),
     "event_type": "support_call", "value": -1.0, "properties": '{"sentiment": "neutral"}'},
    {"account_id": "a1", "event_time": at(2024, 2, 27), "event_type": "support_ticket",
     "value": 2.0, "properties": '{"sentiment": "negative"}'},
    {"account_id": "a1", "event_time": at(2024, 2, 28), "event_type": "support_call",
     "value": 1.0, "properties": '{"sentiment": "positive"}'},
    # a2
    {"account_id": "a2", "user_id": "u3", "event_time": at(2024, 2, 28, 12),
     "event_type": "login", "properties": _WEB},
    # future: at the cutoff and after it
    {"account_id": "a1", "user_id": "u1", "event_time": C, "event_type": "login",
     "duration_s": 999.0, "properties": '{"platform": "ios"}'},
    {"account_id": "a2", "user_id": "u3", "event_time": at(2024, 3, 2), "event_type": "login"},
]  # fmt: skip
PAYMENTS = [
    {"account_id": "a1", "payment_id": "p1", "paid_at": at(2024, 1, 15), "amount": 50.0,
     "status": "succeeded"},
    {"account_id": "a1", "payment_id": "p2", "paid_at": at(2024, 2, 15), "amount": 100.0,
     "status": "failed"},
    {"account_id": "a1", "payment_id": "p3", "paid_at": at(2024, 2, 16), "amount": 100.0,
     "status": "succeeded"},
    {"account_id": "a1", "payment_id": "p4", "paid_at": at(2024, 2, 20), "amount": 100.0,
     "status": "refunded"},
    {"account_id": "a1", "payment_id": "p5", "paid_at": at(2024, 3, 2), "amount": 100.0,
     "status": "failed"},  # future
]  # fmt: skip
SUBSCRIPTIONS = [
    {"account_id": "a1", "subscription_id": "s1", "started_at": at(2024, 1, 1),
     "ended_at": at(2024, 2, 1), "mrr": 50.0, "plan": "basic", "discount": 0.0},
    {"account_id": "a1", "subscription_id": "s2", "started_at": at(2024, 2, 1), "mrr": 100.0,
     "plan": "pro", "discount": 0.1, "billing_period_months": 12.0},
    {"account_id": "a1", "subscription_id": "s3", "started_at": at(2024, 2, 10),
     "ended_at": at(2024, 2, 20), "mrr": 20.0, "plan": "addon"},
    {"account_id": "a1", "subscription_id": "s4", "started_at": at(2024, 3, 5), "mrr": 10.0,
     "plan": "addon"},  # future
    {"account_id": "a2", "subscription_id": "s5", "started_at": at(2024, 2, 28),
     "ended_at": at(2024, 3, 10), "mrr": 30.0, "plan": "basic", "discount": 0.0,
     "billing_period_months": 1.0},
]  # fmt: skip

ROWS: dict[str, list[dict[str, Any]]] = {
    "accounts": ACCOUNTS,
    "users": USERS,
    "subscriptions": SUBSCRIPTIONS,
    "payments": PAYMENTS,
    "events": EVENTS,
}


def arrow_rows(table: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as Arrow in the canonical schema of ``table`` (absent keys are null)."""
    schema = arrow_schema(table)
    return pa.Table.from_pylist([{n: r.get(n) for n in schema.names} for r in rows], schema=schema)


def load(warehouse: Warehouse, rows: dict[str, list[dict[str, Any]]] = ROWS) -> None:
    warehouse.ensure_schema()
    for table, table_rows in rows.items():
        warehouse.append(table, arrow_rows(table, table_rows))


def cutoffs_table(pairs: list[tuple[str, dt.datetime]]) -> pa.Table:
    return pa.table(
        {
            "account_id": pa.array([a for a, _ in pairs], pa.string()),
            "cutoff": pa.array([c for _, c in pairs], pa.timestamp("us", tz="UTC")),
        }
    )


def _spec(name: str, kind: str, function: str | None = None, **options: Any) -> FeatureSpec:
    return FeatureSpec.from_dict({"name": name, "kind": kind, "function": function, **options})


#: One feature of every kind and function, with its value for a1, a2, a3 at C.
GOLDEN: list[tuple[FeatureSpec, list[Any]]] = [
    (_spec("events_all", "aggregate", "count"), [8, 1, 0]),
    (_spec("events_7d", "aggregate", "count", window_days=7), [5, 1, 0]),
    (_spec("events_30d", "aggregate", "count", window_days=30), [6, 1, 0]),
    (_spec("logins_90d", "aggregate", "count", window_days=90, event_type="login"), [3, 1, 0]),
    (
        _spec("ios_events", "aggregate", "count", property_name="platform", property_value="ios"),
        [1, 0, 0],
    ),
    (_spec("duration_n_30d", "aggregate", "count", column="duration_s", window_days=30), [3, 0, 0]),
    (_spec("duration_sum_30d", "aggregate", "sum", column="duration_s", window_days=30),
     [480.0, 0.0, 0.0]),
    (_spec("duration_mean_30d", "aggregate", "mean", column="duration_s", window_days=30),
     [160.0, None, None]),
    (_spec("duration_min_30d", "aggregate", "min", column="duration_s", window_days=30),
     [60.0, None, None]),
    (_spec("duration_max_30d", "aggregate", "max", column="duration_s", window_days=30),
     [300.0, None, None]),
    (_spec("duration_std_30d", "aggregate", "std", column="duration_s", window_days=30),
     [15600**0.5, None, None]),
    (_spec("value_sum_30d", "aggregate", "sum", column="value", window_days=30), [2.0, 0.0, 0.0]),
    (_spec("active_days_7d", "aggregate", "active_days", window_days=7), [4, 1, 0]),
    (_spec("active_weeks_all", "aggregate", "active_weeks"), [4, 1, 0]),
    (_spec("active_users_30d", "users", "active_users", window_days=30), [2, 1, 0]),
    (_spec("active_share_30d", "users", "active_share", window_days=30), [2 / 3, 1.0, None]),
    (_spec("days_since_event", "recency"), [0.5, 1.5, None]),
    (_spec("days_since_session", "recency", event_type="session"), [10.0, None, None]),
    (_spec("tenure_days", "tenure"), [60.0, 2.0, None]),
    (_spec("first_week_events", "first_week"), [1, None, None]),
    (_spec("consistency_4w", "consistency", weeks=4), [0.5, 0.25, 0.0]),
    (_spec("trend_ratio_7d", "trend", "ratio", window_days=7), [5.0, None, None]),
    (_spec("trend_diff_7d", "trend", "difference", window_days=7), [4, 1, 0]),
    (_spec("trend_ratio_30d", "trend", "ratio", window_days=30), [3.0, None, None]),
    (_spec("pay_success_30d", "payments", "success_rate", window_days=30), [0.5, None, None]),
    (_spec("pay_success_all", "payments", "success_rate"), [2 / 3, None, None]),
    (_spec("failed_payments", "payments", "failed_count"), [1, 0, 0]),
    (_spec("days_since_failure", "payments", "days_since_failure"), [15.0, None, None]),
    (_spec("mrr_now", "subscription", "mrr"), [100.0, 30.0, 0.0]),
    (_spec("plan_now", "subscription", "plan"), ["pro", "basic", None]),
    (_spec("discount_now", "subscription", "discount"), [0.1, 0.0, None]),
    (_spec("billing_now", "subscription", "billing_period"), [12.0, 1.0, None]),
    (_spec("upgrades", "subscription", "upgrades"), [1, 0, 0]),
    (_spec("downgrades", "subscription", "downgrades"), [1, 0, 0]),
    (_spec("support_30d", "support", "count", window_days=30), [3, 0, 0]),
    (_spec("negative_support_30d", "support", "negative_count", window_days=30), [2, 0, 0]),
    (_spec("plan", "attribute", column="plan"), ["pro", "basic", None]),
    (_spec("region", "attribute", column="region"), ["eu", None, None]),
    (_spec("has_csm", "attribute", "is_set", column="csm_id"), [1, 0, None]),
]  # fmt: skip
SPECS = [spec for spec, _ in GOLDEN]


class Golden:
    """The golden business and its helpers, handed to tests by the ``golden`` fixture."""

    C = C
    C0 = C0
    rows = ROWS
    specs = SPECS
    expected: ClassVar[dict[str, list[Any]]] = {spec.name: values for spec, values in GOLDEN}
    arrow_rows = staticmethod(arrow_rows)
    load = staticmethod(load)
    cutoffs = staticmethod(cutoffs_table)


@pytest.fixture(scope="session")
def golden() -> Golden:
    """The golden business: rows, specs, expected values and loaders."""
    return Golden()
