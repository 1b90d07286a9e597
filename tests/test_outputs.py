"""Result frames written as warehouse tables read back unchanged, on every engine."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest
from sqlglot import exp

from churnwatch.errors import WarehouseError
from churnwatch.outputs import PROTECTED_TABLES, write_table
from churnwatch.warehouse import Warehouse, connect

UTC = dt.UTC


def result_frame() -> pa.Table:
    """Every column type a label or feature frame holds, with nulls."""
    return pa.table(
        {
            "account_id": pa.array(["a1", "a2", "a3"], pa.string()),
            "cutoff": pa.array(
                [dt.datetime(2024, 3, 1, tzinfo=UTC), dt.datetime(2024, 3, 1, 12, 30, tzinfo=UTC),
                 dt.datetime(2024, 4, 1, tzinfo=UTC)],
                pa.timestamp("us", tz="UTC"),
            ),
            "events_30d": pa.array([5, 0, None], pa.int64()),
            "mrr_now": pa.array([100.5, None, 0.0], pa.float64()),
            "plan_now": pa.array(["pro", None, "basic"], pa.string()),
            "churned": pa.array([True, False, None], pa.bool_()),
        }
    )  # fmt: skip


def read_back(warehouse: Warehouse, name: str) -> pa.Table:
    query = exp.select("*").from_(name).order_by(exp.column("account_id", quoted=True))
    return warehouse.query(query)


def test_write_then_read_back_equals_the_frame(warehouse: Warehouse) -> None:
    frame = result_frame()
    write_table(warehouse, "features_march", frame)
    assert read_back(warehouse, "features_march").equals(frame)


def test_an_existing_table_is_replaced(warehouse: Warehouse) -> None:
    write_table(warehouse, "labels", result_frame())
    smaller = pa.table({"account_id": ["b1"], "churn_30d": pa.array([1], pa.int64())})
    write_table(warehouse, "labels", smaller)
    assert read_back(warehouse, "labels").equals(smaller)


def test_narrow_types_widen_to_the_table_types(warehouse: Warehouse) -> None:
    frame = pa.table(
        {"account_id": ["a1"], "n": pa.array([3], pa.int32()), "x": pa.array([0.5], pa.float32())}
    )
    write_table(warehouse, "narrow", frame)
    back = read_back(warehouse, "narrow")
    assert back.schema.field("n").type == pa.int64()
    assert back.to_pylist() == [{"account_id": "a1", "n": 3, "x": 0.5}]


@pytest.mark.parametrize("name", sorted(PROTECTED_TABLES))
def test_canonical_and_bookkeeping_tables_are_refused(name: str, tmp_path: Path) -> None:
    with connect(f"duckdb:///{tmp_path / 'w.duckdb'}") as warehouse:
        warehouse.ensure_schema()
        with pytest.raises(WarehouseError, match=f"cannot write to table '{name}'"):
            write_table(warehouse, name, pa.table({"account_id": ["a1"]}))
        assert warehouse.count(name) == 0


@pytest.mark.parametrize("name", ["Labels", "my labels", "a.b", "", "x" * 64, "1st"])
def test_names_that_are_not_plain_are_refused(name: str, tmp_path: Path) -> None:
    with (
        connect(f"duckdb:///{tmp_path / 'w.duckdb'}") as warehouse,
        pytest.raises(WarehouseError, match="invalid table name"),
    ):
        write_table(warehouse, name, pa.table({"account_id": ["a1"]}))


def test_a_column_of_no_table_type_is_refused(tmp_path: Path) -> None:
    frame = pa.table({"account_id": ["a1"], "tags": pa.array([["x"]], pa.list_(pa.string()))})
    with connect(f"duckdb:///{tmp_path / 'w.duckdb'}") as warehouse:
        with pytest.raises(WarehouseError, match="column 'tags' is list<item: string>"):
            write_table(warehouse, "tagged", frame)
        assert not warehouse.table_exists("tagged")


def test_a_failed_write_keeps_the_old_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with connect(f"duckdb:///{tmp_path / 'w.duckdb'}") as warehouse:
        write_table(warehouse, "labels", result_frame())

        def fail(table: str, rows: pa.Table) -> None:
            raise WarehouseError(f"append to {table} failed")

        monkeypatch.setattr(warehouse, "append", fail)
        with pytest.raises(WarehouseError, match="failed"):
            write_table(warehouse, "labels", pa.table({"account_id": ["b1"]}))
        assert read_back(warehouse, "labels").equals(result_frame())
        # The half-built table is gone too.
        tables = warehouse.query(
            exp.select("table_name").from_("information_schema.tables")
        ).column("table_name")
        assert tables.to_pylist() == ["labels"]
