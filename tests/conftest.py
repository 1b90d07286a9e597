"""Shared fixtures: an isolated warehouse on every engine, per test.

``warehouse_url`` is parametrised over DuckDB, PostgreSQL and MariaDB/MySQL,
so a test that takes it runs once per engine and proves the same contract on
each. Every test gets a place of its own: a fresh DuckDB file, a fresh
Postgres schema (chosen through ``search_path``), a fresh MariaDB database.
Each is dropped afterwards.

The servers are found at the URLs below, or at ``CHURNWATCH_TEST_POSTGRES_URL``
and ``CHURNWATCH_TEST_MYSQL_URL``. A server that cannot be reached skips its
tests with the reason; it never fails them. Select or leave them out with the
markers: ``pytest -m "not postgres and not mysql"``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from churnwatch.store import Store, open_store
from churnwatch.warehouse import Warehouse, connect, normalize_url

POSTGRES_URL = os.environ.get(
    "CHURNWATCH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("CHURNWATCH_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")

_HOW_TO_START = {
    "postgres": "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) "
    "main start",
    "mysql": "start it with: start-stop-daemon --start --oknodo --background "
    "--exec /usr/sbin/mariadbd",
}
_unreachable: dict[str, str | None] = {}


def _admin_engine(url: str) -> sa.Engine:
    return sa.create_engine(normalize_url(url), connect_args={"connect_timeout": 5})


def _skip_unless_reachable(engine_name: str, url: str) -> None:
    """Skip the test (with the reason) when the server does not answer.

    Checked once per session: a server that is down stays down for the run.
    """
    if engine_name not in _unreachable:
        admin = _admin_engine(url)
        try:
            with admin.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
            _unreachable[engine_name] = None
        except sa.exc.OperationalError as exc:
            original = exc.orig or exc
            args = getattr(original, "args", ())
            # PyMySQL errors are (code, message); psycopg's are one message.
            text = args[1] if len(args) >= 2 and isinstance(args[1], str) else str(original)
            first_line = text.splitlines()[0]
            _unreachable[engine_name] = (
                f"{engine_name} server at {sa.make_url(url).render_as_string()} is not "
                f"reachable ({first_line}); {_HOW_TO_START[engine_name]}"
            )
        finally:
            admin.dispose()
    reason = _unreachable[engine_name]
    if reason is not None:
        pytest.skip(reason)


def _private_name() -> str:
    return f"cw_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A Postgres URL whose tables land in a fresh schema, dropped afterwards."""
    _skip_unless_reachable("postgres", POSTGRES_URL)
    schema = _private_name()
    admin = _admin_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
        # The schema goes first on the search path: unqualified names (every
        # name Churnwatch writes) create and find tables there.
        url = sa.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            # A connection the test left open would make the drop wait forever.
            connection.exec_driver_sql("SET lock_timeout = '10s'")
            connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """A MariaDB/MySQL URL on a fresh database, dropped afterwards.

    The database takes the server's default character set and collation: the
    warehouse must not depend on them.
    """
    _skip_unless_reachable("mysql", MYSQL_URL)
    database = _private_name()
    admin = _admin_engine(MYSQL_URL)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {database}")
        yield sa.make_url(MYSQL_URL).set(database=database).render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql("SET SESSION lock_wait_timeout = 10")
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {database}")
        admin.dispose()


ENGINES = [
    pytest.param("duckdb", id="duckdb"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
]


@pytest.fixture(params=ENGINES)
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty warehouse, once per engine."""
    engine_name: str = request.param
    if engine_name == "duckdb":
        return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    url: str = request.getfixturevalue(f"{engine_name}_url")
    return url


@pytest.fixture
def warehouse(warehouse_url: str) -> Iterator[Warehouse]:
    """An open, empty warehouse (no tables yet), closed afterwards."""
    with connect(warehouse_url) as opened:
        yield opened


# -- the operational store ---------------------------------------------------------
# The same three engines: a SQLite file, and the private Postgres schema and MySQL
# database above (dropped after each test).
STORE_ENGINES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
]


@pytest.fixture(params=STORE_ENGINES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty operational-store database, once per engine."""
    engine_name: str = request.param
    if engine_name == "sqlite":
        return f"sqlite:///{tmp_path / 'ops.sqlite'}"
    url: str = request.getfixturevalue(f"{engine_name}_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open, migrated operational store, closed afterwards."""
    with open_store(store_url) as opened:
        yield opened
