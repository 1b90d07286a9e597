"""Segments and the health score on a simulated business: speed and quality.

    python benchmarks/segments_health.py                     # 20,000 accounts
    python benchmarks/segments_health.py --accounts 100000

1. A business is simulated (seeded) and ingested into DuckDB.
2. Health: the default score of every current customer at the end of the
   data (seconds); then its backtest at the latest settled monthly cutoffs
   against 30-day subscription churn: ROC AUC of ``100 - score``, lift and
   recall of the lowest-scored 10%, churn per tier.
3. Beside it, the model-based score ``100 * (1 - P)``, out of sample: a
   LightGBM model (no search) is trained on the cutoffs whose labels had
   settled before the first backtest cutoff, then scores each backtest
   cutoff into ``risk_scores`` as a daily run would have; the backtest reads
   those runs.
4. Segments of the current customers (k by BIC over 2-8): seconds, k, and
   per segment its name, share, churn rate and MRR; then a re-run (same
   names and assignments?), a fit on 95% of the accounts and a run a month
   earlier, each without and with the first run's profiles (the share of
   accounts that keep their segment name).

Printed: seconds per step and peak RSS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import pandas as pd
from _measure import peak_rss_mb  # benchmarks/ is on sys.path when a script runs

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cutoffs", type=int, default=3, help="backtest cutoffs")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument(
        "--no-model", action="store_true", help="skip the model-based score (its training)"
    )
    args = parser.parse_args()

    from churnwatch.health import account_health, backtest_health
    from churnwatch.ingest import ingest
    from churnwatch.labels import CutoffSchedule, LabelSpec
    from churnwatch.models import ModelRegistry, register_model, training_frame
    from churnwatch.scoring import score_accounts
    from churnwatch.segments import segment_accounts
    from churnwatch.simulate import simulate
    from churnwatch.warehouse import connect

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="cw_segments_health_"))
    started = time.perf_counter()
    result = simulate(work / "data", n_accounts=args.accounts, seed=args.seed, end="2024-12-31")
    end = str(result.observation_end)
    settings = result.settings()
    print(f"simulated {args.accounts:,} accounts, {result.counts['events']:,} events "
          f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
    with connect(f"duckdb:///{work / 'warehouse.duckdb'}") as wh:
        ingest(settings, wh)

        clock = time.perf_counter()
        health = account_health(wh, settings)
        print(f"\nhealth of {len(health.scores):,} accounts: "
              f"{time.perf_counter() - clock:.1f} s")  # fmt: skip
        print(health.tier_counts().round(3).to_string(index=False))

        clock = time.perf_counter()
        first = backtest_health(wh, settings, cutoffs_count=args.cutoffs)
        print(f"\nhealth backtest alone ({args.cutoffs} cutoffs): "
              f"{time.perf_counter() - clock:.1f} s")  # fmt: skip
        cutoffs = sorted(pd.Timestamp(c).to_pydatetime() for c in first.scores.cutoff.unique())

        # The model-based score, out of sample: train on what had settled before the
        # first backtest cutoff, then score each backtest cutoff as a daily run would.
        clock = time.perf_counter()
        spec = LabelSpec.from_settings(settings.churn)
        if not args.no_model:
            delay = dt.timedelta(days=spec.horizon_days[0] + spec.settle_days)
            last_train = cutoffs[0] - delay
            schedule = CutoffSchedule.every(
                "2024-02-01", last_train + dt.timedelta(days=1), months=1
            )
            frame = training_frame(wh, spec, schedule, observation_end=end)
            registry = ModelRegistry(work / "models")
            register_model(frame, "churn_30d", registry, search_iterations=0, promote=True)
            for cutoff in cutoffs:
                score_accounts(wh, registry, as_of=cutoff)
            print(f"model trained on cutoffs up to {last_train:%Y-%m-%d} and scored at the "
                  f"backtest cutoffs: {time.perf_counter() - clock:.1f} s")  # fmt: skip

        tested = backtest_health(wh, settings, cutoffs_count=args.cutoffs)
        print("\nbacktest against churn_30d (risk = 100 - score):")
        print(tested.metrics.round(4).to_string(index=False))
        print("\nchurn by tier, pooled:")
        pooled = tested.tiers.loc[tested.tiers["cutoff"] == "pooled"]
        print(pooled.round(4).to_string(index=False))

        clock = time.perf_counter()
        segments = segment_accounts(wh, settings)
        print(f"\nsegments of {len(segments.assignments):,} accounts: k = {segments.k} "
              f"in {time.perf_counter() - clock:.1f} s")  # fmt: skip
        print(segments.bic.round(0).to_string(index=False))
        shown = ["segment_id", "segment", "accounts", "share", "churn_rate", "mrr_mean"]
        print(segments.profiles.loc[:, [*shown, *segments.model.axes_]].round(3).to_string(
            index=False))  # fmt: skip
        print(segments.notes[0])

        again = segment_accounts(wh, settings)
        same = again.assignments.equals(segments.assignments) and again.profiles.equals(
            segments.profiles
        )
        print(f"\nre-run on the same data: identical assignments and names: {same}")
        # Slightly changed data: 5% of the accounts left out, fitted afresh, without and
        # with the first run's profiles.
        from churnwatch.health._frame import analysis_cutoff, population_frame
        from churnwatch.segments import segment_frame
        from churnwatch.segments._run import _specs, _with_breadth

        specs, per_type = _specs(settings, wh)
        frame = _with_breadth(
            population_frame(wh, settings, [analysis_cutoff(wh, None)], specs), per_type
        )
        sample = frame.sample(frac=0.95, random_state=1)
        for label, previous in (("without", None), ("with", segments.profiles)):
            refit = segment_frame(sample, previous=previous, random_state=0)
            both = segments.assignments.merge(refit.assignments, on="account_id")
            kept = (both["segment_x"] == both["segment_y"]).mean()
            print(f"95% of the accounts, {label} the first run's profiles: k = {refit.k}; "
                  f"{kept:.1%} of the accounts keep their segment name")  # fmt: skip
        month_earlier = pd.Timestamp(end).date() - dt.timedelta(days=30)
        for label, previous in (("without", None), ("with", segments.profiles)):
            earlier = segment_accounts(wh, settings, as_of=month_earlier, previous=previous)
            both = segments.assignments.merge(earlier.assignments, on="account_id")
            kept = (both["segment_x"] == both["segment_y"]).mean()
            print(f"a month earlier, {label} the first run's profiles: k = {earlier.k}, "
                  f"names {sorted(earlier.profiles['segment'])}; {kept:.1%} of the "
                  f"{len(both):,} accounts in both keep their segment name")  # fmt: skip
    print(f"\ntotal {time.perf_counter() - started:.1f} s, peak RSS {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
