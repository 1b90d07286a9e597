"""Invariants of point-in-time labels, checked on generated data (hypothesis).

- Rows outside what a label may look at change no label and no example:
  for subscription churn, subscriptions that end more than ``grace_days``
  before the cutoff or start ``grace_days`` or more after the window closes;
  for inactivity churn, events in the lead time, after the window, or before
  the look-back.
- The order rows were loaded in changes nothing.

Each example runs on a fresh in-memory DuckDB warehouse; the golden tests
prove DuckDB agrees with the other engines.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnwatch.labels import CutoffSchedule, LabelSpec, LabelTable, make_labels
from churnwatch.warehouse import arrow_schema, connect

UTC = dt.UTC
START = dt.datetime(2024, 1, 1, tzinfo=UTC)
CUTOFF_DAY = 60
ACCOUNTS = ("a", "b", "c")
GRACE = 7
HORIZONS = (10, 20)
OBSERVATION_END = "2025-01-01"
SETTINGS = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def at(days: float) -> dt.datetime:
    return START + dt.timedelta(days=days)


def run(spec: LabelSpec, table: str, rows: list[dict[str, Any]]) -> LabelTable:
    """Label the rows at day 60 on a fresh warehouse."""
    with connect("duckdb:///:memory:") as wh:
        wh.ensure_schema()
        columns = ("account_id", "created_at")
        schema = pa.schema([arrow_schema("accounts").field(n) for n in columns])
        created = {"account_id": list(ACCOUNTS), "created_at": [START] * len(ACCOUNTS)}
        wh.append("accounts", pa.table(created, schema=schema))
        if rows:
            schema = pa.schema([arrow_schema(table).field(n) for n in rows[0]])
            wh.append(table, pa.Table.from_pylist(rows, schema=schema))
        return make_labels(
            wh, spec, CutoffSchedule.explicit([at(CUTOFF_DAY)]), observation_end=OBSERVATION_END
        )


def subscription(account: str, start: float, length: float | None) -> dict[str, Any]:
    end = None if length is None else at(start + length)
    return {"account_id": account, "started_at": at(start), "ended_at": end}


accounts = st.sampled_from(ACCOUNTS)
lengths = st.one_of(st.none(), st.integers(1, 60).map(float))
subscriptions = st.lists(
    st.builds(subscription, accounts, st.integers(0, 120).map(float), lengths), max_size=8
)
leads = st.sampled_from([0, 5])


def window_end(lead: int) -> int:
    return CUTOFF_DAY + lead + max(HORIZONS)


@st.composite
def outside_subscriptions(draw: st.DrawFn, lead: int) -> list[dict[str, Any]]:
    """Subscriptions a label at day 60 must not see."""
    early = st.builds(
        lambda a, start, length: subscription(a, start, length),
        accounts,
        st.integers(0, 20).map(float),
        # ends before day 60 - grace, strictly
        st.integers(1, CUTOFF_DAY - GRACE - 21).map(float),
    )
    late = st.builds(
        subscription,
        accounts,
        st.integers(window_end(lead) + GRACE, window_end(lead) + GRACE + 60).map(float),
        lengths,
    )
    return draw(st.lists(st.one_of(early, late), min_size=1, max_size=4))


def assert_same(left: LabelTable, right: LabelTable) -> None:
    assert left.frame.equals(right.frame), (left.frame.to_pylist(), right.frame.to_pylist())
    assert left.counts == right.counts


@SETTINGS
@given(base=subscriptions, lead=leads, data=st.data())
def test_subscriptions_outside_the_window_change_nothing(
    base: list[dict[str, Any]], lead: int, data: st.DataObject
) -> None:
    spec = LabelSpec("subscription", horizon_days=HORIZONS, lead_days=lead, grace_days=GRACE)
    extra = data.draw(outside_subscriptions(lead))
    assert_same(run(spec, "subscriptions", base), run(spec, "subscriptions", base + extra))


@SETTINGS
@given(base=subscriptions, lead=leads, data=st.data())
def test_subscription_row_order_changes_nothing(
    base: list[dict[str, Any]], lead: int, data: st.DataObject
) -> None:
    spec = LabelSpec("subscription", horizon_days=HORIZONS, lead_days=lead, grace_days=GRACE)
    shuffled = data.draw(st.permutations(base))
    assert_same(run(spec, "subscriptions", base), run(spec, "subscriptions", shuffled))


def event(account: str, time: float) -> dict[str, Any]:
    return {"account_id": account, "event_time": at(time), "event_type": "login"}


INACTIVITY_DAYS = 14
# Every account is active at the cutoff (an event at day 50), so that labels
# hinge on the few generated events around the window.
ANCHORS = [event(account, 50) for account in ACCOUNTS[:2]]
events = st.lists(
    st.builds(event, accounts, st.floats(30, 110, allow_nan=False).map(lambda d: round(d, 3))),
    max_size=5,
).map(lambda generated: ANCHORS + generated)


@st.composite
def outside_events(draw: st.DrawFn, lead: int) -> list[dict[str, Any]]:
    """Events an inactivity label at day 60 must not see (with the account's
    examples fixed: nothing lands in the look-back either)."""
    before = st.floats(0, CUTOFF_DAY - INACTIVITY_DAYS - 0.001, allow_nan=False)
    after = st.floats(window_end(lead), window_end(lead) + 90, allow_nan=False)
    times = [before, after]
    if lead:
        times.append(st.floats(CUTOFF_DAY, CUTOFF_DAY + lead - 0.001, allow_nan=False))
    when = st.one_of(*times)
    return draw(st.lists(st.builds(event, accounts, when), min_size=1, max_size=6))


@SETTINGS
@given(base=events, lead=leads, data=st.data())
def test_events_outside_the_window_change_nothing(
    base: list[dict[str, Any]], lead: int, data: st.DataObject
) -> None:
    spec = LabelSpec(
        "inactivity", horizon_days=HORIZONS, lead_days=lead, inactivity_days=INACTIVITY_DAYS
    )
    extra = data.draw(outside_events(lead))
    assert_same(run(spec, "events", base), run(spec, "events", base + extra))


@SETTINGS
@given(base=events, data=st.data())
def test_event_row_order_changes_nothing(base: list[dict[str, Any]], data: st.DataObject) -> None:
    spec = LabelSpec("inactivity", horizon_days=HORIZONS, inactivity_days=INACTIVITY_DAYS)
    shuffled = data.draw(st.permutations(base))
    assert_same(run(spec, "events", base), run(spec, "events", shuffled))
