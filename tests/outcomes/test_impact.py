"""The impact statistics: Wilson and Newcombe intervals, the holdout comparison."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from churnwatch.outcomes import measure_impact, newcombe_interval, wilson_interval


@pytest.mark.parametrize(
    ("successes", "trials"), [(0, 10), (1, 10), (56, 70), (48, 80), (10, 10), (3, 1000)]
)
def test_wilson_matches_scipy(successes: int, trials: int) -> None:
    expected = stats.binomtest(successes, trials).proportion_ci(0.95, method="wilson")
    low, high = wilson_interval(successes, trials)
    assert low == pytest.approx(expected.low, abs=1e-12)
    assert high == pytest.approx(expected.high, abs=1e-12)


# Newcombe (1998), "Interval estimation for the difference between independent
# proportions", Statistics in Medicine 17, Table II, method 10.
@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "low", "high"),
    [
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
    ],
)
def test_newcombe_matches_the_published_examples(
    x1: int, n1: int, x2: int, n2: int, low: float, high: float
) -> None:
    difference, lower, upper = newcombe_interval(x1, n1, x2, n2)
    assert difference == pytest.approx(x1 / n1 - x2 / n2)
    assert round(lower, 4) == low
    assert round(upper, 4) == high


@given(
    st.integers(1, 400).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.integers(1, 400).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
)
def test_newcombe_interval_holds_the_difference_and_stays_in_bounds(
    first: tuple[int, int], second: tuple[int, int]
) -> None:
    difference, lower, upper = newcombe_interval(*first, *second)
    assert -1.0 - 1e-12 <= lower <= difference <= upper <= 1.0 + 1e-12
    wider = newcombe_interval(*first, *second, confidence=0.99)
    assert wider[1] <= lower + 1e-12
    assert wider[2] >= upper - 1e-12


def _episodes(won: list[bool], held: list[bool], revenue: list[float]) -> pd.DataFrame:
    churned = pd.Timestamp("2024-03-01", tz="UTC")
    return pd.DataFrame(
        {
            "churned_at": [churned] * len(won),
            "recovered_at": [churned + pd.Timedelta(days=3) if w else pd.NaT for w in won],
            "revenue": revenue,
            "holdout": held,
        }
    )


def test_a_hand_computed_holdout_comparison() -> None:
    # Notified: 3 of 4 recovered (revenue 100, 200, 300 of 1000); holdout: 1 of 2 (50 of 150).
    frame = _episodes(
        won=[True, True, True, False, True, False],
        held=[False, False, False, False, True, True],
        revenue=[100.0, 200.0, 300.0, 400.0, 50.0, 100.0],
    )
    report = measure_impact(frame, resamples=500, seed=1)
    assert (report.episodes_notified, report.recovered_notified) == (4, 3)
    assert (report.episodes_holdout, report.recovered_holdout) == (2, 1)
    assert report.incremental_rate == pytest.approx(0.25)
    expected_low = 0.25 - math.sqrt(
        (0.75 - wilson_interval(3, 4)[0]) ** 2 + (wilson_interval(1, 2)[1] - 0.5) ** 2
    )
    assert report.incremental_rate_low == pytest.approx(expected_low)
    # (600/1000 - 50/150) * 1000
    assert report.incremental_revenue == pytest.approx(600.0 - 1000.0 / 3.0)
    assert report.incremental_revenue_low is not None
    assert report.incremental_revenue_high is not None
    assert report.incremental_revenue_low <= report.incremental_revenue_high


def test_the_bootstrap_interval_covers_a_known_effect() -> None:
    rng = np.random.default_rng(7)
    held = rng.random(4000) < 0.2
    won = np.where(held, rng.random(4000) < 0.30, rng.random(4000) < 0.45)
    revenue = rng.uniform(50, 150, 4000)
    report = measure_impact(
        _episodes(won.tolist(), held.tolist(), revenue.tolist()), resamples=400, seed=3
    )
    true_gain = 0.15 * revenue[~held].sum()
    assert report.incremental_revenue_low is not None
    assert report.incremental_revenue_high is not None
    assert report.incremental_revenue_low < true_gain < report.incremental_revenue_high
    assert report.incremental_rate_low is not None
    assert report.incremental_rate_low > 0.05  # the effect is detected


def test_a_window_counts_only_episodes_old_enough_and_recoveries_within_it() -> None:
    import datetime as dt

    frame = pd.DataFrame(
        {
            "churned_at": pd.to_datetime(["2024-03-01", "2024-03-01", "2024-03-28"], utc=True),
            "recovered_at": pd.to_datetime(["2024-03-05", "2024-03-20", None], utc=True),
            "revenue": [1.0, 1.0, 1.0],
            "holdout": [False, False, False],
        }
    )
    report = measure_impact(frame, as_of=dt.date(2024, 3, 30), window_days=7)
    assert (report.episodes_notified, report.recovered_notified) == (2, 1)
    assert report.incremental_rate is None
    assert "holdout_share" in report.note
