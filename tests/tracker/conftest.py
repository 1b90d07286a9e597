"""An operational store on every engine: a SQLite file, Postgres, MariaDB/MySQL.

The Postgres and MySQL places are the private schemas and databases of the
root ``conftest`` (``postgres_url``, ``mysql_url``), dropped after each test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from churnwatch.store import Store, open_store

STORE_ENGINES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
]


@pytest.fixture(params=STORE_ENGINES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database, once per engine."""
    engine_name: str = request.param
    if engine_name == "sqlite":
        return f"sqlite:///{tmp_path / 'ops.sqlite'}"
    url: str = request.getfixturevalue(f"{engine_name}_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open, migrated store, closed afterwards."""
    with open_store(store_url) as opened:
        yield opened
