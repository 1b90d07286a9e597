"""The Spark warehouse: the contract in local mode, and labels equal to DuckDB's.

One Spark session serves the whole module (starting one takes seconds); each
test works in a database of its own in a SQL session of its own, dropped
afterwards. The label tests are differential: the same rows in Spark and in
an embedded DuckDB give the same label frame, the same counts.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import math
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pytest
from sqlglot import exp

pytest.importorskip(
    "pyspark",
    reason="the Spark warehouse needs PySpark: pip install -e '.[dev,spark]' (and Java 17+)",
)

from churnwatch.errors import WarehouseError
from churnwatch.features import compute_features
from churnwatch.labels import CutoffSchedule, LabelSpec, make_labels
from churnwatch.schema import TABLES
from churnwatch.warehouse import (
    SYSTEM_TABLES,
    SparkWarehouse,
    Warehouse,
    arrow_schema,
    connect,
    table_columns,
)


def _sibling(name: str, relative: str) -> ModuleType:
    """A test module beside this one, for its data-building helpers."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / relative)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


contract = _sibling("_spark_contract_cases", "test_warehouse.py")
golden = _sibling("_spark_golden_cases", "labels/test_golden.py")
day = golden.day


@pytest.fixture(scope="module")
def spark_owner() -> Iterator[SparkWarehouse]:
    """The warehouse that starts (and at the end stops) the module's Spark session."""
    if shutil.which("java") is None and "JAVA_HOME" not in os.environ:
        pytest.skip("Spark needs Java 17 or later: install a JDK (apt-get install openjdk-17-jre)")
    # One shuffle partition: the test data is a few rows.
    owner = SparkWarehouse(shuffle_partitions_count=1)
    yield owner
    owner.close()


@pytest.fixture
def wh(spark_owner: SparkWarehouse) -> Iterator[SparkWarehouse]:
    """An empty Spark warehouse in a database of its own, dropped afterwards."""
    database = f"cw_test_{uuid.uuid4().hex[:12]}"
    warehouse = SparkWarehouse(session=spark_owner.session, database=database)
    try:
        yield warehouse
    finally:
        warehouse.close()
        spark_owner.session.sql(f"DROP DATABASE IF EXISTS {database} CASCADE")


def _select_all(table: str) -> exp.Select:
    return exp.select(exp.Star()).from_(table)


# -- the contract --------------------------------------------------------------------------


def test_ensure_schema_creates_every_table_with_its_types(wh: SparkWarehouse) -> None:
    wh.ensure_schema()
    wh.ensure_schema()  # idempotent
    for name in (*TABLES, *SYSTEM_TABLES):
        assert wh.table_exists(name), name
        empty = wh.query(_select_all(name))
        assert empty.num_rows == 0
        assert empty.schema == arrow_schema(name), name
        assert empty.column_names == [c for c, _ in table_columns(name)]
    assert not wh.table_exists("no_such_table")


def test_append_and_query_round_trip_every_type(wh: SparkWarehouse) -> None:
    columns = contract.ALL_TYPES
    wh.create_table("round_trip", columns)
    wh.append("round_trip", contract._arrow_rows(columns, contract.ROWS))
    result = wh.query(_select_all("round_trip"))
    assert result.schema == contract._schema(columns)
    got = sorted(
        (contract._normalised(r) for r in result.to_pylist()), key=lambda r: str(r["label"])
    )
    expected = sorted(
        (contract._normalised(r) for r in contract.ROWS), key=lambda r: str(r["label"])
    )
    assert got == expected
    paris = next(r for r in result.to_pylist() if r["label"] == "")
    # 09:00 in Paris (summer) is the instant 07:00 UTC.
    assert paris["at"] == dt.datetime(2024, 7, 1, 7, 0, 0, tzinfo=dt.UTC)
    assert paris["at"].utcoffset() == dt.timedelta(0)
    assert type(paris["flag"]) is bool
    assert wh.count("round_trip") == 4
    assert wh.count("round_trip", exp.column("flag", quoted=True).eq(exp.true())) == 1


def test_append_fills_missing_columns_and_types_them(wh: SparkWarehouse) -> None:
    wh.ensure_schema()
    golden.accounts(wh, {"A1": day(1, 1), "A2": None})
    rows = wh.query(_select_all("accounts").order_by("account_id")).to_pylist()
    assert [(r["account_id"], r["created_at"], r["mrr"]) for r in rows] == [
        ("A1", day(1, 1), None),
        ("A2", None, None),
    ]


def test_aggregates_come_back_as_numbers(wh: SparkWarehouse) -> None:
    contract.test_aggregates_come_back_as_numbers(wh)


def test_strings_compare_exactly(wh: SparkWarehouse) -> None:
    contract.test_strings_compare_exactly(wh)


def test_temporary_tables_and_drop_table(wh: SparkWarehouse) -> None:
    wh.create_table("scratch", [("k", "string")], temporary=True)
    wh.append("scratch", pa.table({"k": ["a"]}))
    wh.append("scratch", pa.table({"k": ["b"]}))
    assert sorted(wh.query(_select_all("scratch")).column("k").to_pylist()) == ["a", "b"]
    assert not wh.table_exists("scratch")  # temporary: not a table of the database
    wh.drop_table("scratch")
    with pytest.raises(WarehouseError, match="scratch"):
        wh.query(_select_all("scratch"))
    wh.create_table("scratch", [("k", "string")], temporary=True)  # afresh, empty
    assert wh.count("scratch") == 0
    wh.create_table("kept", [("k", "string")])
    assert wh.table_exists("kept")
    wh.drop_table("kept")
    wh.drop_table("kept")  # dropping what is gone is no error
    assert not wh.table_exists("kept")


def test_errors_are_one_line_warehouse_errors(wh: SparkWarehouse) -> None:
    wh.create_table("scratch", [("k", "string")])
    with pytest.raises(WarehouseError, match="no_such_table") as caught:
        wh.query(_select_all("no_such_table"))
    first_line = str(caught.value).splitlines()[0]
    assert first_line.startswith("spark warehouse: ")
    assert "Traceback" not in str(caught.value)
    assert caught.value.__suppress_context__
    with pytest.raises(WarehouseError, match="spark warehouse"):
        wh.query(exp.select(exp.func("NO_SUCH_FUNCTION", exp.Literal.number(1))))
    with pytest.raises(WarehouseError, match="scratch"):
        wh.append("scratch", pa.table({"missing_column": [1]}))
    with pytest.raises(WarehouseError, match="UPDATE is not supported"):
        wh.execute(exp.update("scratch", {"k": exp.Literal.string("x")}))
    with pytest.raises(WarehouseError, match="DELETE is not supported"):
        wh.execute(exp.delete("scratch"))
    # The warehouse still works afterwards.
    assert wh.execute(exp.insert(exp.select(exp.Literal.string("one")), "scratch")) == -1
    with wh.transaction():  # accepted, but no transaction (Spark has none)
        wh.append("scratch", pa.table({"k": ["two"]}))
    assert sorted(wh.query(_select_all("scratch")).column("k").to_pylist()) == ["one", "two"]


def test_connect_routes_spark_urls(spark_owner: SparkWarehouse) -> None:
    # One Spark session per process: a second one is refused, with what to do.
    with pytest.raises(WarehouseError, match="already running"):
        connect("spark://local")
    with pytest.raises(WarehouseError, match="unsupported warehouse URL"):
        connect("spark://cluster-host:7077")


@pytest.mark.slow
def test_tables_in_a_folder_outlive_the_session(tmp_path: Path) -> None:
    """``spark:///DIR`` keeps tables and catalog: a new process finds them.

    Run in a child process: this process's Spark session belongs to the module.
    """
    script = textwrap.dedent(
        """
        import sys
        import pyarrow as pa
        from churnwatch.warehouse import connect

        with connect(sys.argv[1]) as wh:
            wh.create_table("kept", [("k", "string")])
            wh.append("kept", pa.table({"k": ["A1", "A2"]}))
        with connect(sys.argv[1]) as wh:
            print(wh.count("kept"), wh.table_exists("kept"))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, f"spark:///{tmp_path / 'spark'}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["2", "True"]
    assert (tmp_path / "spark" / "tables" / "kept").is_dir()


# -- labels: Spark answers exactly as DuckDB ---------------------------------------------------


def _payments(wh: Warehouse) -> None:
    golden.accounts(wh, {"payer": day(1, 1), "nothing": day(1, 1)})
    rows = [
        (day(2, 27), 100.0, "succeeded"),
        (day(3, 1), 10.5, "succeeded"),
        (day(3, 3), 99.0, "failed"),
        (day(3, 12, hour=13), 4.5, "succeeded"),
        (day(3, 15), 1.0, "succeeded"),
    ]
    golden.load(
        wh,
        "payments",
        [{"account_id": "payer", "paid_at": t, "amount": a, "status": s} for t, a, s in rows],
    )


def _snapshots(wh: Warehouse) -> None:
    golden.accounts(wh, {a: day(1, 1) for a in ("off", "off_late", "on", "was_off")})
    snaps = [
        ("off", day(1, 5), True),
        ("on", day(1, 5), True),
        ("off", day(2, 28), True),
        ("off", day(3, 10), False),
        ("off_late", day(2, 28), True),
        ("off_late", day(3, 20), False),
        ("on", day(2, 28), True),
        ("on", day(3, 10), True),
        ("was_off", day(2, 20), True),
        ("was_off", day(2, 28), False),
    ]
    golden.load(
        wh,
        "adoption_snapshots",
        [
            {"snapshot_date": t.date(), "account_id": a, "product": "pay", "is_enabled": on}
            for a, t, on in snaps
        ],
    )


def _trials(wh: Warehouse) -> None:
    golden.accounts(wh, {a: day(1, 1) for a in ("trial", "never", "paying", "later")})
    rows = [
        ("trial", day(1, 1), day(2, 15), 0.0),
        ("trial", day(3, 10, hour=9), None, 10.0),
        ("never", day(1, 1), None, 0.0),
        ("paying", day(1, 5), None, 10.0),
        ("later", day(1, 1), day(4, 15), 0.0),
        ("later", day(4, 15), None, 10.0),
    ]
    golden.load(
        wh,
        "subscriptions",
        [{"account_id": a, "started_at": s, "ended_at": e, "mrr": m} for a, s, e, m in rows],
    )


CASES = [
    pytest.param(
        golden.subscriptions,
        [
            LabelSpec("subscription", horizon_days=(14, 30), grace_days=7),
            LabelSpec("subscription", horizon_days=(14, 30), lead_days=3),
        ],
        id="subscriptions",
    ),
    pytest.param(
        _trials, [LabelSpec("conversion", horizon_days=(30,), lead_days=7)], id="conversion"
    ),
    pytest.param(
        golden.events,
        [
            LabelSpec("inactivity", horizon_days=(7, 14), inactivity_days=14),
            LabelSpec("activity", horizon_days=(7,), event_types=("login",)),
        ],
        id="events",
    ),
    pytest.param(
        _payments, [LabelSpec("revenue", horizon_days=(7, 14), lead_days=1)], id="payments"
    ),
    pytest.param(
        _snapshots,
        [LabelSpec("adoption", horizon_days=(14, 30)), LabelSpec("adoption", product="pay")],
        id="adoption",
    ),
]


@pytest.mark.parametrize(("build", "specs"), CASES)
def test_labels_equal_duckdb(
    wh: SparkWarehouse, tmp_path: Path, build: Callable[[Warehouse], None], specs: list[LabelSpec]
) -> None:
    runs = [
        (CutoffSchedule.every("2024-02-01", "2024-04-01", weeks=2), None),  # end inferred
        (CutoffSchedule.after_signup(days=7), "2024-12-31"),
    ]
    wh.ensure_schema()
    with connect(f"duckdb:///{tmp_path / 'reference.duckdb'}") as reference:
        reference.ensure_schema()
        for target in (wh, reference):
            build(target)
        for spec in specs:
            examples = 0
            for schedule, end in runs:
                ours = make_labels(wh, spec, schedule, observation_end=end)
                expected = make_labels(reference, spec, schedule, observation_end=end)
                assert ours.frame.equals(expected.frame), (spec, schedule)
                assert ours.counts == expected.counts, (spec, schedule)
                assert ours.observation_end == expected.observation_end
                assert (ours.data_start, ours.data_end) == (expected.data_start, expected.data_end)
                examples += ours.frame.num_rows
            assert examples > 0, spec


features_golden = _sibling("_spark_feature_cases", "features/conftest.py").Golden()


def _close(left: object, right: object) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-9)
    return left == right


def test_features_equal_duckdb_and_the_golden_values(wh: SparkWarehouse, tmp_path: Path) -> None:
    # Every feature kind of tests/features, hand-computed there: Spark must
    # give the same frame as DuckDB, and both the values worked out by hand.
    g = features_golden
    cutoffs = g.cutoffs([("a1", g.C), ("a2", g.C), ("a3", g.C), ("a1", g.C0)])
    wh.ensure_schema()
    g.load(wh)
    ours = compute_features(wh, cutoffs, g.specs)
    with connect(f"duckdb:///{tmp_path / 'reference.duckdb'}") as reference:
        reference.ensure_schema()
        g.load(reference)
        expected = compute_features(reference, cutoffs, g.specs)
    assert ours.schema == expected.schema
    for name in ours.column_names:
        got, want = ours.column(name).to_pylist(), expected.column(name).to_pylist()
        assert all(_close(a, b) for a, b in zip(got, want, strict=True)), name
    for spec in g.specs:
        got = ours.column(spec.name).to_pylist()[:3]
        assert all(_close(a, b) for a, b in zip(got, g.expected[spec.name], strict=True)), spec.name
