"""The default feature set on a simulated business: many features, sane values."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from sqlglot import exp

from churnwatch.config import Settings
from churnwatch.errors import ConfigError
from churnwatch.features import (
    FeatureSpec,
    compile_features,
    compute_features,
    default_features,
    explain,
    merge_features,
)
from churnwatch.ingest import ingest
from churnwatch.ingest.presets import preset_sources
from churnwatch.simulate import simulate
from churnwatch.warehouse import Warehouse, connect

CUTOFFS = [dt.datetime(2024, month, 1, tzinfo=dt.UTC) for month in (4, 8, 12)]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """A DuckDB warehouse holding a small simulated business."""
    folder = tmp_path_factory.mktemp("simulated")
    result = simulate(folder / "sim", n_accounts=200, seed=1)
    with connect(f"duckdb:///{folder / 'w.duckdb'}") as warehouse:
        report = ingest(
            Settings(sources=preset_sources("churnwatch_simulator", result.out_dir)),
            warehouse,
            now=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        )
        assert not report.errors
        yield warehouse


def test_default_features_on_a_simulated_business(simulated: Warehouse) -> None:
    specs = default_features(simulated)
    assert len(specs) >= 30
    assert len({s.name for s in specs}) == len(specs)
    assert {s.kind for s in specs} >= {
        "aggregate",
        "users",
        "recency",
        "tenure",
        "first_week",
        "consistency",
        "trend",
        "payments",
        "subscription",
        "support",
        "attribute",
    }
    accounts = simulated.query(exp.select("account_id").from_("accounts")).column(0).to_pylist()
    cutoffs = pa.table(
        {
            "account_id": [a for a in accounts for _ in CUTOFFS],
            "cutoff": pa.array(
                [c for _ in accounts for c in CUTOFFS], pa.timestamp("us", tz="UTC")
            ),
        }
    )
    frame = compute_features(simulated, cutoffs)
    assert frame.num_rows == len(accounts) * len(CUTOFFS)
    assert frame.column_names[2:] == [s.name for s in specs]
    for spec in specs:
        values = [v for v in frame.column(spec.name).to_pylist() if v is not None]
        assert frame.schema.field(spec.name).type == spec.arrow_type
        if spec.dtype == "string":
            continue
        assert all(math.isfinite(v) for v in values), spec.name
        if spec.dtype == "int64" and spec.kind != "trend":
            assert min(values, default=0) >= 0, spec.name
        if spec.function in ("active_share", "share", "success_rate"):
            assert all(0 <= v <= 1 for v in values), spec.name
        if spec.kind in ("recency", "tenure") or spec.function == "days_since_failure":
            assert min(values, default=0) >= 0, spec.name
    # Activity happened: some counts are positive at every cutoff.
    for cutoff in CUTOFFS:
        rows = [r for r in frame.to_pylist() if r["cutoff"] == cutoff]
        assert sum(r["events_30d"] for r in rows) > 0


def test_defaults_render_for_spark(simulated: Warehouse) -> None:
    queries = compile_features(default_features(simulated), "spark")
    assert set(queries) == {
        "accounts",
        "events",
        "events_history",
        "users_known",
        "users",
        "payments",
        "subscriptions",
    }
    assert all(q.sql("spark") for q in queries.values())


def test_explain_names_window_and_source(simulated: Warehouse) -> None:
    specs = default_features(simulated)
    lines = explain(specs)
    assert len(lines) == len(specs)
    by_name = dict(zip((s.name for s in specs), lines, strict=True))
    assert by_name["events_30d"] == (
        "events_30d (int64): count of events in the 30 days before the cutoff [source: events]"
    )
    assert "[source: payments]" in by_name["failed_payments_90d"]


def test_merge_adds_overrides_and_drops() -> None:
    base = [FeatureSpec("tenure_days", "tenure"), FeatureSpec("plan", "attribute", column="plan")]
    override = FeatureSpec("plan", "attribute", column="region")
    added = FeatureSpec("events_7d", "aggregate", "count", window_days=7)
    merged = merge_features(base, add=[override, added], drop=["tenure_days"])
    assert merged == [override, added]
    with pytest.raises(ConfigError, match="no such feature"):
        merge_features(base, drop=["nope"])


def test_default_features_of_an_empty_warehouse(tmp_path: Path) -> None:
    with connect(f"duckdb:///{tmp_path / 'w.duckdb'}") as warehouse:
        warehouse.ensure_schema()
        assert [s.name for s in default_features(warehouse)] == ["tenure_days"]
