"""Read-model speed: every dashboard page's queries on a million accounts.

    python benchmarks/views.py                      # 1M accounts
    python benchmarks/views.py --accounts 100000

A synthetic generation shaped like a refresh's output is written with
:func:`churnwatch.views.write_generation`: ``accounts`` (--accounts rows, the
contract's columns), ``risk_history`` (5 daily runs of every account),
``activity`` (about half of 26 weeks per account), ``features`` (20 numeric
features) and the small tables (trend, cohorts, survival, segments, model).
Then each dashboard page's queries run through :class:`churnwatch.views.ReadModel`
as a page would issue them:

- overview: the meta document and the churn trend;
- at-risk accounts: the first page sorted by risk; a filtered page (tier, region,
  plan) sorted by revenue at risk, third page; a search; a 10,000-row CSV export;
- account: one account's row, its risk history, activity and features;
- retention, segments, model: their whole tables.

Each page is timed twice: *cold* (a new ReadModel, as the first request after a
refresh) and *warm* (the same reader again). Printed: ms per query and per
page, the write time and peak RSS. Target: every page under 2 s on 1M accounts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from _measure import peak_rss_mb  # benchmarks/ is on sys.path when a script runs

from churnwatch.views import AccountFilter, ReadModel, write_generation

SCORED_AT = dt.datetime(2024, 12, 31, tzinfo=dt.UTC)
PLANS = np.array(["free", "basic", "pro", "enterprise"])
REGIONS = np.array(["EU", "NA", "APAC", "LATAM"])
PLATFORMS = np.array(["web", "ios", "android"])
SEGMENTS = np.array(["Power users", "Casual", "Payment trouble", "Dormant", "New"])
TIERS = ("high", "medium", "low")


def _ids(n: int) -> np.ndarray:
    return np.char.add("acct_", np.char.zfill(np.arange(n).astype(str), 8)).astype(object)


def accounts_table(n: int, rng: np.random.Generator) -> pa.Table:
    """``n`` accounts in the contract's columns, riskiest first."""
    ids = _ids(n)
    risk = rng.beta(1.2, 12.0, n)
    risk[rng.random(n) < 0.1] = np.nan  # unscored
    mrr = np.round(rng.lognormal(4.0, 1.0, n), 2)
    tier = np.where(risk >= 0.3, "high", np.where(risk >= 0.1, "medium", "low")).astype(object)
    tier[np.isnan(risk)] = None
    reason = np.where(risk >= 0.1, "no activity for 20 days (typical: 3)", None)
    health = np.clip(100 - risk * 150, 0, 100)
    created_us = int(SCORED_AT.timestamp() * 1e6) - rng.integers(1, 700, n) * 86_400 * 10**6
    table = pa.table(
        {
            "account_id": pa.array(ids, pa.string()),
            "name": pa.array(np.char.add("Company ", np.arange(n).astype(str)), pa.string()),
            "email": pa.array(np.char.add(np.arange(n).astype(str), "@example.com"), pa.string()),
            "plan": pa.array(PLANS[rng.integers(0, 4, n)], pa.string()),
            "region": pa.array(REGIONS[rng.integers(0, 4, n)], pa.string()),
            "platform": pa.array(PLATFORMS[rng.integers(0, 3, n)], pa.string()),
            "csm_id": pa.array(
                np.char.add("csm", rng.integers(0, 300, n).astype(str)), pa.string()
            ),
            "created_at": pa.array(created_us, pa.timestamp("us", tz="UTC")),
            "status": pa.array(np.where(rng.random(n) < 0.8, "active", "churned"), pa.string()),
            "mrr": pa.array(mrr),
            "churn_risk": pa.array(risk, from_pandas=True),
            "risk_tier": pa.array(tier, pa.string()),
            "revenue_at_risk": pa.array(risk * mrr, from_pandas=True),
            "reason_1": pa.array(reason, pa.string()),
            "reason_2": pa.array(reason, pa.string()),
            "reason_3": pa.array(reason, pa.string()),
            "predicted_days_to_churn": pa.array(rng.uniform(10, 400, n)),
            "health_score": pa.array(health, from_pandas=True),
            "health_band": pa.array(
                np.where(health >= 80, "Thriving", np.where(health >= 40, "Healthy", "Critical")),
                pa.string(),
            ),
            "segment": pa.array(SEGMENTS[rng.integers(0, 5, n)], pa.string()),
            "tracker_state": pa.array(np.where(rng.random(n) < 0.95, "active", "churned")),
            "scored_at": pa.array(np.full(n, SCORED_AT), pa.timestamp("us", tz="UTC")),
        }
    )
    # The refresh writes the list riskiest first (unscored last).
    return table.sort_by([("churn_risk", "descending"), ("account_id", "ascending")])


def per_account_tables(n: int, rng: np.random.Generator) -> dict[str, pa.Table]:
    """risk_history, activity and features, sorted by account as the refresh writes them."""
    ids = _ids(n)
    runs = 5
    history = pa.table(
        {
            "account_id": pa.array(np.repeat(ids, runs), pa.string()),
            "scored_at": pa.array(
                np.tile([SCORED_AT - dt.timedelta(days=d) for d in range(runs - 1, -1, -1)], n),
                pa.timestamp("us", tz="UTC"),
            ),
            "target": pa.array(np.full(n * runs, "churn_30d"), pa.string()),
            "score": pa.array(rng.random(n * runs)),
        }
    )
    weeks = 26
    present = rng.random((n, weeks)) < 0.5
    rows, columns = np.nonzero(present)
    start = (SCORED_AT - dt.timedelta(weeks=weeks)).date()
    activity = pa.table(
        {
            "account_id": pa.array(ids[rows], pa.string()),
            "week": pa.array(
                np.datetime64(start) + columns.astype("timedelta64[D]") * 7, pa.date32()
            ),
            "events": pa.array(rng.integers(1, 200, rows.size)),
            "active_days": pa.array(rng.integers(1, 8, rows.size)),
            "duration_s": pa.array(rng.random(rows.size) * 10_000),
        }
    )
    features = pa.table(
        {"account_id": pa.array(ids, pa.string())}
        | {f"feature_{i:02d}": pa.array(rng.random(n)) for i in range(20)}
    )
    return {"risk_history": history, "activity": activity, "features": features}


def small_tables(rng: np.random.Generator) -> dict[str, pa.Table]:
    """The whole-table pages' tables, at the sizes a refresh gives them."""
    months = [dt.date(2024, m, 1) for m in range(1, 13)]
    cohorts = [(f"2024-{m:02d}", k) for m in range(1, 13) for k in range(13 - m)]
    days = np.linspace(0, 700, 1000)
    curves = [
        (attribute, group)
        for attribute, groups in (
            ("all", ["all"]),
            ("plan", list(PLANS)),
            ("region", list(REGIONS)),
        )
        for group in groups
    ]
    points = 20_000
    features = [f"feature_{i:02d}" for i in range(20)]
    return {
        "churn_trend": pa.table(
            {
                "period": pa.array(months, pa.date32()),
                "accounts": pa.array(rng.integers(500_000, 900_000, 12)),
                "churned": pa.array(rng.integers(20_000, 40_000, 12)),
                "churn_rate": pa.array(rng.uniform(0.03, 0.05, 12)),
                "revenue_churned": pa.array(rng.uniform(1e6, 2e6, 12)),
            }
        ),
        "cohort_retention": pa.table(
            {
                "cohort": [c for c, _ in cohorts],
                "cohort_size": pa.array(rng.integers(50_000, 90_000, len(cohorts))),
                "period": pa.array([k for _, k in cohorts], pa.int64()),
                "retention": pa.array(rng.uniform(0.3, 1.0, len(cohorts))),
            }
        ),
        "survival_curves": pa.table(
            {
                "attribute": [a for a, _ in curves for _ in days],
                "group": [g for _, g in curves for _ in days],
                "days": np.tile(days, len(curves)),
                "survival": np.tile(np.exp(-days / 900), len(curves)),
                "lower": np.tile(np.exp(-days / 850), len(curves)),
                "upper": np.tile(np.exp(-days / 950), len(curves)),
            }
        ),
        "survival_tests": pa.table(
            {
                "attribute": ["plan", "region"],
                "statistic": [120.0, 3.1],
                "p_value": [1e-20, 0.37],
                "degrees_of_freedom": pa.array([3, 3], pa.int64()),
                "groups": pa.array([4, 4], pa.int64()),
            }
        ),
        "segment_points": pa.table(
            {
                "account_id": pa.array(_ids(points), pa.string()),
                "pc1": rng.normal(size=points),
                "pc2": rng.normal(size=points),
                "segment": pa.array(SEGMENTS[rng.integers(0, 5, points)], pa.string()),
            }
        ),
        "segment_profiles": pa.table(
            {
                "segment": np.repeat(SEGMENTS, 10),
                "accounts": pa.array(np.repeat(rng.integers(1e5, 3e5, 5), 10)),
                "feature": np.tile(features[:10], 5),
                "mean": rng.normal(size=50),
            }
        ),
        "model_metrics": pa.table(
            {
                "target": ["churn_30d"] * 4,
                "method": ["lightgbm"] * 4,
                "cutoff": pa.array([None] * 4, pa.timestamp("us", tz="UTC")),
                "metric": ["roc_auc", "pr_auc", "brier", "lift_top10"],
                "value": [0.82, 0.3, 0.04, 4.1],
            }
        ),
        "model_curves": pa.table(
            {
                "target": ["churn_30d"] * 600,
                "curve": ["roc"] * 200 + ["pr"] * 200 + ["calibration"] * 200,
                "x": np.tile(np.linspace(0, 1, 200), 3),
                "y": np.tile(np.sqrt(np.linspace(0, 1, 200)), 3),
            }
        ),
        "importance": pa.table(
            {"target": ["churn_30d"] * 20, "feature": features, "importance": rng.random(20)}
        ),
        "pdp": pa.table(
            {
                "target": ["churn_30d"] * 48,
                "feature": np.repeat(features[:4], 12),
                "x": np.tile(np.linspace(0, 1, 12), 4),
                "y": rng.random(48),
            }
        ),
        "drift": pa.table(
            {
                "target": ["churn_30d"] * 20,
                "feature": features,
                "psi": rng.random(20) * 0.3,
                "status": ["ok"] * 20,
            }
        ),
    }


def pages(model: ReadModel, account_id: str) -> dict[str, list[tuple[str, Callable[[], Any]]]]:
    """Each dashboard page's queries, as the page issues them."""
    risky = AccountFilter(risk_tier=("high",), region=("EU",), plan=("pro", "enterprise"))
    return {
        "overview": [
            ("meta", lambda: model.meta),
            ("churn_trend", lambda: model.table("churn_trend")),
        ],
        "at-risk accounts": [
            ("first page by risk", lambda: model.accounts_page(limit=50)),
            (
                "filtered, by revenue at risk, page 3",
                lambda: model.accounts_page(risky, sort_by="revenue_at_risk", offset=100, limit=50),
            ),
            (
                "search 'company 12345'",
                lambda: model.accounts_page(AccountFilter(search="company 12345")),
            ),
            (
                "CSV export: 10,000 filtered rows",
                lambda: model.accounts_page(risky, limit=10_000).rows.to_pandas().to_csv(),
            ),
        ],
        "account": [
            ("account row", lambda: model.account(account_id)),
            ("risk_history rows", lambda: model.rows_of("risk_history", account_id)),
            ("activity rows", lambda: model.rows_of("activity", account_id)),
            ("features row", lambda: model.rows_of("features", account_id)),
        ],
        "retention": [
            (name, lambda name=name: model.table(name))
            for name in ("cohort_retention", "survival_curves", "survival_tests")
        ],
        "segments": [
            (name, lambda name=name: model.table(name))
            for name in ("segment_points", "segment_profiles")
        ],
        "model": [
            (name, lambda name=name: model.table(name))
            for name in ("model_metrics", "model_curves", "importance", "pdp", "drift")
        ],
    }


def timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    n = args.accounts

    started = time.perf_counter()
    tables = {"accounts": accounts_table(n, rng)} | per_account_tables(n, rng) | small_tables(rng)
    built = time.perf_counter() - started
    rows = {name: table.num_rows for name, table in tables.items()}
    print(
        f"{n:,} accounts; tables built in {built:.1f} s: "
        + ", ".join(f"{name} {count:,}" for name, count in rows.items())
    )
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "views"
        started = time.perf_counter()
        generation = write_generation(root, tables, {"project": "benchmark", "kpis": {}})
        wrote = time.perf_counter() - started
        size = sum(p.stat().st_size for p in generation.path.iterdir()) / 2**20
        print(f"write_generation: {wrote:.1f} s, {size:,.0f} MiB on disk")
        del tables
        # An account from the middle of the list (not a cached first row).
        account_id = f"acct_{n // 2 + 17:08d}"
        worst = 0.0
        model = ReadModel(root)
        for label in ("cold", "warm"):
            print(f"\n{label}: a {'new' if label == 'cold' else 'used'} reader")
            for page, queries in pages(model, account_id).items():
                times = [(name, timed(call)) for name, call in queries]
                total = sum(ms for _, ms in times)
                worst = max(worst, total)
                detail = ", ".join(f"{name} {ms:,.0f}" for name, ms in times)
                print(f"  {page:<17} {total:>8,.0f} ms  ({detail})")
        print(f"\nslowest page: {worst:,.0f} ms (target < 2,000 ms)")
    print(f"peak RSS {peak_rss_mb():,.0f} MiB")


if __name__ == "__main__":
    main()
