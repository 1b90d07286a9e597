"""Risk history: the weekly story of the risk target, bounded however often scoring runs."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pyarrow as pa

from churnwatch.config import Settings
from churnwatch.scoring import RISK_SCORES_TABLE
from churnwatch.views import refresh_views
from churnwatch.views._accounts import HISTORY_DAYS, HISTORY_RUNS
from churnwatch.warehouse import connect

LAST = dt.datetime(2024, 12, 31, tzinfo=dt.UTC)


def test_daily_runs_become_weekly_points(tmp_path: Path) -> None:
    """A year of daily runs of two targets: weekly runs of the shown target, latest included."""
    days = [LAST - dt.timedelta(days=k) for k in range(365)]
    accounts = ["a", "b", "c"]
    rows = [
        (account, day, target, 0.01 * k)
        for k, day in enumerate(days)
        for account in accounts
        for target in ("churn_30d", "churn_14d")
    ]
    with connect("duckdb:///:memory:") as wh:
        wh.ensure_schema()
        # A risk_scores table of an older version: no reasons, tiers or revenue columns.
        wh.create_table(
            RISK_SCORES_TABLE,
            [("account_id", "string"), ("scored_at", "timestamp"), ("target", "string"),
             ("score", "double")],
        )  # fmt: skip
        wh.append(
            RISK_SCORES_TABLE,
            pa.table(
                {
                    "account_id": [r[0] for r in rows],
                    "scored_at": pa.array([r[1] for r in rows], pa.timestamp("us", tz="UTC")),
                    "target": [r[2] for r in rows],
                    "score": [r[3] for r in rows],
                }
            ),
        )
        result = refresh_views(Settings(), wh, tmp_path / "views")
    history = result.generation.read("risk_history").to_pandas()
    assert set(history["target"]) == {"churn_30d"}  # [churn] horizon_days = 30
    runs = sorted(history["scored_at"].unique())
    assert runs[-1] == LAST
    assert len(runs) == min(HISTORY_RUNS, HISTORY_DAYS // 7 + 1)
    gaps = {(later - earlier).days for earlier, later in itertools.pairwise(runs)}
    assert gaps == {7}
    assert (history.groupby("scored_at").size() == len(accounts)).all()
    # Each kept point is that day's score (a score of 0.01 per day back from the last).
    back = ((LAST - history["scored_at"]).dt.days).to_numpy()
    assert (abs(history["score"].to_numpy() - 0.01 * back) < 1e-12).all()
    assert list(history["account_id"]) == sorted(history["account_id"])
