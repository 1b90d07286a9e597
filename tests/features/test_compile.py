"""Golden and differential tests of the feature compiler on every engine.

Each feature kind is checked against values computed by hand (see
``conftest.py``), on DuckDB, Postgres and MariaDB; each engine's frame is
also compared with DuckDB's, column types included.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pyarrow as pa
import pytest
import sqlglot
from hypothesis import given
from hypothesis import strategies as st
from sqlglot import exp

from churnwatch.errors import ConfigError
from churnwatch.features import FeatureSpec, compile_features, compute_features
from churnwatch.features._compute import _distinct_cutoffs
from churnwatch.warehouse import connect

KEYS = [("a1", "C"), ("a2", "C"), ("a3", "C"), ("a1", "C0")]


def _pairs(golden: Any) -> list[tuple[str, Any]]:
    return [(account, golden.C if at == "C" else golden.C0) for account, at in KEYS]


def _compute(url: str, golden: Any) -> pa.Table:
    with connect(url) as warehouse:
        golden.load(warehouse)
        frame: pa.Table = compute_features(warehouse, golden.cutoffs(_pairs(golden)), golden.specs)
        return frame


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-9)
    return bool(left == right)


def test_golden_values_on_every_engine(warehouse_url: str, golden: Any) -> None:
    frame = _compute(warehouse_url, golden)
    assert frame.column("account_id").to_pylist() == [a for a, _ in KEYS]
    assert frame.column("cutoff").to_pylist() == [c for _, c in _pairs(golden)]
    assert frame.schema.field("cutoff").type == pa.timestamp("us", tz="UTC")
    for spec in golden.specs:
        assert frame.schema.field(spec.name).type == spec.arrow_type, spec.name
        got = frame.column(spec.name).to_pylist()[:3]
        want = golden.expected[spec.name]
        assert all(_same(g, w) for g, w in zip(got, want, strict=True)), (spec.name, got, want)
    # The same account one month earlier (C0 = 2024-02-01).
    earlier = frame.slice(3).to_pylist()[0]
    assert earlier["events_all"] == 2
    assert earlier["mrr_now"] == 50.0  # s1 ends at C0: still active; s2 starts at C0: unseen
    assert earlier["plan_now"] == "basic"
    assert earlier["tenure_days"] == pytest.approx(31.0)
    assert earlier["first_week_events"] == 1
    assert earlier["pay_success_all"] == 1.0
    assert earlier["active_share_30d"] == 1.0  # u2 signs up at C0: not known yet
    assert earlier["upgrades"] == 0


def test_every_engine_matches_duckdb(warehouse_url: str, golden: Any, tmp_path: Any) -> None:
    frame = _compute(warehouse_url, golden)
    reference = _compute(f"duckdb:///{tmp_path / 'reference.duckdb'}", golden)
    assert frame.schema == reference.schema
    for name in frame.column_names:
        got, want = frame.column(name).to_pylist(), reference.column(name).to_pylist()
        assert all(_same(g, w) for g, w in zip(got, want, strict=True)), name


def test_duplicate_cutoffs_and_empty_input(golden: Any) -> None:
    with connect("duckdb:///:memory:") as warehouse:
        golden.load(warehouse)
        twice = golden.cutoffs([("a1", golden.C), ("a1", golden.C)])
        frame = compute_features(warehouse, twice, golden.specs[:2])
        assert frame.column("events_all").to_pylist() == [8, 8]
        empty = compute_features(warehouse, golden.cutoffs([]), golden.specs)
        assert empty.num_rows == 0
        assert empty.column_names == ["account_id", "cutoff", *(s.name for s in golden.specs)]


_DAY0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@given(st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 3)), max_size=30))
def test_pairs_are_numbered_in_the_order_of_their_first_row(rows: list[tuple[str, int]]) -> None:
    table = pa.table(
        {
            "account_id": pa.array([a for a, _ in rows], pa.string()),
            "cutoff": pa.array(
                [_DAY0 + dt.timedelta(days=d) for _, d in rows], pa.timestamp("us", tz="UTC")
            ),
        }
    )
    distinct, position, running = _distinct_cutoffs(table)
    # The reference: a dict remembers each pair's first row, in order.
    first: dict[tuple[str, int], int] = {}
    for pair in rows:
        first.setdefault(pair, len(first))
    pairs = list(first)
    assert distinct.column("_row").to_pylist() == list(range(len(pairs)))
    assert distinct.column("account_id").to_pylist() == [a for a, _ in pairs]
    days = [(c - _DAY0).days for c in distinct.column("cutoff").to_pylist()]
    assert days == [d for _, d in pairs]
    numbers = list(range(len(rows))) if position is None else position.tolist()
    assert numbers == [first[pair] for pair in rows]
    assert (position is None) == (len(pairs) == len(rows))
    assert running == (len({a for a, _ in pairs}) < len(pairs))


def test_invalid_cutoffs_are_refused(golden: Any) -> None:
    with connect("duckdb:///:memory:") as warehouse:
        golden.load(warehouse)
        naive = pa.table({"account_id": ["a1"], "cutoff": pa.array([0], pa.timestamp("us"))})
        with pytest.raises(ConfigError, match="timezone-aware"):
            compute_features(warehouse, naive, golden.specs)
        with pytest.raises(ConfigError, match="missing cutoff"):
            compute_features(warehouse, pa.table({"account_id": ["a1"]}), golden.specs)
        twice = [*golden.specs[:1], *golden.specs[:1]]
        with pytest.raises(ConfigError, match="declared twice"):
            compute_features(warehouse, golden.cutoffs([("a1", golden.C)]), twice)


def test_one_query_per_source_table_and_event_family(golden: Any) -> None:
    queries = compile_features(golden.specs, "duckdb")
    families = ["events", "events_history", "events_all"]
    assert list(queries) == [
        "accounts",
        *families,
        "users_known",
        "users",
        "payments",
        "subscriptions",
    ]
    for family in families:
        events = queries[family].sql("duckdb")
        assert events.count("JOIN events") == 1
        assert "GROUP BY" in events
    # Windowed features read only the widest window; all-time ones read all.
    assert _events_join(queries["events"]).find(exp.GTE) is not None
    assert _events_join(queries["events_all"]).find(exp.GTE) is None


def _events_join(query: exp.Select) -> exp.Expr:
    """The join condition of a query's join with ``events``."""
    (join,) = [j for j in query.find_all(exp.Join) if j.this.name == "events"]
    return join.args["on"]


def test_all_time_features_run_over_intervals_between_cutoffs(golden: Any) -> None:
    running = compile_features(golden.specs, "duckdb", running=True)["events_history"]
    single = compile_features(golden.specs, "duckdb", running=False)["events_history"]
    assert "_previous_cutoff" in running.sql("duckdb")
    assert "OVER (PARTITION BY" in running.sql("duckdb")
    assert "_previous_cutoff" not in single.sql("duckdb")
    assert " OVER " not in single.sql("duckdb")


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "mysql", "spark"])
def test_every_dialect_renders_and_parses_back(golden: Any, dialect: str) -> None:
    for query in compile_features(golden.specs, dialect).values():
        sql = query.sql(dialect)
        assert sqlglot.parse_one(sql, read=dialect) is not None
        # Functions that exist on no engine, or truncate instants to dates.
        assert "TIME_TO_UNIX" not in sql
        assert "DATE_SUB(" not in sql
        assert "DATE_ADD(" not in sql


def test_spark_renders_epoch_arithmetic(golden: Any) -> None:
    sql = compile_features(golden.specs, "spark")["events"].sql("spark")
    assert "UNIX_MICROS(" in sql
    assert "GET_JSON_OBJECT(" in sql
    assert "INTERVAL '30' DAY" in sql


def test_spec_from_dict_round_trips() -> None:
    spec = FeatureSpec.from_dict(
        {"name": "logins_30d", "kind": "aggregate", "function": "count", "window_days": 30}
    )
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
