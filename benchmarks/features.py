"""Feature throughput on the simulator's event log, against hand-written queries.

In one run, each part in its own process so its peak RSS is its own:

1. Churnwatch, default feature set, one cutoff (every account alive then).
2. Churnwatch, default feature set, 12 monthly cutoffs.
3. Churnwatch, the ~20 features of the hand-written queries, declared as specs.
4. The ~20 features written by hand as one DuckDB query over the Parquet files.
5. The ~20 features written by hand as one Polars streaming query.

Every part materializes its whole result (a ``count(*)`` around a query
would let DuckDB drop the unused aggregates and measure only the join).

    python benchmarks/features.py                       # 1M accounts, ~50M events
    python benchmarks/features.py --accounts 100000     # a smaller run
    python benchmarks/features.py --loop                # and 12 single-cutoff runs in a loop

The data (simulated, then ingested into a DuckDB warehouse) is kept in
--work-dir, so later runs skip those steps. Targets (2 cores): Churnwatch
within 1.25x of the faster hand-written query on the same features, peak
under 2 GB, and 12 cutoffs in at most 6x the time of one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _measure import peak_rss_mb  # benchmarks/ is on sys.path when a script runs

DUCKDB_MEMORY_MB = 1024
END = "2024-12-31"
CUTOFF = dt.datetime(2024, 12, 1, tzinfo=dt.UTC)
TYPES = ("login", "session", "feature_use", "report_viewed", "invite_sent", "message_sent")


def prepare(work: Path, accounts: int) -> Path:
    """Simulate and ingest once; return the project folder."""
    from churnwatch.config import DataSettings, Settings
    from churnwatch.ingest import ingest
    from churnwatch.ingest.presets import preset_sources
    from churnwatch.simulate import simulate
    from churnwatch.warehouse import connect

    project = work / f"project_{accounts}"
    done = project / "ready"
    if done.exists():
        return project
    data = project / "data"
    print(f"simulating {accounts:,} accounts into {data} ...", flush=True)
    result = simulate(data, n_accounts=accounts, seed=0, end=END)
    settings = Settings(
        data=DataSettings(observation_end=str(result.observation_end)),
        sources=preset_sources("churnwatch_simulator", data),
    )
    print("ingesting ...", flush=True)
    with connect(str(f"duckdb:///{project / 'warehouse.duckdb'}")) as wh:
        ingest(settings, wh)
    done.write_text(json.dumps(result.counts))
    return project


def hand_specs() -> list[Any]:
    """The features of the hand-written queries, as Churnwatch specs."""
    from churnwatch.features import FeatureSpec

    count = "count"
    return [
        *[FeatureSpec(f"events_{d}d", "aggregate", count, window_days=d) for d in (7, 30, 90)],
        FeatureSpec("events_all", "aggregate", count),
        *[FeatureSpec(f"{t}_30d", "aggregate", count, window_days=30, event_type=t) for t in TYPES],
        FeatureSpec("active_days_30d", "aggregate", "active_days", window_days=30),
        FeatureSpec("active_weeks_90d", "aggregate", "active_weeks", window_days=90),
        FeatureSpec("duration_30d", "aggregate", "sum", "duration_s", window_days=30),
        FeatureSpec("mean_duration_30d", "aggregate", "mean", "duration_s", window_days=30),
        FeatureSpec("support_90d", "support", count, window_days=90),
        FeatureSpec("negative_support_90d", "support", "negative_count", window_days=90),
        FeatureSpec("days_since_last", "recency"),
        FeatureSpec("events_30d_change", "trend", "difference", window_days=30),
        FeatureSpec("tenure_days", "tenure"),
    ]


def run_churnwatch(
    project: Path, cutoffs: int, same_as_hand: bool = False, one_at_a_time: bool = False
) -> dict[str, Any]:
    """Churnwatch at ``cutoffs`` monthly cutoffs, in one run or (``one_at_a_time``) one each."""
    from churnwatch.features import compute_features, default_features
    from churnwatch.features._compute import accounts_at
    from churnwatch.warehouse import connect

    dates = [CUTOFF - dt.timedelta(days=30 * i) for i in range(cutoffs)]
    with connect(
        f"duckdb:///{project / 'warehouse.duckdb'}", memory_limit_mb=DUCKDB_MEMORY_MB
    ) as wh:
        groups = [[day] for day in dates] if one_at_a_time else [dates]
        tables = [accounts_at(wh, group) for group in groups]
        specs = hand_specs() if same_as_hand else default_features(wh)
        started, cpu = time.perf_counter(), time.process_time()
        rows = sum(compute_features(wh, table, specs).num_rows for table in tables)
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu
        events = wh.count("events")
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "rows": rows,
        "features": len(specs),
        "events": events,
    }


def _hand_features_sql(events_glob: str, accounts_path: str) -> str:
    """~20 features in one hand-written DuckDB query over the Parquet files."""
    c = f"TIMESTAMPTZ '{CUTOFF.isoformat()}'"

    def within(days: int) -> str:
        return f"e.event_time >= {c} - INTERVAL {days} DAY"

    per_type = ",\n".join(
        f"  count(*) FILTER (WHERE e.event_type = '{t}' AND {within(30)}) AS {t}_30d" for t in TYPES
    )
    return f"""
SELECT a.account_id,
  count(e.event_time) FILTER (WHERE {within(7)}) AS events_7d,
  count(e.event_time) FILTER (WHERE {within(30)}) AS events_30d,
  count(e.event_time) FILTER (WHERE {within(90)}) AS events_90d,
  count(e.event_time) AS events_all,
{per_type},
  count(DISTINCT date_trunc('day', e.event_time)) FILTER (WHERE {within(30)}) AS active_days_30d,
  count(DISTINCT date_trunc('week', e.event_time)) FILTER (WHERE {within(90)}) AS active_weeks_90d,
  sum(e.duration_s) FILTER (WHERE {within(30)}) AS duration_30d,
  avg(e.duration_s) FILTER (WHERE {within(30)}) AS mean_duration_30d,
  count(*) FILTER (WHERE e.event_type = 'support_call' AND {within(90)}) AS support_90d,
  count(*) FILTER (WHERE e.event_type = 'support_call' AND e.value < 0 AND {within(90)})
    AS negative_support_90d,
  date_diff('second', max(e.event_time), {c}) / 86400.0 AS days_since_last,
  count(e.event_time) FILTER (WHERE {within(30)})
    - count(e.event_time) FILTER (WHERE {within(60)} AND NOT {within(30)}) AS events_30d_change,
  date_diff('second', min(a.created_at), {c}) / 86400.0 AS tenure_days
FROM read_parquet('{accounts_path}') a
LEFT JOIN read_parquet('{events_glob}') e
  ON e.account_id = a.account_id AND e.event_time < {c}
WHERE a.created_at < {c}
GROUP BY a.account_id
"""


def run_duckdb_by_hand(project: Path) -> dict[str, Any]:
    import duckdb

    data = project / "data"
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{DUCKDB_MEMORY_MB}MB'")
    con.execute("SET TimeZone = 'UTC'")
    sql = _hand_features_sql(str(data / "events" / "*.parquet"), str(data / "accounts.parquet"))
    started = time.perf_counter()
    frame = con.execute(sql).to_arrow_table()
    seconds = time.perf_counter() - started
    con.close()
    return {"seconds": seconds, "rows": frame.num_rows}


def run_polars_by_hand(project: Path) -> dict[str, Any]:
    import polars as pl

    data = project / "data"
    cutoff = pl.lit(CUTOFF).dt.cast_time_unit("us")
    events = pl.scan_parquet(data / "events" / "*.parquet").filter(pl.col("event_time") < cutoff)

    def within(days: int) -> pl.Expr:
        return pl.col("event_time") >= cutoff - pl.duration(days=days)

    aggregations = [
        within(7).sum().alias("events_7d"),
        within(30).sum().alias("events_30d"),
        within(90).sum().alias("events_90d"),
        pl.len().alias("events_all"),
        *[((pl.col("event_type") == t) & within(30)).sum().alias(f"{t}_30d") for t in TYPES],
        pl.col("event_time")
        .dt.truncate("1d")
        .filter(within(30))
        .n_unique()
        .alias("active_days_30d"),
        pl.col("event_time")
        .dt.truncate("1w")
        .filter(within(90))
        .n_unique()
        .alias("active_weeks_90d"),
        pl.col("duration_s").filter(within(30)).sum().alias("duration_30d"),
        pl.col("duration_s").filter(within(30)).mean().alias("mean_duration_30d"),
        ((pl.col("event_type") == "support_call") & within(90)).sum().alias("support_90d"),
        ((pl.col("event_type") == "support_call") & (pl.col("value") < 0) & within(90))
        .sum()
        .alias("negative_support_90d"),
        ((cutoff - pl.col("event_time").max()).dt.total_seconds() / 86400).alias("days_since_last"),
        (within(30).sum().cast(pl.Int64) - (within(60) & ~within(30)).sum().cast(pl.Int64)).alias(
            "events_30d_change"
        ),
    ]
    accounts = pl.scan_parquet(data / "accounts.parquet").filter(pl.col("created_at") < cutoff)
    query = accounts.select(
        "account_id",
        ((cutoff - pl.col("created_at")).dt.total_seconds() / 86400).alias("tenure_days"),
    ).join(events.group_by("account_id").agg(aggregations), on="account_id", how="left")
    started = time.perf_counter()
    frame = query.collect(engine="streaming")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": frame.height}


PARTS = {
    "churnwatch_1": lambda p: run_churnwatch(p, 1),
    "churnwatch_12": lambda p: run_churnwatch(p, 12),
    "churnwatch_20": lambda p: run_churnwatch(p, 1, same_as_hand=True),
    "duckdb_by_hand": run_duckdb_by_hand,
    "polars_by_hand": run_polars_by_hand,
}
#: Run with --loop only: it takes about as long as all the other parts together.
LOOP = {"churnwatch_loop": lambda p: run_churnwatch(p, 12, one_at_a_time=True)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument(
        "--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "cw-features"
    )
    parser.add_argument(
        "--loop",
        action="store_true",
        help="also time the 12 cutoffs as a loop of 12 single-cutoff runs",
    )
    parser.add_argument("--child", nargs=2, metavar=("PART", "PROJECT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        part, project = args.child
        result = {**PARTS, **LOOP}[part](Path(project))
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return
    args.work_dir.mkdir(parents=True, exist_ok=True)
    project = prepare(args.work_dir, args.accounts)
    events = json.loads((project / "ready").read_text())["events"]
    print(f"{events:,} events, {args.accounts:,} accounts; cutoff {CUTOFF.date()}")
    print(f"{'part':<16} {'seconds':>8} {'events/s':>12} {'rows':>10} {'peak RSS':>10}")
    results: dict[str, dict[str, Any]] = {}
    parts = [*PARTS, *(LOOP if args.loop else ())]
    for part in parts:
        child = subprocess.run(
            [sys.executable, __file__, "--child", part, str(project)],
            capture_output=True,
            text=True,
        )
        if child.returncode:
            print(f"{part:<16} failed:\n{child.stderr.strip()[-2000:]}", flush=True)
            continue
        output = child.stdout
        result = json.loads(output.strip().splitlines()[-1])
        results[part] = result
        print(
            f"{part:<16} {result['seconds']:>8.1f} {events / result['seconds']:>12,.0f} "
            f"{result['rows']:>10,} {result['peak_rss_mb']:>7,.0f} MB",
            flush=True,
        )
    if len(results) < len(parts):
        return
    fastest = min(results["duckdb_by_hand"]["seconds"], results["polars_by_hand"]["seconds"])
    one, twelve = results["churnwatch_1"]["seconds"], results["churnwatch_12"]["seconds"]
    same = results["churnwatch_20"]["seconds"]
    print(
        f"churnwatch, the same {results['churnwatch_20']['features']} features / fastest "
        f"hand-written: {same / fastest:.2f}x (target <= 1.25x)"
    )
    print(
        f"churnwatch, default set of {results['churnwatch_1']['features']} features / fastest "
        f"hand-written ({len(hand_specs())} features): {one / fastest:.2f}x"
    )
    print(f"12 cutoffs / 1 cutoff (default set): {twelve / one:.2f}x (target <= 6x)")
    if "churnwatch_loop" in results:
        loop = results["churnwatch_loop"]["seconds"]
        print(f"a loop of 12 single-cutoff runs / 1 cutoff: {loop / one:.2f}x")
        print(f"12 cutoffs / the loop: {twelve / loop:.2f}")
    # CPU time (every thread of the process) moves less than wall time when
    # others load the machine: a second view of the same ratio.
    cpu_one, cpu_twelve = (
        results["churnwatch_1"]["cpu_seconds"],
        results["churnwatch_12"]["cpu_seconds"],
    )
    print(
        f"the same in CPU time: {cpu_twelve:.1f} s / {cpu_one:.1f} s = {cpu_twelve / cpu_one:.2f}x"
    )


if __name__ == "__main__":
    main()
