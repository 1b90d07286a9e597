"""The API served by a real uvicorn server on 127.0.0.1, in a thread, over a tracked store."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
import uvicorn

from churnwatch.api import create_app
from churnwatch.config import Settings
from churnwatch.store import Store, open_store
from churnwatch.tracker import track_snapshot

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
    """A running server: its base URL and store."""

    def __init__(self, url: str, store: Store) -> None:
        self.url = url
        self.store = store
        self.client = httpx.Client(base_url=url, timeout=10)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    store = open_store(f"sqlite:///{tmp_path / 'ops.sqlite'}")
    track_days(store)
    app = create_app(Settings(), store=store, slack_signing_secret=SIGNING_SECRET)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    running = Served(f"http://127.0.0.1:{port}", store)
    try:
        yield running
    finally:
        running.client.close()
        server.should_exit = True
        thread.join(timeout=20)
        store.close()
