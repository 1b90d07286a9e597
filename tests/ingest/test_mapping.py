"""Golden cases for every value transform of a column mapping, computed by hand."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot

from churnwatch.config import parse_settings
from churnwatch.errors import MappingError
from churnwatch.ingest import ingest
from churnwatch.warehouse import connect

NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
UTC = dt.UTC


def load(
    tmp_path: Path, files: dict[str, str], sources: list[dict[str, Any]], table: str
) -> list[dict[str, Any]]:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    settings = parse_settings({"sources": sources})
    with connect("duckdb:///:memory:") as wh:
        report = ingest(settings, wh, base_dir=tmp_path, now=NOW)
        assert not report.errors, report.errors[0].error
        rows = wh.query(sqlglot.parse_one(f"SELECT * FROM {table}")).to_pylist()
        quarantined = wh.query(
            sqlglot.parse_one("SELECT row_number, column_name, reason FROM quarantine")
        ).to_pylist()
    assert quarantined == [], quarantined
    return rows


def accounts_source(columns: dict[str, Any], path: str = "a.csv", **extra: Any) -> dict[str, Any]:
    return {
        "name": "a",
        "table": "accounts",
        "path": path,
        "columns": {"account_id": "id", **columns},
        **extra,
    }


def test_epoch_milliseconds_and_seconds(tmp_path: Path) -> None:
    rows = load(
        tmp_path,
        {"a.csv": "id,ms\nx,1700000000123\n"},
        [accounts_source({"created_at": {"source": "ms", "transform": "epoch_ms"}})],
        "accounts",
    )
    assert rows[0]["created_at"] == dt.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)


def test_naive_times_are_local_to_the_source_zone(tmp_path: Path) -> None:
    # 10:00 in Paris in January is 09:00 UTC; in July 08:00 UTC. An explicit
    # offset wins over the source zone.
    rows = load(
        tmp_path,
        {
            "a.csv": "id,t\nw,2024-01-15 10:00:00\ns,2024-07-15 10:00:00\n"
            "o,2024-07-15T10:00:00-05:00\n"
        },
        [accounts_source({"created_at": "t"}, timezone="Europe/Paris")],
        "accounts",
    )
    got = {r["account_id"]: r["created_at"] for r in rows}
    assert got == {
        "w": dt.datetime(2024, 1, 15, 9, tzinfo=UTC),
        "s": dt.datetime(2024, 7, 15, 8, tzinfo=UTC),
        "o": dt.datetime(2024, 7, 15, 15, tzinfo=UTC),
    }


def test_strptime_format_and_yes_no_booleans(tmp_path: Path) -> None:
    rows = load(
        tmp_path,
        {"a.csv": "id,d,churn\n00001,19970101,Yes\n00002,19970312,no\n00003,19970312,\n"},
        [accounts_source({"created_at": {"source": "d", "format": "%Y%m%d"}, "churned": "churn"})],
        "accounts",
    )
    got = {r["account_id"]: (r["created_at"], r["churned"]) for r in rows}
    assert got == {
        "00001": (dt.datetime(1997, 1, 1, tzinfo=UTC), True),
        "00002": (dt.datetime(1997, 3, 12, tzinfo=UTC), False),
        "00003": (dt.datetime(1997, 3, 12, tzinfo=UTC), None),
    }


def test_values_scale_and_custom_true_values(tmp_path: Path) -> None:
    rows = load(
        tmp_path,
        {"a.csv": "id,tier,cents,months,active\nx,B,1999,2,Oui\ny,P,500,0.5,Non\n"},
        [
            accounts_source(
                {
                    "plan": {"source": "tier", "values": {"B": "basic", "P": "pro"}},
                    "mrr": {"source": "cents", "scale": 0.01},
                    "tenure_days": {"source": "months", "scale": 30.4375},
                    "churned": {
                        "source": "active",
                        "transform": "bool",
                        "true_values": ["non"],
                        "false_values": ["oui"],
                    },
                }
            )
        ],
        "accounts",
    )
    got = {r["account_id"]: (r["plan"], r["mrr"], r["tenure_days"], r["churned"]) for r in rows}
    assert got == {"x": ("basic", 19.99, 60.875, False), "y": ("pro", 5.0, 15.21875, True)}


def test_non_finite_numbers_are_unparseable(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,m\nx,nan\ny,inf\nz,-Infinity\nok,2.5\n")
    settings = parse_settings({"sources": [accounts_source({"mrr": "m"})]})
    with connect("duckdb:///:memory:") as wh:
        ingest(settings, wh, base_dir=tmp_path, now=NOW)
        rejected = wh.query(
            sqlglot.parse_one("SELECT row_number, value, reason FROM quarantine ORDER BY 1")
        ).to_pylist()
        assert wh.count("accounts") == 1
    assert rejected == [
        {"row_number": 1, "value": "nan", "reason": "unparseable"},
        {"row_number": 2, "value": "inf", "reason": "unparseable"},
        {"row_number": 3, "value": "-Infinity", "reason": "unparseable"},
    ]


def test_seconds_between_expr_and_json_columns(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id\nu1\n")
    rows = load(
        tmp_path,
        {
            "s.csv": "user,start,end,pages,device\n"
            "u1,2024-01-01 10:00:00,2024-01-01 10:02:30,7,ios\n"
        },
        [
            accounts_source({}),
            {
                "name": "s",
                "table": "events",
                "path": "s.csv",
                "columns": {
                    "account_id": "user",
                    "event_time": "start",
                    "event_type": {"value": "session"},
                    "duration_s": {"seconds_between": ["start", "end"]},
                    "value": {"expr": "pages * 2 + 1"},
                    "properties": {"json_columns": "*"},
                },
            },
        ],
        "events",
    )
    (row,) = rows
    assert row["event_type"] == "session"
    assert row["duration_s"] == 150.0
    assert row["value"] == 15.0
    # '*' gathers the columns nothing else used.
    assert json.loads(row["properties"]) == {"device": "ios"}


def test_json_records_nested_paths_and_lookup(tmp_path: Path) -> None:
    rows = load(
        tmp_path,
        {
            "a.csv": "id\nacc1\n",
            "s.csv": "sub,acc,start\nS1,acc1,2024-01-01\n",
            "u.jsonl": '{"sub": "S1", "at": {"time": 1704103200}, "n": 3}\n',
        },
        [
            accounts_source({}),
            {
                "name": "s",
                "table": "subscriptions",
                "path": "s.csv",
                "columns": {"subscription_id": "sub", "account_id": "acc", "started_at": "start"},
            },
            {
                "name": "u",
                "table": "events",
                "path": "u.jsonl",
                "columns": {
                    "account_id": {
                        "source": "sub",
                        "lookup": {"table": "subscriptions", "on": "subscription_id"},
                    },
                    "event_time": {"source": "at.time", "transform": "epoch_s"},
                    "event_type": {"value": "usage"},
                    "value": "n",
                },
            },
        ],
        "events",
    )
    (row,) = rows
    assert (row["account_id"], row["event_time"], row["value"]) == (
        "acc1",
        dt.datetime(2024, 1, 1, 10, tzinfo=UTC),
        3.0,
    )


def test_typed_parquet_values_pass_through(tmp_path: Path) -> None:
    naive = pa.array([dt.datetime(2024, 1, 1, 12)], pa.timestamp("us"))
    pq.write_table(
        pa.table(
            {"id": pa.array([7]), "t": naive, "vip": [True], "mrr": pa.array([12], pa.int32())}
        ),
        tmp_path / "a.parquet",
    )
    rows = load(
        tmp_path,
        {},
        [
            accounts_source(
                {"created_at": "t", "churned": "vip", "mrr": "mrr"},
                path="a.parquet",
                timezone="America/New_York",
            )
        ],
        "accounts",
    )
    assert rows == [
        {
            **dict.fromkeys(rows[0]),
            "account_id": "7",
            "created_at": dt.datetime(2024, 1, 1, 17, tzinfo=UTC),
            "churned": True,
            "mrr": 12.0,
        }
    ]


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (
            {"created_at": "nope"},
            r"column 'nope' \(mapped to created_at\) is not in the data; it has: id, t",
        ),
        (
            {"created_at": {"expr": "(SELECT 1)"}},
            r"expr for created_at may use columns, operators and functions, not queries",
        ),
        ({"mrr": {"expr": "t +* 2"}}, r"expr for mrr is not SQL"),
        (
            {"mrr": {"expr": "no_such_function(t)"}},
            r"'a': its mapping cannot be applied to .*a\.csv",
        ),
    ],
)
def test_mapping_mistakes_name_the_column(
    tmp_path: Path, columns: dict[str, Any], message: str
) -> None:
    (tmp_path / "a.csv").write_text("id,t\nx,2024-01-01\n")
    settings = parse_settings({"sources": [accounts_source(columns)]})
    with connect("duckdb:///:memory:") as wh:
        report = ingest(settings, wh, base_dir=tmp_path, now=NOW)
        (failed,) = report.errors
        assert failed.error is not None
        with pytest.raises(MappingError, match=message):
            raise MappingError(failed.error)
        assert wh.count("accounts") == 0
