"""How far LightGBM alone goes on a static churn table: the best fixed setting, in hindsight.

    python benchmarks/tabular_ceiling.py                   # bank, 3 shuffles of 5 folds
    python benchmarks/tabular_ceiling.py --dataset telco --repeats 2

Every setting of a small grid of LightGBM parameters (around what the
default pipeline's search finds on these tables) is cross-validated on the
same folds that ``benchmarks/quality.py --repeats N`` uses: stratified 5-fold,
shuffled with seeds 0..N-1. Each setting is the pipeline's own estimator
(``LightGBMChurn``, no class weights): it stops early on the last 10% of its
training rows, then is refitted on all of them for the rounds found, as the
pipeline's search does.

The setting with the best mean ROC AUC over all the folds is picked *after*
seeing those folds' scores, so its figure is an optimistic ceiling for any
pipeline that must choose its settings from the training rows alone. When a
target sits above that ceiling, no tuning of the trees reaches it on the
same columns.
"""

from __future__ import annotations

import argparse
import itertools
import time
import warnings

import numpy as np
import pandas as pd
from quality import FOLDS, bank, telco  # benchmarks/ is on sys.path when a script runs
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from churnwatch.models import LightGBMChurn

#: The grid: leaves, smallest leaf, share of columns per tree, L2 penalty.
#: (A wider grid, with 4 and 32 leaves and an L2 penalty of 5, topped out lower.)
GRID = {
    "num_leaves": (8, 16, 24),
    "min_child_samples": (5, 20, 50),
    "colsample_bytree": (0.5, 0.7, 0.9),
    "reg_lambda": (0.0,),
}
FIXED = {
    "learning_rate": 0.02,
    "n_estimators": 3000,
    "imbalance": "none",
    "n_jobs": 1,
}


def fold_aucs(
    params: dict, table_x: pd.DataFrame, y: np.ndarray, splits: list[list[tuple]]
) -> list[float]:
    """ROC AUC of ``params`` on every fold of every shuffle."""
    aucs = []
    for folds in splits:
        for train, test in folds:
            stopped = LightGBMChurn(**params).fit(table_x.iloc[train], y[train])
            final = LightGBMChurn(
                **{**params, "n_estimators": stopped.best_iteration_},
                early_stopping_rounds=None,
            ).fit(table_x.iloc[train], y[train])
            scores = final.decision_function(table_x.iloc[test])
            aucs.append(float(roc_auc_score(y[test], scores)))
    return aucs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("bank", "telco"), default="bank")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore", category=UserWarning)
    frame, features, target = bank() if args.dataset == "bank" else telco()
    table_x, y = frame[features], frame[target].to_numpy()
    splits = [
        list(StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(table_x, y))
        for seed in range(args.repeats)
    ]
    started = time.perf_counter()
    rows = []
    for values in itertools.product(*GRID.values()):
        setting = dict(zip(GRID, values, strict=True))
        aucs = fold_aucs({**FIXED, **setting}, table_x, y, splits)
        per_repeat = np.asarray(aucs).reshape(args.repeats, FOLDS).mean(axis=1)
        rows.append({**setting, "roc_auc": float(np.mean(aucs)), "per_repeat": per_repeat})
    table = pd.DataFrame(rows).sort_values("roc_auc", ascending=False)
    print(
        f"{args.dataset}: {len(table)} settings, {FOLDS}-fold CV on {args.repeats} shuffle(s) "
        f"({time.perf_counter() - started:.0f} s); best first"
    )
    shown = table.head(8).copy()
    shown["per_repeat"] = shown["per_repeat"].map(lambda a: ", ".join(f"{v:.4f}" for v in a))
    print(shown.round(4).to_string(index=False))
    print(f"ceiling (best setting, picked in hindsight): ROC AUC {table['roc_auc'].iloc[0]:.4f}")


if __name__ == "__main__":
    main()
