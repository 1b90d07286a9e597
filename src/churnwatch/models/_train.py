"""Training one model on a frame: search, fit, then calibrate on later data.

A *frame* has one row per account and cutoff: ``account_id``, ``cutoff``
(absent for a static table such as a one-off export), the feature columns
and the target columns. :func:`train_model` turns it into a
:class:`TrainedModel` whose binary predictions are probabilities:

1. Rows whose target is unknown (censored) are dropped.
2. With cutoffs, the latest ``calibration_cutoffs`` cutoffs are held out.
   The model is trained on the cutoffs whose label window had closed by then
   (``cutoff + horizon <= first held-out cutoff``): that is all a model
   trained on that day could have known, so the held-out score is honest.
3. Hyperparameters are searched on the training rows with time-aware folds
   (or stratified folds for a static table), then the model is fitted. For
   LightGBM on a binary target a logistic regression is searched on the
   same folds too, and the two are blended in log-odds (:class:`BlendChurn`)
   when a blend ranks the folds' held-out rows better than the trees alone;
   the weight is chosen on those folds, never set per dataset.
4. A calibrator maps the model's scores to probabilities on the held-out
   cutoffs; a static table uses out-of-fold scores instead.

The calibrator keeps the model's ranking (see :class:`ScoreCalibrator`), so
calibration changes what a score *means*, never who is ranked above whom.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import ClassifierTags, RegressorTags

from churnwatch.errors import ModelError
from churnwatch.explain import Reason, reference_values, top_reasons
from churnwatch.features import FeatureSpec
from churnwatch.models._blend import BlendChurn, choose_tree_weight

# ScoreCalibrator is imported here too: models saved before it had a module
# of its own name it by this path.
from churnwatch.models._calibration import Calibration, ScoreCalibrator, _method
from churnwatch.models._estimators import LogisticChurn, make_estimator
from churnwatch.models._metrics import binary_metrics, regression_metrics
from churnwatch.models._search import SearchResult, search_params

__all__ = [
    "ChurnPipeline",
    "ModelKind",
    "Task",
    "TrainedModel",
    "horizon_of",
    "infer_task",
    "train_model",
]

ModelKind = Literal["lightgbm", "logistic", "mlp"]
Task = Literal["binary", "regression"]

_KEYS = ("account_id", "cutoff")
_SMALL_FRAME_ROWS = 20_000
#: Below this many training rows the defaults are used: folds would be too
#: small for the search to tell settings apart.
_SEARCH_MIN_ROWS = 200


def horizon_of(target: str) -> int | None:
    """The horizon in days a target column's name ends with (``churn_30d`` -> 30).

    Examples
    --------
    >>> horizon_of("churn_30d"), horizon_of("Churn")
    (30, None)
    """
    found = re.search(r"_(\d+)d$", target)
    return int(found.group(1)) if found else None


def infer_task(values: pd.Series) -> Task:
    """``"binary"`` when the known values are 0/1 (or yes/no booleans), else ``"regression"``.

    Examples
    --------
    >>> infer_task(pd.Series([0.0, 1.0, None])), infer_task(pd.Series([0.5, 3.0]))
    ('binary', 'regression')
    """
    known = values.dropna()
    if known.dtype == bool or set(pd.unique(known)) <= {0, 1}:
        return "binary"
    return "regression"


#: Knots of the spline terms of the logistic regression in a blend: the trees
#: see steps, the regression smooth curves (tenure, age), which is what each
#: adds to the other.
BLEND_SPLINE_KNOTS = 5


@dataclass
class TrainedModel:
    """A fitted model and everything needed to apply and explain it.

    Attributes
    ----------
    estimator : estimator
        The fitted model (scikit-learn contract).
    calibrator : ScoreCalibrator or None
        Maps the estimator's scores to probabilities (binary targets).
    target, task, kind : str
        What it predicts and how.
    features : tuple of str
        The frame columns it reads, in order.
    references : dict
        Typical value of each feature in training (median or most frequent),
        the yardstick of the plain-word reasons.
    specs : dict of str to FeatureSpec
        Specs of the features that have one, for the reasons' wording.
    params : dict
        The hyperparameters used.
    validation : dict
        Metrics on the held-out rows (binary: calibrated probabilities).
    training_window : tuple of datetime, optional
        First and last training cutoff.
    search_trials : pandas.DataFrame, optional
        Every hyperparameter set tried, with its score.
    """

    estimator: Any
    calibrator: ScoreCalibrator | None
    target: str
    task: Task
    kind: str
    features: tuple[str, ...]
    references: dict[str, Any]
    specs: dict[str, FeatureSpec] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, float] = field(default_factory=dict)
    training_window: tuple[dt.datetime, dt.datetime] | None = None
    search_trials: pd.DataFrame | None = None
    rows: int = 0

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """P(target = 1) for a binary target, else the predicted value, per row."""
        X = self._features(frame)
        if self.task == "regression":
            return np.asarray(self.estimator.predict(X), dtype=float)
        scores = np.asarray(self.estimator.predict_proba(X)[:, 1], dtype=float)
        return scores if self.calibrator is None else self.calibrator.transform(scores)

    def contributions(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature contributions to each row's score (log-odds for binary targets)."""
        values, base = self.estimator.contributions(self._features(frame))
        return np.asarray(values, dtype=float), np.asarray(base, dtype=float)

    def reasons(self, frame: pd.DataFrame, k: int = 3) -> list[list[Reason]]:
        """The ``k`` features that raise each row's score most, in plain words."""
        X = self._features(frame)
        values, _ = self.contributions(frame)
        return top_reasons(values, X, list(self.features), self.references, self.specs, k=k)

    def _features(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [name for name in self.features if name not in frame.columns]
        if missing:
            raise ModelError(
                f"model for {self.target!r} reads features the frame lacks: {', '.join(missing)}"
            )
        return frame.loc[:, list(self.features)]


def train_model(
    frame: pd.DataFrame,
    features: Sequence[str],
    target: str,
    *,
    kind: ModelKind = "lightgbm",
    task: Task | None = None,
    horizon_days: int | None = None,
    search_iterations: int = 12,
    calibration: Calibration = "auto",
    calibration_cutoffs: int = 1,
    params: Mapping[str, Any] | None = None,
    specs: Sequence[FeatureSpec] = (),
    blend: bool = True,
    random_state: int = 0,
) -> TrainedModel:
    """Train, tune and calibrate one model of ``target`` on a frame.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per account (and cutoff); see the module docstring.
    features : sequence of str
        The feature columns; text columns are categorical.
    target : str
        The target column (0/1 with nulls for binary targets).
    kind : {"lightgbm", "logistic", "mlp"}
        The model.
    task : {"binary", "regression"}, optional
        Inferred from the target's values when omitted.
    horizon_days : int, optional
        The label's horizon; read from the target's name (``churn_30d``)
        when omitted. Needed with cutoffs, to keep training labels that were
        still open at the held-out cutoffs out of training.
    search_iterations : int
        Hyperparameter sets tried; 0 uses ``params`` or the defaults.
    calibration : {"auto", "isotonic", "sigmoid", "none"}
        ``auto`` takes isotonic with enough held-out rows, else sigmoid.
    calibration_cutoffs : int
        How many of the latest cutoffs are held out for calibration.
    params : mapping, optional
        Hyperparameters that override the defaults (and the search).
    specs : sequence of FeatureSpec
        Specs of the features, for the wording of reasons.
    blend : bool
        With ``kind="lightgbm"``, a binary target and a search: also search
        a logistic regression on the same folds and blend the two in
        log-odds when the blend ranks the held-out rows better (the weight,
        ``tree_weight`` in ``params``, is chosen on those rows). The
        regression has spline terms (``BLEND_SPLINE_KNOTS``), so it adds
        smooth curves to the trees' steps. ``False`` keeps the trees alone.
    random_state : int
        Seed of the search, the model and the folds.

    Returns
    -------
    TrainedModel

    Raises
    ------
    ModelError
        If a column is missing, a binary target has one class only, or the
        cutoffs leave nothing to train on.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"account_id": [f"a{i}" for i in range(400)],
    ...                       "logins_30d": rng.poisson(5, 400)})
    >>> frame["churn"] = (rng.random(400) < 1 / (1 + frame["logins_30d"])).astype(float)
    >>> model = train_model(frame, ["logins_30d"], "churn", kind="logistic",
    ...                     search_iterations=0)
    >>> p = model.predict(frame)
    >>> bool(p[frame["logins_30d"] == 0].mean() > p[frame["logins_30d"] > 8].mean())
    True
    """
    _check_columns(frame, features, target)
    known = frame.loc[frame[target].notna()]
    task = task or infer_task(known[target])
    if task == "binary":
        _check_classes(known[target], target)
    horizon = horizon_days if horizon_days is not None else horizon_of(target)
    timed = "cutoff" in known.columns and known["cutoff"].nunique() >= 2
    if timed:
        known = known.sort_values(["cutoff", "account_id"], kind="stable")
    train, held = _split(known, target, task, calibration, calibration_cutoffs, horizon, timed)
    X, y = train.loc[:, list(features)], train[target].to_numpy(dtype=float)
    chosen: dict[str, Any] = {}
    trials = None
    linear: dict[str, Any] | None = None
    tree_weight = 1.0
    # Small frames train faster on one thread than on contended ones.
    threads = 1 if len(train) < _SMALL_FRAME_ROWS else -1
    if search_iterations > 0 and params is None and len(train) >= _SEARCH_MIN_ROWS:

        def search(searched: ModelKind, **fixed: Any) -> SearchResult:
            return search_params(
                searched,
                task,
                X,
                y,
                cutoffs=train["cutoff"] if timed else None,
                n_iter=search_iterations,
                random_state=random_state,
                horizon_days=horizon or 0,
                n_jobs=threads,
                fixed_params=fixed,
            )

        found = search(kind)
        chosen, trials = dict(found.best_params), found.trials
        if blend and kind == "lightgbm" and task == "binary":
            linear_found = search("logistic", spline_knots=BLEND_SPLINE_KNOTS)
            linear, tree_weight = _blend_choice(found, linear_found, y)
    chosen.update(params or {})
    settings = {"random_state": random_state, "n_jobs": threads, **chosen}
    estimator = make_estimator(kind, task, **settings)
    if linear is not None and tree_weight < 1:
        estimator = BlendChurn(estimator, LogisticChurn(**linear), tree_weight=tree_weight)
        chosen["tree_weight"] = tree_weight
        chosen.update({f"linear_{name}": value for name, value in linear.items()})
    estimator.fit(X, y)
    calibrator, validation = None, {}
    if task == "binary" and calibration != "none":
        if held is not None:
            scores = estimator.predict_proba(held.loc[:, list(features)])[:, 1]
            outcomes = held[target].to_numpy(dtype=float)
        else:
            scores, outcomes = _out_of_fold(estimator, X, y, random_state), y
        calibrator = ScoreCalibrator(_method(calibration, outcomes)).fit(scores, outcomes)
        validation = binary_metrics(outcomes, calibrator.transform(scores))
    elif held is not None:
        predicted = estimator.predict(held.loc[:, list(features)])
        validation = regression_metrics(held[target].to_numpy(dtype=float), predicted)
    window = None
    if timed:
        window = (train["cutoff"].min().to_pydatetime(), train["cutoff"].max().to_pydatetime())
    wanted = set(features)
    return TrainedModel(
        estimator=estimator,
        calibrator=calibrator,
        target=target,
        task=task,
        kind=kind,
        features=tuple(features),
        references=reference_values(X),
        specs={spec.name: spec for spec in specs if spec.name in wanted},
        params=chosen,
        validation={k: float(v) for k, v in validation.items()},
        training_window=window,
        search_trials=trials,
        rows=len(train),
    )


def _check_columns(frame: pd.DataFrame, features: Sequence[str], target: str) -> None:
    missing = [name for name in [*features, target] if name not in frame.columns]
    if missing:
        raise ModelError(
            f"the frame has no column {', '.join(map(repr, missing))}; "
            f"it has {', '.join(map(str, frame.columns))}"
        )
    if not features:
        raise ModelError("no feature columns given: name at least one")
    clash = sorted(set(features) & {target, *_KEYS})
    if clash:
        raise ModelError(f"{', '.join(clash)} cannot be a feature (it is a key or the target)")


def _check_classes(values: pd.Series, target: str) -> None:
    positives = int((values == 1).sum())
    if positives == 0 or positives == len(values):
        which = "positive" if positives == 0 else "negative"
        raise ModelError(
            f"target {target!r} has no {which} example among its {len(values):,} known rows; "
            "a model needs both (is the observation window long enough?)"
        )


def _split(
    known: pd.DataFrame,
    target: str,
    task: Task,
    calibration: Calibration,
    calibration_cutoffs: int,
    horizon: int | None,
    timed: bool,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Training rows, and the later rows held out for calibration (None: none)."""
    if not timed or (task == "binary" and calibration == "none"):
        return known, None
    if calibration_cutoffs < 1:
        raise ModelError("calibration_cutoffs must be at least 1")
    if horizon is None:
        raise ModelError(
            "with cutoffs, the label's horizon is needed to keep open labels out of "
            "training: give horizon_days (or a target named like churn_30d)"
        )
    cutoffs = np.sort(known["cutoff"].unique())
    if len(cutoffs) <= calibration_cutoffs:
        return known, None
    first_held = pd.Timestamp(cutoffs[-calibration_cutoffs])
    held = known.loc[known["cutoff"] >= first_held]
    # A label at cutoff c is known only at c + horizon: later ones were
    # still open when the held-out cutoffs came, so they may not train.
    train = known.loc[known["cutoff"] + pd.Timedelta(days=horizon) <= first_held]
    if task == "binary" and (
        train[target].nunique() < 2 or held[target].nunique() < 2 or len(held) < 50
    ):
        # Too few closed cutoffs before the held-out ones (a short history):
        # calibrate on out-of-fold scores of every row instead.
        return known, None
    if train.empty:
        raise ModelError(
            f"no training cutoff has its {horizon}-day label window closed before the "
            f"held-out cutoff {first_held:%Y-%m-%d}; add earlier cutoffs"
        )
    return train, held


def _blend_choice(
    trees: SearchResult, linear: SearchResult, y: np.ndarray
) -> tuple[dict[str, Any], float]:
    """The logistic regression's settings and the trees' weight in a blend of the two.

    Both searches ran on the same folds (same rows, cutoffs and seed); the
    weight is the one whose blend of their out-of-fold log-odds scores best
    there (1: the trees alone).
    """
    if trees.validation_scores is None or linear.validation_scores is None:
        return dict(linear.best_params), 1.0  # pragma: no cover - every search keeps them
    weight, _ = choose_tree_weight(
        y, trees.validation_scores, linear.validation_scores, trees.validation_folds
    )
    return dict(linear.best_params), weight


def _out_of_fold(estimator: Any, X: pd.DataFrame, y: np.ndarray, random_state: int) -> np.ndarray:
    """Scores of each row by a copy of the model that did not see it (5 folds)."""
    rarest = int(min(y.sum(), len(y) - y.sum()))
    if rarest < 2:
        raise ModelError(
            f"calibration needs at least 2 examples of each class; the target has {rarest} "
            "of one: add cutoffs or accounts, or train with calibration='none'"
        )
    scores = np.empty(len(y))
    folds = StratifiedKFold(min(5, rarest), shuffle=True, random_state=random_state)
    for train_rows, test_rows in folds.split(X, y):
        copy = clone(estimator).fit(X.iloc[train_rows], y[train_rows])
        scores[test_rows] = copy.predict_proba(X.iloc[test_rows])[:, 1]
    return scores


class ChurnPipeline(BaseEstimator):  # type: ignore[misc]
    """:func:`train_model` as a scikit-learn estimator, for backtests.

    Each ``fit`` runs the whole pipeline (search, fit, calibration) on the
    rows it is given, so a backtest measures what the pipeline would have
    produced at each fold's date, calibration included.

    Parameters
    ----------
    kind : {"lightgbm", "logistic", "mlp"}
        The model.
    search_iterations : int
        Hyperparameter sets tried at each fit.
    calibration : {"auto", "isotonic", "sigmoid", "none"}
        See :func:`train_model`.
    horizon_days : int, optional
        Days until a label is settled, to hold out calibration cutoffs.
    task : {"binary", "regression"}, optional
        Inferred from the target when omitted.
    blend : bool
        See :func:`train_model`.
    random_state : int
        Seed.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> X = pd.DataFrame({"logins_30d": rng.poisson(5, 300)})
    >>> y = (rng.random(300) < 1 / (1 + X["logins_30d"])).astype(float)
    >>> pipeline = ChurnPipeline("logistic", search_iterations=0).fit(X, y)
    >>> pipeline.predict_proba(X).shape
    (300, 2)
    """

    def __init__(
        self,
        kind: ModelKind = "lightgbm",
        search_iterations: int = 12,
        calibration: Calibration = "auto",
        horizon_days: int | None = None,
        task: Task | None = None,
        blend: bool = True,
        random_state: int = 0,
    ) -> None:
        self.kind = kind
        self.search_iterations = search_iterations
        self.calibration = calibration
        self.horizon_days = horizon_days
        self.task = task
        self.blend = blend
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        # A classifier to scikit-learn (scorers, stratified folds) unless told
        # it predicts a number.
        tags = super().__sklearn_tags__()
        if self.task == "regression":
            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
        else:
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags()
        return tags

    def fit(self, X: pd.DataFrame, y: Any, cutoffs: pd.Series | None = None) -> ChurnPipeline:
        """Train on ``X`` and ``y``; ``cutoffs`` date the rows, when known."""
        frame = X.reset_index(drop=True).copy()
        frame["_target"] = np.asarray(y, dtype=float)
        frame["account_id"] = np.arange(len(frame)).astype(str)
        if cutoffs is not None:
            frame["cutoff"] = np.asarray(cutoffs)
        self.model_ = train_model(
            frame,
            list(X.columns),
            "_target",
            kind=self.kind,
            task=self.task,
            horizon_days=self.horizon_days,
            search_iterations=self.search_iterations,
            calibration=self.calibration,
            blend=self.blend,
            random_state=self.random_state,
        )
        if self.model_.task == "binary":
            self.classes_ = np.array([0.0, 1.0])
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Predicted class (0/1 at probability 0.5) of a binary target, else the value."""
        predicted = self.model_.predict(X)
        if self.model_.task == "binary":
            labels: np.ndarray = (predicted >= 0.5).astype(float)
            return labels
        return predicted

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities of both classes, one row per row of ``X``."""
        p = self.model_.predict(X)
        return np.column_stack([1 - p, p])
