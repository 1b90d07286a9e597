"""Backtests: folds never train on an unknown label, and results add up."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from churnwatch.errors import ConfigError, ModelError
from churnwatch.models._backtest import BacktestResult, backtest, rolling_origin_folds
from churnwatch.models._metrics import (
    BINARY_METRICS,
    binary_metrics,
    regression_metrics,
    reliability_table,
)

FEATURES = ["days_since_login", "logins_30d"]
START = pd.Timestamp("2024-01-01", tz="UTC")


def churn_frame(accounts: int = 60, cutoffs: int = 5, seed: int = 0) -> pd.DataFrame:
    """Fortnightly cutoffs; churn rises with days since login, some labels unknown.

    Rows are shuffled and the index is not 0..n-1, so anything relying on frame
    order or on index labels being positions would show.
    """
    rng = np.random.default_rng(seed)
    rows = accounts * cutoffs
    days = rng.integers(0, 60, rows).astype(float)
    logins = rng.poisson(5.0, rows).astype(float)
    risk = 1.0 / (1.0 + np.exp(-(days / 12.0 - 2.5 - 0.1 * logins)))
    churn = (rng.random(rows) < risk).astype(float)
    days[rng.random(rows) < 0.05] = np.nan
    churn[rng.random(rows) < 0.05] = np.nan
    stamps = pd.date_range(START, periods=cutoffs, freq="14D", unit="us")
    frame = pd.DataFrame(
        {
            "account_id": [f"a{i:03d}" for i in range(accounts)] * cutoffs,
            "cutoff": np.repeat(stamps, accounts),
            "days_since_login": days,
            "logins_30d": logins,
            "churn_30d": churn,
        }
    )
    order = rng.permutation(rows)
    return frame.iloc[order].set_index(pd.Index(np.arange(rows) * 3 + 7))


def logistic() -> Pipeline:
    return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression())


class Recording:
    """A logistic pipeline that logs the index labels it is fitted on and asked about."""

    def __init__(self, log: list[tuple[str, pd.Index]]) -> None:
        self.log = log
        self.model = logistic()

    def fit(self, features: pd.DataFrame, y: np.ndarray) -> Recording:
        self.log.append(("fit", features.index))
        self.model.fit(features, y)
        self.classes_ = self.model.classes_
        return self

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        self.log.append(("predict", features.index))
        return np.asarray(self.model.predict_proba(features))


# --- folds ----------------------------------------------------------------------------


def test_folds_by_hand() -> None:
    cutoffs = pd.Series(pd.date_range("2024-01-01", periods=4, freq="7D", tz="UTC"))
    folds = rolling_origin_folds(cutoffs.iloc[[2, 0, 3, 1]].reset_index(drop=True), horizon_days=14)
    # Rows hold Jan 15, Jan 1, Jan 22, Jan 8. Testing Jan 15 may train on Jan 1 only
    # (Jan 8 + 14 days is Jan 22, after it); Jan 22 on Jan 1 and Jan 8.
    assert [fold.test_cutoff.day for fold in folds] == [15, 22]
    assert [fold.train_index.tolist() for fold in folds] == [[1], [1, 3]]
    assert [fold.test_index.tolist() for fold in folds] == [[0], [2]]


def test_a_label_closing_on_the_test_cutoff_may_train() -> None:
    cutoffs = pd.Series(pd.to_datetime(["2024-01-01", "2024-01-31"]))
    (fold,) = rolling_origin_folds(cutoffs, horizon_days=30)
    assert fold.train_index.tolist() == [0]
    with pytest.raises(ModelError, match="No backtest fold is possible"):
        rolling_origin_folds(cutoffs, horizon_days=31)


def test_test_cutoffs_keeps_the_latest_and_min_train_cutoffs_the_well_trained() -> None:
    cutoffs = pd.Series(pd.date_range("2024-01-01", periods=6, freq="30D"))
    assert len(rolling_origin_folds(cutoffs, horizon_days=30)) == 5
    latest = rolling_origin_folds(cutoffs, horizon_days=30, test_cutoffs=2)
    assert [fold.test_cutoff for fold in latest] == list(cutoffs.iloc[-2:])
    trained = rolling_origin_folds(cutoffs, horizon_days=30, min_train_cutoffs=3)
    assert [fold.test_cutoff for fold in trained] == list(cutoffs.iloc[3:])
    assert len(rolling_origin_folds(cutoffs, horizon_days=30, test_cutoffs=99)) == 5


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"horizon_days": 0}, ConfigError),
        ({"horizon_days": 30, "test_cutoffs": 0}, ConfigError),
        ({"horizon_days": 30, "min_train_cutoffs": 0}, ConfigError),
        ({"horizon_days": 30, "min_train_cutoffs": 5}, ModelError),
    ],
)
def test_bad_fold_settings(kwargs: dict[str, Any], error: type[Exception]) -> None:
    cutoffs = pd.Series(pd.date_range("2024-01-01", periods=3, freq="30D"))
    with pytest.raises(error):
        rolling_origin_folds(cutoffs, **kwargs)


def test_cutoffs_must_be_known_datetimes() -> None:
    with pytest.raises(ModelError, match="datetimes"):
        rolling_origin_folds(pd.Series(["2024-01-01", "2024-02-01"]), horizon_days=1)
    with pytest.raises(ModelError, match="no cutoff"):
        rolling_origin_folds(pd.Series(pd.to_datetime(["2024-01-01", None])), horizon_days=1)


@settings(max_examples=80, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 120), min_size=1, max_size=40),
    horizon_days=st.integers(1, 60),
    min_train_cutoffs=st.integers(1, 3),
    test_cutoffs=st.none() | st.integers(1, 4),
)
def test_folds_never_leak_and_test_whole_cutoffs(
    offsets: list[int], horizon_days: int, min_train_cutoffs: int, test_cutoffs: int | None
) -> None:
    cutoffs = pd.Series(START + pd.to_timedelta(offsets, unit="D"))
    horizon = pd.Timedelta(days=horizon_days)
    distinct = sorted(set(cutoffs))
    eligible = [t for t in distinct if sum(c + horizon <= t for c in distinct) >= min_train_cutoffs]
    if not eligible:
        with pytest.raises(ModelError):
            rolling_origin_folds(
                cutoffs, horizon_days=horizon_days, min_train_cutoffs=min_train_cutoffs
            )
        return
    folds = rolling_origin_folds(
        cutoffs,
        horizon_days=horizon_days,
        test_cutoffs=test_cutoffs,
        min_train_cutoffs=min_train_cutoffs,
    )
    wanted = eligible if test_cutoffs is None else eligible[-test_cutoffs:]
    assert [fold.test_cutoff for fold in folds] == wanted
    for fold in folds:
        train = cutoffs.iloc[fold.train_index]
        assert (train + horizon <= fold.test_cutoff).all()
        # ...and nothing that could have been used was left out.
        assert set(fold.train_index) == set(np.flatnonzero(cutoffs + horizon <= fold.test_cutoff))
        assert fold.test_index.tolist() == np.flatnonzero(cutoffs == fold.test_cutoff).tolist()
        assert train.nunique() >= min_train_cutoffs


# --- backtest -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return churn_frame()


@pytest.fixture(scope="module")
def fitted(frame: pd.DataFrame) -> tuple[BacktestResult, list[tuple[str, pd.Index]]]:
    log: list[tuple[str, pd.Index]] = []
    result = backtest(
        frame,
        FEATURES,
        "churn_30d",
        {"logistic": lambda: Recording(log)},
        horizon_days=30,
        recency_feature="days_since_login",
    )
    return result, log


def test_models_train_only_on_closed_labels_and_test_whole_cutoffs(
    frame: pd.DataFrame, fitted: tuple[BacktestResult, list[tuple[str, pd.Index]]]
) -> None:
    result, log = fitted
    test_cutoffs = list(result.folds.loc[result.folds["model"] == "logistic", "test_cutoff"])
    # Fortnightly cutoffs (days 0 to 56) and a 30-day horizon: day 28 cannot train on
    # day 0 (its labels close on day 30), so day 42 is the first testable cutoff.
    assert test_cutoffs == [START + pd.Timedelta(days=42), START + pd.Timedelta(days=56)]
    assert [kind for kind, _ in log] == ["fit", "predict"] * 2
    labelled = frame.loc[frame["churn_30d"].notna()]
    for test_cutoff, (_, trained_on), (_, scored) in zip(
        test_cutoffs, log[::2], log[1::2], strict=True
    ):
        train_cutoffs = frame.loc[trained_on, "cutoff"]
        assert (train_cutoffs + pd.Timedelta(days=30) <= test_cutoff).all()
        assert train_cutoffs.is_monotonic_increasing  # latest rows last, for early stopping
        assert frame.loc[trained_on, "churn_30d"].notna().all()
        expected_train = labelled.index[labelled["cutoff"] + pd.Timedelta(days=30) <= test_cutoff]
        assert set(trained_on) == set(expected_train)
        assert set(scored) == set(labelled.index[labelled["cutoff"] == test_cutoff])


def test_pooled_and_fold_metrics_are_those_of_the_predictions(
    fitted: tuple[BacktestResult, list[tuple[str, pd.Index]]],
) -> None:
    result, _ = fitted
    assert result.models == ("logistic", "recency")
    assert result.score_only == ("recency",)
    assert list(result.pooled.columns) == ["model", *BINARY_METRICS]
    assert list(result.folds.columns[:4]) == ["model", "test_cutoff", "n_train", "n_test"]
    predictions = result.predictions
    assert list(predictions.columns) == ["model", "account_id", "cutoff", "y", "p"]
    assert predictions["y"].notna().all()
    for row in result.pooled.itertuples(index=False):
        rows = predictions.loc[predictions["model"] == row.model]
        expected = binary_metrics(rows["y"], rows["p"], probabilities=row.model != "recency")
        assert row._asdict() == pytest.approx({"model": row.model, **expected}, nan_ok=True)
    for fold in result.folds.itertuples(index=False):
        rows = predictions.loc[
            (predictions["model"] == fold.model) & (predictions["cutoff"] == fold.test_cutoff)
        ]
        assert len(rows) == fold.n_test
        expected = binary_metrics(rows["y"], rows["p"], probabilities=fold.model != "recency")
        assert {name: getattr(fold, name) for name in BINARY_METRICS} == pytest.approx(
            expected, nan_ok=True
        )
    # Every model is judged on the same rows.
    for _, rows in predictions.groupby("model"):
        assert (
            rows[["account_id", "cutoff", "y"]]
            .reset_index(drop=True)
            .equals(
                predictions.loc[
                    predictions["model"] == "logistic", ["account_id", "cutoff", "y"]
                ].reset_index(drop=True)
            )
        )
    assert len(predictions) == result.folds["n_test"].sum()


def test_the_model_beats_chance_and_recency_is_a_fair_baseline(
    fitted: tuple[BacktestResult, list[tuple[str, pd.Index]]],
) -> None:
    pooled = fitted[0].pooled.set_index("model")
    assert pooled.loc["logistic", "roc_auc"] > 0.7
    assert pooled.loc["recency", "roc_auc"] > 0.6
    assert math.isnan(pooled.loc["recency", "log_loss"])


def test_a_missing_recency_ranks_riskiest(
    frame: pd.DataFrame, fitted: tuple[BacktestResult, list[tuple[str, pd.Index]]]
) -> None:
    result, _ = fitted
    scored = result.predictions.loc[result.predictions["model"] == "recency"]
    keyed = frame.set_index(["account_id", "cutoff"])["days_since_login"]
    recency = keyed.loc[list(zip(scored["account_id"], scored["cutoff"], strict=True))]
    missing = recency.isna().to_numpy()
    assert missing.any()
    assert (scored["p"].to_numpy()[missing] > frame["days_since_login"].max()).all()
    assert scored["p"].to_numpy()[~missing] == pytest.approx(recency.to_numpy()[~missing])


def test_reliability_is_that_of_the_latest_fold(
    fitted: tuple[BacktestResult, list[tuple[str, pd.Index]]],
) -> None:
    result, _ = fitted
    rows = result.predictions.loc[result.predictions["model"] == "logistic"]
    latest = rows.loc[rows["cutoff"] == rows["cutoff"].max()]
    pd.testing.assert_frame_equal(
        result.reliability("logistic"), reliability_table(latest["y"], latest["p"])
    )
    everything = result.reliability("logistic", last_fold_only=False, bins=5)
    assert everything["n"].sum() == len(rows)
    with pytest.raises(ModelError, match="no probabilities"):
        result.reliability("recency")
    with pytest.raises(ModelError, match="No model"):
        result.reliability("forest")
    y, p = result.curves(last_fold_only=True)["logistic"]
    assert y.tolist() == latest["y"].tolist()
    assert p.tolist() == latest["p"].tolist()


def test_backtest_is_deterministic_and_ignores_row_order(frame: pd.DataFrame) -> None:
    def run(data: pd.DataFrame) -> BacktestResult:
        return backtest(
            data,
            FEATURES,
            "churn_30d",
            {"logistic": logistic},
            horizon_days=30,
            recency_feature="days_since_login",
            test_cutoffs=1,
        )

    first = run(frame)
    again = run(frame.sample(frac=1.0, random_state=1))
    pd.testing.assert_frame_equal(first.pooled, again.pooled)
    pd.testing.assert_frame_equal(first.predictions, again.predictions)
    assert first.predictions["cutoff"].dtype == frame["cutoff"].dtype


def test_no_recency_feature_is_a_note() -> None:
    result = backtest(
        churn_frame(accounts=40, cutoffs=4),
        FEATURES,
        "churn_30d",
        {"logistic": logistic},
        horizon_days=30,
        recency_feature=None,
    )
    assert result.models == ("logistic",)
    assert any("Recency baseline skipped" in note for note in result.notes)


def test_a_fold_with_one_training_class_is_skipped_with_a_note() -> None:
    data = churn_frame(accounts=40, cutoffs=5)
    first = data["cutoff"] == data["cutoff"].min()
    data.loc[first, "churn_30d"] = 0.0
    result = backtest(
        data, FEATURES, "churn_30d", {"logistic": logistic}, horizon_days=30, recency_feature=None
    )
    assert len(result.folds) == 1
    assert any("only one class" in note for note in result.notes)


def test_regression_target_uses_the_last_value_baseline() -> None:
    data = churn_frame(accounts=50, cutoffs=4)
    rng = np.random.default_rng(5)
    data["revenue_30d"] = data["logins_30d"] * 10.0 + rng.normal(0.0, 2.0, len(data))
    data["revenue_prev_30d"] = data["revenue_30d"] + rng.normal(0.0, 5.0, len(data))
    data.loc[data.index[:10], "revenue_prev_30d"] = np.nan
    result = backtest(
        data,
        ["logins_30d"],
        "revenue_30d",
        {"ridge": lambda: Ridge(alpha=1.0)},
        horizon_days=30,
        naive_feature="revenue_prev_30d",
    )
    assert result.task == "regression"
    assert result.models == ("ridge", "last_value")
    assert list(result.pooled.columns) == ["model", "mae", "rmse", "r2", "n"]
    for row in result.pooled.itertuples(index=False):
        rows = result.predictions.loc[result.predictions["model"] == row.model]
        assert row._asdict() == pytest.approx(
            {"model": row.model, **regression_metrics(rows["y"], rows["p"])}
        )
    assert result.predictions["p"].notna().all()
    pooled = result.pooled.set_index("model")
    assert pooled.loc["ridge", "mae"] < pooled.loc["last_value", "mae"]
    with pytest.raises(ModelError, match="regression"):
        result.reliability("ridge")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda data: data.drop(columns="cutoff"), "needs a 'cutoff' column"),
        (lambda data: data.drop(columns="logins_30d"), "no column"),
        (lambda data: data.assign(churn_30d=np.nan), "nothing to backtest"),
    ],
)
def test_frames_that_cannot_be_backtested(change: Any, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        backtest(
            change(churn_frame(accounts=10, cutoffs=3)),
            FEATURES,
            "churn_30d",
            {"logistic": logistic},
            horizon_days=30,
        )


def test_a_model_may_not_take_a_baseline_name() -> None:
    with pytest.raises(ModelError, match="built-in baseline"):
        backtest(
            churn_frame(accounts=10, cutoffs=3),
            FEATURES,
            "churn_30d",
            {"recency": logistic},
            horizon_days=30,
        )


def test_baseline_columns_must_be_numeric() -> None:
    data = churn_frame(accounts=10, cutoffs=4).assign(plan="basic")
    with pytest.raises(ModelError, match="recency_feature 'plan' must be a numeric column"):
        backtest(
            data, FEATURES, "churn_30d", {"m": logistic}, horizon_days=30, recency_feature="plan"
        )


def test_a_model_giving_nan_is_named() -> None:
    class Broken(Recording):
        def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
            return np.full((len(features), 2), np.nan)

    with pytest.raises(ModelError, match="Model 'broken'"):
        backtest(
            churn_frame(accounts=20, cutoffs=4),
            FEATURES,
            "churn_30d",
            {"broken": lambda: Broken([])},
            horizon_days=30,
        )
