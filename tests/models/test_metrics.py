"""Churn metrics: golden values from scikit-learn and by hand, and their invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)

from churnwatch.errors import ModelError
from churnwatch.models._metrics import (
    BINARY_METRICS,
    REGRESSION_METRICS,
    binary_metrics,
    expected_calibration_error,
    gains_table,
    regression_metrics,
    reliability_table,
    top_share_rates,
)

# Scores on a grid of 1/100: strictly increasing transforms of them never create or
# break ties through floating-point rounding, which would change rank metrics.
grid_scores = st.integers(0, 100).map(lambda i: i / 100)
labelled = st.integers(2, 60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n),
        st.lists(grid_scores, min_size=n, max_size=n),
    )
)


def _random_case(seed: int, n: int = 500) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(1.0, 4.0, n)
    y = (rng.random(n) < p).astype(float)
    return y, p


# --- golden: scikit-learn -------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ranking_and_probability_metrics_match_scikit_learn(seed: int) -> None:
    y, p = _random_case(seed)
    metrics = binary_metrics(y, p)
    assert list(metrics) == list(BINARY_METRICS)
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert metrics["pr_auc"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert metrics["log_loss"] == pytest.approx(log_loss(y, p), abs=1e-12)
    assert metrics["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert metrics["n"] == 500.0
    assert metrics["positives"] == y.sum()
    assert metrics["base_rate"] == pytest.approx(y.mean())


def test_regression_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(10.0, 3.0, 200)
    predicted = y + rng.normal(0.5, 2.0, 200)
    metrics = regression_metrics(y, predicted)
    assert list(metrics) == list(REGRESSION_METRICS)
    assert metrics["mae"] == pytest.approx(mean_absolute_error(y, predicted))
    assert metrics["rmse"] == pytest.approx(root_mean_squared_error(y, predicted))
    assert metrics["r2"] == pytest.approx(r2_score(y, predicted))
    assert metrics["n"] == 200.0


# --- golden: by hand ------------------------------------------------------------------


def test_auc_and_log_loss_by_hand() -> None:
    # Churners score 0.35 and 0.8, stayers 0.1 and 0.4: 3 of the 4 pairs are ordered right.
    assert binary_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])["roc_auc"] == 0.75
    expected = -(math.log(0.8) + math.log(0.6)) / 2
    assert binary_metrics([1, 0], [0.8, 0.4])["log_loss"] == pytest.approx(expected)
    assert binary_metrics([1, 0], [0.8, 0.4])["brier"] == pytest.approx((0.04 + 0.16) / 2)


def test_lift_and_recall_of_ten_rows() -> None:
    # 10 rows, 3 churners; the top 10% is one row.
    p = [0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    metrics = binary_metrics([1, 0, 1, 0, 0, 1, 0, 0, 0, 0], p)
    assert metrics["lift_top10"] == pytest.approx(1.0 / 0.3)  # a 100% churn rate vs 30%
    assert metrics["recall_top10"] == pytest.approx(1 / 3)
    missed = binary_metrics([0, 1, 1, 0, 0, 1, 0, 0, 0, 0], p)
    assert missed["lift_top10"] == 0.0
    assert missed["recall_top10"] == 0.0


def test_ties_at_the_boundary_share_the_slot() -> None:
    # The two top rows tie for the single top-10% slot; one churns: half a churner is caught.
    y = [1, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    p = [0.9, 0.9, 0.5, 0.4, 0.4, 0.3, 0.2, 0.2, 0.1, 0.0]
    lift, recall = top_share_rates(y, p, share=0.1)
    assert recall == pytest.approx(0.25)
    assert lift == pytest.approx(0.5 / 0.2)
    # ...whichever of the two comes first.
    assert top_share_rates(y[::-1], p[::-1], share=0.1) == (lift, recall)


def test_top_seven_percent_of_a_hundred_rows_is_seven_rows() -> None:
    # 0.07 * 100 is 7.000000000000001 in floating point; a naive ceil would take 8 rows.
    y = np.zeros(100)
    y[:8] = 1
    p = np.linspace(1.0, 0.0, 100)
    lift, recall = top_share_rates(y, p, share=0.07)
    assert recall == pytest.approx(7 / 8)
    assert lift == pytest.approx(1.0 / (8 / 100))
    assert gains_table(y, p, points=100)["recall"].iloc[6] == pytest.approx(7 / 8)


def test_four_bin_reliability_and_ece_by_hand() -> None:
    y = [0, 0, 1, 1, 0, 1, 1, 1]
    p = [0.1, 0.2, 0.3, 0.6, 0.7, 0.9, 0.95, 0.8]
    table = reliability_table(y, p, bins=4)
    assert table["lower"].tolist() == [0.0, 0.25, 0.5, 0.75]
    assert table["upper"].tolist() == [0.25, 0.5, 0.75, 1.0]
    assert table["n"].tolist() == [2, 1, 2, 3]
    assert table["mean_predicted"].tolist() == pytest.approx([0.15, 0.3, 0.65, 2.65 / 3])
    assert table["observed_rate"].tolist() == pytest.approx([0.0, 1.0, 0.5, 1.0])
    # (2 * 0.15 + 1 * 0.7 + 2 * 0.15 + 3 * (1 - 2.65 / 3)) / 8
    assert expected_calibration_error(y, p, bins=4) == pytest.approx(1.65 / 8)


def test_ten_bin_ece_in_binary_metrics_by_hand() -> None:
    # Bin [0.2, 0.3): predictions 0.2 and 0.25, one churner -> |0.225 - 0.5|;
    # bin [0.9, 1.0]: 0.9 and 1.0, both churn -> |0.95 - 1|.
    metrics = binary_metrics([0, 1, 1, 1], [0.2, 0.25, 0.9, 1.0])
    assert metrics["ece"] == pytest.approx((2 * 0.275 + 2 * 0.05) / 4)


def test_bin_edges_belong_to_the_upper_bin_and_one_to_the_last() -> None:
    table = reliability_table([0, 1, 1, 0], [0.3, 0.5, 1.0, 0.0], bins=10)
    assert table.loc[table["n"] > 0, "bin"].tolist() == [0, 3, 5, 9]
    assert len(table) == 10
    assert table.loc[table["n"] == 0, "mean_predicted"].isna().all()


def test_gains_table_agrees_with_top_share_rates() -> None:
    y, p = _random_case(4, n=300)
    table = gains_table(y, p, points=10)
    assert table["share"].tolist() == pytest.approx([i / 10 for i in range(1, 11)])
    for share, recall, lift in table.itertuples(index=False):
        assert (lift, recall) == pytest.approx(top_share_rates(y, p, share))
    assert table["recall"].iloc[-1] == pytest.approx(1.0)
    assert table["lift"].iloc[-1] == pytest.approx(1.0)
    assert table["recall"].is_monotonic_increasing


# --- undefined cases ------------------------------------------------------------------


def test_single_class_gives_nan_without_warnings() -> None:
    stayers = binary_metrics([0, 0, 0], [0.1, 0.2, 0.3])
    for name in ("roc_auc", "pr_auc", "lift_top10", "recall_top10"):
        assert math.isnan(stayers[name])
    assert stayers["log_loss"] > 0
    churners = binary_metrics([1, 1], [0.6, 0.9])
    assert math.isnan(churners["roc_auc"])
    assert churners["lift_top10"] == 1.0


def test_scores_that_are_not_probabilities() -> None:
    metrics = binary_metrics([0, 1, 0, 1], [3.0, 40.0, 7.0, 12.0], probabilities=False)
    assert metrics["roc_auc"] == 1.0
    for name in ("log_loss", "brier", "ece"):
        assert math.isnan(metrics[name])


def test_constant_target_has_no_r2() -> None:
    assert math.isnan(regression_metrics([2.0, 2.0], [1.0, 3.0])["r2"])


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([], [], "empty"),
        ([0, 1], [0.5], "must match"),
        ([0, 2], [0.5, 0.5], "only 0 and 1"),
        ([0, math.nan], [0.5, 0.5], "only 0 and 1"),
        ([0, 1], [0.5, math.nan], "NaN or infinite"),
        ([0, 1], [0.5, 1.5], "probabilities"),
    ],
)
def test_bad_input_is_a_model_error(y: list[float], p: list[float], message: str) -> None:
    with pytest.raises(ModelError, match=message):
        binary_metrics(y, p)


def test_bad_share_or_bins_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="share"):
        top_share_rates([0, 1], [0.1, 0.2], share=0.0)
    with pytest.raises(ModelError, match="bins"):
        reliability_table([0, 1], [0.1, 0.2], bins=0)
    with pytest.raises(ModelError, match="churner"):
        gains_table([0, 0], [0.1, 0.2])
    with pytest.raises(ModelError, match="unknown target"):
        regression_metrics([1.0, math.nan], [1.0, 2.0])


# --- invariants -----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    groups=st.lists(
        st.integers(1, 20).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))),
        min_size=1,
        max_size=8,
    )
)
def test_ece_of_calibrated_groups_is_zero(groups: list[tuple[int, int]]) -> None:
    # Every group predicts exactly its own churn rate; groups sharing a bin average out
    # to the bin's churn rate too, so every bin is right on average.
    y: list[int] = []
    p: list[float] = []
    for size, churners in groups:
        y += [1] * churners + [0] * (size - churners)
        p += [churners / size] * size
    assert expected_calibration_error(y, p) == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=80, deadline=None)
@given(case=labelled, seed=st.integers(0, 2**32 - 1))
def test_metrics_are_bounded_and_ignore_row_order(
    case: tuple[list[int], list[float]], seed: int
) -> None:
    y, p = np.asarray(case[0], dtype=float), np.asarray(case[1])
    metrics = binary_metrics(y, p)
    order = np.random.default_rng(seed).permutation(y.size)
    shuffled = binary_metrics(y[order], p[order])
    assert shuffled == pytest.approx(metrics, nan_ok=True)
    assert 0.0 <= metrics["ece"] <= 1.0
    assert 0.0 <= metrics["brier"] <= 1.0
    if metrics["positives"] > 0:
        k = math.ceil(round(0.1 * y.size, 9))
        # recall = caught / positives and lift = (caught / k) / (positives / n).
        assert metrics["recall_top10"] == pytest.approx(metrics["lift_top10"] * k / y.size)
        assert 0.0 <= metrics["recall_top10"] <= 1.0


@settings(max_examples=60, deadline=None)
@given(case=labelled)
def test_rank_metrics_ignore_increasing_transforms(case: tuple[list[int], list[float]]) -> None:
    y, p = np.asarray(case[0], dtype=float), np.asarray(case[1])
    raw = binary_metrics(y, p)
    transformed = binary_metrics(y, np.exp(3.0 * p) + 10.0, probabilities=False)
    for name in ("roc_auc", "pr_auc", "lift_top10", "recall_top10"):
        assert transformed[name] == pytest.approx(raw[name], nan_ok=True)


@settings(max_examples=40, deadline=None)
@given(case=labelled, constant=grid_scores)
def test_a_constant_score_has_a_lift_of_exactly_one(
    case: tuple[list[int], list[float]], constant: float
) -> None:
    y = case[0]
    lift, _ = top_share_rates(y, [constant] * len(y))
    assert lift == pytest.approx(1.0) if sum(y) else math.isnan(lift)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), base_rate=st.floats(0.1, 0.5))
def test_random_scores_have_a_lift_near_one(seed: int, base_rate: float) -> None:
    rng = np.random.default_rng(seed)
    y = (rng.random(20_000) < base_rate).astype(float)
    metrics = binary_metrics(y, rng.random(20_000))
    # The top 2,000 rows hold at least 200 expected churners: the lift's standard
    # error is below 0.07, so 0.4 is about six of them.
    assert metrics["lift_top10"] == pytest.approx(1.0, abs=0.4)
    assert metrics["roc_auc"] == pytest.approx(0.5, abs=0.05)
