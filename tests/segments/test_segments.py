"""Segments: BIC finds the true number, labels are stable, names follow profiles."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnwatch.config import Settings
from churnwatch.errors import AnalysisError
from churnwatch.ingest import ingest
from churnwatch.ingest.presets import preset_sources
from churnwatch.segments import (
    BehaviourFeature,
    NamingRule,
    SegmentModel,
    name_segments,
    segment_accounts,
    segment_frame,
    segment_profile_bars,
    segment_profile_table,
    segment_scatter,
)
from churnwatch.simulate import simulate
from churnwatch.warehouse import connect

SLOW = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BLOBS = [BehaviourFeature(f"x{i}", "activity", "identity") for i in range(3)]


def blobs(k: int, seed: int, per_cluster: int = 120) -> pd.DataFrame:
    """``k`` well-separated spherical clusters in three dimensions."""
    rng = np.random.default_rng(seed)
    centers = rng.permutation(np.r_[np.eye(3), -np.eye(3)][:k]) * 12
    points = np.concatenate([c + rng.normal(0, 1, (per_cluster, 3)) for c in centers])
    return pd.DataFrame(
        {
            "account_id": [f"a{i:05}" for i in range(len(points))],
            **{f"x{i}": points[:, i] for i in range(3)},
            "truth": np.repeat(np.arange(k), per_cluster),
        }
    )


@SLOW
@given(st.integers(min_value=2, max_value=5), st.integers(min_value=0, max_value=10_000))
def test_bic_picks_the_true_number_of_clusters(k: int, seed: int) -> None:
    frame = blobs(k, seed)
    model = SegmentModel(BLOBS, k_range=(1, 7), random_state=seed).fit(frame)
    assert model.k_ == k
    # Every true cluster is one segment.
    found = pd.crosstab(model.predict(frame), frame["truth"])
    assert (found.gt(0).sum(axis=0) == 1).all()


@SLOW
@given(st.integers(min_value=0, max_value=10_000))
def test_row_order_and_reruns_change_nothing(seed: int) -> None:
    frame = blobs(3, 7, per_cluster=80).drop(columns="truth")
    # Overlapping clusters: the fit is not trivial, so order could matter if it were let.
    frame[["x0", "x1"]] *= 0.25
    first = segment_frame(frame, features=BLOBS, k_range=(2, 5))
    again = segment_frame(frame, features=BLOBS, k_range=(2, 5))
    shuffled = segment_frame(
        frame.sample(frac=1.0, random_state=seed), features=BLOBS, k_range=(2, 5)
    )
    # Exactly equal: without the canonical row order the floats differ in the last digits.
    for other in (again, shuffled):
        pd.testing.assert_frame_equal(first.assignments, other.assignments, check_exact=True)
        pd.testing.assert_frame_equal(first.profiles, other.profiles, check_exact=True)


def behaviour_groups(seed: int = 0, n: int = 150) -> pd.DataFrame:
    """Four kinds of accounts with the default behaviour features."""
    rng = np.random.default_rng(seed)

    def group(name: str, events: float, recency: float, tenure: float, lifetime: float,
              failed: float) -> pd.DataFrame:  # fmt: skip
        return pd.DataFrame(
            {
                "kind": name,
                "events_30d": rng.poisson(events, n),
                "active_days_30d": np.minimum(30, rng.poisson(events / 2, n)),
                "days_since_last_event": rng.gamma(4, recency / 4, n),
                "tenure_days": rng.gamma(8, tenure / 8, n),
                "events_all": rng.poisson(lifetime, n),
                "failed_payments_90d": rng.poisson(failed, n),
                "current_mrr": 100.0,
            }
        )

    frame = pd.concat(
        [
            group("power", 60, 1, 400, 800, 0.02),
            group("dormant", 0.2, 80, 500, 150, 0.02),
            group("new", 8, 2, 8, 10, 0.02),
            group("payment", 15, 4, 300, 200, 4),
        ],
        ignore_index=True,
    )
    frame.insert(0, "account_id", [f"a{i:04}" for i in range(len(frame))])
    return frame


def test_names_follow_the_profiles() -> None:
    frame = behaviour_groups()
    result = segment_frame(frame.drop(columns="kind"), k_range=(2, 6))
    named = result.assignments.merge(frame[["account_id", "kind"]], on="account_id")
    majority = named.groupby("kind")["segment"].agg(lambda s: s.value_counts().index[0])
    assert majority.to_dict() == {
        "power": "Power users",
        "dormant": "Dormant",
        "new": "New and exploring",
        "payment": "Payment trouble",
    }
    # Canonical order: the most active segment first.
    assert result.profiles["segment"].iloc[0] == "Power users"
    assert result.profiles["segment_id"].tolist() == list(range(result.k))


def test_rule_table_and_duplicates() -> None:
    profiles = [
        {"activity": -1.0, "lifetime": -1.0, "recency": 1.0},
        {"activity": -1.0, "lifetime": -1.0, "recency": -0.5},
        {"activity": -0.6, "recency": 1.2},
        {"payments": 2.0, "activity": 2.0},
        {"trend": -1.0},
        {"trend": -0.6},
        {"activity": 0.0},
    ]
    assert name_segments(profiles) == [
        "One-and-done",
        "Casual",
        "Dormant",
        "Payment trouble",
        "Fading",
        "Fading (2)",
        "Steady",
    ]
    assert name_segments([{}], rules=[NamingRule("Hot", above={"activity": 1})]) == ["Segment"]


def test_churn_rate_and_revenue_per_segment_match_pandas() -> None:
    frame = behaviour_groups(1)
    rng = np.random.default_rng(1)
    frame["churn_30d"] = (rng.uniform(size=len(frame)) < 0.2).astype(float)
    frame.loc[::7, "churn_30d"] = np.nan
    result = segment_frame(frame.drop(columns="kind"), label="churn_30d", k_range=(2, 6))
    joined = result.assignments.merge(frame, on="account_id")
    expected = joined.groupby("segment_id").agg(
        churn=("churn_30d", "mean"), mrr=("current_mrr", "sum"), n=("account_id", "size")
    )
    profiles = result.profiles.set_index("segment_id")
    np.testing.assert_allclose(profiles["churn_rate"], expected["churn"])
    np.testing.assert_allclose(profiles["mrr_total"], expected["mrr"])
    assert (profiles["accounts"] == expected["n"]).all()
    assert profiles["share"].sum() == pytest.approx(1.0)


def test_previous_profiles_keep_ids_and_names() -> None:
    frame = behaviour_groups(2).drop(columns="kind")
    first = segment_frame(frame, k_range=(4, 4))
    # The same accounts a little later: 5% gone, the rest a little more active.
    later = frame.sample(frac=0.95, random_state=3).copy()
    later["events_30d"] = later["events_30d"] + 1
    # Relabel the previous run so that ids and names no canonical order would give.
    previous = first.profiles.copy()
    previous["segment_id"] = previous["segment_id"] + 10
    previous["segment"] = [f"Group {s}" for s in previous["segment_id"]]
    second = segment_frame(later, k_range=(4, 4), previous=previous)
    mapping = dict(zip(first.profiles["segment_id"] + 10, previous["segment"], strict=True))
    both = first.assignments.merge(second.assignments, on="account_id")
    agree = (both["segment_id_x"] + 10 == both["segment_id_y"]).mean()
    assert agree > 0.95
    assert set(second.profiles["segment"]) == set(mapping.values())


def test_a_segment_that_changed_too_much_is_named_afresh() -> None:
    frame = behaviour_groups(6).drop(columns="kind")
    first = segment_frame(frame, k_range=(4, 4))
    previous = first.profiles.copy()
    # The old "Power users" looked nothing like anything now: far on every axis.
    far = previous["segment"] == "Power users"
    previous.loc[far, ["activity", "recency", "payments"]] = [-9.0, 9.0, 9.0]
    previous.loc[far, "segment"] = "Old guard"
    second = segment_frame(frame, k_range=(4, 4), previous=previous)
    names = dict(zip(second.profiles["segment_id"], second.profiles["segment"], strict=True))
    assert "Old guard" not in names.values()
    assert "Power users" in names.values()
    # Renamed afresh under a new id; the other three keep theirs.
    assert max(names) == 4
    kept = first.profiles.loc[~far.to_numpy(), ["segment_id", "segment"]]
    assert all(names[i] == n for i, n in kept.itertuples(index=False))


def test_more_segments_than_before_get_new_ids_and_free_names() -> None:
    frame = behaviour_groups(4).drop(columns="kind")
    two = segment_frame(frame, k_range=(2, 2))
    # However far apart, every old segment is paired with one new one.
    four = segment_frame(frame, k_range=(4, 4), previous=two.profiles, match_distance=100.0)
    assert sorted(four.profiles["segment_id"]) == [0, 1, 2, 3]
    assert four.profiles["segment"].is_unique
    assert set(two.profiles["segment"]) <= set(four.profiles["segment"])
    # Within the default distance, only the segments that still look alike are.
    near = segment_frame(frame, k_range=(4, 4), previous=two.profiles)
    assert near.profiles["segment"].is_unique
    fresh = near.profiles.loc[~near.profiles["segment_id"].isin([0, 1]), "segment_id"]
    assert sorted(fresh) == list(range(2, 2 + len(fresh)))


def test_errors_say_what_is_wrong() -> None:
    frame = pd.DataFrame({"account_id": ["a", "b"], "events_30d": [1, 2]})
    with pytest.raises(AnalysisError, match="at least two behaviour features"):
        SegmentModel().fit(frame)
    with pytest.raises(AnalysisError, match="not fitted"):
        SegmentModel().predict(frame)
    with pytest.raises(AnalysisError, match="too few"):
        SegmentModel(BLOBS).fit(blobs(2, 0, per_cluster=3))
    with pytest.raises(AnalysisError, match="axis must be one of"):
        BehaviourFeature("x", "happiness")
    with pytest.raises(AnalysisError, match="no label column"):
        segment_frame(blobs(2, 0), features=BLOBS, label="churn_30d")


def test_figures() -> None:
    result = segment_frame(behaviour_groups(5).drop(columns="kind"), k_range=(4, 4))
    scatter = segment_scatter(result)
    assert sorted(t.name for t in scatter.data) == sorted(result.profiles["segment"])
    assert sum(len(t.x) for t in scatter.data) == len(result.assignments)
    assert len(segment_profile_bars(result).data) == 4
    assert list(segment_profile_table(result).data[0].header.values[:2]) == ["segment", "accounts"]


def test_segments_of_a_simulated_business(tmp_path: Path) -> None:
    sim = simulate(tmp_path / "sim", n_accounts=500, seed=11, events_per_account=30)
    settings = Settings.model_validate({"data": {"observation_end": "2024-12-31"}})
    with connect(f"duckdb:///{tmp_path / 'w.duckdb'}") as wh:
        report = ingest(
            Settings(sources=preset_sources("churnwatch_simulator", sim.out_dir)),
            wh,
            now=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        )
        assert not report.errors
        first = segment_accounts(wh, settings, as_of=dt.date(2024, 12, 1), k_range=(2, 6))
        again = segment_accounts(wh, settings, as_of=dt.date(2024, 12, 1), k_range=(2, 6))
    profiles = first.profiles
    assert 2 <= first.k <= 6
    assert profiles["segment"].is_unique
    assert profiles["share"].sum() == pytest.approx(1.0)
    assert profiles["churn_rate"].between(0, 1).all()
    assert profiles["churn_examples"].sum() > 0
    assert "breadth" in first.model.axes_
    assert "churn rate" in first.notes[0]
    pd.testing.assert_frame_equal(first.assignments, again.assignments)
    pd.testing.assert_frame_equal(first.profiles, again.profiles)
