"""The daily run: idempotent, one at a time, and whole after being killed anywhere.

The crash test runs the daily job over 24 days of simulated snapshots in a
forked subprocess and kills it with SIGKILL: three times at injected points
(the receiver kills the sender on its 2nd, 5th and 11th request, before
answering — the worst moment, a message delivered but not recorded), then
sixteen times after random delays; a last run finishes the work.
Notifications go to a real HTTP server started here, which records every
request with its ``Idempotency-Key`` — one delivery per key is what a
provider honouring the key keeps. The ledger and
the deliveries must equal those of a run never interrupted.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import multiprocessing
import multiprocessing.process
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from churnwatch.config import Settings
from churnwatch.daily import daily_lock, run_daily
from churnwatch.errors import OutcomeError
from churnwatch.notify import FileChannel, RetryPolicy, WebhookChannel, dispatch
from churnwatch.simulate import simulate
from churnwatch.store import (
    CHURN_LEDGER,
    OUTBOX,
    TRACKER_ACCOUNTS,
    TRACKER_RUNS,
    TRANSITIONS,
    WIN_LEDGER,
    Store,
    open_store,
)

SECRET = "crash-test-secret"


# -- a receiver ----------------------------------------------------------------------------------
class Receiver:
    """An HTTP server recording the Idempotency-Key of every POST it answers."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.lock = threading.Lock()
        # Injected crash points: on the n-th request, SIGKILL the sender before answering —
        # the provider has the message, the sender never learns it.
        self.kill_at: set[int] = set()
        self.victim: int | None = None
        self.killed = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                json.loads(body)
                with receiver.lock:
                    receiver.keys.append(self.headers["Idempotency-Key"])
                    victim = receiver.victim if len(receiver.keys) in receiver.kill_at else None
                    if victim is not None:
                        os.kill(victim, signal.SIGKILL)
                        receiver.killed += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


# -- the daily job in a subprocess ---------------------------------------------------------------
def _daily_job(store_url: str, days: str, url: str) -> None:
    """The daily job over every day file, then until nothing is left to deliver.

    Runs in a forked process (the imports are already done, so a kill can
    land anywhere in the work rather than in start-up).
    """
    settings = Settings.model_validate({"tracker": {"channels": ["webhook"]}})
    # A short lease: a row a killed run left 'sending' is due again by the next run.
    policy = RetryPolicy(lease_s=0.2, backoff_s=0.05, max_backoff_s=0.1, batch_rows=3)
    store = open_store(store_url)
    channel = WebhookChannel(url, SECRET)
    for path in sorted(glob.glob(days + "/*.parquet")):
        day = dt.date.fromisoformat(Path(path).name[:10])
        now = dt.datetime.combine(day, dt.time(9), dt.UTC)
        run_daily(
            store,
            date=day,
            settings=settings,
            channels={"webhook": channel},
            snapshot=pq.read_table(path),
            now=now,
            policy=policy,
        )
    # Whatever a killed run left claimed is delivered once its lease has passed.
    while True:
        with store.engine.connect() as connection:
            waiting = connection.execute(
                sa.select(sa.func.count())
                .select_from(OUTBOX)
                .where(OUTBOX.c.status.in_(("pending", "failed", "sending")))
            ).scalar()
        if not waiting:
            break
        time.sleep(0.25)
        dispatch(store, {"webhook": channel}, policy=policy)


_FORK = multiprocessing.get_context("fork")


def _start(store_url: str, days: Path, url: str) -> multiprocessing.process.BaseProcess:
    process = _FORK.Process(target=_daily_job, args=(store_url, str(days), url))
    process.start()
    return process


def _finish(process: multiprocessing.process.BaseProcess) -> None:
    process.join(timeout=300)
    assert process.exitcode == 0


def _days(folder: Path, count: int) -> Path:
    simulate(folder / "sim", n_accounts=3000, end="2024-06-30", events_per_account=2, seed=5)
    files = sorted(glob.glob(str(folder / "sim" / "adoption_snapshots" / "*.parquet")))
    frame = ds.dataset(files).to_table().to_pandas()
    frame["snapshot_date"] = pd.to_datetime(frame["snapshot_date"]).dt.date
    out = folder / "days"
    out.mkdir()
    for day in sorted(frame["snapshot_date"].unique())[:count]:
        rows = frame.loc[frame["snapshot_date"] == day]
        pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), out / f"{day}.parquet")
    return out


def _dump(store: Store) -> dict[str, list[tuple[str, ...]]]:
    """The tracker's tables and the outbox's keys, without ids and delivery bookkeeping."""
    skip = {"id", "attempts", "next_attempt_at", "last_error", "sent_at", "provider_ref"}
    skip |= {"processed_at"}
    out = {}
    with store.engine.connect() as connection:
        for table in (
            TRACKER_ACCOUNTS,
            CHURN_LEDGER,
            WIN_LEDGER,
            TRANSITIONS,
            OUTBOX,
            TRACKER_RUNS,
        ):
            columns = [c for c in table.columns if c.name not in skip]
            rows = connection.execute(sa.select(*columns)).all()
            out[table.name] = sorted(tuple(map(repr, row)) for row in rows)
    return out


@pytest.mark.slow
def test_killed_daily_runs_lose_and_duplicate_no_notification(
    tmp_path: Path, receiver: Receiver
) -> None:
    days = _days(tmp_path, 24)
    # The reference: one run, never interrupted, to its own receiver.
    clean = Receiver()
    try:
        clean_url = f"sqlite:///{tmp_path / 'clean.sqlite'}"
        process = _start(clean_url, days, clean.url)
        started = time.monotonic()
        _finish(process)
        work_seconds = time.monotonic() - started
    finally:
        clean.close()
    with open_store(clean_url) as store:
        expected = _dump(store)
    expected_keys = {eval(row[0]) for row in expected["outbox"]}
    assert len(expected_keys) >= 30  # enough notifications for the kills to land among them
    assert sorted(clean.keys) == sorted(expected_keys)  # once each

    crashed_url = f"sqlite:///{tmp_path / 'crashed.sqlite'}"
    # First, kills at injected points: in the middle of a delivery.
    receiver.kill_at = {2, 5, 11}
    for _ in range(3):
        process = _start(crashed_url, days, receiver.url)
        receiver.victim = process.pid
        process.join(timeout=300)
        assert process.exitcode == -signal.SIGKILL
    receiver.victim = None
    assert receiver.killed == 3

    # Then the same month killed again and again at random moments.
    rng = random.Random(20240601)
    kills = unfinished = 0
    for _ in range(16):
        process = _start(crashed_url, days, receiver.url)
        # Short: sixteen of them add up to well under one whole run, so each
        # run is killed with work left (a day untracked or a message unsent).
        time.sleep(rng.uniform(0.0, work_seconds / 20))
        if process.is_alive():
            assert process.pid is not None
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.join(timeout=60)
        with open_store(crashed_url) as store:
            left = _dump(store)
        unfinished += left["tracker_runs"] != expected["tracker_runs"] or any(
            "'sent'" not in row for row in left["outbox"]
        )
    assert kills >= 12
    assert unfinished >= 12
    _finish(_start(crashed_url, days, receiver.url))

    with open_store(crashed_url) as store:
        assert _dump(store) == expected
        with store.engine.connect() as connection:
            statuses = Counter(connection.execute(sa.select(OUTBOX.c.status)).scalars())
    assert statuses == {"sent": len(expected_keys)}
    # Delivered: every notification, once per key (what a receiver honouring the key keeps).
    assert set(receiver.keys) == expected_keys
    # A repeat comes only from a kill between the POST and its record: one per kill at most,
    # and one for each injected kill, which fell exactly there.
    repeats = len(receiver.keys) - len(expected_keys)
    assert 3 <= repeats <= kills + 3


# -- the lock ----------------------------------------------------------------------------------
HOLDER = textwrap.dedent(
    """
    import sys, time
    from churnwatch.daily import daily_lock
    from churnwatch.store import open_store
    store = open_store(sys.argv[1])
    with daily_lock(store):
        print("locked", flush=True)
        time.sleep(120)
    """
)


@pytest.mark.parametrize(
    "engine",
    [
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ],
)
def test_the_lock_refuses_a_second_run_and_a_killed_holder_releases_it(
    request: pytest.FixtureRequest, tmp_path: Path, engine: str
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'ops.sqlite'}"
        if engine == "sqlite"
        else str(request.getfixturevalue(f"{engine}_url"))
    )
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    holder = subprocess.Popen([sys.executable, str(script), url], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with open_store(url) as store:
            refused = pytest.raises(
                OutcomeError, match="another churnwatch daily run is in progress"
            )
            with refused, daily_lock(store):
                pass
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(timeout=30)
            deadline = time.monotonic() + 20
            while True:  # a server notices the dropped connection within moments
                try:
                    with daily_lock(store):
                        break
                except OutcomeError:
                    assert time.monotonic() < deadline, "the killed holder's lock stayed"
                    time.sleep(0.2)
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=30)
        if holder.stdout is not None:
            holder.stdout.close()


def test_a_repeated_day_changes_nothing_and_sends_nothing_twice(tmp_path: Path) -> None:
    out = tmp_path / "notes.jsonl"
    channels: dict[str, Any] = {"file": FileChannel(out)}
    settings = Settings()
    with open_store(f"sqlite:///{tmp_path / 'ops.sqlite'}") as store:

        def day(n: int, on: list[bool]) -> Any:
            snapshot = pa.table({"account_id": ["a", "b"], "is_enabled": on})
            return run_daily(
                store,
                date=dt.date(2024, 3, n),
                settings=settings,
                channels=channels,
                snapshot=snapshot,
            )

        day(1, [True, True])
        first = day(2, [False, True])
        assert first.tracked is not None
        assert first.tracked.counts == {"churned": 1, "queued": 1}
        assert first.dispatched.sent == 1
        before = _dump(store)
        again = day(2, [False, True])
        assert again.tracked is not None
        assert again.tracked.already_tracked
        assert again.dispatched.sent == 0
        assert _dump(store) == before
    assert len(out.read_text().splitlines()) == 1


def test_events_posted_to_the_api_are_in_the_warehouse_before_scoring(tmp_path: Path) -> None:
    from sqlglot import parse_one

    from churnwatch.inbox import check_events, pending_events, store_events
    from churnwatch.ingest import ingest
    from churnwatch.warehouse import connect

    result = simulate(tmp_path / "sim", n_accounts=40, end="2024-03-31", seed=2)
    store = open_store(f"sqlite:///{tmp_path / 'ops.sqlite'}")
    with connect(f"duckdb:///{tmp_path / 'w.duckdb'}") as warehouse:
        ingest(result.settings(), warehouse)
        account = warehouse.query(parse_one("SELECT min(account_id) FROM accounts")).column(0)[0]
        posted = [
            {
                "event_id": f"api-{i}",
                "account_id": account.as_py(),
                "event_time": f"2024-03-30T10:0{i}:00+00:00",
                "event_type": "login",
            }
            for i in range(3)
        ]
        checked = check_events(posted, now=dt.datetime(2024, 3, 31, tzinfo=dt.UTC))
        assert not checked.rejections
        store_events(store, checked.valid)
        assert pending_events(store) == 3
        report = run_daily(
            store,
            date=dt.date(2024, 3, 31),
            settings=Settings(),
            channels={},
            warehouse=warehouse,
            now=dt.datetime(2024, 3, 31, 6, tzinfo=dt.UTC),
        )
        assert report.drained is not None
        assert (report.drained.drained, report.drained.loaded) == (3, 3)
        assert pending_events(store) == 0
        found = warehouse.query(
            parse_one("SELECT count(*) FROM events WHERE event_id LIKE 'api-%'")
        ).column(0)[0]
        assert found.as_py() == 3
    store.close()
