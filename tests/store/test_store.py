"""The operational store: migrations, versions, transactions and types on every engine."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from churnwatch.errors import StoreError
from churnwatch.store import (
    MIGRATIONS,
    OUTBOX,
    SCHEMA_MIGRATIONS,
    TRACKER_ACCOUNTS,
    Store,
    metadata,
    open_store,
)

PARIS = dt.timezone(dt.timedelta(hours=2))


def test_open_creates_every_table_and_records_the_version(store: Store) -> None:
    names = set(sa.inspect(store.engine).get_table_names())
    assert set(metadata.tables) <= names
    with store.engine.connect() as connection:
        rows = connection.execute(sa.select(SCHEMA_MIGRATIONS.c.version)).scalars().all()
    assert rows == list(range(1, len(MIGRATIONS) + 1))
    assert store.version() == len(MIGRATIONS)


def test_migrate_again_applies_nothing(store_url: str) -> None:
    with open_store(store_url) as first:
        assert first.migrate() == 0
    with open_store(store_url) as second:
        assert second.version() == len(MIGRATIONS)
        with second.engine.connect() as connection:
            count = connection.execute(sa.select(sa.func.count()).select_from(SCHEMA_MIGRATIONS))
            assert count.scalar() == len(MIGRATIONS)


def test_a_newer_store_is_refused_with_what_to_do(store: Store, store_url: str) -> None:
    with store.transaction() as connection:
        connection.execute(
            SCHEMA_MIGRATIONS.insert().values(
                version=len(MIGRATIONS) + 5, applied_at=dt.datetime.now(dt.UTC)
            )
        )
    with pytest.raises(StoreError, match=r"newer than this Churnwatch knows.*upgrade"):
        open_store(store_url)


def test_a_failed_transaction_leaves_nothing(store: Store) -> None:
    row = {
        "account_id": "a1",
        "product": "",
        "is_enabled": True,
        "state": "active",
        "first_seen": dt.date(2024, 1, 1),
        "last_seen": dt.date(2024, 1, 1),
        "updated_date": dt.date(2024, 1, 1),
    }

    def write_then_fail() -> None:
        with store.transaction() as connection:
            connection.execute(TRACKER_ACCOUNTS.insert(), [row])
            raise RuntimeError("killed halfway")

    with pytest.raises(RuntimeError):
        write_then_fail()
    with store.engine.connect() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(TRACKER_ACCOUNTS)).scalar()
            == 0
        )


def test_instants_come_back_as_aware_utc_with_microseconds(store: Store) -> None:
    when = dt.datetime(2024, 3, 1, 10, 30, 15, 123456, tzinfo=PARIS)
    with store.transaction() as connection:
        connection.execute(
            OUTBOX.insert().values(
                idempotency_key="e|first|file",
                created_at=when,
                channel="file",
                kind="churn",
                step="first",
                payload="{}",
                status="pending",
                attempts=0,
                next_attempt_at=when,
            )
        )
    with store.engine.connect() as connection:
        got = connection.execute(sa.select(OUTBOX.c.next_attempt_at)).scalar_one()
    assert got == when
    assert got.tzinfo == dt.UTC


def test_a_naive_instant_is_refused(store: Store) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), store.transaction() as c:
        c.execute(SCHEMA_MIGRATIONS.insert().values(version=99, applied_at=dt.datetime(2024, 1, 1)))


def test_account_ids_differing_only_in_case_are_two_accounts(store: Store) -> None:
    rows = [
        {
            "account_id": account_id,
            "product": "",
            "is_enabled": True,
            "state": "active",
            "first_seen": dt.date(2024, 1, 1),
            "last_seen": dt.date(2024, 1, 1),
            "updated_date": dt.date(2024, 1, 1),
        }
        for account_id in ("A1", "a1", "a1 ")
    ]
    with store.transaction() as connection:
        connection.execute(TRACKER_ACCOUNTS.insert(), rows)
    with store.engine.connect() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(TRACKER_ACCOUNTS)).scalar()
            == 3
        )


def test_idempotency_key_is_unique(store: Store) -> None:
    values = {
        "idempotency_key": "e|first|file",
        "created_at": dt.datetime.now(dt.UTC),
        "channel": "file",
        "kind": "churn",
        "step": "first",
        "payload": "{}",
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": dt.datetime.now(dt.UTC),
    }
    with store.transaction() as connection:
        connection.execute(OUTBOX.insert().values(values))
    with pytest.raises(sa.exc.IntegrityError), store.transaction() as connection:
        connection.execute(OUTBOX.insert().values(values))


def test_sqlite_store_is_in_wal_mode_and_relative_to_the_project(tmp_path: Path) -> None:
    with open_store("sqlite:///ops.sqlite", base_dir=tmp_path) as store:
        assert store.dialect == "sqlite"
    path = tmp_path / "ops.sqlite"
    assert path.exists()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_writers_queue_instead_of_failing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ops.sqlite'}"
    with open_store(url) as first, open_store(url) as second:
        started, done = threading.Event(), threading.Event()
        failures: list[BaseException] = []

        def write_later() -> None:
            started.wait()
            try:
                with second.transaction() as connection:
                    connection.execute(
                        SCHEMA_MIGRATIONS.insert().values(
                            version=200, applied_at=dt.datetime.now(dt.UTC)
                        )
                    )
            except BaseException as exc:  # reported below
                failures.append(exc)
            done.set()

        thread = threading.Thread(target=write_later)
        thread.start()
        with first.transaction() as connection:
            connection.execute(
                SCHEMA_MIGRATIONS.insert().values(version=100, applied_at=dt.datetime.now(dt.UTC))
            )
            started.set()
            # The second writer waits for this transaction's lock.
            assert not done.wait(0.3)
        thread.join(10)
        assert not failures
        with first.engine.connect() as connection:
            versions = connection.execute(sa.select(SCHEMA_MIGRATIONS.c.version)).scalars().all()
        assert {100, 200} <= set(versions)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("duckdb:///x.duckdb", "cannot live in 'duckdb'"),
        ("not a url", "invalid store URL"),
        ("postgresql://postgres@127.0.0.1:1/nothing", "cannot open the operational store"),
    ],
)
def test_bad_urls_get_a_clear_error(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        open_store(url)
