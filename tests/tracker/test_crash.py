"""A tracking run killed with SIGKILL leaves the store as before or as after, never between.

The day's run happens in a child process killed at a random moment after it
starts; the store is then read, must equal either the state before the day
or the state of an uninterrupted run, and re-running the day must end in the
uninterrupted state, with no notification lost or queued twice.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from churnwatch.store import (
    CHURN_LEDGER,
    OUTBOX,
    TRACKER_ACCOUNTS,
    TRACKER_RUNS,
    TRANSITIONS,
    WIN_LEDGER,
    open_store,
)
from churnwatch.tracker import track_snapshot

DAY1, DAY2 = dt.date(2024, 3, 1), dt.date(2024, 3, 2)
NOW = dt.datetime(2024, 3, 2, 6, tzinfo=dt.UTC)
ACCOUNTS = 20_000

CHILD = """
import datetime as dt, sys
import pyarrow.parquet as pq
from churnwatch.store import open_store
from churnwatch.tracker import track_snapshot
store = open_store(sys.argv[1])
rows = pq.read_table(sys.argv[2])
print("start", flush=True)
track_snapshot(store, rows, date=dt.date(2024, 3, 2), now=dt.datetime(2024, 3, 2, 6, tzinfo=dt.UTC))
print("done", flush=True)
"""


def _days(folder: Path) -> tuple[pa.Table, Path]:
    rng = np.random.default_rng(3)
    ids = [f"acct_{i:06d}" for i in range(ACCOUNTS)]
    on = rng.random(ACCOUNTS) < 0.9
    day1 = pa.table({"account_id": ids, "is_enabled": on, "gmv": rng.random(ACCOUNTS)})
    later = on & (rng.random(ACCOUNTS) > 0.1) | (~on & (rng.random(ACCOUNTS) < 0.3))
    present = rng.random(ACCOUNTS) > 0.02
    day2 = pa.table({"account_id": ids, "is_enabled": later, "gmv": rng.random(ACCOUNTS)})
    path = folder / "day2.parquet"
    pq.write_table(day2.filter(pa.array(present)), path)
    return day1, path


def _dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    skip = {"id"}
    out = {}
    with open_store(url) as store, store.engine.connect() as connection:
        for table in (
            TRACKER_ACCOUNTS,
            CHURN_LEDGER,
            WIN_LEDGER,
            TRANSITIONS,
            OUTBOX,
            TRACKER_RUNS,
        ):
            columns = [c for c in table.columns if c.name not in skip]
            out[table.name] = sorted(
                tuple(map(repr, r)) for r in connection.execute(sa.select(*columns))
            )
    return out


@pytest.mark.slow
def test_a_killed_run_leaves_the_day_undone_or_done(tmp_path: Path) -> None:
    day1, day2_path = _days(tmp_path)
    reference = f"sqlite:///{tmp_path / 'reference.sqlite'}"
    with open_store(reference) as store:
        track_snapshot(store, day1, date=DAY1, now=NOW)
    before = _dump(reference)
    with open_store(reference) as store:
        track_snapshot(store, pq.read_table(day2_path), date=DAY2, now=NOW)
    after = _dump(reference)
    assert before != after

    rng = random.Random(11)
    outcomes = []
    env = os.environ | {"PYTHONWARNINGS": "ignore"}
    for attempt in range(4):
        path = tmp_path / f"run{attempt}.sqlite"
        url = f"sqlite:///{path}"
        with open_store(url) as store:
            track_snapshot(store, day1, date=DAY1, now=NOW)
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, url, str(day2_path)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "start"
        if attempt < 3:
            # Aim inside the day's transaction: wait until the child has held
            # the write lock for a while (longer than the quick read before
            # it), then kill at a random point a little later.
            _wait_for_long_write_lock(path, child)
            time.sleep(rng.uniform(0.0, 0.05))
        else:
            time.sleep(rng.uniform(0.0, 1.5))
        child.send_signal(signal.SIGKILL)
        child.wait(60)
        child.stdout.close()
        found = _dump(url)
        assert found in (before, after), f"attempt {attempt}: the store is between states"
        outcomes.append("after" if found == after else "before")
        with open_store(url) as store:
            track_snapshot(store, pq.read_table(day2_path), date=DAY2, now=NOW)
        assert _dump(url) == after
    # The kills aimed inside the transaction left the day undone.
    assert "before" in outcomes[:3]


def _wait_for_long_write_lock(path: Path, child: subprocess.Popen[str]) -> None:
    """Return once the child has held the store's write lock for 30 ms running."""
    held_since = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        probe = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            held_since = None
        except sqlite3.OperationalError:
            held_since = held_since or time.monotonic()
            if time.monotonic() - held_since >= 0.03:
                return
        finally:
            probe.close()
        time.sleep(0.002)
    raise AssertionError("the child never held the write lock for 30 ms")
