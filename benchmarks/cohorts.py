"""Cohort retention on the simulator's event log: the monthly matrix over ~50M events.

In one run, each part in its own process so its peak RSS is its own:

1. Logo retention, monthly signup cohorts, activity basis (the target).
2. The same by week.
3. Logo retention on the subscription basis.
4. Revenue retention (cohort matrix, GRR and NRR).
5. MRR movements.

    python benchmarks/cohorts.py                       # 1M accounts, ~50M events
    python benchmarks/cohorts.py --accounts 100000     # a smaller run

The data (simulated, then ingested into a DuckDB warehouse, as
benchmarks/features.py does) is kept in --work-dir, so later runs skip those
steps; a work dir of features.py can be reused. With --direct, the
simulator's Parquet files (already in the canonical columns) are copied into
the canonical tables without the ingest's checks: the same rows, set up in
minutes rather than the better part of an hour on a busy machine. DuckDB's
memory limit is 1 GB. Target (2 cores): the monthly matrix in under 20 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _measure import peak_rss_mb  # benchmarks/ is on sys.path when a script runs

import features
from features import prepare

DUCKDB_MEMORY_MB = 1024
PERIODS = 24
#: The tables the cohorts read.
TABLES = ("accounts", "events", "subscriptions")


def prepare_direct(work: Path, accounts: int) -> Path:
    """Simulate once and copy the Parquet files into the canonical tables; return the project."""
    import duckdb

    from churnwatch.simulate import simulate
    from churnwatch.warehouse import connect, table_columns

    project = work / f"project_{accounts}_direct"
    done = project / "ready"
    if done.exists():
        return project
    data = work / f"project_{accounts}" / "data"
    if not (data / "manifest.json").exists():
        print(f"simulating {accounts:,} accounts into {data} ...", flush=True)
        simulate(data, n_accounts=accounts, seed=0, end=features.END)
    print("copying the Parquet files into the warehouse ...", flush=True)
    path = project / "warehouse.duckdb"
    with connect(f"duckdb:///{path}") as wh:
        wh.ensure_schema()
    connection = duckdb.connect(str(path))
    counts = {}
    for table in TABLES:
        files = (
            str(data / table / "*.parquet")
            if (data / table).is_dir()
            else str(data / f"{table}.parquet")
        )
        names = [name for name, _ in table_columns(table)]
        found = duckdb.read_parquet(files, connection=connection).columns
        columns = ", ".join(f'"{n}"' for n in names if n in found)
        # Benchmark set-up of trusted files, not user input: a plain INSERT.
        connection.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM read_parquet('{files}')"
        )
        counts[table] = connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    connection.close()
    done.write_text(json.dumps(counts))
    return project


def _timed(project: Path, compute: Callable[[Any], Any]) -> dict[str, Any]:
    from churnwatch.warehouse import connect

    with connect(
        f"duckdb:///{project / 'warehouse.duckdb'}", memory_limit_mb=DUCKDB_MEMORY_MB
    ) as wh:
        started = time.perf_counter()
        result = compute(wh)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "shape": list(result)}


def _logo(period: str, basis: str) -> Callable[[Path], dict[str, Any]]:
    def run(project: Path) -> dict[str, Any]:
        from churnwatch.cohorts import logo_retention

        return _timed(
            project,
            lambda wh: (
                logo_retention(wh, period=period, basis=basis, periods_count=PERIODS).counts.shape
            ),
        )

    return run


def _revenue(project: Path) -> dict[str, Any]:
    from churnwatch.cohorts import revenue_retention

    return _timed(project, lambda wh: revenue_retention(wh, periods_count=PERIODS).mrr.shape)


def _movements(project: Path) -> dict[str, Any]:
    from churnwatch.cohorts import mrr_movements

    return _timed(project, lambda wh: mrr_movements(wh).cents.shape)


PARTS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "logo_month": _logo("month", "activity"),
    "logo_week": _logo("week", "activity"),
    "logo_month_subs": _logo("month", "subscription"),
    "revenue": _revenue,
    "movements": _movements,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "cw-cohorts")
    parser.add_argument("--only", choices=list(PARTS), action="append", help="Run these parts.")
    parser.add_argument(
        "--direct", action="store_true", help="Copy the simulated files without the ingest."
    )
    parser.add_argument("--child", nargs=2, metavar=("PART", "PROJECT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        part, project = args.child
        result = PARTS[part](Path(project))
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return
    args.work_dir.mkdir(parents=True, exist_ok=True)
    project = (prepare_direct if args.direct else prepare)(args.work_dir, args.accounts)
    events = json.loads((project / "ready").read_text())["events"]
    print(f"{events:,} events, {args.accounts:,} accounts; {PERIODS} periods; DuckDB 1 GB")
    print(f"{'part':<16} {'seconds':>8} {'events/s':>12} {'matrix':>10} {'peak RSS':>10}")
    for part in args.only or PARTS:
        child = subprocess.run(
            [sys.executable, __file__, "--child", part, str(project)],
            capture_output=True,
            text=True,
        )
        if child.returncode:
            print(f"{part:<16} failed:\n{child.stderr.strip()[-2000:]}", flush=True)
            continue
        result = json.loads(child.stdout.strip().splitlines()[-1])
        shape = "x".join(str(n) for n in result["shape"])
        print(
            f"{part:<16} {result['seconds']:>8.1f} {events / result['seconds']:>12,.0f} "
            f"{shape:>10} {result['peak_rss_mb']:>7,.0f} MB",
            flush=True,
        )


if __name__ == "__main__":
    main()
