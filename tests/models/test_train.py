"""Training: honest held-out splits, calibrated probabilities, determinism, registration.

Covers :mod:`churnwatch.models._train`, :mod:`churnwatch.models._workflow` and
:mod:`churnwatch.models._frame`, on synthetic frames whose true churn
probabilities are known and on a small simulated business in DuckDB.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.metrics import mean_absolute_error, roc_auc_score
from sklearn.model_selection import KFold, cross_val_score
from sqlglot import exp
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from churnwatch.config import Settings
from churnwatch.errors import ModelError
from churnwatch.features import FeatureSpec
from churnwatch.ingest import ingest
from churnwatch.ingest.presets import preset_sources
from churnwatch.labels import CutoffSchedule, LabelSpec, make_labels
from churnwatch.models import (
    ChurnPipeline,
    ModelRegistry,
    ScoreCalibrator,
    TrainedModel,
    TrainingFrame,
    backtest_frame,
    fingerprint,
    register_model,
    train_model,
    training_frame,
    training_schedule,
)
from churnwatch.models._calibration import _isotonic_step
from churnwatch.models._train import horizon_of, infer_task
from churnwatch.simulate import simulate
from churnwatch.warehouse import Warehouse, connect

FEATURES = ["logins_30d", "days_since_login", "plan"]
START = pd.Timestamp("2024-01-01", tz="UTC")


@pytest.fixture(autouse=True, scope="module")
def one_openmp_thread() -> Iterator[None]:
    """LightGBM on one OpenMP thread: tiny frames fit faster and never stall on busy cores."""
    with threadpool_limits(1, user_api="openmp"):
        yield


def true_probability(frame: pd.DataFrame) -> np.ndarray:
    """P(churn) of the synthetic business: fewer logins, longer silence, basic plan."""
    logit = (
        -2.6
        - 0.25 * (frame["logins_30d"].to_numpy(dtype=float) - 4.0)
        + 0.05 * np.nan_to_num(frame["days_since_login"].to_numpy(dtype=float), nan=30.0)
        + 0.6 * (frame["plan"] == "basic").to_numpy()
    )
    p: np.ndarray = 1.0 / (1.0 + np.exp(-logit))
    return p


def synthetic_frame(
    accounts: int,
    cutoffs: int = 1,
    *,
    seed: int = 0,
    every_days: int = 30,
    target: str = "churn_30d",
) -> pd.DataFrame:
    """One row per account and cutoff, with a 0/1 target drawn from :func:`true_probability`."""
    rng = np.random.default_rng(seed)
    rows = accounts * cutoffs
    frame = pd.DataFrame(
        {
            "account_id": [f"a{i:05d}" for i in range(accounts)] * cutoffs,
            "logins_30d": rng.poisson(4.0, rows).astype(float),
            "days_since_login": rng.exponential(12.0, rows).round(),
            "plan": rng.choice(["basic", "pro", "team"], rows),
        }
    )
    if cutoffs > 1:
        stamps = pd.date_range(START, periods=cutoffs, freq=f"{every_days}D", unit="us")
        frame.insert(1, "cutoff", np.repeat(stamps, accounts))
    frame[target] = (rng.random(rows) < true_probability(frame)).astype(float)
    return frame


# --- calibration ----------------------------------------------------------------------


def test_calibrated_probabilities_match_the_true_rate_per_decile() -> None:
    """Held-out calibration turns LightGBM's balanced (inflated) scores into true rates."""
    frame = synthetic_frame(2500, cutoffs=5, seed=1)
    model = train_model(frame, FEATURES, "churn_30d", params={"n_jobs": 1})
    assert model.calibrator is not None
    assert model.calibrator.method == "isotonic"
    fresh = synthetic_frame(20_000, seed=2)
    truth = true_probability(fresh)
    predicted = model.predict(fresh)
    raw = model.estimator.predict_proba(fresh.loc[:, FEATURES])[:, 1]

    def decile_error(p: np.ndarray) -> tuple[float, float]:
        """Worst and row-weighted mean |mean(p) - mean(true p)| over deciles of p."""
        edges = np.quantile(p, np.linspace(0, 1, 11)[1:-1])
        bins = np.searchsorted(edges, p, side="right")
        gaps = np.array([abs(p[bins == b].mean() - truth[bins == b].mean()) for b in range(10)])
        sizes = np.bincount(bins, minlength=10)
        return float(gaps.max()), float((gaps * sizes).sum() / sizes.sum())

    worst, mean_gap = decile_error(predicted)
    # About 250 held-out rows per decile: a standard error near 0.02 to 0.03.
    assert worst < 0.08
    assert mean_gap < 0.025
    assert abs(predicted.mean() - truth.mean()) < 0.02
    # The calibration did something: the raw balanced scores are far off.
    assert decile_error(raw)[1] > 3 * mean_gap


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(20, 300),
    method=st.sampled_from(["isotonic", "sigmoid"]),
)
def test_calibration_keeps_the_ranking_on_its_own_data(seed: int, n: int, method: str) -> None:
    """Calibrated scores have the raw scores' ROC AUC (sklearn) on the data they were fitted on."""
    rng = np.random.default_rng(seed)
    scores = rng.random(n)
    outcomes = (rng.random(n) < scores).astype(float)
    if outcomes.min() == outcomes.max():
        outcomes[0] = 1.0 - outcomes[0]
    # Platt's map is increasing only for scores that rank better than chance.
    assume(method == "isotonic" or roc_auc_score(outcomes, scores) > 0.5)
    calibrator = ScoreCalibrator(method).fit(scores, outcomes)  # type: ignore[arg-type]
    calibrated = calibrator.transform(scores)
    assert np.all((calibrated >= 0.0) & (calibrated <= 1.0))
    assert roc_auc_score(outcomes, calibrated) == pytest.approx(
        roc_auc_score(outcomes, scores), abs=1e-12
    )
    # Never reorders: a higher raw score never gets a lower probability.
    order = np.argsort(scores, kind="stable")
    assert np.all(np.diff(calibrated[order]) >= 0.0)


@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 200),
    new=st.lists(st.floats(-0.5, 1.5, allow_nan=False), min_size=1, max_size=20),
)
def test_isotonic_step_is_scikit_learns_prediction(seed: int, n: int, new: list[float]) -> None:
    """The interpolation the calibrator does itself equals IsotonicRegression.predict."""
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random(n), 2)  # ties included
    outcomes = (rng.random(n) < scores).astype(float)
    calibrator = ScoreCalibrator("isotonic").fit(scores, outcomes)
    points = np.array([*new, *scores])
    np.testing.assert_allclose(
        _isotonic_step(calibrator.map_, points), calibrator.map_.predict(points), atol=1e-12
    )


def test_isotonic_calibration_keeps_the_ranking_of_new_scores() -> None:
    """The documented promise: calibration never changes who is ranked above whom."""
    calibrator = ScoreCalibrator("isotonic").fit(
        np.array([0.1, 0.2, 0.3, 0.8, 0.9]), np.array([0.0, 0.0, 1.0, 1.0, 1.0])
    )
    new_scores = np.array([0.12, 0.18])  # inside the fitted range, ordered
    new_outcomes = np.array([0.0, 1.0])
    assert roc_auc_score(new_outcomes, new_scores) == 1.0
    assert roc_auc_score(new_outcomes, calibrator.transform(new_scores)) == 1.0


# --- what trains ----------------------------------------------------------------------


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    every_days=st.integers(5, 40),
    horizon=st.integers(1, 60),
    held_cutoffs=st.integers(1, 2),
    seed=st.integers(0, 1000),
)
def test_training_rows_never_hold_a_label_open_at_the_held_out_cutoff(
    every_days: int, horizon: int, held_cutoffs: int, seed: int
) -> None:
    """Training cutoffs satisfy cutoff + horizon <= first held-out one; all such rows train."""
    cutoffs = held_cutoffs + horizon // every_days + 2  # always at least one closed cutoff
    frame = synthetic_frame(150, cutoffs=cutoffs, seed=seed, every_days=every_days)
    frame.loc[frame.sample(frac=0.05, random_state=seed).index, "churn_30d"] = np.nan
    model = train_model(
        frame,
        FEATURES,
        "churn_30d",
        kind="logistic",
        search_iterations=0,
        horizon_days=horizon,
        calibration="sigmoid",
        calibration_cutoffs=held_cutoffs,
    )
    stamps = sorted(frame["cutoff"].unique())
    first_held = pd.Timestamp(stamps[-held_cutoffs])
    assert model.training_window is not None
    first, last = model.training_window
    assert pd.Timestamp(last) + pd.Timedelta(days=horizon) <= first_held
    assert pd.Timestamp(first) == pd.Timestamp(stamps[0])
    closed = frame["cutoff"] + pd.Timedelta(days=horizon) <= first_held
    assert model.rows == int((closed & frame["churn_30d"].notna()).sum())
    assert model.validation["n"] == int(
        ((frame["cutoff"] >= first_held) & frame["churn_30d"].notna()).sum()
    )


def test_horizon_is_read_from_the_target_name() -> None:
    """Without horizon_days, churn_30d trains on cutoffs 30 days before the held-out one."""
    frame = synthetic_frame(200, cutoffs=6, every_days=10, seed=3)
    model = train_model(
        frame, FEATURES, "churn_30d", kind="logistic", search_iterations=0, calibration="sigmoid"
    )
    assert model.training_window is not None
    held = frame["cutoff"].max()
    assert model.training_window[1] == (held - pd.Timedelta(days=30)).to_pydatetime()
    renamed = frame.rename(columns={"churn_30d": "churned"})
    with pytest.raises(ModelError, match="horizon"):
        train_model(renamed, FEATURES, "churned", kind="logistic", search_iterations=0)


def test_a_short_history_calibrates_out_of_fold_on_every_row() -> None:
    """With no closed cutoff before the held-out one, every known row trains."""
    frame = synthetic_frame(300, cutoffs=2, every_days=10, seed=4)
    model = train_model(frame, FEATURES, "churn_30d", kind="logistic", search_iterations=0)
    assert model.rows == len(frame)
    assert model.training_window is not None
    assert model.training_window[1] == frame["cutoff"].max().to_pydatetime()
    assert model.validation["n"] == len(frame)


def test_null_targets_are_dropped_and_change_nothing() -> None:
    """Rows whose target is unknown neither count nor change the fitted model."""
    frame = synthetic_frame(600, seed=5)
    censored = frame.copy()
    unknown = np.random.default_rng(5).random(len(frame)) < 0.2
    censored.loc[unknown, "churn_30d"] = np.nan
    kept = censored.loc[~unknown].reset_index(drop=True)
    one_thread = {"n_jobs": 1}
    with_nulls = train_model(censored, FEATURES, "churn_30d", params=one_thread)
    without = train_model(kept, FEATURES, "churn_30d", params=one_thread)
    assert with_nulls.rows == int((~unknown).sum()) == without.rows
    np.testing.assert_array_equal(with_nulls.predict(frame), without.predict(frame))
    assert with_nulls.validation == without.validation


@pytest.mark.parametrize(("value", "missing_class"), [(0.0, "positive"), (1.0, "negative")])
def test_a_one_class_target_is_refused(value: float, missing_class: str) -> None:
    """A binary target with one class among its known rows raises a readable ModelError."""
    frame = synthetic_frame(100, seed=6)
    frame["churn_30d"] = value
    frame.loc[:9, "churn_30d"] = np.nan  # unknown rows do not count as a class
    with pytest.raises(ModelError, match=f"no {missing_class} example among its 90 known rows"):
        train_model(frame, FEATURES, "churn_30d", search_iterations=0)


@pytest.mark.parametrize(
    ("features", "target", "named"),
    [
        (["logins_30d", "seats"], "churn_30d", "'seats'"),
        (FEATURES, "churn_90d", "'churn_90d'"),
        ([], "churn_30d", "no feature columns"),
        (["logins_30d", "account_id"], "churn_30d", "account_id cannot be a feature"),
    ],
)
def test_bad_columns_are_named(features: list[str], target: str, named: str) -> None:
    """A missing or forbidden column raises ModelError naming it."""
    frame = synthetic_frame(100, seed=7)
    with pytest.raises(ModelError, match=named):
        train_model(frame, features, target, search_iterations=0)


def test_predicting_on_a_frame_without_a_feature_names_it() -> None:
    """A fitted model refuses a frame lacking one of its features, by name."""
    frame = synthetic_frame(300, seed=8)
    model = train_model(frame, FEATURES, "churn_30d", kind="logistic", search_iterations=0)
    with pytest.raises(ModelError, match="lacks: days_since_login"):
        model.predict(frame.drop(columns="days_since_login"))


# --- determinism and reasons ----------------------------------------------------------


@pytest.fixture(scope="module")
def searched() -> tuple[pd.DataFrame, TrainedModel]:
    """A LightGBM model trained with a small search on a timed synthetic frame."""
    frame = synthetic_frame(300, cutoffs=4, seed=9)
    model = train_model(frame, FEATURES, "churn_30d", search_iterations=2, random_state=3)
    return frame, model


def test_same_data_and_seed_give_identical_predictions_and_reasons(
    searched: tuple[pd.DataFrame, TrainedModel],
) -> None:
    """Training twice with the same seed reproduces params, probabilities and reasons exactly."""
    frame, first = searched
    second = train_model(frame, FEATURES, "churn_30d", search_iterations=2, random_state=3)
    assert first.params == second.params
    assert first.search_trials is not None
    assert len(first.search_trials) == 2
    np.testing.assert_array_equal(first.predict(frame), second.predict(frame))
    head = frame.head(50)
    texts = [[r.text for r in row] for row in first.reasons(head)]
    assert texts == [[r.text for r in row] for row in second.reasons(head)]


def test_reasons_are_the_largest_positive_contributions(
    searched: tuple[pd.DataFrame, TrainedModel],
) -> None:
    """Each row's reasons are its features with the largest positive contributions, in order."""
    frame, model = searched
    rows = frame.sample(80, random_state=0)
    values, _ = model.contributions(rows)
    reasons = model.reasons(rows, k=2)
    assert len(reasons) == len(rows)
    for contributions, found in zip(values, reasons, strict=True):
        ranked = sorted(
            (i for i in range(len(FEATURES)) if contributions[i] > 0),
            key=lambda i: (-contributions[i], FEATURES[i]),
        )[:2]
        assert [r.feature for r in found] == [FEATURES[i] for i in ranked]
        assert all(r.direction == "raises" for r in found)
        assert [r.contribution for r in found] == pytest.approx(contributions[ranked])


def test_lightgbm_contributions_add_up_to_the_raw_log_odds(
    searched: tuple[pd.DataFrame, TrainedModel],
) -> None:
    """SHAP contributions plus the base value give the uncalibrated score's log-odds."""
    frame, model = searched
    values, base = model.contributions(frame)
    raw = model.estimator.predict_proba(frame.loc[:, FEATURES])[:, 1]
    np.testing.assert_allclose(values.sum(axis=1) + base, np.log(raw / (1 - raw)), atol=1e-6)


# --- regression, pipeline, small helpers ----------------------------------------------


def test_a_regression_target_is_validated_by_its_mae() -> None:
    """A numeric target trains a regression whose held-out MAE is sklearn's on the last cutoff."""
    frame = synthetic_frame(300, cutoffs=4, seed=10, target="sessions_30d")
    rng = np.random.default_rng(10)
    frame["sessions_30d"] = 2.0 * frame["logins_30d"] + rng.normal(0.0, 1.0, len(frame))
    model = train_model(frame, FEATURES, "sessions_30d", kind="logistic", search_iterations=0)
    assert (model.task, model.calibrator) == ("regression", None)
    held = frame.loc[frame["cutoff"] == frame["cutoff"].max()]
    assert model.validation["mae"] == pytest.approx(
        mean_absolute_error(held["sessions_30d"], model.predict(held)), rel=1e-9
    )
    assert model.validation["mae"] < 1.5  # noise is N(0, 1): MAE near 0.8 when it learns


def test_churn_pipeline_clones_and_cross_validates() -> None:
    """ChurnPipeline survives sklearn.clone and gives cross_val_score the manual fold scores."""
    frame = synthetic_frame(450, seed=11)
    X, y = frame.loc[:, ["logins_30d", "days_since_login"]], frame["churn_30d"]
    pipeline = ChurnPipeline("logistic", search_iterations=0, calibration="sigmoid")
    copy = clone(pipeline)
    assert copy.get_params() == pipeline.get_params()
    assert not hasattr(copy, "model_")

    def auc(estimator: ChurnPipeline, X_: pd.DataFrame, y_: pd.Series) -> float:
        return float(roc_auc_score(y_, estimator.predict_proba(X_)[:, 1]))

    folds = KFold(3)
    found = cross_val_score(pipeline, X, y, cv=folds, scoring=auc)
    expected = [
        auc(clone(pipeline).fit(X.iloc[a], y.iloc[a]), X.iloc[b], y.iloc[b])
        for a, b in folds.split(X)
    ]
    np.testing.assert_allclose(found, expected)
    assert np.all(found > 0.6)
    fitted = clone(pipeline).fit(X, y)
    proba = fitted.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # A classifier's predict gives the class: 1 where P(churn) reaches one half.
    np.testing.assert_array_equal(fitted.predict(X), (proba[:, 1] >= 0.5).astype(float))


def test_churn_pipeline_works_with_sklearn_named_scorers() -> None:
    """cross_val_score(scoring='roc_auc') scores a binary ChurnPipeline."""
    frame = synthetic_frame(300, seed=12)
    X, y = frame.loc[:, ["logins_30d", "days_since_login"]], frame["churn_30d"]
    pipeline = ChurnPipeline("logistic", search_iterations=0, calibration="sigmoid")
    scores = cross_val_score(pipeline, X, y, cv=3, scoring="roc_auc", error_score="raise")
    assert np.all(np.isfinite(scores))


@given(
    prefix=st.from_regex(r"[a-z][a-z_]{0,12}", fullmatch=True),
    days=st.integers(1, 10_000),
)
def test_horizon_of_reads_the_trailing_days(prefix: str, days: int) -> None:
    """horizon_of finds N in a name ending _Nd, and nothing in a name without it."""
    assert horizon_of(f"{prefix}_{days}d") == days
    assert horizon_of(f"{prefix}_{days}") is None
    assert horizon_of(f"{prefix}_{days}days") is None


@given(
    values=st.lists(st.sampled_from([0.0, 1.0, None]), min_size=1, max_size=30),
    other=st.floats(-1e6, 1e6).filter(lambda v: v not in (0.0, 1.0)),
)
def test_infer_task_is_binary_exactly_for_zero_one_values(
    values: list[float | None], other: float
) -> None:
    """0/1 values (nulls ignored) are binary; one other value makes a regression."""
    series = pd.Series(values, dtype=float)
    assert infer_task(series) == "binary"
    assert infer_task(pd.concat([series, pd.Series([other])])) == "regression"
    assert infer_task(pd.Series([True, False, True])) == "binary"


# --- on a simulated business ----------------------------------------------------------

CHURN = LabelSpec("subscription", horizon_days=(14, 30))


@pytest.fixture(scope="module")
def business(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Warehouse, str]]:
    """A DuckDB warehouse holding a small simulated business, and its observation end."""
    folder = tmp_path_factory.mktemp("business")
    result = simulate(folder / "sim", n_accounts=400, seed=1, events_per_account=20)
    with connect(f"duckdb:///{folder / 'w.duckdb'}") as warehouse:
        report = ingest(
            Settings(sources=preset_sources("churnwatch_simulator", result.out_dir)),
            warehouse,
            now=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        )
        assert not report.errors
        yield warehouse, str(result.observation_end)


@pytest.fixture(scope="module")
def frame(business: tuple[Warehouse, str]) -> TrainingFrame:
    """The training frame of churn at 14 and 30 days, monthly cutoffs."""
    warehouse, end = business
    schedule = training_schedule(warehouse, CHURN, every_days=30, observation_end=end)
    return training_frame(warehouse, CHURN, schedule, observation_end=end)


def test_training_schedule_starts_one_interval_after_the_first_event(
    business: tuple[Warehouse, str],
) -> None:
    """Cutoffs run every 30 days from the first event's day + 30, up to the observation end."""
    warehouse, end = business
    first = warehouse.query(exp.select(exp.func("MIN", exp.column("event_time"))).from_("events"))
    first_day = first.column(0)[0].as_py().date()
    schedule = training_schedule(warehouse, CHURN, every_days=30, observation_end=end)
    dates = list(schedule.dates)
    assert dates[0].date() == first_day + dt.timedelta(days=30)
    assert {b - a for a, b in itertools.pairwise(dates)} == {dt.timedelta(days=30)}
    ends = dt.datetime.fromisoformat(end).replace(tzinfo=dt.UTC)
    assert dates[-1] < ends <= dates[-1] + dt.timedelta(days=30)


def test_training_schedule_refuses_an_empty_warehouse(tmp_path: Path) -> None:
    """No dated rows: a ModelError says there is nothing to train on."""
    with connect(f"duckdb:///{tmp_path / 'empty.duckdb'}") as warehouse:
        warehouse.ensure_schema()
        with pytest.raises(ModelError, match="no events or subscriptions"):
            training_schedule(warehouse, CHURN, observation_end="2024-12-31")


def test_training_frame_joins_each_label_to_its_features(
    business: tuple[Warehouse, str], frame: TrainingFrame
) -> None:
    """One row per account and cutoff; labels equal make_labels'; censored labels are null."""
    warehouse, end = business
    data = frame.data
    assert frame.targets == ("churn_14d", "churn_30d")
    assert list(data.columns) == ["account_id", "cutoff", *frame.features, *frame.targets]
    assert not data.duplicated(["account_id", "cutoff"]).any()
    labels = make_labels(
        warehouse, CHURN, CutoffSchedule.explicit(frame.cutoffs), observation_end=end
    ).frame.to_pandas()
    merged = data.merge(labels, on=["account_id", "cutoff"], suffixes=("", "_ref"))
    assert len(merged) == len(data) == len(labels)
    for target in frame.targets:
        pd.testing.assert_series_equal(
            merged[target], merged[f"{target}_ref"].astype(float), check_names=False
        )
    # Delay: horizon plus the renewal grace; labels not settled by the end are unknown.
    assert frame.delay_days("churn_30d") == 30 + CHURN.grace_days
    observed = pd.Timestamp(end, tz="UTC")
    for target in frame.targets:
        settled = data["cutoff"] + pd.Timedelta(days=frame.delay_days(target)) <= observed
        assert data.loc[~settled, target].isna().all()
        assert data.loc[settled, target].notna().all()
    assert data["churn_30d"].isna().any()
    with pytest.raises(ModelError, match="no target 'churn_7d'"):
        frame.label_table("churn_7d")


def test_training_frame_with_cutoffs_before_the_data_has_no_examples(
    business: tuple[Warehouse, str],
) -> None:
    """Cutoffs where no account is at risk raise a ModelError that says to move them."""
    warehouse, end = business
    schedule = CutoffSchedule.explicit(["2000-01-01"])
    with pytest.raises(ModelError, match="no examples"):
        training_frame(warehouse, CHURN, schedule, observation_end=end)


def test_register_model_writes_a_complete_card(tmp_path: Path, frame: TrainingFrame) -> None:
    """The card holds metrics, label and feature specs, window, fingerprint; promote is opt-in."""
    registry = ModelRegistry(tmp_path / "models")
    first = register_model(frame, "churn_30d", registry, search_iterations=0)
    card = first.card
    assert (card.name, card.version, card.promoted) == ("churn_30d", "v1", False)
    assert registry.promoted() == {}
    assert card.metrics["holdout"] == pytest.approx(first.model.validation)
    assert {"roc_auc", "ece", "brier"} <= set(card.metrics["holdout"])
    assert LabelSpec.from_dict(card.label_spec or {}) == CHURN
    assert [FeatureSpec.from_dict(s) for s in card.feature_specs or []] == list(frame.specs)
    assert card.features == list(frame.features)
    window = first.model.training_window
    assert window is not None
    assert card.training_window is not None
    assert [dt.datetime.fromisoformat(t) for t in card.training_window] == list(window)
    # The honest split on real labels: training labels settled before the held-out cutoff.
    known = frame.data.loc[frame.data["churn_30d"].notna()]
    held = known["cutoff"].max()
    assert pd.Timestamp(window[1]) + pd.Timedelta(days=frame.delay_days("churn_30d")) <= held
    columns = ["account_id", "cutoff", *frame.features, "churn_30d"]
    assert card.data_fingerprint == fingerprint(known.loc[:, columns])
    assert card.extra["rows"] == first.model.rows
    assert set(card.extra["drift"])
    assert card.extra["kind"] == "lightgbm"
    loaded = registry.load("churn_30d", "v1").model
    np.testing.assert_array_equal(loaded.predict(known), first.model.predict(known))

    second = register_model(frame, "churn_30d", registry, search_iterations=0, promote=True)
    assert (second.card.version, second.card.promoted) == ("v2", True)
    assert registry.promoted()["churn_30d"].version == "v2"


def test_backtest_frame_reports_the_model_beside_both_baselines(frame: TrainingFrame) -> None:
    """Each fold trains only on labels settled by its test cutoff; the baselines are there."""
    result = backtest_frame(
        frame, "churn_30d", kind="lightgbm", search_iterations=0, test_cutoffs=2
    )
    assert set(result.models) == {"lightgbm", "logistic", "recency"}
    assert result.horizon_days == frame.delay_days("churn_30d")
    assert result.folds["test_cutoff"].nunique() == 2
    known = frame.data.loc[frame.data["churn_30d"].notna()]
    folds = result.folds.loc[result.folds["model"] == "lightgbm"]
    for tested, n_train, n_test in zip(
        pd.to_datetime(folds["test_cutoff"]), folds["n_train"], folds["n_test"], strict=True
    ):
        settled = known["cutoff"] + pd.Timedelta(days=result.horizon_days) <= tested
        assert n_train == int(settled.sum())
        assert n_test == int((known["cutoff"] == tested).sum())
    mine = result.predictions.loc[result.predictions["model"] == "lightgbm"]
    assert mine["p"].between(0.0, 1.0).all()
    pooled = result.pooled.set_index("model")
    assert pooled.loc["lightgbm", "roc_auc"] == pytest.approx(roc_auc_score(mine["y"], mine["p"]))
