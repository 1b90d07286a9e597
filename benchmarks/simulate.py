"""Benchmark the simulator: wall time, throughput, rows per table and peak memory.

Run from the repository root::

    python benchmarks/simulate.py --accounts 100000
    python benchmarks/simulate.py              # 1M accounts, ~50M events

The output goes to a temporary directory that is removed afterwards, unless
``--out`` names one to keep.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from churnwatch.simulate import simulate


def _size_on_disk(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1_000_000, help="number of accounts")
    parser.add_argument("--events-per-account", type=float, default=50.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-accounts", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=None, help="keep the output here")
    args = parser.parse_args(argv)

    out = args.out or Path(tempfile.mkdtemp(prefix="churnwatch-bench-"))
    last_report = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last_report[0] > 10 or done == total:
            print(f"  {done:>10,} / {total:,} accounts  {now - began:6.1f} s", file=sys.stderr)
            last_report[0] = now

    began = time.perf_counter()
    try:
        result = simulate(
            out,
            n_accounts=args.accounts,
            seed=args.seed,
            events_per_account=args.events_per_account,
            chunk_accounts=args.chunk_accounts,
            on_progress=progress,
        )
        seconds = time.perf_counter() - began
        disk = _size_on_disk(out)
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)

    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    events = result.counts["events"]
    print(f"accounts            {args.accounts:,}")
    print(f"seconds             {seconds:.1f}")
    print(f"events/s            {events / seconds:,.0f}")
    print(f"peak RSS            {peak_rss / 2**20:,.0f} MiB")
    print(f"size on disk        {disk / 2**20:,.0f} MiB")
    for table, rows in result.counts.items():
        print(f"rows {table:<19}{rows:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
