"""Hyperparameter search: time-aware folds never train on the future; results are reproducible."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnwatch.errors import ConfigError, ModelError
from churnwatch.models._estimators import make_estimator
from churnwatch.models._search import _SPACES, search_folds, search_params, search_space


def weekly_frame(
    weeks: int = 6, accounts: int = 60, seed: int = 0
) -> tuple[pd.DataFrame, pd.Series, np.ndarray]:
    rng = np.random.default_rng(seed)
    cutoffs = pd.Series(
        np.repeat(pd.date_range("2024-01-01", periods=weeks, freq="7D", tz="UTC"), accounts)
    )
    n = len(cutoffs)
    X = pd.DataFrame(
        {"logins": rng.poisson(5, n).astype(float), "plan": rng.choice(["basic", "pro"], n)}
    )
    y = (X["logins"] + rng.normal(0, 2, n) < 4).astype(int).to_numpy()
    return X, cutoffs, y


@settings(max_examples=40, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 8), min_size=3, max_size=40),
    horizon_days=st.sampled_from([0, 7, 14]),
    n_splits=st.integers(2, 5),
)
def test_time_folds_never_train_on_a_later_cutoff(
    offsets: list[int], horizon_days: int, n_splits: int
) -> None:
    cutoffs = pd.Series(pd.Timestamp("2024-01-01") + pd.to_timedelta(offsets, unit="W"))
    if cutoffs.nunique() < 3:
        return
    try:
        folds = search_folds(
            np.zeros(len(cutoffs)), cutoffs=cutoffs, n_splits=n_splits, horizon_days=horizon_days
        )
    except ModelError:
        # only when no cutoff has an earlier one whose label window has closed
        distinct = np.sort(cutoffs.unique())
        assert (distinct[-1] - distinct[0]) < pd.Timedelta(days=max(horizon_days, 1))
        return
    assert 1 <= len(folds) <= n_splits
    for train, valid in folds:
        validation_cutoffs = cutoffs.iloc[valid]
        assert validation_cutoffs.nunique() == 1  # one cutoff per fold ...
        cutoff = validation_cutoffs.iloc[0]
        # ... and every row of it: a cutoff's rows are never split
        assert sorted(valid.tolist()) == np.flatnonzero(cutoffs == cutoff).tolist()
        trained = cutoffs.iloc[train]
        assert (trained < cutoff).all()
        assert (trained + pd.Timedelta(days=horizon_days) <= cutoff).all()
        # training rows come in cutoff order: a model's own holdout is the latest data
        assert trained.is_monotonic_increasing


def test_time_folds_use_the_latest_cutoffs_and_every_earlier_one() -> None:
    _, cutoffs, y = weekly_frame(weeks=6, accounts=3)
    folds = search_folds(y, cutoffs=cutoffs, n_splits=2, horizon_days=7)
    assert len(folds) == 2
    # last fold: validate on week 6, train on weeks 1-5 (week 5 + 7 days <= week 6)
    train, valid = folds[-1]
    assert sorted(train.tolist()) == list(range(15))
    assert valid.tolist() == [15, 16, 17]
    # with a 14-day horizon, week 5 is not yet labelled on week 6
    train, _ = search_folds(y, cutoffs=cutoffs, n_splits=2, horizon_days=14)[-1]
    assert sorted(train.tolist()) == list(range(12))


def test_few_cutoffs_fall_back_to_stratified_folds() -> None:
    y = np.array([0, 1] * 50)
    cutoffs = pd.Series(pd.to_datetime(["2024-01-01", "2024-02-01"] * 50))
    folds = search_folds(y, cutoffs=cutoffs, n_splits=5)
    assert len(folds) == 5
    for train, valid in folds:
        assert len(valid) == 20
        assert y[valid].mean() == 0.5  # stratified
        assert set(train) | set(valid) == set(range(100))
    with pytest.raises(ModelError, match="each class"):
        search_folds(np.array([0] * 98 + [1] * 2), n_splits=5)
    with pytest.raises(ModelError, match="missing"):
        search_folds(y, cutoffs=cutoffs.where(cutoffs.index > 0))


def test_search_is_reproducible_and_starts_from_the_defaults() -> None:
    X, cutoffs, y = weekly_frame()
    kwargs = {"cutoffs": cutoffs, "n_iter": 3, "random_state": 1, "n_splits": 2, "n_jobs": 1}
    first = search_params("lightgbm", "binary", X, y, **kwargs)  # type: ignore[arg-type]
    second = search_params("lightgbm", "binary", X, y, **kwargs)  # type: ignore[arg-type]
    columns = ["trial", *search_space("lightgbm", "binary"), "score", "best_iteration"]
    pd.testing.assert_frame_equal(first.trials[columns], second.trials[columns])
    assert first.best_params == second.best_params
    defaults = make_estimator("lightgbm", "binary").get_params()
    assert first.trials.loc[0, "num_leaves"] == defaults["num_leaves"]
    assert first.trials["folds"].tolist() == [2, 2, 2]
    best = first.trials["score"].idxmax()
    assert first.best_score == first.trials.loc[best, "score"]
    assert first.best_params["num_leaves"] == first.trials.loc[best, "num_leaves"]
    # the final model trains on every row with the rounds the folds found best
    assert first.best_params["early_stopping_rounds"] is None
    assert first.best_params["n_estimators"] == round(first.trials.loc[best, "best_iteration"])
    model = make_estimator("lightgbm", "binary", n_jobs=1, **first.best_params).fit(X, y)
    assert model.n_estimators == first.best_params["n_estimators"]
    assert model.best_iteration_ <= model.n_estimators  # LightGBM may run out of splits


def test_search_scores_are_roc_auc_of_the_fold() -> None:
    """Golden: a one-trial search scores exactly what fitting the fold by hand scores."""
    from sklearn.metrics import roc_auc_score

    X, cutoffs, y = weekly_frame(weeks=4)
    found = search_params("logistic", "binary", X, y, cutoffs=cutoffs, n_iter=1, n_splits=2)
    scores = []
    for train, valid in search_folds(y, cutoffs=cutoffs, n_splits=2):
        model = make_estimator("logistic", "binary").fit(X.iloc[train], y[train])
        scores.append(roc_auc_score(y[valid], model.predict_proba(X.iloc[valid])[:, 1]))
    assert found.trials.loc[0, "score"] == pytest.approx(np.mean(scores), abs=1e-12)


def test_fixed_params_are_shared_by_every_trial_and_never_searched() -> None:
    X, cutoffs, y = weekly_frame(weeks=4)
    fixed = {"spline_knots": 4}
    found = search_params(
        "logistic", "binary", X, y, cutoffs=cutoffs, n_iter=2, n_splits=2, fixed_params=fixed
    )
    assert found.best_params["spline_knots"] == 4
    best = found.trials.loc[found.trials["score"].idxmax()]
    model = make_estimator("logistic", "binary", **found.best_params)
    assert model.get_params()["C"] == best["C"]
    with pytest.raises(ConfigError, match="both fixed and searched"):
        search_params("logistic", "binary", X, y, cutoffs=cutoffs, fixed_params={"C": 1.0})


def test_regression_search_scores_negative_mae() -> None:
    X, _, _ = weekly_frame()
    y = 3.0 * X["logins"].to_numpy()
    found = search_params("logistic", "regression", X, y, cutoffs=None, n_iter=2, n_splits=3)
    assert set(found.best_params) == {"alpha", "min_frequency"}
    assert (found.trials["score"] <= 0).all()
    assert found.best_score > -1.0  # a linear target is found almost exactly


def test_lightgbm_space_reaches_strongly_regularised_settings() -> None:
    """The space must hold small, slow, penalised trees (they win on churn tables)."""
    rng = np.random.default_rng(0)
    space = _SPACES[("lightgbm", "binary")]
    draws = pd.DataFrame(
        [{name: sample(rng) for name, sample in space.items()} for _ in range(2000)]
    )
    assert draws["num_leaves"].between(4, 63).all()
    assert draws["learning_rate"].between(0.01, 0.1).all()
    assert draws["min_child_samples"].between(10, 100).all()
    assert draws["reg_lambda"].between(0, 10).all()
    assert draws["colsample_bytree"].between(0.5, 1.0).all()
    # log-uniform: small trees are drawn as often as large ones (per doubling)
    assert (draws["num_leaves"] <= 8).mean() > 0.25
    regularised = (
        (draws["num_leaves"] <= 8)
        & (draws["learning_rate"] <= 0.03)
        & (draws["min_child_samples"] >= 30)
        & (draws["reg_lambda"] >= 3)
    )
    assert regularised.any()


def test_search_rejects_bad_settings() -> None:
    X, cutoffs, y = weekly_frame(weeks=3)
    with pytest.raises(ConfigError, match="n_iter"):
        search_params("logistic", "binary", X, y, cutoffs=None, n_iter=0)
    with pytest.raises(ConfigError, match="kind"):
        search_params("forest", "binary", X, y, cutoffs=None)  # type: ignore[arg-type]
    # every validation cutoff holds one class: nothing can be scored
    one_class = np.where(cutoffs == cutoffs.iloc[0], y, 0)
    one_class[:2] = [0, 1]
    with pytest.raises(ModelError, match="no search fold"):
        search_params("logistic", "binary", X, one_class, cutoffs=cutoffs, n_iter=1)
