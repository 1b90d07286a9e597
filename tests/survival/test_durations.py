"""Durations and events from the canonical tables.

Hand-computed cases on every engine (renewal inside the grace gap, a gap past
it, a period ending too close to the end to be called churn, a scheduled end
past the end, an account that starts after the end; activity lapses), and
hypothesis invariants on DuckDB: durations are never negative, the order rows
were loaded in changes nothing, rows after the observation end change
nothing, and the SQL agrees with a plain-Python chaining of periods.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnwatch.config import ChurnSettings, DataSettings, Settings
from churnwatch.errors import AnalysisError
from churnwatch.survival import (
    Durations,
    activity_durations,
    derive_durations,
    subscription_durations,
    with_attribute,
)
from churnwatch.warehouse import Warehouse, arrow_schema, connect

UTC = dt.UTC
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def day(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def load(wh: Warehouse, table: str, rows: list[dict[str, Any]]) -> None:
    if rows:
        schema = pa.schema([arrow_schema(table).field(n) for n in rows[0]])
        wh.append(table, pa.Table.from_pylist(rows, schema=schema))


def sub(account: str, start: str, end: str | None) -> dict[str, Any]:
    return {
        "account_id": account,
        "started_at": day(start),
        "ended_at": None if end is None else day(end),
    }


def triples(found: Durations) -> list[tuple[str, float, int]]:
    return [
        (str(row.account_id), round(float(row.duration_days), 9), int(row.event_observed))
        for row in found.frame.itertuples()
    ]


HAND_SUBSCRIPTIONS = [
    # a: renewed 4 days after the end (grace 7): one period of 60 days, churned.
    sub("a", "2024-01-01", "2024-02-01"),
    sub("a", "2024-02-05", "2024-03-01"),
    # b: back after 19 days: a new period; the first lasted 31 days.
    sub("b", "2024-01-01", "2024-02-01"),
    sub("b", "2024-02-20", None),
    # c: ended 4 days before the end: a renewal could still come, so censored there.
    sub("c", "2024-05-01", "2024-05-28"),
    # d: a scheduled end after the observation end: censored at the end.
    sub("d", "2024-03-01", "2024-09-01"),
    # e: starts after the end: not in the data at all.
    sub("e", "2024-07-01", None),
    # g: ended 12 days before the end: churned after 49 days.
    sub("g", "2024-04-01", "2024-05-20"),
]


def test_subscription_durations_by_hand(warehouse: Warehouse) -> None:
    warehouse.ensure_schema()
    load(warehouse, "subscriptions", HAND_SUBSCRIPTIONS)
    first = subscription_durations(warehouse, grace_days=7, observation_end="2024-06-01")
    assert triples(first) == [
        ("a", 60.0, 1),
        ("b", 31.0, 1),
        ("c", 27.0, 0),
        ("d", 92.0, 0),
        ("g", 49.0, 1),
    ]
    assert first.observation_end is not None
    assert first.observation_end.source == "given"
    every = subscription_durations(
        warehouse, grace_days=7, observation_end="2024-06-01", periods="all"
    )
    b_rows = every.frame.loc[every.frame["account_id"] == "b"]
    assert b_rows[["period", "duration_days", "event_observed"]].to_numpy().tolist() == [
        [1, 31.0, 1],
        [2, 102.0, 0],  # 2024-02-20 to 2024-06-01, still running
    ]
    latest = subscription_durations(
        warehouse, grace_days=7, observation_end="2024-06-01", periods="last"
    )
    assert latest.frame.loc[latest.frame["account_id"] == "b", "period"].tolist() == [2]
    # With no grace, a's renewal 4 days later is a new period.
    strict = subscription_durations(warehouse, grace_days=0, observation_end="2024-06-01")
    assert triples(strict)[0] == ("a", 31.0, 1)


def test_the_observation_end_is_inferred_as_the_labels_infer_it(warehouse: Warehouse) -> None:
    """Without a stated end: the latest subscription start (here e's, 2024-07-01)."""
    warehouse.ensure_schema()
    load(warehouse, "subscriptions", HAND_SUBSCRIPTIONS)
    found = subscription_durations(warehouse, grace_days=7)
    assert found.observation_end is not None
    assert found.observation_end.at == day("2024-07-01")
    assert found.observation_end.source == "inferred"
    assert ("e", 0.0, 0) in triples(found)


def test_activity_durations_by_hand(warehouse: Warehouse) -> None:
    warehouse.ensure_schema()
    events = [
        ("a", "2024-01-01"),
        ("a", "2024-01-05"),
        ("a", "2024-01-20"),  # 15 days of silence after 01-05: churned 10 days after it
        ("b", "2024-02-10"),
        ("b", "2024-02-18"),
        ("b", "2024-02-25"),  # gaps of 8 and 7 days, silent 5 at the end: censored
        ("c", "2024-02-01"),  # one event, then silence: churned at 02-11
        ("d", "2024-03-05"),  # after the end: not in the data
        ("e", "2024-01-01"),
        ("e", "2024-02-20"),
        ("e", "2024-03-10"),  # e lapsed after its first event
        ("f", "2024-02-20"),  # silent exactly 10 days at the end: churned
    ]
    load(
        warehouse,
        "events",
        [{"account_id": a, "event_time": day(t), "event_type": "use"} for a, t in events],
    )
    found = activity_durations(warehouse, inactivity_days=10, observation_end="2024-03-01")
    assert triples(found) == [
        ("a", 14.0, 1),
        ("b", 20.0, 0),
        ("c", 10.0, 1),
        ("e", 10.0, 1),
        ("f", 10.0, 1),
    ]


def test_unknown_basis_attribute_and_empty_tables_are_clear_errors(tmp_path: Any) -> None:
    with connect("duckdb:///:memory:") as wh:
        wh.ensure_schema()
        with pytest.raises(AnalysisError, match="no subscriptions to derive durations"):
            derive_durations(wh, Settings(), basis="subscription")
        with pytest.raises(AnalysisError, match="unknown basis 'tenure'"):
            derive_durations(wh, Settings(), basis="tenure")  # type: ignore[arg-type]
        load(wh, "subscriptions", HAND_SUBSCRIPTIONS)
        load(wh, "accounts", [{"account_id": "a", "plan": "pro", "mrr": 10.0}])
        found = derive_durations(wh, Settings(data=DataSettings(observation_end="2024-06-01")))
        assert found.basis == "subscription"
        with pytest.raises(AnalysisError, match="no account has attribute 'colour'"):
            with_attribute(wh, found, "colour")
        with pytest.raises(AnalysisError, match="'mrr' is a measure"):
            with_attribute(wh, found, "mrr")
        with pytest.raises(AnalysisError, match="expected a column or attribute name"):
            with_attribute(wh, found, "plan; drop table")
        grouped = with_attribute(wh, found, "plan")
        assert grouped.frame.set_index("account_id")["plan"].to_dict() == {
            "a": "pro",
            "b": "(missing)",
            "c": "(missing)",
            "d": "(missing)",
            "g": "(missing)",
        }


def test_settings_choose_grace_and_inactivity() -> None:
    with connect("duckdb:///:memory:") as wh:
        wh.ensure_schema()
        load(wh, "subscriptions", HAND_SUBSCRIPTIONS)
        settings = Settings(
            churn=ChurnSettings(definition="subscription", grace_days=0),
            data=DataSettings(observation_end="2024-06-01"),
        )
        assert triples(derive_durations(wh, settings))[0] == ("a", 31.0, 1)


# --- invariants (hypothesis, DuckDB) -----------------------------------------------------

START = day("2024-01-01")
END_DAY = 120
GRACE = 7
ACCOUNTS = ("a", "b", "c", "d")


def at(days: float) -> dt.datetime:
    return START + dt.timedelta(days=days)


def subscription(account: str, start: int, length: int | None) -> dict[str, Any]:
    return {
        "account_id": account,
        "started_at": at(start),
        "ended_at": None if length is None else at(start + length),
    }


subscriptions = st.lists(
    st.builds(
        subscription,
        st.sampled_from(ACCOUNTS),
        st.integers(0, END_DAY),
        st.one_of(st.none(), st.integers(0, 80)),
    ),
    min_size=1,
    max_size=10,
)
after_end = st.lists(
    st.builds(
        subscription,
        st.sampled_from((*ACCOUNTS, "late")),
        st.integers(END_DAY + 1, END_DAY + 60),
        st.one_of(st.none(), st.integers(0, 40)),
    ),
    min_size=1,
    max_size=4,
)


def durations_of(rows: list[dict[str, Any]], periods: str = "all") -> pd.DataFrame:
    with connect("duckdb:///:memory:") as wh:
        wh.ensure_schema()
        load(wh, "subscriptions", rows)
        found = subscription_durations(
            wh,
            grace_days=GRACE,
            observation_end=at(END_DAY),
            periods=periods,  # type: ignore[arg-type]
        )
    return found.frame


def reference(rows: list[dict[str, Any]]) -> list[tuple[str, int, float, int]]:
    """Periods chained in plain Python: the definition, written out again."""
    end = at(END_DAY)
    far = dt.datetime(3000, 1, 1, tzinfo=UTC)
    result = []
    for account in sorted({r["account_id"] for r in rows}):
        mine = sorted(
            (r["started_at"], r["ended_at"] or far)
            for r in rows
            if r["account_id"] == account and r["started_at"] <= end
        )
        periods: list[list[dt.datetime]] = []
        latest_end = None
        for start, stop in mine:
            if latest_end is not None and start <= latest_end + dt.timedelta(days=GRACE):
                periods[-1][1] = max(periods[-1][1], stop)
            else:
                periods.append([start, stop])
            latest_end = stop if latest_end is None else max(latest_end, stop)
        for number, (start, stop) in enumerate(periods, start=1):
            event = stop + dt.timedelta(days=GRACE) <= end
            length = (min(stop, end) - start) / dt.timedelta(days=1)
            result.append((account, number, length, int(event)))
    return result


@SETTINGS
@given(rows=subscriptions)
def test_sql_periods_agree_with_the_definition_and_are_never_negative(
    rows: list[dict[str, Any]],
) -> None:
    frame = durations_of(rows)
    found = [
        (str(r.account_id), int(r.period), float(r.duration_days), int(r.event_observed))
        for r in frame.itertuples()
    ]
    assert found == reference(rows)
    assert (frame["duration_days"] >= 0).all()


@SETTINGS
@given(rows=subscriptions, data=st.data())
def test_row_order_changes_nothing(rows: list[dict[str, Any]], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(rows))
    pd.testing.assert_frame_equal(durations_of(rows), durations_of(shuffled))


@SETTINGS
@given(rows=subscriptions, later=after_end)
def test_rows_after_the_observation_end_change_nothing(
    rows: list[dict[str, Any]], later: list[dict[str, Any]]
) -> None:
    pd.testing.assert_frame_equal(durations_of(rows), durations_of(rows + later))


@SETTINGS
@given(
    times=st.lists(
        st.tuples(st.sampled_from(ACCOUNTS), st.integers(0, END_DAY)), min_size=1, max_size=12
    ),
    later=st.lists(
        st.tuples(st.sampled_from((*ACCOUNTS, "late")), st.integers(END_DAY + 1, END_DAY + 90)),
        min_size=1,
        max_size=5,
    ),
)
def test_activity_ignores_events_after_the_end_and_is_never_negative(
    times: list[tuple[str, int]], later: list[tuple[str, int]]
) -> None:
    def run(pairs: list[tuple[str, int]]) -> pd.DataFrame:
        with connect("duckdb:///:memory:") as wh:
            wh.ensure_schema()
            load(
                wh,
                "events",
                [
                    {"account_id": a, "event_time": at(t), "event_type": "use", "value": float(i)}
                    for i, (a, t) in enumerate(pairs)
                ],
            )
            return activity_durations(wh, inactivity_days=10, observation_end=at(END_DAY)).frame

    base = run(times)
    assert (base["duration_days"] >= 0).all()
    pd.testing.assert_frame_equal(base, run(times + later))
    pd.testing.assert_frame_equal(base, run(list(reversed(times))))
