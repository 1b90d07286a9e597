"""The refresh's warehouse queries give the same tables on DuckDB, Postgres and MySQL.

The business's canonical tables and risk scores are copied into a fresh
warehouse of each engine; the read model refreshed there must hold the same
rows as the one refreshed on the original DuckDB file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sqlglot import exp
from tests.views.conftest import Business

from churnwatch.schema import TABLES as CANONICAL
from churnwatch.schema import ColumnType
from churnwatch.scoring import RISK_SCORES_TABLE
from churnwatch.views import RefreshResult, refresh_views
from churnwatch.warehouse import Warehouse, connect

_RISK_COLUMNS: list[tuple[str, ColumnType]] = [
    ("account_id", "string"),
    ("scored_at", "timestamp"),
    ("target", "string"),
    ("model_version", "string"),
    ("score", "double"),
    ("risk_tier", "string"),
    ("mrr", "double"),
    ("revenue_at_risk", "double"),
    ("reason_1", "string"),
    ("reason_2", "string"),
    ("reason_3", "string"),
    ("predicted_days_to_churn", "double"),
]


def _copy(source: Warehouse, target: Warehouse) -> None:
    target.ensure_schema()
    for name in CANONICAL:
        rows = source.query(exp.select("*").from_(name))
        if rows.num_rows:
            target.append(name, rows)
    target.create_table(RISK_SCORES_TABLE, _RISK_COLUMNS)
    target.append(RISK_SCORES_TABLE, source.query(exp.select("*").from_(RISK_SCORES_TABLE)))


def _sorted(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return table.sort_values(keys).reset_index(drop=True)


def test_same_tables_on_every_engine(
    warehouse_url: str, business: Business, refreshed: RefreshResult, tmp_path: Path
) -> None:
    """Accounts, activity, history, trend, cohorts and curves match the DuckDB refresh."""
    with (
        connect(f"duckdb:///{business.warehouse_file}") as source,
        connect(warehouse_url) as target,
    ):
        _copy(source, target)
        result = refresh_views(business.settings, target, tmp_path / "views")
    here, there = refreshed.generation, result.generation
    for name, keys in {
        "activity": ["account_id", "week"],
        "risk_history": ["account_id", "scored_at"],
        "churn_trend": ["period"],
        "cohort_retention": ["cohort", "period"],
    }.items():
        expected = _sorted(here.read(name).to_pandas(), keys)
        found = _sorted(there.read(name).to_pandas(), keys)
        pd.testing.assert_frame_equal(found, expected, check_dtype=False, check_exact=False)
    columns = ["account_id", "status", "churn_risk", "risk_tier", "mrr", "health_band"]
    expected = _sorted(here.read("accounts", columns).to_pandas(), ["account_id"])
    found = _sorted(there.read("accounts", columns).to_pandas(), ["account_id"])
    pd.testing.assert_frame_equal(found, expected, check_dtype=False)
    curves = ["attribute", "group", "days"]
    expected = _sorted(here.read("survival_curves").to_pandas(), curves)
    found = _sorted(there.read("survival_curves").to_pandas(), curves)
    np.testing.assert_allclose(found["survival"], expected["survival"])
