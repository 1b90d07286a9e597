"""The refreshed read model against independent computations on the same data.

Each table is checked against the warehouse, the store or a reference
library directly (pandas over the raw tables, lifelines' own fitters), not
against the refresh's own code path.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from lifelines import KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test
from sqlglot import exp
from tests.views.conftest import Business

from churnwatch.cohorts import logo_retention
from churnwatch.models import ModelRegistry
from churnwatch.report import business_kpis
from churnwatch.scoring import RISK_SCORES_TABLE
from churnwatch.store import TRACKER_ACCOUNTS, open_store
from churnwatch.survival import derive_durations, with_attribute
from churnwatch.views import TABLES, RefreshResult, current_generation
from churnwatch.views._accounts import ACCOUNT_COLUMNS, ACTIVITY_WEEKS
from churnwatch.views._analytics import SEGMENT_POINTS
from churnwatch.warehouse import Warehouse


def frame(warehouse: Warehouse, table: str) -> pd.DataFrame:
    """A whole warehouse table as pandas."""
    found: pd.DataFrame = warehouse.query(exp.select("*").from_(table)).to_pandas()
    return found


def view(refreshed: RefreshResult, table: str) -> pd.DataFrame:
    """A table of the refreshed generation as pandas."""
    found: pd.DataFrame = refreshed.generation.read(table).to_pandas()
    return found


def test_every_table_is_written_or_said_missing(refreshed: RefreshResult) -> None:
    """Each table of the contract is in the generation, or meta says why it is not."""
    written = set(refreshed.generation.tables)
    missing = refreshed.generation.meta["missing"]
    for name in TABLES:
        assert (name in written) != (name in missing), name
    # With a model, scores and a store, the core tables are all there.
    core = {"accounts", "risk_history", "activity", "features", "churn_trend"}
    core |= {"cohort_retention", "survival_curves", "segment_points", "model_metrics"}
    assert core <= written
    assert not [key for key in missing if key.startswith("accounts.")]


def test_accounts_one_row_per_warehouse_account(
    refreshed: RefreshResult, warehouse: Warehouse
) -> None:
    """The account list holds every account once, riskiest first, in the contract's columns."""
    accounts = view(refreshed, "accounts")
    source = frame(warehouse, "accounts")
    assert list(accounts.columns) == list(ACCOUNT_COLUMNS)
    assert sorted(accounts["account_id"]) == sorted(source["account_id"].astype(str))
    risk = accounts["churn_risk"].to_numpy()
    scored = risk[~np.isnan(risk)]
    assert len(scored)
    assert np.all(np.diff(scored) <= 0)
    assert np.isnan(risk[len(scored) :]).all()  # unscored accounts come last
    names = source.set_index("account_id")["name"]
    assert (accounts.set_index("account_id")["name"] == names.loc[accounts["account_id"]]).all()


def test_churn_risk_is_the_latest_score(refreshed: RefreshResult, warehouse: Warehouse) -> None:
    """churn_risk, tier, revenue at risk and reasons are the latest run's row of each account."""
    scores = frame(warehouse, RISK_SCORES_TABLE)
    scores = scores.loc[scores["target"] == "churn_30d"]
    latest = scores.loc[scores["scored_at"] == scores["scored_at"].max()].set_index("account_id")
    accounts = view(refreshed, "accounts").set_index("account_id")
    assert set(accounts.index[accounts["churn_risk"].notna()]) == set(latest.index)
    joined = accounts.loc[latest.index]
    np.testing.assert_allclose(joined["churn_risk"], latest["score"])
    np.testing.assert_allclose(joined["revenue_at_risk"], latest["revenue_at_risk"])
    assert (joined["risk_tier"] == latest["risk_tier"]).all()
    assert (joined["reason_1"].fillna("") == latest["reason_1"].fillna("")).all()
    meta = refreshed.generation.meta
    assert meta["kpis"]["revenue_at_risk"] == pytest.approx(latest["revenue_at_risk"].sum())
    assert meta["scored_at"] == pd.Timestamp(latest["scored_at"].iloc[0]).isoformat()


def test_status_follows_running_subscriptions(
    refreshed: RefreshResult, warehouse: Warehouse
) -> None:
    """An account with a subscription running at the cutoff is active; none active before signup."""
    at = pd.Timestamp(refreshed.generation.meta["scored_at"])
    subscriptions = frame(warehouse, "subscriptions")
    running = subscriptions.loc[
        (subscriptions["started_at"] < at)
        & (subscriptions["ended_at"].isna() | (subscriptions["ended_at"] > at))
    ]
    accounts = view(refreshed, "accounts").set_index("account_id")
    assert (accounts.loc[running["account_id"].unique(), "status"] == "active").all()
    active = accounts.loc[accounts["status"] == "active"]
    assert (active["created_at"] < at).all()
    assert set(accounts["status"]) <= {"active", "churned"}
    meta = refreshed.generation.meta
    assert meta["kpis"]["active_accounts"] == len(active)


def test_tracker_state_is_the_store(refreshed: RefreshResult, business: Business) -> None:
    """tracker_state is the store's state of each tracked account (one product in the demo)."""
    with open_store(business.store_url) as store, store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(TRACKER_ACCOUNTS.c.account_id, TRACKER_ACCOUNTS.c.state)
        ).all()
    states = dict(rows)
    assert states
    accounts = view(refreshed, "accounts").set_index("account_id")
    shown = accounts["tracker_state"].dropna().to_dict()
    assert shown == {k: v for k, v in states.items() if k in accounts.index}


def test_risk_history_is_the_risk_targets_runs(
    refreshed: RefreshResult, warehouse: Warehouse
) -> None:
    """Every row of risk_scores of the shown target (one run here), sorted by account and time."""
    history = view(refreshed, "risk_history")
    scores = frame(warehouse, RISK_SCORES_TABLE)
    mine = scores.loc[scores["target"] == refreshed.generation.meta["risk_target"]]
    assert len(history) == len(mine)
    expected = mine.set_index("account_id")["score"]
    np.testing.assert_allclose(history["score"], expected.loc[history["account_id"]])
    keys = list(zip(history["account_id"], history["scored_at"], strict=True))
    assert keys == sorted(keys)


def test_activity_counts_the_events(refreshed: RefreshResult, warehouse: Warehouse) -> None:
    """Weekly events and time per account add up to the raw events of the window."""
    activity = view(refreshed, "activity")
    end = pd.Timestamp(refreshed.generation.meta["scored_at"])
    start = end - pd.Timedelta(weeks=ACTIVITY_WEEKS)
    events = frame(warehouse, "events")
    events = events.loc[(events["event_time"] >= start) & (events["event_time"] < end)]
    expected = events.groupby("account_id").agg(n=("event_time", "size"), s=("duration_s", "sum"))
    got = activity.groupby("account_id").agg(n=("events", "sum"), s=("duration_s", "sum"))
    assert got["n"].to_dict() == expected["n"].to_dict()
    np.testing.assert_allclose(got.loc[expected.index, "s"], expected["s"])
    assert activity["week"].nunique() <= ACTIVITY_WEEKS
    assert (activity["active_days"] <= 7).all()
    assert (activity["active_days"] >= 1).all()
    # Active days: distinct days with an event, per week (checked on one busy account).
    busiest = expected["n"].idxmax()
    mine = events.loc[events["account_id"] == busiest]
    day = ((mine["event_time"] - start) / pd.Timedelta(days=1)).astype(int)
    per_week = day.groupby(day // 7).nunique().sort_index().to_numpy()
    shown = activity.loc[activity["account_id"] == busiest].sort_values("week")
    assert shown["active_days"].tolist() == per_week.tolist()


def test_churn_trend_is_the_reports(
    refreshed: RefreshResult, warehouse: Warehouse, business: Business
) -> None:
    """Windows, examples and churned accounts are those of the report's KPIs."""
    trend = view(refreshed, "churn_trend")
    kpis = business_kpis(warehouse, business.settings)
    assert trend["accounts"].tolist() == kpis.churn_trend["at_risk"].tolist()
    assert trend["churned"].tolist() == kpis.churn_trend["churned"].tolist()
    assert refreshed.generation.meta["kpis"]["churn_rate"] == pytest.approx(kpis.churn_rate)
    assert (trend["revenue_churned"] >= 0).all()
    assert (trend.loc[trend["churned"] == 0, "revenue_churned"] == 0).all()


def test_cohort_retention_matches_cohorts_and_signups(
    refreshed: RefreshResult, warehouse: Warehouse, business: Business
) -> None:
    """Retention is logo_retention's; cohort sizes are the accounts signed up each month."""
    cohorts = view(refreshed, "cohort_retention")
    rates = logo_retention(warehouse, business.settings).rates
    for row in cohorts.itertuples():
        found = rates.loc[pd.Timestamp(f"{row.cohort}-01"), row.period]
        assert row.retention == pytest.approx(found)
    created = pd.to_datetime(frame(warehouse, "accounts")["created_at"], utc=True)
    signups = created.dt.strftime("%Y-%m").value_counts()
    sizes = cohorts.drop_duplicates("cohort").set_index("cohort")["cohort_size"]
    assert sizes.to_dict() == {k: int(signups[k]) for k in sizes.index}
    assert ((cohorts["retention"] >= 0) & (cohorts["retention"] <= 1)).all()


def test_survival_curves_match_lifelines(
    refreshed: RefreshResult, warehouse: Warehouse, business: Business
) -> None:
    """The overall and per-plan curves are lifelines' Kaplan-Meier on the same durations."""
    curves = view(refreshed, "survival_curves")
    durations = derive_durations(warehouse, business.settings)
    overall = curves.loc[curves["attribute"] == "all"]
    fitter = KaplanMeierFitter().fit(durations.durations, durations.event_observed)
    expected = fitter.survival_function_at_times(overall["days"]).to_numpy()
    np.testing.assert_allclose(overall["survival"], expected)
    plans = with_attribute(warehouse, durations, "plan")
    for plan, rows in curves.loc[curves["attribute"] == "plan"].groupby("group"):
        mine = plans.frame.loc[plans.frame["plan"].astype(str) == plan]
        fitted = KaplanMeierFitter().fit(mine["duration_days"], mine["event_observed"])
        np.testing.assert_allclose(
            rows["survival"], fitted.survival_function_at_times(rows["days"]).to_numpy()
        )
    assert (curves["lower"] <= curves["survival"] + 1e-12).all()
    tests = view(refreshed, "survival_tests").set_index("attribute")
    test = multivariate_logrank_test(
        plans.frame["duration_days"], plans.frame["plan"].astype(str), plans.frame["event_observed"]
    )
    assert tests.loc["plan", "p_value"] == pytest.approx(test.p_value)
    assert tests.loc["plan", "groups"] == plans.frame["plan"].nunique()
    # The durations kept for filtered curves fit to the stored overall curve.
    lives = view(refreshed, "survival_durations")
    assert len(lives) == len(durations.frame)
    again = KaplanMeierFitter().fit(lives["duration_days"], lives["event_observed"])
    np.testing.assert_allclose(
        overall["survival"], again.survival_function_at_times(overall["days"]).to_numpy()
    )


def test_segments_agree_with_the_account_list(refreshed: RefreshResult) -> None:
    """Each mapped account carries the same segment in the account list; profiles add up."""
    points = view(refreshed, "segment_points")
    accounts = view(refreshed, "accounts").set_index("account_id")
    assert 0 < len(points) <= SEGMENT_POINTS
    assert (accounts.loc[points["account_id"], "segment"].to_numpy() == points["segment"]).all()
    profiles = view(refreshed, "segment_profiles")
    sizes = profiles.drop_duplicates("segment").set_index("segment")["accounts"]
    assert sizes.sum() == accounts["segment"].notna().sum()
    counted = accounts["segment"].value_counts()
    assert sizes.to_dict() == counted.loc[sizes.index].to_dict()


def test_model_tables_come_from_the_card(refreshed: RefreshResult, business: Business) -> None:
    """Backtest metrics are the card's; importance covers the model's features; drift is rated."""
    card = business.registry.promoted()["churn_30d"]
    metrics = view(refreshed, "model_metrics")
    for method, values in card.metrics.get("backtest", {}).items():
        for name, value in values.items():
            if isinstance(value, float) and math.isfinite(value):
                row = metrics.loc[(metrics["method"] == method) & (metrics["metric"] == name)]
                assert row["value"].tolist() == [pytest.approx(value)]
    meta = refreshed.generation.meta["models"]["churn_30d"]
    assert meta["version"] == card.version
    assert meta["features"] == list(card.features)
    importance = view(refreshed, "importance")
    assert set(importance["feature"]) == set(card.features)
    assert (importance["importance"] >= 0).all()
    if "drift" in refreshed.generation.tables:
        assert set(view(refreshed, "drift")["status"]) <= {"ok", "watch", "drift"}
    if "model_curves" in refreshed.generation.tables:
        roc = view(refreshed, "model_curves").query("curve == 'roc'")
        assert roc["x"].is_monotonic_increasing
        assert roc["y"].is_monotonic_increasing


def test_features_are_those_of_the_scored_accounts(
    refreshed: RefreshResult, business: Business
) -> None:
    """One row per scored account, numeric features of the model only."""
    features = view(refreshed, "features")
    accounts = view(refreshed, "accounts")
    assert set(features["account_id"]) == set(
        accounts.loc[accounts["churn_risk"].notna(), "account_id"]
    )
    card = ModelRegistry(business.registry.root).promoted()["churn_30d"]
    assert set(features.columns) - {"account_id"} <= set(card.features)
    assert all(kind == "float64" for kind in features.dtypes.drop("account_id").astype(str))


def test_meta_filter_values_and_kpis(refreshed: RefreshResult, warehouse: Warehouse) -> None:
    """Filter values are the account list's distinct values; KPIs count the warehouse."""
    meta = current_generation(refreshed.generation.path.parent).meta
    accounts = view(refreshed, "accounts")
    for name in ("plan", "region", "platform", "risk_tier", "segment"):
        assert meta["filter_values"][name] == sorted(accounts[name].dropna().astype(str).unique())
    assert meta["kpis"]["accounts"] == len(frame(warehouse, "accounts"))
    assert isinstance(meta["kpis"]["churn_spike"]["spike"], bool)
    assert meta["store_url"].startswith("sqlite:///")
    assert dt.datetime.fromisoformat(meta["refreshed_at"]).tzinfo is not None
