"""Point-in-time properties: future rows and row order change no feature.

The golden business is loaded into a fresh in-memory DuckDB per example, with
generated rows dated at or after the cutoff added (or its rows shuffled), and
every feature must equal the baseline.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnwatch.features import compute_features
from churnwatch.warehouse import connect

ACCOUNT_IDS = ("a1", "a2", "a3", "a9")
USER_IDS = ("u1", "u2", "u3", "u4", None)
CUTOFF = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
EXAMPLES = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# An instant at or after the cutoff: exactly at it, or up to a year later.
future = st.one_of(
    st.just(CUTOFF),
    st.integers(min_value=0, max_value=365 * 86_400 * 1_000_000).map(
        lambda micros: CUTOFF + dt.timedelta(microseconds=micros)
    ),
)
maybe_float = st.one_of(st.none(), st.floats(-5, 5, allow_nan=False).map(lambda v: round(v, 2)))
properties = st.sampled_from(
    [
        None,
        '{"platform": "ios"}',
        '{"sentiment": "negative"}',
        '{"sentiment": "positive"}',
        "{}",
    ]
)
event = st.fixed_dictionaries(
    {
        "account_id": st.sampled_from(ACCOUNT_IDS),
        "user_id": st.sampled_from(USER_IDS),
        "event_time": future,
        "event_type": st.sampled_from(
            ["login", "session", "feature_use", "support_call", "support_ticket"]
        ),
        "duration_s": st.one_of(st.none(), st.floats(0, 5000).map(lambda v: round(v, 1))),
        "value": maybe_float,
        "properties": properties,
    }
)
payment = st.fixed_dictionaries(
    {
        "account_id": st.sampled_from(ACCOUNT_IDS),
        "payment_id": st.uuids().map(str),
        "paid_at": future,
        "amount": st.just(10.0),
        "status": st.sampled_from(["succeeded", "failed", "refunded"]),
    }
)
subscription = st.builds(
    lambda account, started, days, mrr, plan: {
        "account_id": account,
        "subscription_id": f"f{started.timestamp()}{mrr}",
        "started_at": started,
        "ended_at": None if days is None else started + dt.timedelta(days=days),
        "mrr": mrr,
        "plan": plan,
        "discount": 0.5,
    },
    st.sampled_from(ACCOUNT_IDS),
    future,
    st.one_of(st.none(), st.integers(0, 60)),
    st.sampled_from([5.0, 500.0]),
    st.sampled_from(["basic", "pro"]),
)
user = st.builds(
    lambda account, created, n: {"user_id": f"f{n}", "account_id": account, "created_at": created},
    st.sampled_from(ACCOUNT_IDS),
    future,
    st.integers(0, 10**9),
)
new_account = st.builds(
    lambda created: {"account_id": "a9", "created_at": created, "plan": "enterprise"}, future
)


def _features(golden: Any, rows: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    pairs = [(account, CUTOFF) for account in ACCOUNT_IDS]
    with connect("duckdb:///:memory:") as warehouse:
        golden.load(warehouse, rows)
        frame: pa.Table = compute_features(warehouse, golden.cutoffs(pairs), golden.specs)
    records: list[dict[str, Any]] = frame.to_pylist()
    return records


_BASELINE: list[list[dict[str, Any]]] = []


def _baseline(golden: Any) -> list[dict[str, Any]]:
    """The golden business's features, computed once per session."""
    if not _BASELINE:
        _BASELINE.append(_features(golden, golden.rows))
    return _BASELINE[0]


def _equal(left: list[dict[str, Any]], right: list[dict[str, Any]]) -> bool:
    for a, b in zip(left, right, strict=True):
        for name, value in a.items():
            other = b[name]
            if isinstance(value, float) and isinstance(other, float):
                if not math.isclose(value, other, rel_tol=1e-9, abs_tol=1e-9):
                    return False
            elif value != other:
                return False
    return True


@EXAMPLES
@given(
    events=st.lists(event, max_size=8),
    payments=st.lists(payment, max_size=3),
    subscriptions=st.lists(subscription, max_size=3),
    users=st.lists(user, max_size=3, unique_by=lambda u: u["user_id"]),
    accounts=st.lists(new_account, max_size=1),
)
def test_rows_at_or_after_the_cutoff_change_no_feature(
    golden: Any,
    events: list[dict[str, Any]],
    payments: list[dict[str, Any]],
    subscriptions: list[dict[str, Any]],
    users: list[dict[str, Any]],
    accounts: list[dict[str, Any]],
) -> None:
    baseline = _baseline(golden)
    extra = {
        "accounts": accounts,
        "users": users,
        "subscriptions": subscriptions,
        "payments": payments,
        "events": events,
    }
    with_future = {table: [*rows, *extra[table]] for table, rows in golden.rows.items()}
    assert _equal(_features(golden, with_future), baseline)


@EXAMPLES
@given(data=st.data())
def test_row_order_changes_nothing(golden: Any, data: st.DataObject) -> None:
    baseline = _baseline(golden)
    shuffled = {
        table: data.draw(st.permutations(rows), label=table) for table, rows in golden.rows.items()
    }
    assert _equal(_features(golden, shuffled), baseline)
