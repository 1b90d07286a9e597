"""The health backtest against scikit-learn and pandas, and the score on a simulated business."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]

from churnwatch.config import Settings, parse_settings
from churnwatch.errors import AnalysisError, ConfigError
from churnwatch.health import (
    HealthComponent,
    account_health,
    backtest_health,
    health_backtest,
    health_histogram,
    model_health,
    tier_churn_bars,
)
from churnwatch.ingest import ingest
from churnwatch.ingest.presets import preset_sources
from churnwatch.scoring import RISK_SCORES_TABLE
from churnwatch.simulate import simulate
from churnwatch.warehouse import Warehouse, connect

RECENCY = HealthComponent("days_since_last_event", "lower_is_better", bad=60, good=0)
FREQUENCY = HealthComponent("events_30d", "higher_is_better")


def past_frame(seed: int = 0, n: int = 400) -> pd.DataFrame:
    """Three cutoffs of accounts whose churn depends on recency, some labels censored."""
    rng = np.random.default_rng(seed)
    recency = rng.uniform(0, 55, n)  # inside the linear scale: no two points tie
    churn = (rng.uniform(size=n) < 0.05 + recency / 100).astype(float)
    churn[rng.uniform(size=n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "account_id": [f"a{i:04}" for i in range(n)],
            "cutoff": pd.to_datetime(
                rng.choice(["2024-03-01", "2024-04-01", "2024-05-01"], n), utc=True
            ),
            "days_since_last_event": recency,
            # Continuous, so that no two accounts tie on the score.
            "events_30d": rng.gamma(2.0, np.maximum(1, 30 - recency / 3)),
            "churn_30d": churn,
            "p": np.clip(recency / 100 + rng.normal(0, 0.1, n), 0, 1),
        }
    )


def test_backtest_auc_and_lift_match_independent_computations() -> None:
    frame = past_frame()
    result = health_backtest(frame, "churn_30d", [RECENCY, FREQUENCY], model_probability="p")
    scored = result.scores
    known = frame.loc[frame["churn_30d"].notna()]
    assert len(scored) == len(known)
    assert "censored" in result.notes[0]
    pooled = result.pooled.set_index("score")
    y = scored["churn_30d"].to_numpy()
    assert pooled.loc["health", "roc_auc"] == pytest.approx(
        roc_auc_score(y, 100 - scored["health_score"])
    )
    assert pooled.loc["model", "roc_auc"] == pytest.approx(roc_auc_score(y, known["p"].to_numpy()))
    # Lift of the lowest-scored 10%, written out with pandas (scores here have no ties).
    assert scored["health_score"].is_unique
    top = scored.nsmallest(math.ceil(0.1 * len(scored)), "health_score")
    assert pooled.loc["health", "lift_top10"] == pytest.approx(
        top["churn_30d"].mean() / scored["churn_30d"].mean()
    )
    assert pooled.loc["health", "recall_top10"] == pytest.approx(
        top["churn_30d"].sum() / scored["churn_30d"].sum()
    )
    for cutoff, part in scored.groupby("cutoff"):
        row = result.metrics.loc[
            (result.metrics["cutoff"] == str(cutoff.date())) & (result.metrics["score"] == "health")
        ]
        assert row["roc_auc"].iloc[0] == pytest.approx(
            roc_auc_score(part["churn_30d"], 100 - part["health_score"])
        )


def test_tier_churn_rates_match_a_groupby() -> None:
    result = health_backtest(past_frame(1), "churn_30d", [RECENCY, FREQUENCY])
    pooled = result.tiers.loc[result.tiers["cutoff"] == "pooled"].set_index("tier")
    expected = result.scores.groupby("health_tier")["churn_30d"].agg(["mean", "size"])
    for tier, row in expected.iterrows():
        assert pooled.loc[tier, "churn_rate"] == pytest.approx(row["mean"])
        assert pooled.loc[tier, "accounts"] == row["size"]
    assert pooled["accounts"].sum() == len(result.scores)
    assert [t.name for t in tier_churn_bars(result).data] == ["health"]


def test_backtest_needs_a_label_column() -> None:
    with pytest.raises(AnalysisError, match="no column"):
        health_backtest(past_frame().drop(columns="churn_30d"), "churn_30d", [RECENCY])


# -- settings ----------------------------------------------------------------------
def test_health_settings_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"health\.components\[1\]\.weight"):
        parse_settings(
            {
                "health": {
                    "components": [
                        {"metric": "events_30d", "direction": "higher_is_better"},
                        {"metric": "tenure_days", "direction": "higher_is_better", "weight": 0},
                    ]
                }
            }
        )
    with pytest.raises(ConfigError, match=r"health\.components\[0\]: .*good \(3\) must lie"):
        parse_settings(
            {
                "health": {
                    "components": [
                        {"metric": "x", "direction": "higher_is_better", "bad": 30, "good": 3}
                    ]
                }
            }
        )
    with pytest.raises(ConfigError, match=r"health\.components\[0\]\.direction"):
        parse_settings({"health": {"components": [{"metric": "x", "direction": "up"}]}})


def test_health_settings_give_components() -> None:
    settings = parse_settings(
        {
            "health": {
                "components": [
                    {"metric": "events_30d", "direction": "higher_is_better", "weight": 2},
                    {"metric": "days_since_last_event", "direction": "lower_is_better",
                     "bad": 30, "good": 3, "missing": "worst"},
                ]
            }
        }
    )  # fmt: skip
    components = settings.health.resolved()
    assert components is not None
    assert components[1] == HealthComponent(
        "days_since_last_event", "lower_is_better", 1.0, bad=30, good=3, missing="worst"
    )
    assert Settings().health.resolved() is None


# -- on a simulated business --------------------------------------------------------
@pytest.fixture(scope="module")
def warehouse_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("health")
    result = simulate(folder / "sim", n_accounts=600, seed=5, events_per_account=30)
    path = folder / "w.duckdb"
    with connect(f"duckdb:///{path}") as wh:
        report = ingest(
            Settings(sources=preset_sources("churnwatch_simulator", result.out_dir)),
            wh,
            now=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        )
        assert not report.errors
    return path


@pytest.fixture
def warehouse(warehouse_file: Path) -> Iterator[Warehouse]:
    with connect(f"duckdb:///{warehouse_file}") as wh:
        yield wh


SIM = Settings.model_validate({"data": {"observation_end": "2024-12-31"}})


def test_default_score_on_the_simulator(warehouse: Warehouse) -> None:
    result = account_health(warehouse, SIM, as_of=dt.date(2024, 11, 30))
    scores = result.scores
    assert len(result.components) == 5
    assert not result.notes
    assert scores["account_id"].is_unique
    assert scores["health_score"].between(0, 100).all()
    assert set(scores["health_tier"]) <= {"Thriving", "Healthy", "At-risk", "Critical"}
    assert (scores["cutoff"] == pd.Timestamp("2024-12-01", tz="UTC")).all()
    assert result.tier_counts()["accounts"].sum() == len(scores)
    assert len(health_histogram(scores).data) == 4


def test_default_score_ranks_later_churn_on_the_simulator(warehouse: Warehouse) -> None:
    result = backtest_health(warehouse, SIM, cutoffs_count=4)
    pooled = result.pooled.set_index("score")
    assert pooled.loc["health", "roc_auc"] > 0.5
    assert result.metrics["cutoff"].nunique() == 5  # four cutoffs and the pool
    assert "no churn_30d scores" in " ".join(result.notes)


def test_declared_component_must_be_a_project_feature(warehouse: Warehouse) -> None:
    settings = SIM.model_copy(
        update={
            "health": parse_settings(
                {"health": {"components": [{"metric": "logins", "direction": "higher_is_better"}]}}
            ).health
        }
    )
    with pytest.raises(AnalysisError, match="logins are not features of this project"):
        account_health(warehouse, settings)


def _write_scores(warehouse: Warehouse, rows: pd.DataFrame) -> None:
    from churnwatch.scoring import _COLUMNS

    warehouse.create_table(RISK_SCORES_TABLE, list(_COLUMNS))
    full = rows.reindex(columns=[c for c, _ in _COLUMNS])
    for column in ("mrr", "revenue_at_risk"):
        full[column] = full[column].astype(float)
    for column in ("risk_tier", "reason_1", "reason_2", "reason_3", "model_version"):
        full[column] = full[column].astype(object).where(full[column].notna(), None)
    full["model_version"] = "v1"
    warehouse.append(RISK_SCORES_TABLE, pa.Table.from_pandas(full, preserve_index=False))


def test_model_health_reads_the_latest_run(tmp_path: Path, warehouse_file: Path) -> None:
    copy = tmp_path / "w.duckdb"
    copy.write_bytes(warehouse_file.read_bytes())
    early, late = (pd.Timestamp(d, tz="UTC") for d in ("2024-11-01", "2024-12-01"))
    rows = pd.DataFrame(
        {
            "account_id": ["a", "b", "a", "b", "a"],
            "scored_at": [early, early, late, late, late],
            "target": ["churn_30d"] * 4 + ["churn_14d"],
            "score": [0.5, 0.1, 0.25, 0.9, 0.0],
        }
    )
    with connect(f"duckdb:///{copy}") as wh:
        assert model_health(wh, "churn_30d").empty
        _write_scores(wh, rows)
        latest = model_health(wh, "churn_30d")
        before = model_health(wh, "churn_30d", as_of=dt.date(2024, 11, 15))
    assert latest["model_health"].tolist() == [75.0, 10.0]
    assert latest["model_tier"].tolist() == ["Healthy", "Critical"]
    assert before["model_health"].tolist() == [50.0, 90.0]


def test_backtest_sets_the_model_score_beside(tmp_path: Path, warehouse_file: Path) -> None:
    copy = tmp_path / "w.duckdb"
    copy.write_bytes(warehouse_file.read_bytes())
    with connect(f"duckdb:///{copy}") as wh:
        first = backtest_health(wh, SIM, cutoffs_count=2)
        cutoff = first.scores["cutoff"].max()
        mine = first.scores.loc[first.scores["cutoff"] == cutoff]
        rng = np.random.default_rng(0)
        probability = np.clip(mine["churn_30d"] * 0.5 + rng.uniform(0, 0.5, len(mine)), 0, 1)
        _write_scores(
            wh,
            pd.DataFrame(
                {
                    "account_id": mine["account_id"],
                    "scored_at": cutoff,
                    "target": "churn_30d",
                    "score": probability,
                }
            ),
        )
        result = backtest_health(wh, SIM, cutoffs_count=2)
    model = result.metrics.loc[result.metrics["score"] == "model"]
    assert set(model["cutoff"]) == {str(cutoff.date()), "pooled"}
    assert model["roc_auc"].iloc[0] == pytest.approx(roc_auc_score(mine["churn_30d"], probability))


def test_too_short_a_history_is_an_analysis_error(tmp_path: Path) -> None:
    sim = simulate(tmp_path / "sim", n_accounts=60, seed=1, end="2024-01-20")
    with connect(f"duckdb:///{tmp_path / 'w.duckdb'}") as wh:
        ingest(sim.settings(), wh, now=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        with pytest.raises(AnalysisError, match="cannot be backtested"):
            backtest_health(wh, sim.settings())
