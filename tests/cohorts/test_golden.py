"""The tiny business of conftest.py, worked out by hand, on DuckDB, Postgres and MariaDB."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sqlglot import exp

from churnwatch.cohorts import (
    MOVEMENTS,
    logo_retention,
    mrr_movements,
    revenue_retention,
)
from churnwatch.config import DataSettings, Settings
from churnwatch.errors import AnalysisError
from churnwatch.warehouse import Warehouse, connect

END = "2024-05-01"
NAN = np.nan


def months(*values: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(v) for v in values]


def test_monthly_activity_by_signup(tiny: Warehouse) -> None:
    table = logo_retention(tiny, periods_count=4, observation_end=END)
    assert list(table.counts.index) == months("2024-01-01", "2024-02-01", "2024-04-01")
    assert table.sizes.tolist() == [2, 1, 1]  # e has no signup, f signed up after the end
    np.testing.assert_array_equal(
        table.counts.to_numpy(),
        [
            [2, 1, 1, 1],  # a and b; a in Feb; b on Mar 1 00:00; a on Apr 30 23:59
            [0, 1, 0, NAN],  # c's January event precedes its cohort: not counted
            [1, NAN, NAN, NAN],
        ],
    )
    np.testing.assert_allclose(table.rates.to_numpy()[0], [1.0, 0.5, 0.5, 0.5])
    assert table.observation_end.at == dt.datetime(2024, 5, 1, tzinfo=dt.UTC)


def test_monthly_activity_by_first_event(tiny: Warehouse) -> None:
    table = logo_retention(tiny, periods_count=4, cohort_by="first_event", observation_end=END)
    assert list(table.counts.index) == months("2024-01-01", "2024-02-01", "2024-04-01")
    assert table.sizes.tolist() == [3, 1, 1]  # a, b, c | e | d
    np.testing.assert_array_equal(
        table.counts.to_numpy(),
        [[3, 1, 2, 1], [1, 0, 0, NAN], [1, NAN, NAN, NAN]],
    )


def test_monthly_subscription_basis(tiny: Warehouse) -> None:
    table = logo_retention(tiny, periods_count=4, basis="subscription", observation_end=END)
    np.testing.assert_array_equal(
        table.counts.to_numpy(),
        # b's first subscription runs into February (to 02-20), its second from April;
        # c's trial and first subscription run in March, none in April.
        [[2, 2, 1, 2], [1, 1, 0, NAN], [1, NAN, NAN, NAN]],
    )


def test_weekly_activity(tiny: Warehouse) -> None:
    table = logo_retention(tiny, period="week", periods_count=3, observation_end=END)
    # Signup weeks (from Monday): a 2024-01-01, b 2024-01-15, c 2024-02-19, d 2024-04-15.
    assert list(table.counts.index) == months(
        "2024-01-01", "2024-01-15", "2024-02-19", "2024-04-15"
    )
    expected = [
        [1, 0, 1],  # a: 01-03 in week 0, 01-15 in week 2
        [1, 0, 0],  # b: 01-20 (a Saturday) in week 0
        [0, 0, 0],  # c: 03-20 is week 4
        [1, 0, NAN],  # d: week of 04-29 ends 05-06, after the end
    ]
    np.testing.assert_array_equal(table.counts.to_numpy(), expected)


def test_observation_end_from_settings_and_inferred(tiny: Warehouse) -> None:
    settings = Settings(data=DataSettings(observation_end="2024-04-01"))
    given = logo_retention(tiny, settings, periods_count=4)
    assert given.observation_end.at == dt.datetime(2024, 4, 1, tzinfo=dt.UTC)
    assert np.isnan(given.counts.to_numpy()[0, 3])  # April is unknown
    # Read off the data: midnight after the latest event (f's, 05-03).
    inferred = logo_retention(tiny, periods_count=4)
    assert inferred.observation_end.at == dt.datetime(2024, 5, 4, tzinfo=dt.UTC)
    assert "latest event" in inferred.observation_end.reason


def test_to_arrow_has_only_known_cells(tiny: Warehouse) -> None:
    frame = logo_retention(tiny, periods_count=4, observation_end=END).to_arrow().to_pandas()
    assert len(frame) == 4 + 3 + 1
    row = frame[(frame["cohort"] == dt.date(2024, 1, 1)) & (frame["period_number"] == 1)]
    assert row[["cohort_size", "active_accounts", "retention"]].to_numpy().tolist() == [[2, 1, 0.5]]


def test_revenue_cohorts(tiny: Warehouse) -> None:
    revenue = revenue_retention(tiny, periods_count=4, observation_end=END)
    assert list(revenue.mrr.index) == months("2024-01-01", "2024-02-01", "2024-04-01")
    assert revenue.accounts.tolist() == [2, 1, 1]
    np.testing.assert_array_equal(
        revenue.mrr.to_numpy(),
        [[150, 150, 170, 160], [80, 0, 0, NAN], [30.5, NAN, NAN, NAN]],
    )
    np.testing.assert_allclose(revenue.rates.to_numpy()[0], [1, 1, 170 / 150, 160 / 150])


def test_grr_and_nrr(tiny: Warehouse) -> None:
    monthly = revenue_retention(tiny, observation_end=END).by_month
    assert list(monthly.index) == months("2024-02-01", "2024-03-01", "2024-04-01")
    np.testing.assert_allclose(
        monthly[["starting_mrr", "expansion", "contraction", "churned"]].to_numpy(),
        [[150, 50, 0, 50], [230, 20, 0, 80], [170, 0, 20, 0]],
    )
    np.testing.assert_allclose(monthly["grr"], [100 / 150, 150 / 230, 150 / 170])
    np.testing.assert_allclose(monthly["nrr"], [150 / 150, 170 / 230, 150 / 170])
    # Over two months: January's accounts in March, February's in April.
    two = revenue_retention(tiny, lookback_months=2, observation_end=END).by_month
    assert list(two.index) == months("2024-03-01", "2024-04-01")
    np.testing.assert_allclose(two["grr"], [100 / 150, 150 / 230])
    np.testing.assert_allclose(two["nrr"], [170 / 150, 150 / 230])


def test_movements(tiny: Warehouse) -> None:
    moves = mrr_movements(tiny, observation_end=END)
    assert list(moves.cents.index) == months("2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01")
    expected = pd.DataFrame(
        {
            "mrr": [15000, 23000, 17000, 19050],
            "previous_mrr": [0, 15000, 23000, 17000],
            "new": [15000, 8000, 0, 3050],
            "expansion": [0, 5000, 2000, 0],
            "reactivation": [0, 0, 0, 1000],
            "contraction": [0, 0, 0, 2000],
            "churned": [0, 5000, 8000, 0],
            "accounts": [2, 2, 1, 3],
            "new_accounts": [2, 1, 0, 1],
            "expansion_accounts": [0, 1, 1, 0],
            "reactivation_accounts": [0, 0, 0, 1],
            "contraction_accounts": [0, 0, 0, 1],
            "churned_accounts": [0, 1, 1, 0],
        },
        index=moves.cents.index,
    )
    pd.testing.assert_frame_equal(moves.cents, expected)
    frame = moves.frame
    assert frame["net_change"].tolist() == [150.0, 80.0, -60.0, 20.5]
    assert set(MOVEMENTS) <= set(moves.to_arrow().column_names)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda wh: logo_retention(wh, period="day"), "period must be 'month' or 'week'"),
        (lambda wh: logo_retention(wh, basis="logins"), "basis must be"),
        (lambda wh: logo_retention(wh, cohort_by="plan"), "cohort_by must be"),
        (lambda wh: logo_retention(wh, periods_count=0), "periods_count must be between 1"),
        (lambda wh: logo_retention(wh, observation_end="soon"), "not an ISO date"),
        (lambda wh: revenue_retention(wh, lookback_months=0), "lookback_months must be"),
        (
            lambda wh: logo_retention(wh, observation_end="2023-01-01"),
            "no account has a cohort",
        ),
        (
            lambda wh: mrr_movements(wh, observation_end="2024-01-15"),
            "no month ended between the first subscription",
        ),
    ],
)
def test_bad_input_is_a_clear_error(tiny: Warehouse, call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AnalysisError, match=message):
        call(tiny)


def test_empty_or_missing_tables(warehouse: Warehouse) -> None:
    with pytest.raises(AnalysisError, match="no 'events' table"):
        logo_retention(warehouse)
    warehouse.ensure_schema()
    with pytest.raises(AnalysisError, match="'events' is empty"):
        logo_retention(warehouse)
    with pytest.raises(AnalysisError, match="'subscriptions' is empty"):
        mrr_movements(warehouse)


@pytest.mark.parametrize("basis", ["activity", "subscription"])
def test_no_period_ended_yet_is_all_unknown(tiny: Warehouse, basis: str) -> None:
    table = logo_retention(tiny, basis=basis, periods_count=2, observation_end="2024-01-25")  # type: ignore[arg-type]
    assert table.sizes.tolist() == [2]
    assert np.isnan(table.counts.to_numpy()).all()


def test_periods_before_the_event_log_began_are_unknown() -> None:
    """An account older than the event export: its months before the log are NaN, not 0.

    ``old`` signed up in 2023-11, ``new`` in 2024-01; the log starts on
    2024-01-10. For ``old`` (cohort 2023-11), months 0 and 1 (Nov, Dec) ended
    before the log began: unknown. Month 2 (Jan, the log's first month) is
    known, and ``old`` was active in it.
    """
    with connect("duckdb:///:memory:") as wh:
        wh.ensure_schema()
        wh.execute(
            exp.insert(
                "VALUES ('old', '2023-11-03'), ('new', '2024-01-12')",
                "accounts",
                columns=["account_id", "created_at"],
            )
        )
        wh.execute(
            exp.insert(
                "VALUES ('old', '2024-01-10', 'x'), ('new', '2024-01-12', 'x'),"
                " ('new', '2024-03-01', 'x')",
                "events",
                columns=["account_id", "event_time", "event_type"],
            )
        )
        table = logo_retention(wh, periods_count=4, observation_end="2024-04-01")
    counts = table.counts.to_numpy().tolist()
    assert [str(c.date()) for c in table.counts.index] == ["2023-11-01", "2024-01-01"]
    assert np.isnan(counts[0][0])
    assert np.isnan(counts[0][1])
    assert counts[0][2:] == [1.0, 0.0]
    assert counts[1][:3] == [1.0, 0.0, 1.0]
    assert np.isnan(counts[1][3])
