"""The warehouse contract, proven on every engine.

Each test runs on DuckDB, Postgres and MariaDB (see ``warehouse_url`` in
``conftest.py``): the same statements give the same answers, with the same
Arrow types, whatever the engine.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa
from sqlglot import exp

from churnwatch.errors import WarehouseError
from churnwatch.schema import TABLES, ColumnType
from churnwatch.warehouse import (
    SYSTEM_TABLES,
    Warehouse,
    arrow_schema,
    connect,
    key_index_columns,
    normalize_url,
    table_columns,
)

ALL_TYPES: list[tuple[str, ColumnType]] = [
    ("label", "string"),
    ("at", "timestamp"),
    ("day", "date"),
    ("amount", "double"),
    ("count", "bigint"),
    ("flag", "boolean"),
    ("payload", "json"),
]
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
ROWS = [
    {
        "label": "Zoë ✓ 日本語 — \"quoted\" 'single' %s back\\slash",
        "at": dt.datetime(2024, 3, 31, 2, 30, 15, 123456, tzinfo=dt.UTC),
        "day": dt.date(2024, 2, 29),
        "amount": 0.1 + 0.2,
        "count": 2**62,
        "flag": True,
        "payload": '{"plan": "pro", "seats": [1, 2], "note": "café"}',
    },
    {  # every column empty
        "label": None,
        "at": None,
        "day": None,
        "amount": None,
        "count": None,
        "flag": None,
        "payload": None,
    },
    {
        "label": "",
        # A Paris wall-clock time: the same instant must come back, in UTC.
        "at": dt.datetime(2024, 7, 1, 9, 0, 0, tzinfo=PARIS),
        "day": dt.date(1970, 1, 1),
        "amount": -1.0e300,
        "count": -(2**63) + 1,
        "flag": False,
        "payload": "[]",
    },
    {
        "label": "x" * 5000,
        "at": dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        "day": dt.date(9999, 12, 31),
        "amount": 1 / 3,
        "count": 0,
        "flag": None,
        "payload": '{"nested": {"deep": null}, "n": 1.5}',
    },
]


#: The Arrow type the warehouse promises for each abstract column type.
ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    "string": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "double": pa.float64(),
    "bigint": pa.int64(),
    "boolean": pa.bool_(),
    "json": pa.string(),
}


def _schema(columns: Sequence[tuple[str, ColumnType]]) -> pa.Schema:
    return pa.schema([(name, ARROW_TYPES[kind]) for name, kind in columns])


def _arrow_rows(
    columns: Sequence[tuple[str, ColumnType]], rows: list[dict[str, object]]
) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=_schema(columns))


def _select_all(table: str, order_by: str | None = None) -> exp.Select:
    query = exp.select(exp.Star()).from_(table)
    if order_by is not None:
        query = query.order_by(exp.column(order_by, quoted=True))
    return query


def _normalised(row: dict[str, object]) -> dict[str, object]:
    """A row as comparable values: instants in UTC, JSON parsed."""
    out = dict(row)
    if isinstance(out["at"], dt.datetime):
        out["at"] = out["at"].astimezone(dt.UTC)
    if isinstance(out["payload"], str):
        out["payload"] = json.loads(out["payload"])
    return out


# -- schema ------------------------------------------------------------------------


def test_ensure_schema_creates_every_table_with_its_types(warehouse: Warehouse) -> None:
    warehouse.ensure_schema()
    for name in (*TABLES, *SYSTEM_TABLES):
        assert warehouse.table_exists(name), name
        empty = warehouse.query(_select_all(name))
        assert empty.num_rows == 0
        # An empty result still names and types every column.
        assert empty.schema == arrow_schema(name), name
        assert empty.column_names == [c for c, _ in table_columns(name)]


def test_ensure_schema_is_idempotent(warehouse_url: str) -> None:
    with connect(warehouse_url) as first:
        first.ensure_schema()
        first.append(
            "accounts",
            pa.Table.from_pylist(
                [{"account_id": "A1"}], schema=pa.schema([("account_id", pa.string())])
            ),
        )
    with connect(warehouse_url) as second:
        second.ensure_schema()
        second.ensure_schema()
        assert second.count("accounts") == 1
        assert not second.table_exists("no_such_table")


# -- values ------------------------------------------------------------------------


def test_append_and_query_round_trip_every_type(warehouse_url: str) -> None:
    with connect(warehouse_url) as wh:
        wh.create_table("round_trip", ALL_TYPES)
        wh.append("round_trip", _arrow_rows(ALL_TYPES, ROWS))
    # A fresh connection: what was appended was committed.
    with connect(warehouse_url) as wh:
        result = wh.query(_select_all("round_trip"))
    assert result.schema == _schema(ALL_TYPES)
    got = sorted((_normalised(r) for r in result.to_pylist()), key=lambda r: str(r["label"]))
    expected = sorted((_normalised(r) for r in ROWS), key=lambda r: str(r["label"]))
    assert got == expected
    paris = next(r for r in result.to_pylist() if r["label"] == "")
    assert paris["at"] == dt.datetime(2024, 7, 1, 7, 0, 0, tzinfo=dt.UTC)
    assert paris["at"].utcoffset() == dt.timedelta(0)
    assert type(paris["flag"]) is bool


def test_empty_result_keeps_columns_and_types(warehouse: Warehouse) -> None:
    warehouse.create_table("round_trip", ALL_TYPES)
    result = warehouse.query(
        _select_all("round_trip").where(exp.column("count", quoted=True).eq(exp.Literal.number(1)))
    )
    assert result.num_rows == 0
    assert result.schema == _schema(ALL_TYPES)


def test_aggregates_come_back_as_numbers(warehouse: Warehouse) -> None:
    warehouse.create_table("round_trip", ALL_TYPES)
    warehouse.append(
        "round_trip",
        _arrow_rows(
            ALL_TYPES,
            [
                {"label": "a", "count": 2, "amount": 1.5, "flag": True},
                {"label": "b", "count": 3, "amount": 2.0, "flag": False},
            ],
        ),
    )
    count = exp.column("count", quoted=True)
    result = warehouse.query(
        exp.select(
            exp.alias_(exp.func("COUNT", exp.Star()), "n"),
            exp.alias_(exp.func("SUM", exp.column("amount", quoted=True)), "total"),
            exp.alias_(exp.func("MAX", count), "top"),
            # A sum of BIGINTs is HUGEINT on DuckDB, NUMERIC on Postgres and
            # DECIMAL on MySQL: an integer everywhere.
            exp.alias_(exp.func("SUM", count), "count_sum"),
            exp.alias_(exp.func("AVG", count), "count_mean"),
            exp.alias_(exp.Literal.number(7), "seven"),
            exp.alias_(exp.Literal.number("0.25"), "quarter"),
            exp.alias_(exp.cast(exp.Literal.string("2024-01-01 12:00:00"), "TIMESTAMP"), "noon"),
        ).from_("round_trip")
    )
    assert result.to_pylist() == [
        {
            "n": 2,
            "total": 3.5,
            "top": 3,
            "count_sum": 5,
            "count_mean": 2.5,
            "seven": 7,
            "quarter": 0.25,
            "noon": dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC),
        }
    ]
    assert result.schema == pa.schema(
        [
            ("n", pa.int64()),
            ("total", pa.float64()),
            ("top", pa.int64()),
            ("count_sum", pa.int64()),
            ("count_mean", pa.float64()),
            ("seven", pa.int64()),
            ("quarter", pa.float64()),
            ("noon", pa.timestamp("us", tz="UTC")),
        ]
    )


def test_strings_compare_exactly(warehouse: Warehouse) -> None:
    """Case and trailing blanks count on every engine (MySQL collations differ)."""
    warehouse.create_table("names", [("account_id", "string"), ("name", "string")])
    warehouse.append(
        "names",
        pa.table(
            {
                "account_id": ["a", "A", "a ", "é", "e"],
                "name": ["a", "A", "a ", "é", "e"],
            }
        ),
    )
    for column in ("account_id", "name"):
        for value in ("a", "A", "a ", "é", "e"):
            matches = warehouse.count(
                "names", exp.column(column, quoted=True).eq(exp.Literal.string(value))
            )
            assert matches == 1, (column, value)
    groups = warehouse.query(
        exp.select(exp.column("account_id", quoted=True))
        .from_("names")
        .group_by(exp.column("account_id", quoted=True))
    )
    assert groups.num_rows == 5


def test_execute_counts_changed_rows(warehouse: Warehouse) -> None:
    warehouse.create_table("t", [("k", "string"), ("v", "bigint")])
    warehouse.create_table("u", [("k", "string"), ("v", "bigint")])
    warehouse.append("t", pa.table({"k": ["a", "b", "c"], "v": pa.array([1, 1, 2], pa.int64())}))
    inserted = warehouse.execute(exp.insert(exp.select("k", "v").from_("t"), "u"))
    assert inserted == 3
    # Rows matched count, even when the new value equals the old one.
    updated = warehouse.execute(
        exp.update("u", {"v": exp.Literal.number(1)}, where=exp.column("v").eq(1))
    )
    assert updated == 2
    deleted = warehouse.execute(exp.delete("u", where=exp.column("k").neq(exp.Literal.string("a"))))
    assert deleted == 2
    assert warehouse.count("u") == 1


# -- transactions ------------------------------------------------------------------


class _AbortError(Exception):
    """Raised inside a transaction to abandon it."""


def _change_then_fail(wh: Warehouse) -> None:
    with wh.transaction():
        wh.append("scratch", pa.table({"k": ["inside"]}))
        wh.execute(exp.delete("scratch", where=exp.column("k").eq(exp.Literal.string("before"))))
        with wh.transaction():  # nested: the outer one decides
            wh.append("accounts", pa.table({"account_id": ["A9"]}))
        raise _AbortError


def test_rollback_leaves_nothing(warehouse_url: str) -> None:
    with connect(warehouse_url) as wh:
        wh.ensure_schema()
        wh.create_table("scratch", [("k", "string")])
        wh.append("scratch", pa.table({"k": ["before"]}))
        with pytest.raises(_AbortError):
            _change_then_fail(wh)
        assert wh.query(_select_all("scratch")).column("k").to_pylist() == ["before"]
        assert wh.count("accounts") == 0
    with connect(warehouse_url) as other:
        assert other.query(_select_all("scratch")).column("k").to_pylist() == ["before"]
        assert other.count("accounts") == 0


def test_commit_is_seen_by_another_connection(warehouse_url: str) -> None:
    with connect(warehouse_url) as wh:
        wh.create_table("scratch", [("k", "string")])
        with wh.transaction():
            wh.append("scratch", pa.table({"k": ["one"]}))
            wh.execute(exp.insert(exp.select(exp.Literal.string("two")), "scratch"))
    with connect(warehouse_url) as other:
        assert sorted(other.query(_select_all("scratch")).column("k").to_pylist()) == ["one", "two"]


def _append_then_fail(wh: Warehouse) -> None:
    with wh.transaction():
        wh.append("scratch", pa.table({"k": ["lost"]}))
        wh.execute(exp.delete("no_such_table"))


def test_failed_statement_is_a_warehouse_error_and_the_connection_recovers(
    warehouse: Warehouse,
) -> None:
    warehouse.create_table("scratch", [("k", "string")])
    with pytest.raises(WarehouseError, match="no_such_table"):
        warehouse.query(_select_all("no_such_table"))
    with pytest.raises(WarehouseError, match="no_such_table"):
        _append_then_fail(warehouse)
    warehouse.append("scratch", pa.table({"k": ["kept"]}))
    assert warehouse.query(_select_all("scratch")).column("k").to_pylist() == ["kept"]


def test_append_of_a_bad_value_is_a_warehouse_error(warehouse: Warehouse) -> None:
    warehouse.create_table("scratch", [("n", "bigint")])
    with pytest.raises(WarehouseError, match="scratch"):
        warehouse.append("scratch", pa.table({"missing_column": [1]}))
    assert warehouse.count("scratch") == 0


# -- connecting --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "oracle://scott:s3cret@db/orcl", "unsupported warehouse URL", id="unknown-engine"
        ),
        pytest.param("warehouse.duckdb", "unsupported warehouse URL", id="no-scheme"),
        pytest.param(
            "postgresql://churn:s3cret@127.0.0.1:1/test", "cannot connect", id="postgres-refused"
        ),
        pytest.param("mysql://churn:s3cret@127.0.0.1:1/test", "cannot connect", id="mysql-refused"),
        pytest.param(
            "postgresql://churn:s3cret@127.0.0.1:notaport/test",
            "invalid warehouse URL",
            id="bad-port",
        ),
        pytest.param("postgresql+nodriver://h/db", "no database driver", id="unknown-driver"),
    ],
)
def test_connect_errors_are_warehouse_errors(url: str, expected: str) -> None:
    with pytest.raises(WarehouseError, match=expected) as caught:
        connect(url)
    message = str(caught.value)
    assert "s3cret" not in message
    assert "Traceback" not in message
    # Raised from None: no driver exception chained behind it.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_connect_names_the_unreachable_server() -> None:
    with pytest.raises(WarehouseError) as caught:
        connect("postgresql://postgres@127.0.0.1:1/test")
    assert "127.0.0.1:1" in str(caught.value)
    assert "running" in str(caught.value)


@pytest.mark.mysql
def test_connect_to_a_missing_database(mysql_url: str) -> None:
    missing = mysql_url.rsplit("/", 1)[0] + "/cw_no_such_database"
    with pytest.raises(WarehouseError, match="cw_no_such_database"):
        connect(missing)


@pytest.mark.postgres
def test_connect_to_a_missing_postgres_database(postgres_url: str) -> None:
    missing = postgres_url.split("?")[0].rsplit("/", 1)[0] + "/cw_no_such_database"
    with pytest.raises(WarehouseError, match="cw_no_such_database"):
        connect(missing)


def test_duckdb_file_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(WarehouseError, match="cannot open the DuckDB warehouse"):
        connect(f"duckdb:///{blocker / 'warehouse.duckdb'}")


def test_relative_duckdb_path_is_taken_from_base_dir(tmp_path: Path) -> None:
    with connect("duckdb:///wh/churn.duckdb", base_dir=tmp_path) as wh:
        wh.ensure_schema()
    assert (tmp_path / "wh" / "churn.duckdb").is_file()


# -- engine specifics ------------------------------------------------------------------


@pytest.mark.parametrize(
    "engine_name",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ],
)
def test_server_engines_index_the_keys_loads_match_by(
    engine_name: str, request: pytest.FixtureRequest
) -> None:
    """Without these, checking a load against a loaded table is quadratic."""
    url: str = request.getfixturevalue(f"{engine_name}_url")
    with connect(url) as wh:
        wh.ensure_schema()
        wh.ensure_schema()  # indexes are not created twice
    engine = sa.create_engine(normalize_url(url))
    try:
        inspector = sa.inspect(engine)
        for name, table in TABLES.items():
            indexed = [i["column_names"] for i in inspector.get_indexes(name)]
            assert indexed == [key_index_columns(table)], name
    finally:
        engine.dispose()


@pytest.mark.mysql
def test_mysql_refuses_ddl_inside_a_transaction(mysql_url: str) -> None:
    """MySQL would commit the transaction before the DDL: atomicity would be lost."""
    with connect(mysql_url) as wh:
        wh.create_table("scratch", [("k", "string")])
        with pytest.raises(WarehouseError, match="inside a transaction"):
            _append_then_create(wh)
        assert wh.count("scratch") == 0
        assert not wh.table_exists("other")


def _append_then_create(wh: Warehouse) -> None:
    with wh.transaction():
        wh.append("scratch", pa.table({"k": ["lost"]}))
        wh.create_table("other", [("k", "string")])
