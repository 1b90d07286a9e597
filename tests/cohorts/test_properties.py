"""Invariants of cohorts and MRR movements, checked on generated data (hypothesis).

Each example is loaded into a fresh in-memory DuckDB warehouse; the same
queries run on Postgres and MariaDB in test_golden.py. The references here
are written with pandas periods (``to_period("M")``, ``"W-SUN"``: weeks that
end on Sunday), independently of the warehouse's period arithmetic.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnwatch.cohorts import CohortTable, logo_retention, mrr_movements, revenue_retention
from churnwatch.cohorts._movements import MRRMovements
from churnwatch.warehouse import Warehouse, arrow_schema, connect

UTC = dt.UTC
START = dt.datetime(2024, 1, 1, tzinfo=UTC)
END = dt.datetime(2024, 7, 1, tzinfo=UTC)
ACCOUNTS = ("a", "b", "c", "d", "e")
PERIODS = 6
SETTINGS = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def at(hours: int) -> dt.datetime:
    return START + dt.timedelta(hours=hours)


HOURS = st.integers(0, 24 * 220)  # past the end, too
accounts = st.lists(
    st.tuples(st.sampled_from(ACCOUNTS), st.one_of(st.none(), HOURS)),
    min_size=1,
    max_size=5,
    unique_by=lambda row: row[0],
)
events = st.lists(st.tuples(st.sampled_from(ACCOUNTS), HOURS), max_size=25)
subscriptions = st.lists(
    st.tuples(
        st.sampled_from(ACCOUNTS),
        HOURS,
        st.one_of(st.none(), st.integers(1, 24 * 90)),
        st.sampled_from([0.0, 9.99, 10.0, 25.5, 100.0]),
    ),
    max_size=12,
)


def load(
    account_rows: list[tuple[str, int | None]],
    event_rows: list[tuple[str, int]],
    subscription_rows: list[tuple[str, int, int | None, float]] = (),  # type: ignore[assignment]
) -> Warehouse:
    wh = connect("duckdb:///:memory:")
    wh.ensure_schema()
    tables: dict[str, list[dict[str, Any]]] = {
        "accounts": [
            {"account_id": a, "created_at": None if h is None else at(h)} for a, h in account_rows
        ],
        "events": [
            {"account_id": a, "event_time": at(h), "event_type": "x"} for a, h in event_rows
        ],
        "subscriptions": [
            {
                "account_id": a,
                "started_at": at(h),
                "ended_at": None if length is None else at(h + length),
                "mrr": mrr,
            }
            for a, h, length, mrr in subscription_rows
        ],
    }
    for table, rows in tables.items():
        if rows:
            schema = pa.schema([arrow_schema(table).field(n) for n in rows[0]])
            wh.append(table, pa.Table.from_pylist(rows, schema=schema))
    return wh


def reference(
    account_rows: list[tuple[str, int | None]], event_rows: list[tuple[str, int]], freq: str
) -> tuple[dict[pd.Period, int], dict[tuple[pd.Period, int], int]]:
    """Cohort sizes and active counts, by signup, with pandas periods."""
    end = pd.Timestamp(END).tz_convert(None)

    def period(hours: int) -> pd.Period:
        return pd.Timestamp(at(hours)).tz_convert(None).to_period(freq)

    cohorts = {a: period(h) for a, h in account_rows if h is not None and at(h) < END}
    sizes: dict[pd.Period, int] = {}
    for cohort in cohorts.values():
        sizes[cohort] = sizes.get(cohort, 0) + 1
    active = {(a, period(h)) for a, h in event_rows if a in cohorts and at(h) < END}
    counts: dict[tuple[pd.Period, int], int] = {}
    for account, when in active:
        k = (when - cohorts[account]).n
        if 0 <= k < PERIODS:
            counts[(cohorts[account], k)] = counts.get((cohorts[account], k), 0) + 1
    # Known cells: the period ended at or before the end, and did not end
    # before the event log began (then it is unobserved, not idle).
    first = min((period(h) for _, h in event_rows), default=None)
    for cohort in sizes:
        for k in range(PERIODS):
            if first is not None and cohort + k < first:
                counts.pop((cohort, k), None)
                continue
            if (cohort + k + 1).start_time <= end:
                counts.setdefault((cohort, k), 0)
    return sizes, counts


def as_cells(
    table: CohortTable, freq: str
) -> tuple[dict[pd.Period, int], dict[tuple[pd.Period, int], int]]:
    sizes = {pd.Timestamp(c).to_period(freq): int(n) for c, n in table.sizes.items()}
    counts = {
        (pd.Timestamp(c).to_period(freq), int(k)): int(v)
        for c, row in table.counts.iterrows()
        for k, v in row.items()
        if not np.isnan(v)
    }
    return sizes, counts


@SETTINGS
@given(account_rows=accounts, event_rows=events, period=st.sampled_from(["month", "week"]))
def test_matrix_equals_pandas_periods(
    account_rows: list[tuple[str, int | None]], event_rows: list[tuple[str, int]], period: str
) -> None:
    freq = "M" if period == "month" else "W-SUN"
    sizes, counts = reference(account_rows, event_rows, freq)
    with load(account_rows, event_rows) as wh:
        if not sizes:
            return
        table = logo_retention(
            wh,
            period=period,
            periods_count=PERIODS,
            observation_end=END,  # type: ignore[arg-type]
        )
    assert as_cells(table, freq) == (sizes, counts)
    # Cohort sizes add up to the accounts that signed up before the end.
    assert int(table.sizes.sum()) == sum(
        1 for _, h in account_rows if h is not None and at(h) < END
    )
    # No cell counts more accounts than its cohort has.
    assert (table.counts.fillna(0).to_numpy() <= table.sizes.to_numpy()[:, None]).all()


@SETTINGS
@given(account_rows=accounts, event_rows=events.filter(bool), seed=st.integers(0, 10**6))
def test_first_event_cohorts_are_all_active_in_period_zero(
    account_rows: list[tuple[str, int | None]], event_rows: list[tuple[str, int]], seed: int
) -> None:
    with load(account_rows, event_rows) as wh:
        if min(h for _, h in event_rows) >= 24 * 182:
            return  # every event is after the end
        table = logo_retention(
            wh, cohort_by="first_event", periods_count=PERIODS, observation_end=END
        )
        shuffled = list(event_rows)
        random.Random(seed).shuffle(shuffled)
    known = ~np.isnan(table.counts[0].to_numpy())
    assert (table.rates[0].to_numpy()[known] == 1.0).all()
    with load(list(reversed(account_rows)), shuffled) as wh:
        again = logo_retention(
            wh, cohort_by="first_event", periods_count=PERIODS, observation_end=END
        )
    # Row order changes nothing.
    pd.testing.assert_frame_equal(table.counts, again.counts)
    pd.testing.assert_series_equal(table.sizes, again.sizes)


def reference_mrr(subscription_rows: list[tuple[str, int, int | None, float]]) -> pd.DataFrame:
    """Month-end MRR in cents per account and month (January to June), with pandas."""
    frame = pd.DataFrame(subscription_rows, columns=["account", "start", "length", "mrr"])
    start = frame["start"].map(at)
    end = [
        None if pd.isna(n) else at(int(s) + int(n))
        for s, n in zip(frame["start"], frame["length"], strict=True)
    ]
    first = pd.Timestamp(min(start)).tz_convert(None).to_period("M")
    months = pd.period_range(first, "2024-06", freq="M")
    columns = {}
    for month in months:
        month_end = (month + 1).to_timestamp().tz_localize("UTC")
        running = [
            s < month_end and (e is None or e >= month_end) for s, e in zip(start, end, strict=True)
        ]
        cents = np.floor(frame["mrr"] * 100 + 0.5).astype("int64").where(running, 0)
        columns[month] = cents.groupby(frame["account"]).sum()
    return pd.DataFrame(columns).fillna(0).astype("int64")


@SETTINGS
@given(
    subscription_rows=subscriptions.filter(lambda rows: any(h < 24 * 150 for _, h, _, _ in rows))
)
def test_movements_add_up_and_equal_pandas(
    subscription_rows: list[tuple[str, int, int | None, float]],
) -> None:
    with load([("a", 0)], [], subscription_rows) as wh:
        moves: MRRMovements = mrr_movements(wh, observation_end=END)
        revenue = revenue_retention(wh, periods_count=PERIODS, observation_end=END)
    cents = moves.cents
    moved = (
        cents["new"]
        + cents["expansion"]
        + cents["reactivation"]
        - cents["contraction"]
        - cents["churned"]
    )
    assert (cents["mrr"] - cents["previous_mrr"] == moved).all()
    mrr = reference_mrr(subscription_rows)
    assert cents["mrr"].tolist() == mrr.sum().tolist()
    previous = mrr.shift(1, axis=1, fill_value=0)
    assert (
        cents["churned"].tolist() == previous.where((previous > 0) & (mrr == 0), 0).sum().tolist()
    )
    # GRR never exceeds 100%, and NRR is GRR plus expansion.
    by_month = revenue.by_month.dropna()
    assert (by_month["grr"] <= 1.0 + 1e-12).all()
    np.testing.assert_allclose(
        by_month["nrr"] - by_month["grr"], by_month["expansion"] / by_month["starting_mrr"]
    )
    # Each revenue cohort's month-0 MRR is the new MRR of its month.
    new = cents["new"] / 100.0
    for cohort, value in revenue.mrr[0].items():
        assert value == new[cohort]


def reference_subscribed(
    account_rows: list[tuple[str, int | None]],
    subscription_rows: list[tuple[str, int, int | None, float]],
    freq: str,
) -> dict[tuple[pd.Period, int], int]:
    """Accounts with a subscription running during some of each period, with pandas."""
    end = pd.Timestamp(END).tz_convert(None)

    def naive(hours: int) -> pd.Timestamp:
        return pd.Timestamp(at(hours)).tz_convert(None)

    cohorts = {
        a: naive(h).to_period(freq) for a, h in account_rows if h is not None and at(h) < END
    }
    counts: dict[tuple[pd.Period, int], int] = {}
    for account, cohort in cohorts.items():
        for k in range(PERIODS):
            period = cohort + k
            if (period + 1).start_time > end:
                continue
            running = any(
                a == account
                and naive(h) < (period + 1).start_time
                and (n is None or (naive(h + n) > period.start_time))
                for a, h, n, _ in subscription_rows
            )
            counts[(cohort, k)] = counts.get((cohort, k), 0) + int(running)
    return counts


# Starts and ends on the hour, often on midnight of a month's or a week's first day.
boundary_hours = st.one_of(
    HOURS, st.sampled_from([24 * d for d in (0, 7, 31, 35, 60, 91, 98, 121, 152)])
)
boundary_subscriptions = st.lists(
    st.tuples(
        st.sampled_from(ACCOUNTS),
        boundary_hours,
        st.one_of(st.none(), st.sampled_from([24, 24 * 7, 24 * 29, 24 * 31]), st.integers(1, 2000)),
        st.just(10.0),
    ),
    max_size=10,
)


@SETTINGS
@given(
    account_rows=accounts,
    subscription_rows=boundary_subscriptions,
    period=st.sampled_from(["month", "week"]),
)
def test_subscription_basis_equals_pandas(
    account_rows: list[tuple[str, int | None]],
    subscription_rows: list[tuple[str, int, int | None, float]],
    period: str,
) -> None:
    freq = "M" if period == "month" else "W-SUN"
    counts = reference_subscribed(account_rows, subscription_rows, freq)
    if not counts or not subscription_rows:
        return
    with load(account_rows, [], subscription_rows) as wh:
        table = logo_retention(
            wh,
            period=period,  # type: ignore[arg-type]
            basis="subscription",
            periods_count=PERIODS,
            observation_end=END,
        )
    assert as_cells(table, freq)[1] == counts
