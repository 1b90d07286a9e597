"""Blend of trees and a logistic regression: exact contributions, weight chosen on held-out rows."""

from __future__ import annotations

import io
from collections.abc import Iterator

import joblib  # type: ignore[import-untyped, unused-ignore]
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from churnwatch.errors import ConfigError, ModelError
from churnwatch.models import BlendChurn, train_model
from churnwatch.models._blend import TREE_WEIGHTS, choose_tree_weight
from churnwatch.models._estimators import LightGBMChurn, LogisticChurn
from churnwatch.models._search import search_folds, search_params
from churnwatch.models._train import BLEND_SPLINE_KNOTS

FAST_TREES = {"n_estimators": 40, "n_jobs": 1}


@pytest.fixture(autouse=True, scope="module")
def one_openmp_thread() -> Iterator[None]:
    with threadpool_limits(1, user_api="openmp"):
        yield


def churn_frame(n: int = 500, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A smooth trend (logins), a threshold (tenure) and a text plan, with gaps."""
    rng = np.random.default_rng(seed)
    logins = rng.poisson(6, n).astype(float)
    tenure = rng.uniform(0, 36, n)
    tenure[rng.random(n) < 0.1] = np.nan
    plan = rng.choice(["basic", "pro", "team"], n, p=[0.5, 0.3, 0.2])
    logit = (
        0.5
        - 0.35 * logins
        + np.where(np.nan_to_num(tenure, nan=20.0) < 6, 1.5, 0.0)
        + np.where(plan == "basic", 0.8, -0.4)
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"logins": logins, "tenure": tenure, "plan": plan}), y


# -- the estimator ----------------------------------------------------------------------------


@pytest.mark.parametrize("weight", [0.3, 0.7])
def test_blend_is_the_weighted_log_odds_of_its_parts_fitted_alone(weight: float) -> None:
    """Golden: margin and SHAP values are w * trees + (1 - w) * logistic, each fitted on its own."""
    X, y = churn_frame()
    blend = BlendChurn(LightGBMChurn(**FAST_TREES), LogisticChurn(C=0.5), tree_weight=weight)
    blend.fit(X, y)
    trees = LightGBMChurn(**FAST_TREES).fit(X, y)
    linear = LogisticChurn(C=0.5).fit(X, y)
    expected = weight * trees.decision_function(X) + (1 - weight) * linear.decision_function(X)
    np.testing.assert_allclose(blend.decision_function(X), expected, rtol=0, atol=1e-12)
    p = 1 / (1 + np.exp(-expected))
    np.testing.assert_allclose(blend.predict_proba(X)[:, 1], p, rtol=0, atol=1e-12)
    values, base = blend.contributions(X)
    tree_values, tree_base = trees.contributions(X)
    linear_values, linear_base = linear.contributions(X)
    np.testing.assert_allclose(
        values, weight * tree_values + (1 - weight) * linear_values, rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(base, weight * tree_base + (1 - weight) * linear_base, atol=1e-12)
    # exact: the contributions add up to the blend's log-odds
    np.testing.assert_allclose(base + values.sum(axis=1), expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize(("weight", "alone"), [(1.0, "trees"), (0.0, "linear")])
def test_a_part_of_weight_zero_is_neither_fitted_nor_applied(weight: float, alone: str) -> None:
    X, y = churn_frame()
    blend = BlendChurn(LightGBMChurn(**FAST_TREES), tree_weight=weight).fit(X, y)
    single = (LightGBMChurn(**FAST_TREES) if alone == "trees" else LogisticChurn()).fit(X, y)
    assert (blend.trees_ is None) == (alone == "linear")
    assert (blend.linear_ is None) == (alone == "trees")
    np.testing.assert_array_equal(blend.decision_function(X), single.decision_function(X))
    values, base = blend.contributions(X.head(20))
    single_values, single_base = single.contributions(X.head(20))
    np.testing.assert_array_equal(values, single_values)
    np.testing.assert_array_equal(base, single_base)


def test_blend_follows_the_scikit_learn_contract() -> None:
    X, y = churn_frame(300)
    labels = np.where(y == 1, "churned", "stayed")
    blend = BlendChurn(LightGBMChurn(**FAST_TREES), tree_weight=0.5)
    params = blend.get_params()
    assert params["tree_weight"] == 0.5
    assert params["trees__n_estimators"] == 40  # nested parameters, as scikit-learn's
    copy = clone(blend)
    assert copy.fit(X, labels) is copy
    assert list(copy.classes_) == ["churned", "stayed"]
    assert blend.trees.get_params() == LightGBMChurn(**FAST_TREES).get_params()  # unfitted
    assert not hasattr(blend, "trees_")
    assert set(copy.predict(X)) == {"churned", "stayed"}
    np.testing.assert_array_equal(copy.feature_names_in_, ["logins", "tenure", "plan"])
    assert copy.feature_importances_.shape == (3,)
    # a pickle (the registry's format) predicts the same
    buffer = io.BytesIO()
    joblib.dump(copy, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(joblib.load(buffer).predict_proba(X), copy.predict_proba(X))


@pytest.mark.parametrize(
    ("blend", "error", "named"),
    [
        (BlendChurn(tree_weight=1.5), ConfigError, "tree_weight"),
        (BlendChurn(tree_weight=-0.1), ConfigError, "tree_weight"),
        (BlendChurn(LogisticChurn()), ModelError, "trees must be a LightGBMChurn"),  # type: ignore[arg-type]
        (BlendChurn(linear=LightGBMChurn()), ModelError, "linear must be a LogisticChurn"),  # type: ignore[arg-type]
    ],
)
def test_bad_settings_are_refused_in_fit(
    blend: BlendChurn, error: type[Exception], named: str
) -> None:
    X, y = churn_frame(100)
    with pytest.raises(error, match=named):
        blend.fit(X, y)


def test_a_blend_must_be_fitted_and_read_its_own_columns() -> None:
    X, y = churn_frame(200)
    with pytest.raises(Exception, match="not fitted"):
        BlendChurn().decision_function(X)
    blend = BlendChurn(LightGBMChurn(**FAST_TREES)).fit(X, y)
    with pytest.raises(ModelError, match="tenure"):
        blend.contributions(X.drop(columns="tenure"))


# -- choosing the weight ----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(20, 120),
    n_folds=st.integers(1, 4),
)
def test_the_chosen_weight_scores_best_of_all_candidates(
    seed: int, rows: int, n_folds: int
) -> None:
    """The chosen weight's score is the mean fold AUC of its blend, and no candidate beats it."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    trees = rng.normal(size=rows) + y
    linear = rng.normal(size=rows) + 0.5 * y
    folds = np.array_split(rng.permutation(rows), n_folds)
    scored = [fold for fold in folds if len(np.unique(y[fold])) == 2]
    if not scored:
        with pytest.raises(ModelError, match="both classes"):
            choose_tree_weight(y, trees, linear, folds)
        return
    weight, score = choose_tree_weight(y, trees, linear, folds)

    def mean_auc(w: float) -> float:
        margin = w * trees + (1 - w) * linear
        return float(np.mean([roc_auc_score(y[f], margin[f]) for f in scored]))

    assert weight in TREE_WEIGHTS
    assert score == pytest.approx(mean_auc(weight), abs=1e-12)
    others = [mean_auc(w) for w in TREE_WEIGHTS]
    assert score >= max(others) - 1e-12
    # ties go to the earliest candidate: the trees alone come first
    assert TREE_WEIGHTS.index(weight) == min(i for i, s in enumerate(others) if s >= score - 1e-12)


def test_blend_applies_its_parts_block_by_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows applied in blocks (bounded memory) give what one pass gives."""
    from churnwatch.models import _blend

    X, y = churn_frame(300)
    blend = BlendChurn(LightGBMChurn(**FAST_TREES), LogisticChurn(spline_knots=4)).fit(X, y)
    whole = blend.decision_function(X), *blend.contributions(X)
    monkeypatch.setattr(_blend, "_BLOCK_ROWS", 7)
    blocks = blend.decision_function(X), *blend.contributions(X)
    for one, other in zip(whole, blocks, strict=True):
        np.testing.assert_allclose(one, other, rtol=0, atol=1e-12)


def test_weights_outside_zero_one_are_refused() -> None:
    y = np.array([0, 1, 0, 1])
    with pytest.raises(ConfigError, match="tree weight"):
        choose_tree_weight(y, y * 1.0, y * 1.0, [np.arange(4)], weights=(1.2,))


# -- the search's held-out scores and the pipeline's choice -----------------------------------


def test_search_keeps_the_best_trials_out_of_fold_log_odds() -> None:
    """Golden: each fold's held-out rows get the log-odds of a model fitted on the rest."""
    X, y = churn_frame(300)
    found = search_params("logistic", "binary", X, y, cutoffs=None, n_iter=3, random_state=2)
    best = int(found.trials["score"].idxmax())
    params = {name: found.trials.loc[best, name] for name in ("C", "min_frequency")}
    params["min_frequency"] = int(params["min_frequency"])
    assert found.validation_scores is not None
    expected = np.full(len(y), np.nan)
    folds = search_folds(y, random_state=2)
    for train, valid in folds:
        model = LogisticChurn(**params).fit(X.iloc[train], y[train])
        expected[valid] = model.decision_function(X.iloc[valid])
    np.testing.assert_allclose(found.validation_scores, expected, rtol=1e-9)
    assert [v.tolist() for v in found.validation_folds] == [v.tolist() for _, v in folds]


def test_time_folds_leave_the_earliest_rows_unscored() -> None:
    rng = np.random.default_rng(0)
    cutoffs = pd.Series(np.repeat(pd.date_range("2024-01-01", periods=4, freq="7D"), 50))
    X = pd.DataFrame({"logins": rng.poisson(5, 200).astype(float)})
    y = (X["logins"] + rng.normal(0, 2, 200) < 4).astype(int).to_numpy()
    found = search_params("logistic", "binary", X, y, cutoffs=cutoffs, n_iter=1, n_splits=2)
    assert found.validation_scores is not None
    held = np.concatenate(found.validation_folds)
    assert np.isfinite(found.validation_scores[held]).all()
    assert np.isnan(np.delete(found.validation_scores, held)).all()
    assert cutoffs.iloc[held].min() == pd.Timestamp("2024-01-15")


def test_the_pipeline_blends_with_the_weight_its_own_folds_choose() -> None:
    """Golden: the pipeline's weight is the one its two searches' held-out scores give."""
    X, y = churn_frame(600, seed=4)
    frame = X.assign(account_id=[f"a{i}" for i in range(len(X))], churn=y.astype(float))
    features = ["logins", "tenure", "plan"]
    model = train_model(frame, features, "churn", search_iterations=2, random_state=1)
    common = {"cutoffs": None, "n_iter": 2, "random_state": 1, "n_jobs": 1}
    trees = search_params("lightgbm", "binary", X, y, **common)  # type: ignore[arg-type]
    linear = search_params(
        "logistic",
        "binary",
        X,
        y,
        fixed_params={"spline_knots": BLEND_SPLINE_KNOTS},
        **common,  # type: ignore[arg-type]
    )
    assert trees.validation_scores is not None
    assert linear.validation_scores is not None
    weight, _ = choose_tree_weight(
        y, trees.validation_scores, linear.validation_scores, trees.validation_folds
    )
    if weight == 1.0:
        assert isinstance(model.estimator, LightGBMChurn)
        assert "tree_weight" not in model.params
    else:
        assert isinstance(model.estimator, BlendChurn)
        assert model.params["tree_weight"] == weight
        assert model.params["linear_C"] == linear.best_params["C"]
        assert model.params["linear_spline_knots"] == BLEND_SPLINE_KNOTS
        assert model.estimator.linear_.spline_knots == BLEND_SPLINE_KNOTS
    # the blend of this smooth trend and threshold wins on its folds
    assert weight < 1.0
    values, base = model.contributions(frame)
    raw = model.estimator.predict_proba(frame.loc[:, features])[:, 1]
    np.testing.assert_allclose(values.sum(axis=1) + base, np.log(raw / (1 - raw)), atol=1e-6)
    reasons = model.reasons(frame.head(30), k=2)
    assert all(r.direction == "raises" for row in reasons for r in row)
    alone = train_model(frame, features, "churn", search_iterations=2, random_state=1, blend=False)
    assert isinstance(alone.estimator, LightGBMChurn)
    assert alone.params == trees.best_params
