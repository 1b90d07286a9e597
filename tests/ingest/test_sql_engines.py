"""Ingestion through real engines: DuckDB, Postgres and MariaDB agree.

Differential tests: the same tiny sources, with the same bad rows, are
ingested into a warehouse on each engine, and the canonical tables and the
quarantine must come out identical. Database sources (SQLite, Postgres,
MariaDB tables and queries) are read into DuckDB with exact counts and values.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql
from sqlglot import exp

from churnwatch.config import Settings, parse_settings
from churnwatch.errors import SourceError, StrictLoadError
from churnwatch.ingest import IngestReport, ingest
from churnwatch.schema import TABLES
from churnwatch.warehouse import QUARANTINE_TABLE, Warehouse, connect, normalize_url

NOW = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)

ACCOUNTS_CSV = """\
account_id,signup,plan,country,mrr,company,churned,vip
A1,2024-01-05T10:00:00Z,basic,FR,10.5,Zoë & Co,no,yes
A2,2024-01-06 09:30:00,pro,US,99,Beta,no,no
A3,not-a-date,basic,FR,5,Gamma,yes,no
A4,2024-02-01T00:00:00+02:00,pro,JP,-3,Delta,no,no
A5,2030-01-01T00:00:00Z,basic,FR,1,Future,no,no
A1,2024-01-05T10:00:00Z,basic,FR,10.5,Second A1,no,no
a1,2024-01-07T00:00:00Z,basic,FR,1,Lower-case a1,no,no
"""

SUBSCRIPTIONS_CSV = """\
subscription_id,account_id,started_at,ended_at,plan,mrr,status
S1,A1,2024-01-05,2024-03-05,basic,10.5,canceled
S2,A2,2024-01-06,,pro,99,active
S3,A1,2024-03-10,2024-03-01,basic,10.5,active
S4,ZZ,2024-01-01,,basic,1,active
S5,a1,2024-01-07,,basic,1,active
"""

EVENTS_CSV = """\
event_id,account_id,event_time,event_type,duration_s,user_id,device
E1,A1,2024-02-01T12:00:00Z,login,30,u1,ios
E2,A1,2024-02-01T12:05:00.123456Z,session,125.5,u1,web
E3,A2,2024-02-02 08:00:00,login,,u9,
E3,A2,2024-02-02 08:00:00,login,,u9,
E4,A2,yesterday,login,,,web
E5,A1,2024-02-03T00:00:00Z,session,-5,u1,ios
E6,NOPE,2024-02-03T00:00:00Z,login,,,web
E7,A2,2031-01-01T00:00:00Z,login,,,web
E8,a1,2024-02-04T23:59:59+05:30,logout,,u2,android
"""

#: What each bad row must produce: (source, row_number, column_name, reason).
EXPECTED_QUARANTINE = [
    ("accounts", 3, "created_at", "unparseable"),
    ("accounts", 4, "mrr", "negative"),
    ("accounts", 5, "created_at", "future"),
    ("accounts", 6, "account_id", "duplicate_in_load"),
    (
        "events",
        4,
        "account_id,event_time,event_type,user_id,duration_s,event_id",
        "duplicate_in_load",
    ),
    ("events", 5, "event_time", "unparseable"),
    ("events", 6, "duration_s", "negative"),
    ("events", 7, "account_id", "unknown_account"),
    ("events", 8, "event_time", "future"),
    ("subscriptions", 3, "ended_at", "end_before_start"),
    ("subscriptions", 4, "account_id", "unknown_account"),
]


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _csv_settings(folder: Path) -> Settings:
    _write(folder, "accounts.csv", ACCOUNTS_CSV)
    _write(folder, "subscriptions.csv", SUBSCRIPTIONS_CSV)
    _write(folder, "events.csv", EVENTS_CSV)
    return parse_settings(
        {
            "sources": [
                {
                    "name": "accounts",
                    "table": "accounts",
                    "path": "accounts.csv",
                    "columns": {
                        "account_id": "account_id",
                        "created_at": "signup",
                        "plan": "plan",
                        "region": "country",
                        "mrr": "mrr",
                        "name": "company",
                        "churned": {"source": "churned", "transform": "bool"},
                        "attributes": {"json_columns": ["vip"]},
                    },
                },
                {
                    "name": "subscriptions",
                    "table": "subscriptions",
                    "path": "subscriptions.csv",
                    "columns": {
                        "subscription_id": "subscription_id",
                        "account_id": "account_id",
                        "started_at": "started_at",
                        "ended_at": "ended_at",
                        "plan": "plan",
                        "mrr": "mrr",
                        "status": "status",
                    },
                },
                {
                    "name": "events",
                    "table": "events",
                    "path": "events.csv",
                    "columns": {
                        "event_id": "event_id",
                        "account_id": "account_id",
                        "event_time": "event_time",
                        "event_type": "event_type",
                        "duration_s": "duration_s",
                        "user_id": "user_id",
                        "properties": {"json_columns": ["device"]},
                    },
                },
            ]
        }
    )


def _frame(wh: Warehouse, table: str) -> pd.DataFrame:
    """A canonical table as a sorted frame, JSON parsed (engines spell it differently)."""
    frame = wh.query(exp.select(exp.Star()).from_(table)).to_pandas()
    for column in TABLES[table].columns:
        if column.type == "json":
            frame[column.name] = [
                None if pd.isna(v) else json.dumps(json.loads(v), sort_keys=True)
                for v in frame[column.name]
            ]
    order = list(TABLES[table].key)
    return frame.sort_values(order, na_position="first").reset_index(drop=True)


def _quarantine(wh: Warehouse) -> list[tuple[Any, ...]]:
    rows = wh.query(
        exp.select(
            exp.column("source"),
            exp.column("row_number"),
            exp.column("column_name"),
            exp.column("reason"),
            exp.column("value"),
            exp.column("message"),
        ).from_(QUARANTINE_TABLE)
    ).to_pylist()
    return sorted(tuple(r.values()) for r in rows)


def _snapshot(wh: Warehouse) -> dict[str, Any]:
    return {
        "tables": {name: _frame(wh, name) for name in ("accounts", "subscriptions", "events")},
        "quarantine": _quarantine(wh),
    }


def _assert_same(left: dict[str, Any], right: dict[str, Any]) -> None:
    for name, frame in left["tables"].items():
        pd.testing.assert_frame_equal(frame, right["tables"][name], check_exact=True, obj=name)
    assert left["quarantine"] == right["quarantine"]


def _load(settings: Settings, url: str, folder: Path, **options: Any) -> IngestReport:
    with connect(url) as wh:
        return ingest(settings, wh, base_dir=folder, now=NOW, **options)


def _counts(report: IngestReport) -> dict[str, tuple[int, int, int, int]]:
    return {f.source: (f.rows_read, f.inserted, f.updated, f.quarantined) for f in report.files}


@pytest.fixture
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The CSV sources ingested into an in-memory DuckDB: what every engine must match."""
    folder = tmp_path_factory.mktemp("reference")
    settings = _csv_settings(folder)
    with connect("duckdb:///:memory:") as wh:
        ingest(settings, wh, base_dir=folder, now=NOW)
        return _snapshot(wh)


# -- (a) the same CSV sources, every engine ----------------------------------------------


def test_csv_sources_give_identical_tables_and_quarantine(
    warehouse_url: str, tmp_path: Path, reference: dict[str, Any]
) -> None:
    settings = _csv_settings(tmp_path)
    report = _load(settings, warehouse_url, tmp_path)
    assert not report.errors
    assert _counts(report) == {
        "accounts": (7, 3, 0, 4),
        "subscriptions": (5, 3, 0, 2),
        "events": (9, 4, 0, 5),
    }
    with connect(warehouse_url) as wh:
        snapshot = _snapshot(wh)
    _assert_same(reference, snapshot)
    got = sorted((s, n, c, r) for s, n, c, r, _value, _message in snapshot["quarantine"])
    assert got == EXPECTED_QUARANTINE


def test_csv_values_are_exact(warehouse_url: str, tmp_path: Path) -> None:
    settings = _csv_settings(tmp_path)
    _load(settings, warehouse_url, tmp_path)
    with connect(warehouse_url) as wh:
        accounts = {
            r["account_id"]: r
            for r in wh.query(exp.select(exp.Star()).from_("accounts")).to_pylist()
        }
        events = {
            r["event_id"]: r for r in wh.query(exp.select(exp.Star()).from_("events")).to_pylist()
        }
    assert sorted(accounts) == ["A1", "A2", "a1"]  # 'a1' is not 'A1', on every engine
    assert accounts["A1"]["name"] == "Zoë & Co"  # the first of two rows with one key stays
    assert accounts["A1"]["created_at"] == dt.datetime(2024, 1, 5, 10, tzinfo=dt.UTC)
    assert accounts["A1"]["churned"] is False
    assert accounts["A1"]["mrr"] == 10.5
    assert json.loads(accounts["A1"]["attributes"]) == {"vip": "yes"}
    assert events["E2"]["event_time"] == dt.datetime(2024, 2, 1, 12, 5, 0, 123456, tzinfo=dt.UTC)
    assert events["E2"]["duration_s"] == 125.5
    # An offset in the text is honoured: 23:59:59+05:30 is 18:29:59 UTC.
    assert events["E8"]["event_time"] == dt.datetime(2024, 2, 4, 18, 29, 59, tzinfo=dt.UTC)
    assert events["E3"]["user_id"] == "u9"
    assert events["E3"]["duration_s"] is None


def test_reingest_changes_nothing(warehouse_url: str, tmp_path: Path) -> None:
    settings = _csv_settings(tmp_path)
    _load(settings, warehouse_url, tmp_path)
    with connect(warehouse_url) as wh:
        before = _snapshot(wh)
    again = _load(settings, warehouse_url, tmp_path)
    assert all(f.skipped for f in again.files)
    with connect(warehouse_url) as wh:
        _assert_same(before, _snapshot(wh))
        assert wh.count("_loads") == 3
        # The staging tables are gone.
        assert not wh.table_exists("_cw_stage_events")
        assert not wh.table_exists("_cw_marks")


def test_reingest_of_copied_and_extended_files_adds_no_event_twice(
    warehouse_url: str, tmp_path: Path
) -> None:
    """A copy is recognised by its content; an extended copy by its rows' keys."""
    settings = _csv_settings(tmp_path)
    _load(settings, warehouse_url, tmp_path)
    with connect(warehouse_url) as wh:
        before = _snapshot(wh)["tables"]
    copy = tmp_path / "copy"
    copy.mkdir()
    copied = _csv_settings(copy)
    again = _load(copied, warehouse_url, copy)
    assert all(f.skipped for f in again.files)
    _write(copy, "events.csv", EVENTS_CSV + "E9,A2,2024-02-05T00:00:00Z,login,,,web\n")
    third = _load(copied, warehouse_url, copy, sources=["events"])
    (events,) = third.files
    # E1, E2, E3 and E8 are loaded already; E9 is new; the bad rows stay bad.
    assert (events.inserted, events.reasons["duplicate_loaded"]) == (1, 4)
    with connect(warehouse_url) as wh:
        after = _snapshot(wh)["tables"]
    pd.testing.assert_frame_equal(before["accounts"], after["accounts"])
    assert len(after["events"]) == len(before["events"]) + 1


def test_strict_load_loads_nothing(warehouse_url: str, tmp_path: Path) -> None:
    settings = _csv_settings(tmp_path)
    with pytest.raises(StrictLoadError, match="nothing was loaded") as caught:
        _load(settings, warehouse_url, tmp_path, strict=True)
    assert caught.value.problems
    with connect(warehouse_url) as wh:
        for table in ("accounts", "subscriptions", "events", QUARANTINE_TABLE, "_loads"):
            assert wh.count(table) == 0, table
        assert not wh.table_exists("_cw_stage_accounts")
    # Nothing was recorded as loaded: a non-strict run afterwards loads it all.
    report = _load(settings, warehouse_url, tmp_path)
    assert not any(f.skipped for f in report.files)


def test_strict_load_of_clean_files_loads_them(warehouse_url: str, tmp_path: Path) -> None:
    clean = (
        "\n".join(
            line
            for line in ACCOUNTS_CSV.splitlines()
            if not line.startswith(
                ("A3,", "A4,", "A5,", "A1,2024-01-05T10:00:00Z,basic,FR,10.5,Second")
            )
        )
        + "\n"
    )
    _write(tmp_path, "accounts.csv", clean)
    settings = parse_settings(
        {
            "sources": [
                {
                    "name": "accounts",
                    "table": "accounts",
                    "path": "accounts.csv",
                    "columns": {"account_id": "account_id", "created_at": "signup", "plan": "plan"},
                }
            ]
        }
    )
    with connect(warehouse_url) as wh:
        report = ingest(settings, wh, base_dir=tmp_path, now=NOW, strict=True)
        assert _counts(report) == {"accounts": (3, 3, 0, 0)}
        assert wh.count("accounts") == 3


# -- (c) look-ups and accounts created on the fly ------------------------------------------


USAGE_CSV = """\
usage_id,subscription,used_at,kind
U1,S1,2024-02-01T00:00:00Z,api_call
U2,S2,2024-02-02T00:00:00Z,api_call
U3,S404,2024-02-03T00:00:00Z,api_call
U4,S2,2024-02-04T00:00:00Z,export
"""

NEW_ACCOUNT_EVENTS_CSV = """\
account_id,event_time,event_type
N1,2024-03-02T00:00:00Z,login
N1,2024-03-01T00:00:00Z,login
N2,2024-03-05T00:00:00Z,login
A1,2024-03-06T00:00:00Z,login
"""


def test_lookup_and_created_accounts(warehouse_url: str, tmp_path: Path) -> None:
    settings = _csv_settings(tmp_path)
    _write(tmp_path, "usage.csv", USAGE_CSV)
    _write(tmp_path, "new_events.csv", NEW_ACCOUNT_EVENTS_CSV)
    more = parse_settings(
        {
            "sources": [
                {
                    "name": "usage",
                    "table": "events",
                    "path": "usage.csv",
                    "columns": {
                        "event_id": "usage_id",
                        "account_id": {
                            "source": "subscription",
                            "lookup": {"table": "subscriptions", "on": "subscription_id"},
                        },
                        "event_time": "used_at",
                        "event_type": "kind",
                    },
                },
                {
                    "name": "new_events",
                    "table": "events",
                    "path": "new_events.csv",
                    "unknown_account": "create",
                    "columns": {
                        "account_id": "account_id",
                        "event_time": "event_time",
                        "event_type": "event_type",
                    },
                },
            ]
        }
    )
    with connect(warehouse_url) as wh:
        ingest(settings, wh, base_dir=tmp_path, now=NOW)
        report = ingest(more, wh, base_dir=tmp_path, now=NOW)
        usage, created = report.files
        assert (usage.inserted, usage.quarantined, dict(usage.reasons)) == (
            3,
            1,
            {"lookup_failed": 1},
        )
        assert (created.inserted, created.accounts_created) == (4, 2)
        looked_up = wh.query(
            exp.select(exp.column("event_id"), exp.column("account_id"))
            .from_("events")
            .where(exp.column("event_id").like(exp.Literal.string("U%")))
        ).to_pylist()
        assert sorted((r["event_id"], r["account_id"]) for r in looked_up) == [
            ("U1", "A1"),
            ("U2", "A2"),
            ("U4", "A2"),
        ]
        problem = wh.query(
            exp.select(
                exp.column("row_number"),
                exp.column("column_name"),
                exp.column("value"),
                exp.column("message"),
            )
            .from_(QUARANTINE_TABLE)
            .where(exp.column("reason").eq(exp.Literal.string("lookup_failed")))
        ).to_pylist()
        assert problem == [
            {
                "row_number": 3,
                "column_name": "account_id",
                "value": "S404",
                "message": "account_id: no subscriptions row has subscription_id = 'S404'",
            }
        ]
        new = wh.query(
            exp.select(exp.column("account_id"), exp.column("created_at"))
            .from_("accounts")
            .where(exp.column("account_id").isin("N1", "N2"))
        ).to_pylist()
        # A created account starts at its first row.
        assert sorted((r["account_id"], r["created_at"]) for r in new) == [
            ("N1", dt.datetime(2024, 3, 1, tzinfo=dt.UTC)),
            ("N2", dt.datetime(2024, 3, 5, tzinfo=dt.UTC)),
        ]
        snapshot = _snapshot(wh)
    folder = tmp_path / "reference"
    folder.mkdir()
    for name in ("usage.csv", "new_events.csv"):
        (folder / name).write_text((tmp_path / name).read_text())
    with connect("duckdb:///:memory:") as reference:
        ingest(_csv_settings(folder), reference, base_dir=folder, now=NOW)
        ingest(more, reference, base_dir=folder, now=NOW)
        _assert_same(_snapshot(reference), snapshot)


# -- (d) mutable tables are revised -----------------------------------------------------


def test_later_export_revises_an_account(warehouse_url: str, tmp_path: Path) -> None:
    settings = parse_settings(
        {
            "sources": [
                {
                    "name": "accounts",
                    "table": "accounts",
                    "path": "accounts*.csv",
                    "columns": {"account_id": "account_id", "plan": "plan", "mrr": "mrr"},
                }
            ]
        }
    )
    _write(tmp_path, "accounts_1.csv", "account_id,plan,mrr\nA1,basic,10\nA2,pro,50\nA3,,\n")
    with connect(warehouse_url) as wh:
        first = ingest(settings, wh, base_dir=tmp_path, now=NOW)
        assert _counts(first) == {"accounts": (3, 3, 0, 0)}
        _write(tmp_path, "accounts_2.csv", "account_id,plan,mrr\nA2,enterprise,50\nA4,basic,5\n")
        second = ingest(settings, wh, base_dir=tmp_path, now=NOW)
        skipped, revised = second.files
        assert skipped.skipped
        assert (revised.inserted, revised.updated, revised.quarantined) == (1, 1, 0)
        plans = wh.query(
            exp.select(exp.column("account_id"), exp.column("plan"), exp.column("mrr")).from_(
                "accounts"
            )
        ).to_pylist()
    assert sorted((r["account_id"], r["plan"], r["mrr"]) for r in plans) == [
        ("A1", "basic", 10.0),
        ("A2", "enterprise", 50.0),
        ("A3", None, None),
        ("A4", "basic", 5.0),
    ]


# -- (b) database sources --------------------------------------------------------------------

SOURCE_ROWS = [
    {
        "id": "00001",
        "joined": dt.datetime(2024, 1, 1, 8, 0, 0),
        "tier": "gold",
        "spend": 12.5,
        "active": True,
        "visits": 3,
        "prefs": {"lang": "fr", "tags": ["a", "é"]},
    },
    {
        "id": "00002",
        "joined": dt.datetime(2024, 1, 2, 9, 30, 0, 250000),
        "tier": "Zoë",
        "spend": None,
        "active": False,
        "visits": None,
        "prefs": None,
    },
    {
        "id": "00003",
        "joined": None,
        "tier": None,
        "spend": 0.0,
        "active": None,
        "visits": 0,
        "prefs": {},
    },
]


def _source_table(metadata: sa.MetaData, name: str = "crm_customers") -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.String(20)),
        # MySQL keeps fractions of a second only when asked to.
        sa.Column("joined", sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")),
        sa.Column("tier", sa.String(50)),
        sa.Column("spend", sa.Numeric(10, 2)),
        sa.Column("active", sa.Boolean()),
        sa.Column("visits", sa.Integer()),
        # JSON (jsonb on Postgres), which drivers hand back parsed or as text.
        sa.Column(
            "prefs",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True), "postgresql"
            ),
        ),
    )


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
    ]
)
def source_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database holding the ``crm_customers`` source table."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'crm.sqlite'}"
    else:
        url = request.getfixturevalue(f"{request.param}_url")
    _create_source_table(url)
    return url


def _create_source_table(url: str) -> None:
    """Create ``crm_customers`` in the database at ``url`` and fill it."""
    engine = sa.create_engine(normalize_url(url))
    metadata = sa.MetaData()
    table = _source_table(metadata)
    with engine.begin() as connection:
        metadata.create_all(connection)
        connection.execute(table.insert(), SOURCE_ROWS)
    engine.dispose()


def _db_settings(url: str, **where: str) -> Settings:
    return parse_settings(
        {
            "sources": [
                {
                    "name": "crm",
                    "table": "accounts",
                    "url": url,
                    **where,
                    "columns": {
                        "account_id": "id",
                        "created_at": "joined",
                        "plan": "tier",
                        "mrr": "spend",
                        "churned": {"source": "active", "transform": "bool"},
                        "attributes": "prefs",
                    },
                }
            ]
        }
    )


def test_database_table_source(source_url: str, tmp_path: Path) -> None:
    with connect("duckdb:///:memory:") as wh:
        report = ingest(
            _db_settings(source_url, sql_table="crm_customers"), wh, base_dir=tmp_path, now=NOW
        )
        assert not report.errors, report.errors
        assert _counts(report) == {"crm": (3, 3, 0, 0)}
        rows = wh.query(exp.select(exp.Star()).from_("accounts")).to_pylist()
    by_id = {r["account_id"]: r for r in rows}
    assert sorted(by_id) == ["00001", "00002", "00003"]  # ids stay text, zeros kept
    assert by_id["00001"]["created_at"] == dt.datetime(2024, 1, 1, 8, tzinfo=dt.UTC)
    assert by_id["00002"]["created_at"] == dt.datetime(2024, 1, 2, 9, 30, 0, 250000, tzinfo=dt.UTC)
    assert by_id["00003"]["created_at"] is None
    assert (by_id["00001"]["plan"], by_id["00002"]["plan"], by_id["00003"]["plan"]) == (
        "gold",
        "Zoë",
        None,
    )
    assert (by_id["00001"]["mrr"], by_id["00002"]["mrr"], by_id["00003"]["mrr"]) == (
        12.5,
        None,
        0.0,
    )
    # 'active' is a boolean column in each database (TINYINT on MySQL, 0/1 on SQLite).
    assert (by_id["00001"]["churned"], by_id["00002"]["churned"], by_id["00003"]["churned"]) == (
        True,
        False,
        None,
    )
    assert json.loads(by_id["00001"]["attributes"]) == {"lang": "fr", "tags": ["a", "é"]}
    assert by_id["00002"]["attributes"] is None
    assert json.loads(by_id["00003"]["attributes"]) == {}


def test_database_query_source(source_url: str, tmp_path: Path) -> None:
    # Sent as written: '%' and ':tier' are no placeholders.
    query = (
        "SELECT id, joined, tier, spend, active, prefs FROM crm_customers "
        "WHERE visits > 0 AND tier LIKE 'g%' AND tier <> ':tier'"
    )
    with connect("duckdb:///:memory:") as wh:
        report = ingest(_db_settings(source_url, query=query), wh, base_dir=tmp_path, now=NOW)
        assert _counts(report) == {"crm": (1, 1, 0, 0)}
        (row,) = wh.query(exp.select(exp.Star()).from_("accounts")).to_pylist()
    assert (row["account_id"], row["plan"], row["mrr"]) == ("00001", "gold", 12.5)
    assert row["created_at"] == dt.datetime(2024, 1, 1, 8, tzinfo=dt.UTC)
    assert json.loads(row["attributes"]) == {"lang": "fr", "tags": ["a", "é"]}


def test_database_query_with_no_rows(source_url: str, tmp_path: Path) -> None:
    query = "SELECT id, joined, tier, spend, active, prefs FROM crm_customers WHERE 1 = 0"
    with connect("duckdb:///:memory:") as wh:
        report = ingest(_db_settings(source_url, query=query), wh, base_dir=tmp_path, now=NOW)
        assert _counts(report) == {"crm": (0, 0, 0, 0)}
        assert not report.errors


def test_missing_source_table_is_a_source_error(source_url: str, tmp_path: Path) -> None:
    settings = _db_settings(source_url, sql_table="no_such_table")
    with connect("duckdb:///:memory:") as wh:
        report = ingest(settings, wh, base_dir=tmp_path, now=NOW)
        (failed,) = report.errors
        assert failed.error is not None
        assert "no_such_table" in failed.error
        assert "Traceback" not in failed.error
        assert wh.count("accounts") == 0
        with pytest.raises(SourceError, match=r"has no table .no_such_table."):
            ingest(settings, wh, base_dir=tmp_path, now=NOW, strict=True)


def test_bad_source_query_is_a_source_error(source_url: str, tmp_path: Path) -> None:
    settings = _db_settings(source_url, query="SELEC id FROM crm_customers")
    with connect("duckdb:///:memory:") as wh:
        with pytest.raises(SourceError, match=r"crm.*the query failed") as caught:
            ingest(settings, wh, base_dir=tmp_path, now=NOW, strict=True)
        assert "\n" not in str(caught.value)


def test_unreachable_source_database_is_a_source_error(tmp_path: Path) -> None:
    settings = _db_settings("postgresql://crm:s3cret@127.0.0.1:1/crm", sql_table="t")
    with connect("duckdb:///:memory:") as wh:
        with pytest.raises(SourceError, match=r"crm.*cannot connect") as caught:
            ingest(settings, wh, base_dir=tmp_path, now=NOW, strict=True)
        assert "s3cret" not in str(caught.value)


@pytest.mark.postgres
@pytest.mark.mysql
def test_database_source_into_a_postgres_warehouse(
    postgres_url: str, mysql_url: str, tmp_path: Path
) -> None:
    """A MariaDB table loaded into a Postgres warehouse: the servers talk through Churnwatch."""
    _create_source_table(mysql_url)
    with connect(postgres_url) as wh:
        report = ingest(
            _db_settings(mysql_url, sql_table="crm_customers"), wh, base_dir=tmp_path, now=NOW
        )
        assert _counts(report) == {"crm": (3, 3, 0, 0)}
        churned = wh.query(
            exp.select(exp.column("account_id"), exp.column("churned")).from_("accounts")
        ).to_pylist()
    assert sorted((r["account_id"], r["churned"]) for r in churned) == [
        ("00001", True),
        ("00002", False),
        ("00003", None),
    ]
