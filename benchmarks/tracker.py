"""Tracker speed: a day's adoption snapshot of a million accounts.

    python benchmarks/tracker.py                       # 1M accounts, SQLite store
    python benchmarks/tracker.py --accounts 100000
    python benchmarks/tracker.py --store postgresql://postgres@127.0.0.1:5432/test

Three snapshot days of --accounts accounts (one row each, product
``payments``) are tracked into a fresh operational store:

1. the first day: every account is new (a million parent rows and ``new``
   transitions inserted in one transaction);
2. the next day: 2% of accounts switch off (episodes opened, first
   notifications queued on two channels), 0.5% are missing from the report,
   0.3% are new, and every enabled account's GMV moves (as a daily report's
   does), so every parent row is updated;
3. the day after: half of day 2's churns come back (wins), 1% more switch
   off, the missing ones return, GMV moves again; plus a re-run of that day
   (a no-op).

Printed: wall-clock and CPU seconds per day (the CPU figure is what the
run costs when other work shares the machine), the changes, and the
process's peak RSS.
Target (2 cores): a 1M-account day in under 30 s, peak under 2 GB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
from _measure import peak_rss_mb  # benchmarks/ is on sys.path when a script runs

DAY = dt.date(2024, 6, 1)


def snapshot(
    ids: np.ndarray, enabled: np.ndarray, present: np.ndarray, rng: np.random.Generator
) -> pa.Table:
    """One day's report of the present accounts."""
    keep = np.flatnonzero(present)
    n = keep.size
    gmv = np.where(enabled[keep], np.round(rng.lognormal(6.0, 1.0, n), 2), 0.0)
    return pa.table(
        {
            "account_id": pa.array(ids[keep], pa.string()),
            "product": pa.array(np.full(n, "payments", dtype=object), pa.string()),
            "is_enabled": pa.array(enabled[keep], pa.bool_()),
            "name": pa.array(np.char.add("Merchant ", ids[keep].astype(str)), pa.string()),
            "csm_id": pa.array(np.char.add("csm", (keep % 200).astype(str)), pa.string()),
            "region": pa.array(np.array(["EU", "NA", "APAC", "LATAM"])[keep % 4], pa.string()),
            "revenue": pa.array(100.0 + (keep % 50) * 10.0, pa.float64()),
            "gmv": pa.array(gmv, pa.float64()),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--store", default=None, help="store URL; default a fresh SQLite file")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from churnwatch.config import parse_settings
    from churnwatch.store import metadata, open_store
    from churnwatch.tracker import track_snapshot

    rng = np.random.default_rng(args.seed)
    n = args.accounts
    # Ids for the accounts of all three days (0.3% join on day 2).
    total = n + n // 300
    ids = np.array([f"acct_{i:08d}" for i in range(total)], dtype=object)
    exists = np.arange(total) < n
    enabled = rng.random(total) < 0.97
    settings = parse_settings({"tracker": {"channels": ["file", "slack"]}})

    with tempfile.TemporaryDirectory() as tmp:
        url = args.store or f"sqlite:///{Path(tmp) / 'ops.sqlite'}"
        store = open_store(url)
        print(f"store: {store!r}, {n:,} accounts")

        def days() -> Iterator[tuple[dt.date, pa.Table]]:
            # Built one at a time, so that only one day's table is in memory.
            nonlocal enabled
            yield DAY, snapshot(ids, enabled, exists, rng)
            # Day 2: 2% switch off, 0.5% missing, 0.3% new accounts.
            everyone = np.ones(total, dtype=bool)
            off = enabled & (rng.random(total) < 0.02)
            enabled = enabled & ~off
            missing = rng.random(total) < 0.005
            yield DAY + dt.timedelta(days=1), snapshot(ids, enabled, ~missing, rng)
            # Day 3: half the day-2 churns come back, 1% more switch off, the missing return.
            back = off & (rng.random(total) < 0.5)
            more_off = enabled & (rng.random(total) < 0.01)
            enabled = (enabled | back) & ~more_off
            yield DAY + dt.timedelta(days=2), snapshot(ids, enabled, everyone, rng)

        last: tuple[dt.date, pa.Table] | None = None
        for day, rows in days():
            # Only today's table is kept: the previous one would add to the peak.
            last = None
            started, cpu = time.perf_counter(), time.process_time()
            result = track_snapshot(store, rows, date=day, settings=settings)
            took, cpu = time.perf_counter() - started, time.process_time() - cpu
            print(
                f"{day}  {rows.num_rows:>10,} rows  {took:6.1f} s (cpu {cpu:5.1f} s)  "
                f"{result.counts}"
            )
            last = (day, rows)
            del rows
        assert last is not None
        started = time.perf_counter()
        again = track_snapshot(store, last[1], date=last[0], settings=settings)
        took = time.perf_counter() - started
        print(f"{last[0]}  re-run: already tracked={again.already_tracked}  {took:6.1f} s")
        if args.store:
            metadata.drop_all(store.engine)
        store.close()
    print(f"peak RSS: {peak_rss_mb():,.0f} MiB")


if __name__ == "__main__":
    main()
