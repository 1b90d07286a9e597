"""Scoring speed: every account of a large business, and one account alone.

    python benchmarks/scoring.py                      # 1M accounts, ~50M events
    python benchmarks/scoring.py --accounts 100000    # a smaller run

1. A churn model (30 days, subscription churn) is trained on a smaller
   simulated business (--train-accounts, monthly cutoffs, the default
   feature set, the default pipeline's search, which may choose a blend of
   the trees with a spline logistic regression; --search-iterations 0 for
   the trees alone) and registered and promoted.
2. The large business (simulated and ingested once into --work-dir, as in
   benchmarks/features.py) is scored as of its last day: features of every
   subscriber, calibrated probabilities, tiers, revenue at risk, reasons
   (exact SHAP) for every account above the lowest tier, written to
   ``risk_scores``. Printed: seconds per step, total, peak RSS.
3. One account through the library: from its feature row (as an API call
   holding the row would), the probability and its reasons, timed over
   repeated calls; and from the warehouse (``score_accounts(accounts=[id])``:
   the at-risk population, its features, probability and reasons).

Targets (2 cores): 1M accounts in under 60 s; one account under 50 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
from pathlib import Path

from _measure import peak_rss_mb  # benchmarks/ is on sys.path when a script runs

from features import DUCKDB_MEMORY_MB, prepare


def train(work: Path, accounts: int, search_iterations: int) -> Path:
    """Simulate a smaller business, train and promote a model; return the registry."""
    from churnwatch.ingest import ingest
    from churnwatch.labels import CutoffSchedule, LabelSpec
    from churnwatch.models import ModelRegistry, register_model, training_frame
    from churnwatch.simulate import simulate
    from churnwatch.warehouse import connect

    folder = (
        work / f"train_{accounts}"
        if not search_iterations
        else work / (f"train_{accounts}_search{search_iterations}")
    )
    registry = ModelRegistry(folder / "models")
    if registry.promoted():
        return folder / "models"
    result = simulate(folder / "data", n_accounts=accounts, seed=1, end="2024-12-31")
    settings = result.settings()
    with connect(f"duckdb:///{folder / 'warehouse.duckdb'}") as wh:
        ingest(settings, wh)
        frame = training_frame(
            wh,
            LabelSpec("subscription", (30,)),
            CutoffSchedule.every("2024-02-01", "2024-12-01", months=1),
            observation_end=str(result.observation_end),
        )
    started = time.perf_counter()
    found = register_model(
        frame, "churn_30d", registry, search_iterations=search_iterations, promote=True
    )
    weight = found.card.extra["params"].get("tree_weight", 1.0)
    print(f"model: trees weigh {weight} in the blend" if weight < 1 else "model: trees alone")
    print(
        f"trained on {len(frame.data):,} rows of {accounts:,} simulated accounts "
        f"in {time.perf_counter() - started:.0f} s"
    )
    return folder / "models"


def score_all(project: Path, models: Path) -> None:
    from churnwatch.models import ModelRegistry
    from churnwatch.scoring import score_accounts
    from churnwatch.warehouse import connect

    marks: list[tuple[float, str]] = []
    with connect(
        f"duckdb:///{project / 'warehouse.duckdb'}", memory_limit_mb=DUCKDB_MEMORY_MB
    ) as wh:
        started = time.perf_counter()
        run = score_accounts(
            wh,
            ModelRegistry(models),
            on_progress=lambda message: marks.append((time.perf_counter(), message)),
        )
        total = time.perf_counter() - started
    previous = started
    for moment, message in marks:
        print(f"  +{moment - previous:6.1f} s  {message}")
        previous = moment
    explained = int(run.scores["reason_1"].notna().sum())
    print(
        f"scored {len(run.scores):,} accounts (reasons for {explained:,}) in {total:.1f} s, "
        f"peak RSS {peak_rss_mb():,.0f} MiB"
    )
    # The same path for one account, features read from the warehouse: what
    # `churnwatch score --account ID` does.
    riskiest = str(run.scores.nlargest(1, "score")["account_id"].iloc[0])
    with connect(
        f"duckdb:///{project / 'warehouse.duckdb'}", memory_limit_mb=DUCKDB_MEMORY_MB
    ) as wh:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            score_accounts(wh, ModelRegistry(models), accounts=[riskiest], write=False)
            times.append(time.perf_counter() - started)
    print(
        f"one account from the warehouse (population, features, predict, reasons): "
        f"median {statistics.median(times):.2f} s over {len(times)} calls"
    )


def one_account(models: Path) -> None:
    """Predict and explain one account from a feature row, as an API call would."""
    from churnwatch.models import ModelRegistry

    loaded = ModelRegistry(models).load("churn_30d")
    model = loaded.model
    # A realistic row: the training reference of every feature.
    import pandas as pd

    row = pd.DataFrame([{name: model.references[name] for name in model.features}])
    times = []
    for _ in range(50):
        started = time.perf_counter()
        model.predict(row)
        model.reasons(row)
        times.append(time.perf_counter() - started)
    print(
        f"one account (predict + reasons): median {statistics.median(times) * 1000:.1f} ms, "
        f"max {max(times) * 1000:.1f} ms over {len(times)} calls"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--train-accounts", type=int, default=20_000)
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "cwf")
    parser.add_argument(
        "--search-iterations",
        type=int,
        default=12,
        help="the training's hyperparameter search (the default pipeline's 12; 0: the "
        "default settings, trees alone)",
    )
    args = parser.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    models = train(args.work_dir, args.train_accounts, args.search_iterations)
    project = prepare(args.work_dir, args.accounts)
    print(f"machine: {len(os.sched_getaffinity(0))} cores, {dt.date.today()}")
    score_all(project, models)
    one_account(models)


if __name__ == "__main__":
    main()
