"""Churn estimators: scikit-learn contract, golden checks against LightGBM and scikit-learn."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from churnwatch.errors import ConfigError, ModelError
from churnwatch.models._estimators import (
    LightGBMChurn,
    LightGBMTarget,
    LinearTarget,
    LogisticChurn,
    MLPChurn,
    MLPTarget,
    make_estimator,
)

FAST_LGB = {"n_estimators": 40, "n_jobs": 1}
FAST_MLP = {"hidden_layer_sizes": (8,), "max_iter": 50}


def churn_frame(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Numbers with gaps, a text plan and a 0/1 label that depends on both."""
    rng = np.random.default_rng(seed)
    logins = rng.poisson(6, n).astype(float)
    tenure = rng.uniform(0, 36, n)
    tenure[rng.random(n) < 0.1] = np.nan
    plan = rng.choice(["basic", "pro", "team"], n, p=[0.5, 0.3, 0.2])
    logit = 1.0 - 0.4 * logins + np.where(plan == "basic", 1.0, -0.5)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"logins": logins, "tenure": tenure, "plan": plan}), y


def all_estimators() -> list[object]:
    return [
        LightGBMChurn(**FAST_LGB),
        LightGBMTarget(**FAST_LGB),
        LogisticChurn(),
        LinearTarget(),
        MLPChurn(**FAST_MLP),
        MLPTarget(**FAST_MLP),
    ]


def sigmoid(margin: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-margin))


# -- the scikit-learn contract --------------------------------------------------------------


@pytest.mark.parametrize("estimator", all_estimators(), ids=lambda e: type(e).__name__)
def test_contract_clone_params_fit_returns_self(estimator: object) -> None:
    X, y = churn_frame(200)
    params = estimator.get_params()  # type: ignore[attr-defined]
    copy = clone(estimator)
    assert copy.get_params() == params
    with pytest.raises(NotFittedError):
        copy.predict(X)
    assert copy.fit(X, y) is copy
    assert list(copy.feature_names_in_) == ["logins", "tenure", "plan"]
    assert copy.n_features_in_ == 3
    # fit learned state only: the parameters are untouched.
    assert copy.get_params() == params


@pytest.mark.parametrize("estimator", all_estimators(), ids=lambda e: type(e).__name__)
def test_contributions_add_up_to_the_margin(estimator: object) -> None:
    X, y = churn_frame(200)
    model = clone(estimator).fit(X, y)
    values, base = model.contributions(X.head(25))
    assert values.shape == (25, 3)
    assert base.shape == (25,)
    if hasattr(model, "predict_proba"):
        margin = np.log(model.predict_proba(X.head(25))[:, 1])
        margin -= np.log(model.predict_proba(X.head(25))[:, 0])
    else:
        margin = model.predict(X.head(25))
    np.testing.assert_allclose(base + values.sum(axis=1), margin, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cls", [LightGBMChurn, MLPChurn], ids=lambda c: c.__name__)
def test_same_data_gives_identical_probabilities(cls: type) -> None:
    X, y = churn_frame(300)
    params = FAST_LGB if cls is LightGBMChurn else FAST_MLP
    first = cls(**params).fit(X, y).predict_proba(X)
    second = cls(**params).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, second)


def test_parameters_are_validated_in_fit_not_init() -> None:
    X, y = churn_frame(100)
    model = LightGBMChurn(num_leaves=1)  # storing a bad value is allowed
    with pytest.raises(ConfigError, match="num_leaves"):
        model.fit(X, y)
    with pytest.raises(ConfigError, match="integer"):
        LightGBMChurn(num_leaves=4.0).fit(X, y)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="imbalance"):
        LogisticChurn(imbalance="heavy").fit(X, y)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="eval_set"):
        LightGBMChurn(early_stopping_rounds=None).fit(X, y, eval_set=(X, y))


def test_bad_inputs_raise_model_errors() -> None:
    X, y = churn_frame(100)
    with pytest.raises(ModelError, match="DataFrame"):
        LogisticChurn().fit(X.to_numpy(), y)
    with pytest.raises(ModelError, match="unknown"):
        LogisticChurn().fit(X, np.where(np.arange(100) == 3, np.nan, y))
    with pytest.raises(ModelError, match="both classes"):
        LightGBMChurn(**FAST_LGB).fit(X, np.zeros(100))
    with pytest.raises(ModelError, match="numeric"):
        LinearTarget().fit(X, ["a"] * 100)
    model = LogisticChurn().fit(X, y)
    with pytest.raises(ModelError, match=r"lacks 1 feature column.*tenure"):
        model.predict_proba(X.drop(columns="tenure"))


def test_string_labels_keep_their_classes() -> None:
    X, y = churn_frame(200)
    labels = np.where(y == 1, "Yes", "No")
    model = LogisticChurn().fit(X, labels)
    assert model.classes_.tolist() == ["No", "Yes"]
    assert set(model.predict(X)) <= {"No", "Yes"}


# -- LightGBM -------------------------------------------------------------------------------


def test_lightgbm_matches_lightgbm_classifier_exactly() -> None:
    """Golden: same parameters as LightGBM's own scikit-learn wrapper, same probabilities."""
    X, y = churn_frame(400)
    X = X[["logins", "tenure"]]
    ours = LightGBMChurn(n_estimators=30, imbalance="none", early_stopping_rounds=None, n_jobs=1)
    ours.fit(X, y)
    reference = lgb.LGBMClassifier(
        n_estimators=30,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=20,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        reg_lambda=1.0,
        random_state=0,
        n_jobs=1,
        verbose=-1,
        deterministic=True,
        force_col_wise=True,
    ).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), reference.predict_proba(X), rtol=1e-12)
    assert ours.best_iteration_ == 30


def test_lightgbm_margin_and_contributions_match_the_booster_raw_score() -> None:
    X, y = churn_frame(300)
    model = LightGBMChurn(**FAST_LGB).fit(X, y)
    raw = model.booster_.predict(
        model._lightgbm_frame(X), raw_score=True, num_iteration=model.best_iteration_
    )
    np.testing.assert_allclose(model.decision_function(X), raw)
    np.testing.assert_allclose(model.predict_proba(X)[:, 1], sigmoid(raw))
    values, base = model.contributions(X)
    np.testing.assert_allclose(base + values.sum(axis=1), raw, atol=1e-9)
    assert np.ptp(base) == 0  # TreeSHAP's base is the expected value, one for all rows
    assert model.feature_importances_.shape == (3,)


def test_lightgbm_categories_unseen_level_is_missing() -> None:
    X, y = churn_frame(300)
    model = LightGBMChurn(**FAST_LGB).fit(X, y)
    assert model.categories_ == {"plan": ["basic", "pro", "team"]}
    unseen = X.head(5).assign(plan="enterprise")
    missing = X.head(5).assign(plan=np.nan)
    np.testing.assert_array_equal(model.predict_proba(unseen), model.predict_proba(missing))
    # the level matters: the unseen rows are not scored like "basic" rows
    basic = X.head(5).assign(plan="basic")
    assert not np.array_equal(model.predict_proba(unseen), model.predict_proba(basic))


def test_lightgbm_early_stopping_holds_out_the_last_rows() -> None:
    X, y = churn_frame(400)
    auto = LightGBMChurn(n_estimators=300, validation_fraction=0.25, n_jobs=1).fit(X, y)
    explicit = LightGBMChurn(n_estimators=300, n_jobs=1).fit(
        X.iloc[:300], y[:300], eval_set=(X.iloc[300:], y[300:])
    )
    assert auto.best_iteration_ == explicit.best_iteration_
    assert auto.best_iteration_ < 300
    np.testing.assert_array_equal(auto.predict_proba(X), explicit.predict_proba(X))


def test_lightgbm_balanced_raises_probabilities_of_a_rare_class() -> None:
    X, _ = churn_frame(400)
    rare = (X["logins"] < 3).astype(int).to_numpy()
    params = {"n_estimators": 40, "early_stopping_rounds": None, "n_jobs": 1}
    none = LightGBMChurn(imbalance="none", **params).fit(X, rare).predict_proba(X)[:, 1]
    balanced = LightGBMChurn(imbalance="balanced", **params).fit(X, rare).predict_proba(X)[:, 1]
    assert balanced.mean() > 1.5 * none.mean()


def test_lightgbm_takes_any_column_name() -> None:
    X, y = churn_frame(200)
    X = X.rename(columns={"logins": "logins [30 days]", "plan": 'plan: "name"'})
    model = LightGBMChurn(**FAST_LGB).fit(X, y)
    assert list(model.feature_names_in_) == ["logins [30 days]", "tenure", 'plan: "name"']
    assert model.predict_proba(X).shape == (200, 2)


def test_lightgbm_target_contributions_in_target_units() -> None:
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"seats": rng.integers(1, 20, 300).astype(float)})
    y = 5.0 * X["seats"].to_numpy() + rng.normal(0, 1, 300)
    model = LightGBMTarget(n_estimators=200, early_stopping_rounds=None, n_jobs=1).fit(X, y)
    values, base = model.contributions(X)
    np.testing.assert_allclose(base + values[:, 0], model.predict(X), atol=1e-9)
    assert base[0] == pytest.approx(y.mean(), abs=1.0)
    with pytest.raises(ConfigError, match="objective"):
        LightGBMTarget(objective="poisson").fit(X, y)  # type: ignore[arg-type]


# -- linear models --------------------------------------------------------------------------


def test_logistic_matches_a_hand_built_scikit_learn_pipeline() -> None:
    X, y = churn_frame(300)
    X = X[["logins", "tenure"]]
    ours = LogisticChurn(C=0.5, imbalance="none").fit(X, y)
    reference = make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True),
        StandardScaler(),
        LogisticRegression(C=0.5, max_iter=1000),
    ).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), reference.predict_proba(X), rtol=1e-6)


def test_linear_contributions_are_hand_computed_shap_values() -> None:
    X = pd.DataFrame({"seats": [1.0, 2.0, 3.0, 6.0]})
    y = np.array([10.0, 20.0, 30.0, 60.0])
    model = LinearTarget(alpha=1e-12).fit(X, y)
    values, base = model.contributions(X)
    # exact linear SHAP: slope * (x - mean x), base = mean prediction
    np.testing.assert_allclose(values[:, 0], 10.0 * (X["seats"] - 3.0), atol=1e-6)
    np.testing.assert_allclose(base, 30.0, atol=1e-6)


def test_logistic_one_hot_blocks_sum_back_to_their_feature() -> None:
    X, y = churn_frame(300)
    model = LogisticChurn().fit(X, y)
    values, base = model.contributions(X)
    np.testing.assert_allclose(base + values.sum(axis=1), model.decision_function(X))
    # on average over the training rows every contribution is zero (centred SHAP)
    np.testing.assert_allclose(values.mean(axis=0), 0.0, atol=1e-9)
    # a text feature's contribution depends on its level only
    plan = values[:, 2]
    for level in ["basic", "pro", "team"]:
        assert np.ptp(plan[X["plan"].to_numpy() == level]) == pytest.approx(0.0, abs=1e-12)


def test_logistic_splines_match_a_hand_built_scikit_learn_pipeline() -> None:
    """Golden: a straight line plus a cubic spline at quantile knots, per numeric feature."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import SplineTransformer

    X, y = churn_frame(400)
    X = X[["logins", "tenure"]]
    ours = LogisticChurn(C=0.5, imbalance="none", spline_knots=5).fit(X, y)
    steps = []
    for column in X.columns:
        values = X[column].dropna().to_numpy()
        knots = np.unique(np.quantile(values, np.linspace(0, 1, 5)))[:, None]
        steps.append(
            (
                f"{column}_line",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True), StandardScaler()
                ),
                [column],
            )
        )
        steps.append(
            (
                f"{column}_curve",
                make_pipeline(
                    SimpleImputer(strategy="median"),
                    SplineTransformer(
                        knots=knots, degree=3, extrapolation="linear", include_bias=False
                    ),
                ),
                [column],
            )
        )
    reference = make_pipeline(
        ColumnTransformer(steps), LogisticRegression(C=0.5, max_iter=1000)
    ).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), reference.predict_proba(X), rtol=1e-6)


def test_logistic_spline_contributions_are_exact_per_feature() -> None:
    """A feature's linear and spline columns add up to one exact, centred contribution."""
    X, y = churn_frame(400)
    X["flag"] = (X["logins"] > 6).astype(float)  # two values: no room for a curve
    model = LogisticChurn(spline_knots=6).fit(X, y)
    values, base = model.contributions(X)
    assert values.shape == (len(X), 4)
    np.testing.assert_allclose(base + values.sum(axis=1), model.decision_function(X), atol=1e-9)
    np.testing.assert_allclose(values.mean(axis=0), 0.0, atol=1e-9)
    # logins: a line and 6 knots' cubic basis minus one; tenure adds its missing flag
    sizes = [len(block) for block in model._blocks()]
    assert sizes == [1 + 7, 2 + 7, 3, 1]
    # moving one feature moves that feature's contribution only
    moved = X.copy()
    moved["logins"] += 3.0
    delta = model.contributions(moved)[0] - values
    np.testing.assert_allclose(delta[:, 1:], 0.0, atol=1e-12)
    with pytest.raises(ConfigError, match="spline_knots"):
        LogisticChurn(spline_knots=2).fit(X, y)


def test_a_number_never_seen_in_training_has_no_reference_and_no_warning() -> None:
    """An all-missing column (early cutoffs of a new event type) trains quietly."""
    X, y = churn_frame(200)
    X["new_feature"] = np.nan
    model = LogisticChurn(spline_knots=4).fit(X, y)  # warnings are errors here
    assert np.isnan(model.references_["new_feature"])
    values, base = model.contributions(X)
    np.testing.assert_allclose(values[:, 3], 0.0, atol=1e-12)
    np.testing.assert_allclose(base + values.sum(axis=1), model.decision_function(X), atol=1e-9)


def test_logistic_unseen_and_missing_text_levels() -> None:
    X, y = churn_frame(300)
    X.loc[X.index[:15], "plan"] = np.nan
    model = LogisticChurn().fit(X, y)
    unseen = model.predict_proba(X.head(3).assign(plan="enterprise"))
    assert np.isfinite(unseen).all()
    # missing text is a level of its own, not the same as an unseen level
    assert not np.allclose(unseen, model.predict_proba(X.head(3).assign(plan=np.nan)))


# -- MLP ------------------------------------------------------------------------------------


def test_mlp_occlusion_is_zero_at_the_reference_and_quiet_when_cut_short() -> None:
    X, y = churn_frame(300)
    model = MLPChurn(hidden_layer_sizes=(8,), max_iter=2).fit(X, y)
    assert model.converged_ is False  # the ConvergenceWarning is recorded, not raised
    row = X.head(1).assign(logins=model.references_["logins"], plan=model.references_["plan"])
    values, _ = model.contributions(row)
    assert values[0, 0] == 0.0
    assert values[0, 2] == 0.0
    assert model.references_["plan"] == "basic"


def test_mlp_balanced_oversampling_raises_the_rare_class() -> None:
    X, _ = churn_frame(400)
    rare = (X["logins"] < 3).astype(int).to_numpy()
    none = MLPChurn(imbalance="none", **FAST_MLP).fit(X, rare).predict_proba(X)[:, 1]
    balanced = MLPChurn(**FAST_MLP).fit(X, rare).predict_proba(X)[:, 1]
    assert balanced.mean() > none.mean()


def test_mlp_target_learns_on_the_target_scale() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"seats": rng.uniform(0, 10, 400)})
    y = 1000.0 + 300.0 * X["seats"].to_numpy()
    model = MLPTarget(hidden_layer_sizes=(16,), max_iter=300).fit(X, y)
    assert np.abs(model.predict(X) - y).mean() < 0.1 * y.std()


# -- factory --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "task", "cls"),
    [
        ("lightgbm", "binary", LightGBMChurn),
        ("lightgbm", "regression", LightGBMTarget),
        ("logistic", "binary", LogisticChurn),
        ("logistic", "regression", LinearTarget),
        ("mlp", "binary", MLPChurn),
        ("mlp", "regression", MLPTarget),
    ],
)
def test_make_estimator_builds_each_kind(kind: str, task: str, cls: type) -> None:
    estimator = make_estimator(kind, task, random_state=3, n_jobs=1)  # type: ignore[arg-type]
    assert type(estimator) is cls
    if "random_state" in estimator.get_params():
        assert estimator.random_state == 3


def test_make_estimator_rejects_unknown_names() -> None:
    with pytest.raises(ConfigError, match="num_leafs"):
        make_estimator("lightgbm", "binary", num_leafs=7)
    with pytest.raises(ConfigError, match="kind"):
        make_estimator("forest", "binary")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="task"):
        make_estimator("lightgbm", "survival")  # type: ignore[arg-type]
