"""Kaplan-Meier speed on a million accounts.

    python benchmarks/survival.py                     # 1M accounts
    python benchmarks/survival.py --accounts 100000   # a smaller run
    python benchmarks/survival.py --synthetic-only    # skip the simulated business

Two measurements, each the best of --repeat runs:

1. Synthetic durations (numpy, seeded): 1M accounts, whole days (Weibull,
   ~70% churned, the rest censored), four groups. Timed: Kaplan-Meier overall
   (curve, band, median, retention at 7/30/90 days), and by group with the
   log-rank test across groups and per pair.
2. The simulator's business (``churnwatch.simulate.simulate``, 1M accounts,
   ingested into DuckDB once and kept in --work-dir, shared with
   benchmarks/features.py): durations derived from the warehouse
   (subscription periods, the label's chaining), then the same fits by
   platform; also the time to churn of every running account.

Target (2 cores): Kaplan-Meier on 1M accounts under 2 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _measure import peak_rss_mb  # benchmarks/ is on sys.path when a script runs

from features import prepare


def best(repeat: int, run: Callable[[], Any]) -> tuple[float, Any]:
    """The fastest of ``repeat`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return min(times), result


def synthetic(accounts: int, repeat: int) -> None:
    from churnwatch.survival import kaplan_meier

    rng = np.random.default_rng(0)
    lifetimes = np.floor(rng.weibull(0.8, accounts) * 300)
    observed_until = np.floor(rng.uniform(0, 900, accounts))
    durations = np.minimum(lifetimes, observed_until)
    events = (lifetimes <= observed_until).astype(int)
    # Categorical, as with_attribute delivers an attribute read from the warehouse.
    groups = pd.Categorical(rng.choice(np.array(["web", "ios", "android", "desktop"]), accounts))
    print(f"synthetic: {accounts:,} accounts, {events.mean():.0%} churned, 4 groups")
    seconds, curves = best(repeat, lambda: kaplan_meier(durations, events))
    print(f"  Kaplan-Meier overall                {seconds:6.2f} s  ({curves.median_text()})")
    seconds, curves = best(repeat, lambda: kaplan_meier(durations, events, groups=groups))
    print(
        f"  Kaplan-Meier by group + log-rank    {seconds:6.2f} s  "
        f"(p = {curves.logrank.p_value:.3g}, {len(curves.logrank.pairwise)} pairs)"
    )


def simulated(work: Path, accounts: int, repeat: int) -> None:
    from churnwatch.config import DataSettings, Settings
    from churnwatch.labels import LabelSpec, infer_observation_end
    from churnwatch.survival import derive_durations, kaplan_meier, time_to_churn, with_attribute
    from churnwatch.warehouse import connect

    project = prepare(work, accounts)
    with connect(f"duckdb:///{project / 'warehouse.duckdb'}") as wh:
        # The end the labels infer: the latest subscription start.
        observation_end = infer_observation_end(wh, LabelSpec("subscription")).at
        settings = Settings(data=DataSettings(observation_end=observation_end.isoformat()))
        seconds, durations = best(
            repeat, lambda: derive_durations(wh, settings, basis="subscription")
        )
        rows = len(durations.frame)
        print(
            f"simulated: {rows:,} accounts with a subscription, "
            f"{int(durations.frame['event_observed'].sum()):,} churned, "
            f"observed until {observation_end:%Y-%m-%d}"
        )
        print(f"  durations from the warehouse        {seconds:6.2f} s")
        attach, durations = best(repeat, lambda: with_attribute(wh, durations, "platform"))
        print(f"  attach platform                     {attach:6.2f} s")
        fit, curves = best(
            repeat, lambda: kaplan_meier(durations.durations, durations.event_observed)
        )
        print(f"  Kaplan-Meier overall                {fit:6.2f} s  ({curves.median_text()})")
        grouped, curves = best(
            repeat,
            lambda: kaplan_meier(
                durations.durations,
                durations.event_observed,
                groups=durations.frame["platform"],
            ),
        )
        print(
            f"  Kaplan-Meier by platform + log-rank {grouped:6.2f} s  "
            f"(p = {curves.logrank.p_value:.3g})"
        )
        print(f"  warehouse to grouped curves         {seconds + attach + grouped:6.2f} s")
        ttc, found = best(1, lambda: time_to_churn(wh, settings, basis="subscription"))
        print(f"  time to churn of {len(found.frame):,} running accounts {ttc:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "cw-survival"
    )
    parser.add_argument("--synthetic-only", action="store_true")
    args = parser.parse_args()
    synthetic(args.accounts, args.repeat)
    if not args.synthetic_only:
        args.work_dir.mkdir(parents=True, exist_ok=True)
        simulated(args.work_dir, args.accounts, args.repeat)
    print(f"peak RSS {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
