"""Hyperparameter search: random draws from a space, scored on honest folds.

:func:`search_params` draws settings at random from a space per model kind
(the estimator's defaults are always trial 0, so a search never does worse
than no search on its own folds) and scores each on :func:`search_folds`:

- with cutoffs (at least three distinct ones), *rolling origin*: validate on
  one cutoff, train on the earlier cutoffs whose label window had closed by
  then; the rows of one cutoff are never split between training and
  validation, so no fold trains on the future;
- otherwise (a static table such as Telco), shuffled stratified K-fold, or
  K-fold for a regression target.

Binary targets are scored by ROC AUC, regression targets by the negative
mean absolute error (larger is better for both).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import mean_absolute_error, roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold

from churnwatch.errors import ConfigError, ModelError
from churnwatch.models._estimators import EstimatorKind, TaskKind, make_estimator

__all__ = ["SearchResult", "search_folds", "search_params", "search_space"]

Fold = tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]
Sampler = Callable[[np.random.Generator], Any]

#: Cap on boosting rounds during the search: early stopping ends trials sooner,
#: and a slow learning rate (0.01) needs room for about a thousand rounds.
_SEARCH_MAX_ROUNDS = 2000


def _uniform(low: float, high: float) -> Sampler:
    return lambda rng: round(float(rng.uniform(low, high)), 4)


def _log_uniform(low: float, high: float, *, integer: bool = False) -> Sampler:
    def draw(rng: np.random.Generator) -> Any:
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
        # Rounding a log-uniform draw to an int keeps every integer reachable.
        return min(int(high), max(int(low), round(value))) if integer else float(f"{value:.4g}")

    return draw


def _choice(*options: Any) -> Sampler:
    return lambda rng: options[int(rng.integers(len(options)))]


_LIGHTGBM_SPACE: dict[str, Sampler] = {
    # Small trees and strong penalties win on churn tables: signals are few and noisy.
    "num_leaves": _log_uniform(4, 63, integer=True),
    "learning_rate": _log_uniform(0.01, 0.1),
    "min_child_samples": _log_uniform(10, 100, integer=True),
    "reg_lambda": _uniform(0.0, 10.0),
    "colsample_bytree": _uniform(0.5, 1.0),
    "subsample": _uniform(0.6, 1.0),
}
_SPACES: dict[tuple[str, str], dict[str, Sampler]] = {
    ("lightgbm", "binary"): _LIGHTGBM_SPACE,
    ("lightgbm", "regression"): _LIGHTGBM_SPACE,
    ("logistic", "binary"): {
        "C": _log_uniform(1e-3, 10.0),
        "min_frequency": _choice(5, 10, 30),
    },
    ("logistic", "regression"): {
        "alpha": _log_uniform(1e-2, 1e3),
        "min_frequency": _choice(5, 10, 30),
    },
    ("mlp", "binary"): {
        "hidden_layer_sizes": _choice((16,), (32,), (64,), (32, 16), (64, 32)),
        "alpha": _log_uniform(1e-5, 1e-1),
        "learning_rate_init": _log_uniform(3e-4, 1e-2),
    },
}
_SPACES[("mlp", "regression")] = _SPACES[("mlp", "binary")]


def search_space(kind: EstimatorKind, task: TaskKind) -> tuple[str, ...]:
    """Names of the parameters :func:`search_params` draws for a model kind.

    Examples
    --------
    >>> search_space("logistic", "binary")
    ('C', 'min_frequency')
    """
    _check_kind(kind, task)
    return tuple(_SPACES[(kind, task)])


def _check_kind(kind: str, task: str) -> None:
    if kind not in get_args(EstimatorKind):
        raise ConfigError(f"kind must be one of {list(get_args(EstimatorKind))}, got {kind!r}")
    if task not in get_args(TaskKind):
        raise ConfigError(f"task must be one of {list(get_args(TaskKind))}, got {task!r}")


@dataclass(frozen=True)
class SearchResult:
    """What a search found.

    Parameters
    ----------
    best_params : dict
        Parameters of the best trial, ready for
        :func:`~churnwatch.models._estimators.make_estimator`. For LightGBM
        they fix ``n_estimators`` to the mean best round over the folds and
        turn early stopping off, so the final model trains on every row.
    trials : DataFrame
        One row per trial: ``trial``, one column per searched parameter,
        ``score`` (mean over the scored folds), ``score_std``, ``folds``
        (folds scored), ``best_iteration`` (LightGBM; mean over folds) and
        ``seconds``.
    validation_scores : ndarray of shape (n_rows,), optional
        What the best trial's fold models predicted for the rows each fold
        held out: log-odds for a binary target, the prediction for a
        regression target; NaN for rows no fold held out (the earliest
        cutoffs of time folds). Out-of-fold scores, for comparing or blending
        with another model on the same folds.
    validation_folds : tuple of ndarray
        The held-out row positions of each fold that was fitted.
    """

    best_params: dict[str, Any]
    trials: pd.DataFrame
    validation_scores: npt.NDArray[np.float64] | None = field(default=None, repr=False)
    validation_folds: tuple[npt.NDArray[np.intp], ...] = field(default=(), repr=False)

    @property
    def best_score(self) -> float:
        """Mean validation score of the best trial."""
        return float(self.trials["score"].max())


def search_folds(
    y: Any,
    *,
    cutoffs: pd.Series | None = None,
    task: TaskKind = "binary",
    n_splits: int = 5,
    horizon_days: int = 0,
    random_state: int = 0,
) -> list[Fold]:
    """Training and validation row positions for a search.

    Parameters
    ----------
    y : array-like of shape (n_rows,)
        The target (stratifies the random folds of a binary target).
    cutoffs : Series, optional
        Cutoff of each row. With at least 3 distinct cutoffs the folds roll
        forward in time: each of the last ``n_splits`` cutoffs that has
        training data is a validation fold, trained on the cutoffs ``c`` with
        ``c < T`` and ``c + horizon_days <= T``.
    task : {"binary", "regression"}, default="binary"
        Stratified folds for binary targets, plain K-fold for regression.
    n_splits : int, default=5
        Number of folds (the most, for time folds).
    horizon_days : int, default=0
        Label window in days: a training row's label must be known by the
        validation cutoff.
    random_state : int, default=0
        Seed of the shuffled folds.

    Returns
    -------
    list of (train positions, validation positions)
        Time folds list training rows by cutoff (stable), so a model's own
        early-stopping holdout is the latest training data.

    Examples
    --------
    >>> cutoffs = pd.Series(pd.to_datetime(["2024-01-01", "2024-01-08", "2024-01-15"] * 2))
    >>> folds = search_folds([0, 1] * 3, cutoffs=cutoffs, n_splits=2)
    >>> [(train.tolist(), valid.tolist()) for train, valid in folds]
    [([0, 3], [1, 4]), ([0, 3, 1, 4], [2, 5])]
    """
    labels = np.asarray(y)
    if isinstance(n_splits, bool) or not isinstance(n_splits, int) or n_splits < 2:
        raise ConfigError(f"n_splits must be an integer of at least 2, got {n_splits!r}")
    if cutoffs is not None:
        times = pd.to_datetime(pd.Series(cutoffs).reset_index(drop=True))
        if len(times) != len(labels):
            raise ModelError(f"cutoffs has {len(times)} values for {len(labels)} rows")
        if times.isna().any():
            raise ModelError("cutoffs has missing values: every row needs its cutoff")
        if times.nunique() >= 3:
            return _time_folds(times, n_splits, horizon_days)
    if task == "binary":
        _, counts = np.unique(labels, return_counts=True)
        if len(counts) < 2 or counts.min() < n_splits:
            raise ModelError(
                f"stratified {n_splits}-fold search needs at least {n_splits} rows of each "
                f"class, found {counts.tolist()}"
            )
        splitter: Any = StratifiedKFold(n_splits, shuffle=True, random_state=random_state)
    else:
        if len(labels) < n_splits:
            raise ModelError(f"{len(labels)} rows are too few for {n_splits}-fold search")
        splitter = KFold(n_splits, shuffle=True, random_state=random_state)
    return [
        (np.asarray(train, dtype=np.intp), np.asarray(valid, dtype=np.intp))
        for train, valid in splitter.split(np.zeros((len(labels), 1)), labels)
    ]


def _time_folds(times: pd.Series, n_splits: int, horizon_days: int) -> list[Fold]:
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, int) or horizon_days < 0:
        raise ConfigError(f"horizon_days must be a whole number >= 0, got {horizon_days!r}")
    horizon = pd.Timedelta(days=horizon_days)
    order = np.argsort(times.to_numpy(), kind="stable").astype(np.intp)
    ordered = times.to_numpy()[order]
    folds: list[Fold] = []
    for cutoff in np.unique(ordered)[1:]:
        # A training label must have been observable on the validation cutoff.
        seen = (ordered < cutoff) & (ordered + horizon <= cutoff)
        if seen.any():
            folds.append((order[seen], np.flatnonzero(times.to_numpy() == cutoff)))
    if not folds:
        raise ModelError(
            f"no cutoff has earlier cutoffs whose {horizon_days}-day labels are known by then: "
            "add cutoffs or shorten the horizon"
        )
    return folds[-n_splits:]


def _score(task: str, y_true: Any, predicted: Any) -> float:
    if task == "binary":
        if len(np.unique(y_true)) < 2:
            return math.nan  # AUC is undefined on one class: the fold is not scored.
        return float(roc_auc_score(y_true, predicted))
    return -float(mean_absolute_error(y_true, predicted))


def search_params(
    kind: EstimatorKind,
    task: TaskKind,
    X: pd.DataFrame,
    y: Any,
    *,
    cutoffs: pd.Series | None,
    n_iter: int = 20,
    random_state: int = 0,
    n_splits: int = 5,
    horizon_days: int = 0,
    n_jobs: int | None = -1,
    fixed_params: Mapping[str, Any] | None = None,
) -> SearchResult:
    """Random search of an estimator's hyperparameters on honest folds.

    Parameters
    ----------
    kind : {"lightgbm", "logistic", "mlp"}
        Model family.
    task : {"binary", "regression"}
        Target kind. Binary trials are scored by ROC AUC, regression trials
        by the negative mean absolute error.
    X : DataFrame
        Feature columns, rows sorted by cutoff when there are cutoffs.
    y : array-like of shape (n_rows,)
        Target, no missing value.
    cutoffs : Series or None
        Cutoff of each row; see :func:`search_folds`.
    n_iter : int, default=20
        Trials, the first being the estimator's defaults.
    random_state : int, default=0
        Seed of the draws, the folds and every estimator.
    n_splits, horizon_days
        Passed to :func:`search_folds`.
    n_jobs : int or None, default=-1
        LightGBM threads per fit (-1: LightGBM decides).
    fixed_params : mapping, optional
        Settings every trial shares (not searched); they are part of
        ``best_params``.

    Returns
    -------
    SearchResult
        The best parameters and every trial.

    Raises
    ------
    ModelError
        If no fold can be scored (e.g. every validation cutoff has one class).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"logins": rng.poisson(5, 200).astype(float)})
    >>> y = (X["logins"] + rng.normal(0, 2, 200) < 4).astype(int)
    >>> found = search_params("logistic", "binary", X, y, cutoffs=None, n_iter=3)
    >>> sorted(found.best_params)
    ['C', 'min_frequency']
    >>> len(found.trials)
    3
    """
    _check_kind(kind, task)
    if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 1:
        raise ConfigError(f"n_iter must be an integer of at least 1, got {n_iter!r}")
    if not isinstance(X, pd.DataFrame):
        raise ModelError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    target = np.asarray(y)
    if len(target) != len(X):
        raise ModelError(f"y has {len(target)} values for {len(X)} rows")
    folds = search_folds(
        target,
        cutoffs=cutoffs,
        task=task,
        n_splits=n_splits,
        horizon_days=horizon_days,
        random_state=random_state,
    )
    if task == "binary":
        # Early cutoffs may hold no churner yet: a fold cannot train on one class.
        folds = [(train, valid) for train, valid in folds if np.unique(target[train]).size == 2]
        if not folds:
            raise ModelError("no search fold has both classes in its training rows")
    space = _SPACES[(kind, task)]
    defaults = make_estimator(kind, task).get_params()
    rng = np.random.default_rng(random_state)
    fixed: dict[str, Any] = {"random_state": random_state, "n_jobs": n_jobs}
    shared = dict(fixed_params or {})
    clash = sorted(set(shared) & set(space))
    if clash:
        raise ConfigError(f"{', '.join(clash)} cannot be both fixed and searched")
    fixed.update(shared)
    if kind == "lightgbm":
        fixed["n_estimators"] = _SEARCH_MAX_ROUNDS
        fixed["early_stopping_rounds"] = defaults["early_stopping_rounds"] or 50
    rows: list[dict[str, Any]] = []
    drawn_params: list[dict[str, Any]] = []
    # Out-of-fold scores of the best trial so far: one array, not one per trial.
    best_scores: npt.NDArray[np.float64] | None = None
    best_so_far = -math.inf
    for trial in range(n_iter):
        drawn = (
            {name: defaults[name] for name in space}
            if trial == 0
            else {name: sample(rng) for name, sample in space.items()}
        )
        drawn_params.append(drawn)
        started = time.perf_counter()
        scores: list[float] = []
        rounds: list[int] = []
        held_out = np.full(len(target), np.nan)
        for train, valid in folds:
            estimator = make_estimator(kind, task, **drawn, **fixed)
            estimator.fit(X.iloc[train], target[train])
            if task == "binary":
                # Log-odds rank as the probabilities do, and blend linearly.
                predicted = estimator.decision_function(X.iloc[valid])
                truth = target[valid] == estimator.classes_[1]
            else:
                predicted, truth = estimator.predict(X.iloc[valid]), target[valid]
            held_out[valid] = predicted
            scores.append(_score(task, truth, predicted))
            if kind == "lightgbm":
                rounds.append(estimator.best_iteration_)
        scored = np.asarray([s for s in scores if not math.isnan(s)])
        row: dict[str, Any] = {"trial": trial, **drawn}
        row["score"] = float(scored.mean()) if len(scored) else math.nan
        row["score_std"] = float(scored.std()) if len(scored) else math.nan
        row["folds"] = len(scored)
        if kind == "lightgbm":
            row["best_iteration"] = float(np.mean(rounds))
        row["seconds"] = round(time.perf_counter() - started, 3)
        rows.append(row)
        # Strictly better only: ties keep the earlier trial, as the choice below does.
        if not math.isnan(row["score"]) and row["score"] > best_so_far:
            best_so_far, best_scores = row["score"], held_out
    trials = pd.DataFrame(rows)
    if trials["score"].isna().all():
        raise ModelError(
            "no search fold could be scored: every validation fold holds one class only"
        )
    # nanargmax takes the first maximum: ties go to the earlier trial (the defaults first).
    best = int(np.nanargmax(trials["score"].to_numpy()))
    best_params = {**shared, **drawn_params[best]}
    if kind == "lightgbm":
        # The final model trains on every row with the rounds the folds found best.
        best_params["n_estimators"] = max(1, round(rows[best]["best_iteration"]))
        best_params["early_stopping_rounds"] = None
    return SearchResult(
        best_params=best_params,
        trials=trials,
        validation_scores=best_scores,
        validation_folds=tuple(valid for _, valid in folds),
    )
