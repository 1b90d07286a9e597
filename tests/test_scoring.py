"""Scoring: one row per account at risk and model, honest tiers and money, history kept.

A small simulated business is ingested into DuckDB once; three models are
registered and promoted (churn at 30 days with LightGBM, churn at 14 days
with a logistic regression, next month's activity as a regression). Each test
that writes scores works on its own copy of the warehouse file.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sqlglot import exp
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from churnwatch.config import Settings
from churnwatch.errors import ModelError
from churnwatch.features import FeatureSpec, compute_features
from churnwatch.ingest import ingest
from churnwatch.ingest.presets import preset_sources
from churnwatch.labels import CutoffSchedule, LabelSpec, make_labels
from churnwatch.models import (
    ModelRegistry,
    register_model,
    training_frame,
    training_schedule,
)
from churnwatch.models._drift import PSI_DRIFT, PSI_WATCH
from churnwatch.scoring import RISK_SCORES_TABLE, RISK_TIERS, ScoringRun, data_end, score_accounts
from churnwatch.simulate import simulate
from churnwatch.warehouse import Warehouse, connect

CHURN = LabelSpec("subscription", horizon_days=(14, 30))
ACTIVITY = LabelSpec("activity", horizon_days=(30,))
MID_YEAR = dt.datetime(2024, 7, 1, tzinfo=dt.UTC)


@pytest.fixture(autouse=True, scope="module")
def one_openmp_thread() -> Iterator[None]:
    """LightGBM on one OpenMP thread: tiny frames fit faster and never stall on busy cores."""
    with threadpool_limits(1, user_api="openmp"):
        yield


@dataclass
class Business:
    """A warehouse file with ingested data, and a registry of promoted models."""

    warehouse_file: Path
    registry: ModelRegistry
    observation_end: str


@pytest.fixture(scope="module")
def business(tmp_path_factory: pytest.TempPathFactory) -> Business:
    """Simulate, ingest, train and promote three models; the warehouse is closed after."""
    folder = tmp_path_factory.mktemp("scoring")
    result = simulate(folder / "sim", n_accounts=400, seed=2, events_per_account=20)
    end = str(result.observation_end)
    registry = ModelRegistry(folder / "models")
    with connect(f"duckdb:///{folder / 'w.duckdb'}") as warehouse:
        report = ingest(
            Settings(sources=preset_sources("churnwatch_simulator", result.out_dir)),
            warehouse,
            now=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        )
        assert not report.errors
        schedule = training_schedule(warehouse, CHURN, every_days=30, observation_end=end)
        frame = training_frame(warehouse, [CHURN, ACTIVITY], schedule, observation_end=end)
        register_model(frame, "churn_30d", registry, search_iterations=0, promote=True)
        for target in ("churn_14d", "activity_30d"):
            register_model(
                frame, target, registry, kind="logistic", search_iterations=0, promote=True
            )
    return Business(folder / "w.duckdb", registry, end)


@pytest.fixture
def warehouse(business: Business, tmp_path: Path) -> Iterator[Warehouse]:
    """A private copy of the business's warehouse, open."""
    copy = tmp_path / "w.duckdb"
    shutil.copy(business.warehouse_file, copy)
    with connect(f"duckdb:///{copy}") as opened:
        yield opened


@pytest.fixture
def run(warehouse: Warehouse, business: Business) -> ScoringRun:
    """Every promoted model applied at the end of the data, written to risk_scores."""
    return score_accounts(warehouse, business.registry)


def table(warehouse: Warehouse, name: str) -> pd.DataFrame:
    """A whole warehouse table as pandas."""
    found: pd.DataFrame = warehouse.query(exp.select("*").from_(name)).to_pandas()
    return found


def direct_active(subscriptions: pd.DataFrame, at: dt.datetime) -> set[str]:
    """Accounts with one subscription running across ``at`` (so surely subscribers then)."""
    started = subscriptions["started_at"] < at
    running = subscriptions["ended_at"].isna() | (subscriptions["ended_at"] > at)
    return set(subscriptions.loc[started & running, "account_id"])


# --- the rows written -----------------------------------------------------------------


def test_one_row_per_account_at_risk_and_target(
    run: ScoringRun, warehouse: Warehouse, business: Business
) -> None:
    """Every model scores exactly its label's examples at the cutoff, once each."""
    stored = table(warehouse, RISK_SCORES_TABLE)
    assert len(stored) == len(run.scores)
    assert not stored.duplicated(["account_id", "target", "scored_at"]).any()
    assert run.scored_at == data_end(warehouse)
    assert set(stored["scored_at"]) == {pd.Timestamp(run.scored_at)}
    assert run.models == {"churn_14d": "v1", "churn_30d": "v1", "activity_30d": "v1"}
    assert set(stored["target"]) == set(run.models)
    assert (stored["model_version"] == "v1").all()
    # The examples make_labels would make there (an observation end past the cutoff
    # keeps them; their labels do not matter here).
    schedule = CutoffSchedule.explicit([run.scored_at])
    later = run.scored_at + dt.timedelta(days=60)
    union: set[str] = set()
    for spec, targets in ((CHURN, ("churn_14d", "churn_30d")), (ACTIVITY, ("activity_30d",))):
        labels = make_labels(warehouse, spec, schedule, observation_end=later).frame
        examples = set(labels.column("account_id").to_pylist())
        assert examples
        union |= examples
        for target in targets:
            assert set(stored.loc[stored["target"] == target, "account_id"]) == examples
    assert run.accounts == len(union)


def test_scores_and_tiers_follow_the_thresholds(run: ScoringRun) -> None:
    """Binary scores are probabilities in their documented tier; regression ones have none."""
    scores = run.scores
    binary = scores["target"].str.startswith("churn")
    p = scores.loc[binary, "score"].to_numpy()
    assert np.all((p >= 0.0) & (p <= 1.0))
    expected = np.where(p >= 0.30, "high", np.where(p >= 0.10, "medium", "low"))
    assert RISK_TIERS == (("high", 0.30), ("medium", 0.10), ("low", 0.0))
    np.testing.assert_array_equal(scores.loc[binary, "risk_tier"].to_numpy(), expected)
    assert scores.loc[binary, "risk_tier"].nunique() >= 2  # not a vacuous check
    regression = scores.loc[~binary]
    assert regression["risk_tier"].isna().all()
    assert np.isfinite(regression["score"]).all()
    assert regression["score"].std() > 0


def test_revenue_at_risk_is_score_times_mrr_for_churn(
    run: ScoringRun, warehouse: Warehouse
) -> None:
    """mrr is the active subscriptions' sum at the cutoff; revenue at risk is score * mrr."""
    scores = run.scores
    subscriptions = table(warehouse, "subscriptions")
    cutoff = run.scored_at
    active = subscriptions.loc[
        (subscriptions["started_at"] < cutoff)
        & (subscriptions["ended_at"].isna() | (subscriptions["ended_at"] > cutoff))
    ]
    mrr = active.groupby("account_id")["mrr"].sum()
    churn = scores.loc[scores["target"] == "churn_30d"].set_index("account_id")
    expected_mrr = mrr.reindex(churn.index).fillna(0.0)
    np.testing.assert_allclose(churn["mrr"].fillna(0.0), expected_mrr)
    assert (churn["mrr"] > 0).mean() > 0.9
    np.testing.assert_allclose(
        churn["revenue_at_risk"], churn["score"] * churn["mrr"].fillna(0.0), rtol=1e-12
    )
    assert scores.loc[scores["target"] == "activity_30d", "revenue_at_risk"].isna().all()


def test_reasons_explain_exactly_the_accounts_above_the_lowest_tier(
    run: ScoringRun, warehouse: Warehouse, business: Business
) -> None:
    """Medium and high churn risks carry the model's top reasons; low risks and forecasts none."""
    scores = run.scores
    reason_columns = ["reason_1", "reason_2", "reason_3"]
    explained = scores["target"].str.startswith("churn") & (scores["score"] >= 0.10)
    assert explained.any()
    assert scores.loc[~explained, reason_columns].isna().all().all()
    assert scores.loc[explained, "reason_1"].notna().mean() > 0.9
    # Golden: the texts equal TrainedModel.reasons on features computed independently.
    loaded = business.registry.load("churn_30d")
    mine = scores.loc[explained & (scores["target"] == "churn_30d")].sort_values("account_id")
    specs = [FeatureSpec.from_dict(s) for s in loaded.card.feature_specs or []]
    cutoffs = pa.table(
        {
            "account_id": pa.array(mine["account_id"].tolist(), pa.string()),
            "cutoff": pa.array([run.scored_at] * len(mine), pa.timestamp("us", tz="UTC")),
        }
    )
    features = compute_features(warehouse, cutoffs, specs).to_pandas()
    np.testing.assert_allclose(loaded.model.predict(features), mine["score"], rtol=1e-9)
    expected = loaded.model.reasons(features, k=3)
    for i, column in enumerate(reason_columns):
        texts = [found[i].text if len(found) > i else None for found in expected]
        assert mine[column].tolist() == texts


# --- population -----------------------------------------------------------------------


def test_population_leaves_out_accounts_not_yet_created_or_already_churned(
    warehouse: Warehouse, business: Business
) -> None:
    """Mid-year, churn models score subscribers who exist then, never later signups or churners."""
    run = score_accounts(warehouse, business.registry, as_of=MID_YEAR, targets=["churn_30d"])
    scored = set(run.scores["account_id"])
    accounts = table(warehouse, "accounts")
    subscriptions = table(warehouse, "subscriptions")
    later = set(accounts.loc[accounts["created_at"] >= MID_YEAR, "account_id"])
    grace = dt.timedelta(days=CHURN.grace_days)
    by_account = subscriptions.groupby("account_id")
    still_open = by_account["ended_at"].apply(lambda ends: bool(ends.isna().any()))
    last_end = by_account["ended_at"].max()
    first_start = by_account["started_at"].min()
    churned = set(last_end.index[~still_open & (last_end <= MID_YEAR - grace)])
    assert later
    assert churned
    assert not scored & later
    assert not scored & churned
    assert set(first_start.index[first_start >= MID_YEAR]).isdisjoint(scored)
    # Everyone with a subscription running across the cutoff is scored.
    assert direct_active(subscriptions, MID_YEAR) <= scored
    assert set(run.models) == {"churn_30d"}
    assert (run.scores["scored_at"] == pd.Timestamp(MID_YEAR)).all()


def test_each_model_scores_the_population_of_its_own_label(
    warehouse: Warehouse, business: Business
) -> None:
    """The activity model (no subscription needed) scores every account existing at the cutoff."""
    run = score_accounts(warehouse, business.registry, as_of=MID_YEAR, targets=["activity_30d"])
    accounts = table(warehouse, "accounts")
    existing = set(accounts.loc[accounts["created_at"] < MID_YEAR, "account_id"])
    examples = make_labels(warehouse, ACTIVITY, CutoffSchedule.explicit([MID_YEAR])).frame
    assert set(run.scores["account_id"]) == set(examples.column("account_id").to_pylist())
    assert set(run.scores["account_id"]) <= existing


# --- history --------------------------------------------------------------------------


def test_rescoring_a_moment_replaces_it_and_other_moments_stay(
    warehouse: Warehouse, business: Business
) -> None:
    """Scores at two moments both stay; scoring one again replaces only its rows."""
    first = score_accounts(warehouse, business.registry, as_of=MID_YEAR)
    latest = score_accounts(warehouse, business.registry)
    stored = table(warehouse, RISK_SCORES_TABLE)
    assert len(stored) == len(first.scores) + len(latest.scores)
    again = score_accounts(warehouse, business.registry, as_of=MID_YEAR, targets=["churn_14d"])
    after = table(warehouse, RISK_SCORES_TABLE)
    assert len(after) == len(stored)
    assert not after.duplicated(["account_id", "target", "scored_at"]).any()
    columns = ["account_id", "target", "scored_at", "score", "risk_tier"]
    key = ["scored_at", "target", "account_id"]
    pd.testing.assert_frame_equal(
        after[columns].sort_values(key).reset_index(drop=True),
        stored[columns].sort_values(key).reset_index(drop=True),
    )
    assert len(again.scores) == int(
        ((stored["scored_at"] == pd.Timestamp(MID_YEAR)) & (stored["target"] == "churn_14d")).sum()
    )


def test_write_false_only_returns_the_rows(warehouse: Warehouse, business: Business) -> None:
    """With write=False nothing lands in the warehouse, yet the same rows come back."""
    dry = score_accounts(warehouse, business.registry, write=False, targets=["churn_14d"])
    assert not warehouse.table_exists(RISK_SCORES_TABLE)
    wet = score_accounts(warehouse, business.registry, targets=["churn_14d"])
    pd.testing.assert_frame_equal(dry.scores, wet.scores)


# --- drift, tiers, errors -------------------------------------------------------------


def test_drift_report_covers_every_feature_of_every_model(
    run: ScoringRun, business: Business
) -> None:
    """One PSI per model feature; statuses follow the thresholds; drifted lists the drifts."""
    drift = run.drift
    for target in run.models:
        card = business.registry.card(target, "v1")
        assert sorted(drift.loc[drift["target"] == target, "feature"]) == sorted(card.features)
    assert (drift["psi"] >= 0).all()
    expected = np.where(
        drift["psi"] > PSI_DRIFT, "drift", np.where(drift["psi"] >= PSI_WATCH, "watch", "ok")
    )
    np.testing.assert_array_equal(drift["status"].to_numpy(), expected)
    bad = drift.loc[drift["status"] == "drift"]
    assert run.drifted == [f"{t}: {f}" for t, f in zip(bad["target"], bad["feature"], strict=True)]


def test_custom_tiers_and_bad_tiers(warehouse: Warehouse, business: Business) -> None:
    """Custom tiers bin the same scores; tiers not descending to 0 are refused."""
    tiers = (("act", 0.05), ("ignore", 0.0))
    run = score_accounts(
        warehouse, business.registry, targets=["churn_30d"], tiers=tiers, write=False
    )
    expected = np.where(run.scores["score"] >= 0.05, "act", "ignore")
    np.testing.assert_array_equal(run.scores["risk_tier"].to_numpy(), expected)
    for bad in ((("low", 0.0), ("high", 0.3)), (("high", 0.3), ("low", 0.1))):
        with pytest.raises(ModelError, match="highest bound down to a last bound of 0"):
            score_accounts(
                warehouse, business.registry, targets=["churn_30d"], tiers=bad, write=False
            )


def test_nothing_promoted_or_unknown_target_is_a_readable_error(
    warehouse: Warehouse, business: Business, tmp_path: Path
) -> None:
    """An empty registry and an unknown target each raise a ModelError that says what to do."""
    with pytest.raises(ModelError, match="no model is promoted"):
        score_accounts(warehouse, ModelRegistry(tmp_path / "empty"))
    with pytest.raises(ModelError, match="no promoted model for churn_90d; promoted: activity"):
        score_accounts(warehouse, business.registry, targets=["churn_90d"])


def test_a_model_without_feature_specs_cannot_score(
    warehouse: Warehouse, business: Business, tmp_path: Path
) -> None:
    """A model saved without feature specs is refused with the features it lacks."""
    loaded = business.registry.load("churn_14d")
    registry = ModelRegistry(tmp_path / "bare")
    registry.save(
        loaded.model,
        name="churn_14d",
        features=loaded.card.features,
        metrics={},
        data_fingerprint="x",
    )
    registry.promote("churn_14d", "v1")
    with pytest.raises(ModelError, match="no saved spec"):
        score_accounts(warehouse, registry)


def test_data_end_is_the_midnight_after_the_last_event(warehouse: Warehouse) -> None:
    """data_end is the first midnight (UTC) strictly after every event."""
    last = table(warehouse, "events")["event_time"].max()
    end = data_end(warehouse)
    assert end.tzinfo is not None
    assert end.utcoffset() == dt.timedelta(0)
    assert (end.hour, end.minute, end.second, end.microsecond) == (0, 0, 0, 0)
    assert pd.Timestamp(end) - pd.Timedelta(days=1) <= last < pd.Timestamp(end)


def test_data_end_of_an_empty_warehouse_is_an_error(tmp_path: Path) -> None:
    """Without events or subscriptions there is no 'now' to score at."""
    with connect(f"duckdb:///{tmp_path / 'empty.duckdb'}") as empty:
        empty.ensure_schema()
        with pytest.raises(ModelError, match="no events or subscriptions"):
            data_end(empty)


# --- predicted days to churn ------------------------------------------------------------


def test_predicted_days_to_churn_is_the_survival_median_for_churn_targets_only(
    run: ScoringRun, warehouse: Warehouse
) -> None:
    """Churn rows carry the median remaining days of the label's survival curve, read
    at each account's tenure (lifelines' conditional median at that time); the
    activity forecast carries none."""
    from lifelines import KaplanMeierFitter

    from churnwatch.config import ChurnSettings, DataSettings
    from churnwatch.survival import derive_durations

    stored = table(warehouse, RISK_SCORES_TABLE)
    assert stored.loc[stored["target"] == "activity_30d", "predicted_days_to_churn"].isna().all()
    settings = Settings(
        churn=ChurnSettings(definition="subscription", grace_days=CHURN.grace_days),
        data=DataSettings(observation_end=run.scored_at.isoformat()),
    )
    durations = derive_durations(warehouse, settings, basis="subscription", periods="all")
    fitter = KaplanMeierFitter().fit(durations.durations, durations.event_observed)
    conditional = fitter.conditional_time_to_event_.iloc[:, 0]
    running = durations.frame.loc[durations.frame["active_at_end"]].set_index("account_id")
    for target in ("churn_14d", "churn_30d"):
        rows = stored.loc[stored["target"] == target].set_index("account_id")
        assert set(rows.index) <= set(running.index)
        expected = conditional.loc[running.loc[rows.index, "duration_days"]].to_numpy()
        # lifelines says inf where the curve never halves: the column says null.
        expected = np.where(np.isinf(expected), np.nan, expected)
        np.testing.assert_allclose(
            rows["predicted_days_to_churn"].to_numpy(float), expected, rtol=0, atol=1e-9
        )
        assert rows["predicted_days_to_churn"].notna().any()
        assert (rows["predicted_days_to_churn"].dropna() >= 0).all()


def test_a_risk_scores_table_from_before_gets_the_new_column(
    warehouse: Warehouse, business: Business
) -> None:
    """Scoring into a table written before predicted_days_to_churn existed adds the
    column; the earlier rows keep it null."""
    from churnwatch.scoring import _COLUMNS

    old = [(name, kind) for name, kind in _COLUMNS if name != "predicted_days_to_churn"]
    warehouse.create_table(RISK_SCORES_TABLE, old)
    warehouse.append(
        RISK_SCORES_TABLE,
        pa.table(
            {
                "account_id": ["old"],
                "scored_at": pa.array([MID_YEAR], pa.timestamp("us", tz="UTC")),
                "target": ["churn_30d"],
                "model_version": ["v0"],
                "score": [0.5],
            }
        ),
    )
    score_accounts(warehouse, business.registry, targets=["churn_30d"])
    stored = table(warehouse, RISK_SCORES_TABLE)
    assert "predicted_days_to_churn" in stored.columns
    assert stored.loc[stored["account_id"] == "old", "predicted_days_to_churn"].isna().all()
    assert stored.loc[stored["account_id"] != "old", "predicted_days_to_churn"].notna().any()
