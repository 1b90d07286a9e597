"""Ingestion throughput: N events from Parquet and from CSV into DuckDB.

Prints seconds, events/s and peak RSS for each format. Each load runs in its
own process so that its peak memory is its own.

    python benchmarks/ingest.py                 # 10M events
    python benchmarks/ingest.py --events 2000000 --work-dir /tmp/cw-bench

Targets (2 cores): >= 1M events/s from Parquet, >= 300k events/s from CSV,
peak memory under 2 GB whatever the file size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from _measure import peak_rss_mb  # benchmarks/ is on sys.path when a script runs

ACCOUNTS = 200_000
TYPES = np.array(
    ["login", "session", "feature_use", "report_viewed", "invite_sent", "support_call"]
)


def make_files(work: Path, events: int, seed: int = 0) -> tuple[Path, Path, Path]:
    """Write an accounts CSV and the same N events as Parquet and as CSV."""
    accounts = work / "accounts.csv"
    parquet, text = work / f"events_{events}.parquet", work / f"events_{events}.csv"
    if accounts.exists() and parquet.exists() and text.exists():
        return accounts, parquet, text
    ids = np.char.add("acc_", np.arange(ACCOUNTS).astype(str))
    pacsv.write_csv(pa.table({"account_id": ids, "signup": ["2023-01-01"] * ACCOUNTS}), accounts)
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01T00:00:00", "s")
    chunk = 1_000_000
    with (
        pq.ParquetWriter(parquet, _schema()) as pwriter,
        pacsv.CSVWriter(text, _schema()) as cwriter,
    ):
        for first in range(0, events, chunk):
            n = min(chunk, events - first)
            seconds = np.sort(rng.integers(0, 365 * 86_400, n))
            batch = pa.table(
                {
                    "account_id": ids[rng.integers(0, ACCOUNTS, n)],
                    "user_id": np.char.add("u", rng.integers(0, 5, n).astype(str)),
                    "event_time": pa.array(
                        start + seconds.astype("timedelta64[s]"), pa.timestamp("s", "UTC")
                    ),
                    "event_type": TYPES[rng.integers(0, len(TYPES), n)],
                    "duration_s": rng.exponential(300, n).round(1),
                },
                schema=_schema(),
            )
            pwriter.write_table(batch, row_group_size=chunk)
            cwriter.write_table(batch)
    return accounts, parquet, text


def _schema() -> pa.Schema:
    return pa.schema(
        [
            ("account_id", pa.string()),
            ("user_id", pa.string()),
            ("event_time", pa.timestamp("s", "UTC")),
            ("event_type", pa.string()),
            ("duration_s", pa.float64()),
        ]
    )


def run_one(accounts: Path, events: Path, database: Path) -> dict[str, float]:
    """Load the accounts, then time the events load (in this process)."""
    from churnwatch.config import parse_settings
    from churnwatch.ingest import ingest
    from churnwatch.warehouse import connect

    columns = {c: c for c in ("account_id", "user_id", "event_time", "event_type", "duration_s")}
    settings = parse_settings(
        {
            "sources": [
                {
                    "name": "accounts",
                    "table": "accounts",
                    "path": str(accounts),
                    "columns": {"account_id": "account_id", "created_at": "signup"},
                },
                {"name": "events", "table": "events", "path": str(events), "columns": columns},
            ]
        }
    )
    with connect(f"duckdb:///{database}") as wh:
        ingest(settings, wh, sources=["accounts"])
        started = time.perf_counter()
        report = ingest(settings, wh, sources=["events"])
        seconds = time.perf_counter() - started
        loaded = wh.count("events")
    peak_mb = peak_rss_mb()
    return {
        "seconds": seconds,
        "events": report.rows_read,
        "loaded": loaded,
        "quarantined": report.quarantined,
        "peak_rss_mb": peak_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument(
        "--child", nargs=3, metavar=("ACCOUNTS", "EVENTS", "DB"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(*(Path(p) for p in args.child))))
        return
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="cw-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"writing {args.events:,} events to {work} ...", flush=True)
    accounts, parquet, text = make_files(work, args.events)
    print(
        f"parquet {parquet.stat().st_size / 2**20:,.0f} MiB, "
        f"csv {text.stat().st_size / 2**20:,.0f} MiB"
    )
    print(f"{'format':<8} {'events':>12} {'seconds':>8} {'events/s':>12} {'peak RSS':>10}")
    for name, path in (("parquet", parquet), ("csv", text)):
        database = work / f"{name}.duckdb"
        database.unlink(missing_ok=True)
        output = subprocess.run(
            [sys.executable, __file__, "--child", str(accounts), str(path), str(database)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result = json.loads(output.strip().splitlines()[-1])
        assert result["loaded"] + result["quarantined"] == result["events"] == args.events
        rate = result["events"] / result["seconds"]
        print(
            f"{name:<8} {result['events']:>12,} {result['seconds']:>8.1f} {rate:>12,.0f} "
            f"{result['peak_rss_mb']:>7,.0f} MB",
            flush=True,
        )
        database.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
