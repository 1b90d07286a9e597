"""A small simulated business with a promoted churn model and its read model, for the API.

Built once per test session: simulate, ingest into DuckDB, train and promote
a LightGBM churn model (no search), score every account twice (a month
apart, for a risk history) and write a read-model generation per the
contract of ``churnwatch.views`` from those results. The cohort and
survival tables are small hand-made tables of the contract's shape: the
API only reads them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from sqlglot import exp
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from churnwatch.config import Settings
from churnwatch.features import FeatureSpec, compute_features
from churnwatch.ingest import ingest
from churnwatch.ingest.presets import preset_sources
from churnwatch.labels import LabelSpec
from churnwatch.models import ModelRegistry, register_model, training_frame, training_schedule
from churnwatch.scoring import data_end, score_accounts
from churnwatch.simulate import simulate
from churnwatch.views import write_generation
from churnwatch.warehouse import connect

CHURN = LabelSpec("subscription", horizon_days=(30,))
TARGET = "churn_30d"


@dataclass
class Business:
    """The project folder: warehouse, registry, read model."""

    folder: Path
    warehouse_url: str
    registry: ModelRegistry
    views_root: Path
    scored_at: dt.datetime
    account_ids: list[str]


def _accounts_table(warehouse_rows: pa.Table, scores: pa.Table) -> pa.Table:
    """The read model's accounts table: attributes joined with the latest scores."""
    scored = {row["account_id"]: row for row in scores.to_pylist()}
    rows = []
    for account in warehouse_rows.to_pylist():
        score = scored.get(account["account_id"], {})
        risk = score.get("score")
        mrr = account.get("mrr")
        rows.append(
            {
                "account_id": account["account_id"],
                "name": account.get("name"),
                "email": f"{account['account_id']}@example.com",
                "plan": account.get("plan"),
                "region": account.get("region"),
                "platform": account.get("platform"),
                "csm_id": account.get("csm_id"),
                "created_at": account.get("created_at"),
                "status": "active" if risk is not None else "churned",
                "mrr": mrr,
                "churn_risk": risk,
                "risk_tier": score.get("risk_tier"),
                "revenue_at_risk": score.get("revenue_at_risk"),
                "reason_1": score.get("reason_1"),
                "reason_2": score.get("reason_2"),
                "reason_3": score.get("reason_3"),
                "predicted_days_to_churn": score.get("predicted_days_to_churn"),
                "health_score": None if risk is None else round(100 * (1 - risk), 1),
                "health_band": None if risk is None else ("poor" if risk > 0.3 else "good"),
                "segment": "power" if (mrr or 0) > 50 else "casual",
                "tracker_state": "active",
                "scored_at": score.get("scored_at"),
            }
        )
    # Riskiest first, unscored accounts last (sort_by puts nulls at the end).
    return pa.Table.from_pylist(rows).sort_by(
        [("churn_risk", "descending"), ("account_id", "ascending")]
    )


def build_business(folder: Path) -> Business:
    """Simulate, train, score and write the read model under ``folder``."""
    with threadpool_limits(1, user_api="openmp"):
        result = simulate(folder / "sim", n_accounts=300, seed=7, events_per_account=20)
        end = str(result.observation_end)
        registry = ModelRegistry(folder / "models")
        url = f"duckdb:///{folder / 'churnwatch.duckdb'}"
        with connect(url) as warehouse:
            report = ingest(
                Settings(sources=preset_sources("churnwatch_simulator", result.out_dir)),
                warehouse,
                now=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
            )
            assert not report.errors
            schedule = training_schedule(warehouse, CHURN, every_days=30, observation_end=end)
            frame = training_frame(warehouse, [CHURN], schedule, observation_end=end)
            register_model(frame, TARGET, registry, search_iterations=0, promote=True)
            cutoff = data_end(warehouse)
            earlier = score_accounts(
                warehouse, registry, as_of=cutoff - dt.timedelta(days=30), write=False
            )
            latest = score_accounts(warehouse, registry, as_of=cutoff, write=False)
            found = registry.load(TARGET)
            specs = [FeatureSpec.from_dict(spec) for spec in found.card.feature_specs or []]
            scored_ids = latest.scores["account_id"].astype(str).tolist()
            cutoffs = pa.table(
                {
                    "account_id": pa.array(scored_ids, pa.string()),
                    "cutoff": pa.array([cutoff] * len(scored_ids), pa.timestamp("us", tz="UTC")),
                }
            )
            features = compute_features(warehouse, cutoffs, specs).drop_columns(["cutoff"])
            accounts = warehouse.query(exp.select("*").from_("accounts").order_by("account_id"))
    latest_scores = pa.Table.from_pandas(latest.scores, preserve_index=False)
    history = pa.concat_tables(
        [
            pa.Table.from_pandas(
                run.scores.loc[:, ["account_id", "scored_at", "target", "score"]],
                preserve_index=False,
            )
            for run in (earlier, latest)
        ]
    ).sort_by([("account_id", "ascending"), ("scored_at", "ascending")])
    cohorts = pa.table(
        {
            "cohort": ["2024-01", "2024-01", "2024-02", "2024-02"],
            "cohort_size": [40, 40, 30, 30],
            "period": [0, 1, 0, 1],
            "retention": [1.0, 0.8, 1.0, 0.7],
        }
    )
    days = np.array([0.0, 30.0, 60.0])
    curves = pa.table(
        {
            "attribute": ["all"] * 3 + ["plan"] * 6,
            "group": ["all"] * 3 + ["basic"] * 3 + ["pro"] * 3,
            "days": np.concatenate([days, days, days]),
            "survival": [1.0, 0.9, 0.8, 1.0, 0.85, 0.7, 1.0, 0.95, 0.9],
            "lower": [1.0, 0.85, 0.75, 1.0, 0.8, 0.6, 1.0, 0.9, 0.85],
            "upper": [1.0, 0.95, 0.85, 1.0, 0.9, 0.8, 1.0, 1.0, 0.95],
        }
    )
    tests = pa.table(
        {
            "attribute": ["plan"],
            "statistic": [4.2],
            "p_value": [0.04],
            "degrees_of_freedom": [1.0],
            "groups": [2],
        }
    )
    views_root = folder / "views"
    write_generation(
        views_root,
        {
            "accounts": _accounts_table(accounts, latest_scores),
            "features": features.sort_by("account_id"),
            "risk_history": history,
            "cohort_retention": cohorts,
            "survival_curves": curves,
            "survival_tests": tests,
        },
        {
            "project": "api-tests",
            "scored_at": cutoff.isoformat(),
            "models": {
                TARGET: {"version": found.card.version, "features": list(found.model.features)}
            },
        },
    )
    return Business(
        folder=folder,
        warehouse_url=url,
        registry=registry,
        views_root=views_root,
        scored_at=cutoff,
        account_ids=accounts.column("account_id").to_pylist(),
    )
