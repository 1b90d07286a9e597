"""Fixtures of the API tests: a served business (read model and model), stores, keys.

Every application is served by a real uvicorn server on 127.0.0.1 (port 0),
in a thread, and called over HTTP. ``business`` is built once per session
(see ``_business.py``). ``api`` serves the full application over a fresh
SQLite store with a read key and a write key. ``served`` serves it without a
read model over a tracked store, for the answer, Slack and KPI tests.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
import uvicorn
from fastapi import FastAPI

from churnwatch.api import create_api_key, create_app
from churnwatch.config import Settings
from churnwatch.store import Store, open_store
from churnwatch.tracker import track_snapshot

from ._business import Business, build_business

SIGNING_SECRET = "slack-signing-secret-for-tests"
NOW = dt.datetime(2024, 3, 5, 9, tzinfo=dt.UTC)


def track_days(store: Store) -> None:
    """Accounts a and b churn on 2024-03-02; a re-adopts on 2024-03-04."""
    days = [(1, [True, True]), (2, [False, False]), (4, [True, False])]
    for day, enabled in days:
        snapshot = pa.table(
            {
                "account_id": ["a", "b"],
                "is_enabled": enabled,
                "csm_id": ["c1", "c2"],
                "region": ["EU", "NA"],
                "revenue": [100.0, 40.0],
                "gmv": [1000.0, 400.0],
            }
        )
        track_snapshot(store, snapshot, date=dt.date(2024, 3, day), now=NOW)


class Served:
    """A running server: its base URL and store; the client sends a write key."""

    def __init__(self, url: str, store: Store, key: str) -> None:
        self.url = url
        self.store = store
        self.client = httpx.Client(base_url=url, timeout=10, headers={"X-API-Key": key})


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` on a free loopback port (its lifespan run); yield the base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    try:
        while not server.started:
            assert thread.is_alive(), "the server stopped while starting"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    store = open_store(f"sqlite:///{tmp_path / 'ops.sqlite'}")
    track_days(store)
    key, _ = create_api_key(store, name="tests", scope="write")
    app = create_app(Settings(), store=store, slack_signing_secret=SIGNING_SECRET)
    try:
        with serving(app) as url:
            running = Served(url, store, key)
            with running.client:
                yield running
    finally:
        store.close()


@pytest.fixture(scope="session")
def business(tmp_path_factory: pytest.TempPathFactory) -> Business:
    """A simulated business with a promoted churn model and its read model."""
    return build_business(tmp_path_factory.mktemp("api-business"))


@dataclass
class Api:
    """The application in process, its store and keys."""

    client: httpx.Client
    url: str
    store: Store
    business: Business
    read_key: str
    write_key: str

    @property
    def read(self) -> dict[str, str]:
        """Headers with the read key (as a bearer token)."""
        return {"Authorization": f"Bearer {self.read_key}"}

    @property
    def write(self) -> dict[str, str]:
        """Headers with the write key (in X-API-Key)."""
        return {"X-API-Key": self.write_key}


@pytest.fixture
def api(business: Business, tmp_path: Path) -> Iterator[Api]:
    store = open_store(f"sqlite:///{tmp_path / 'ops.sqlite'}")
    read_key, _ = create_api_key(store, name="reader", scope="read")
    write_key, _ = create_api_key(store, name="writer", scope="write")
    app = create_app(
        Settings(),
        store=store,
        views_root=business.views_root,
        registry=business.registry,
        slack_signing_secret=SIGNING_SECRET,
        warm=True,
    )
    try:
        with serving(app) as url, httpx.Client(base_url=url, timeout=60) as client:
            yield Api(client, url, store, business, read_key, write_key)
    finally:
        store.close()
