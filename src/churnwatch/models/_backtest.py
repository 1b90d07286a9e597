"""Backtests: how a churn model would have done, had it been used in the past.

A backtest replays history. For a past cutoff ``T`` it trains a model on what
was known at ``T`` and scores the accounts at risk at ``T``; their labels,
known now, say how good those scores were. Repeating that for several ``T``
(a *rolling origin*) shows whether the model is stable over time, and
pooling every fold's predictions gives one honest figure per model.

What was known at ``T`` is the subtle part. A training row at cutoff ``c``
has a label about ``[c, c + horizon)``: that label is only known once the
window has closed. So a fold testing on ``T`` trains only on cutoffs with
``c + horizon_days <= T``. Training on a later ``c`` would let the model see
outcomes that happen after ``T`` (often the very churn events the test rows
are about), and the backtest would promise more than the model can deliver.

Every backtest also scores a baseline that needs no model, so a model's
numbers can be read against something simple: for churn, ranking by the
recency feature (days since the account was last active: the longer, the
riskier); for a regression target, the last known value of the target
(``naive_feature``).

Examples
--------
>>> import pandas as pd
>>> cutoffs = pd.Series(pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"] * 2))
>>> [(f.test_cutoff.date().isoformat(), f.train_index.tolist(), f.test_index.tolist())
...  for f in rolling_origin_folds(cutoffs, horizon_days=31)]
[('2024-02-01', [0, 3], [1, 4]), ('2024-03-01', [0, 3], [2, 5])]

On 2024-03-01 the labels of 2024-02-01 (a 31-day window, to 2024-03-03) are
not known yet, so that fold still trains on January only.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from churnwatch.errors import ConfigError, ModelError
from churnwatch.models._metrics import binary_metrics, regression_metrics, reliability_table

__all__ = [
    "BacktestResult",
    "Fold",
    "backtest",
    "rolling_origin_folds",
]

Task = Literal["binary", "regression"]

#: Name of the built-in churn baseline: rank by the recency feature.
RECENCY_BASELINE = "recency"
#: Name of the built-in regression baseline: the last known value.
LAST_VALUE_BASELINE = "last_value"


class Fold(NamedTuple):
    """One backtest fold: the cutoff tested and the rows to train and test on.

    Indices are positions (as in scikit-learn's splitters), to be used with
    ``.iloc`` on the frame the cutoffs came from.

    Parameters
    ----------
    test_cutoff : pandas.Timestamp
        The cutoff ``T`` whose rows are scored.
    train_index : numpy.ndarray of int
        Positions of the rows whose cutoff ``c`` satisfies
        ``c + horizon_days <= T``.
    test_index : numpy.ndarray of int
        Positions of the rows whose cutoff is ``T``.
    """

    test_cutoff: pd.Timestamp
    train_index: npt.NDArray[np.intp]
    test_index: npt.NDArray[np.intp]


def _check_count(value: int | None, name: str, *, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1; got {value!r}.")


def rolling_origin_folds(
    cutoffs: pd.Series,
    *,
    horizon_days: int,
    test_cutoffs: int | None = None,
    min_train_cutoffs: int = 1,
) -> list[Fold]:
    """Rolling-origin folds over cutoffs that never train on an unknown label.

    A fold tests on every row of one cutoff ``T`` and trains on every row
    whose cutoff ``c`` satisfies ``c + horizon_days <= T``: the label window
    of a training row has closed by ``T``, so the model knows only what it
    could have known on that day. Rows of one cutoff are never split.

    Parameters
    ----------
    cutoffs : pandas.Series of datetime
        The cutoff of each row, in any order.
    horizon_days : int
        Days from a cutoff until its label is known: the label's horizon,
        plus its lead time if it has one.
    test_cutoffs : int, optional
        Test only the latest this many eligible cutoffs (default: every
        cutoff with enough training cutoffs before it). When fewer are
        eligible, all of them are tested.
    min_train_cutoffs : int, default 1
        Distinct training cutoffs a fold needs before it is tested.

    Returns
    -------
    list of Fold
        In order of test cutoff.

    Raises
    ------
    ConfigError
        When ``horizon_days``, ``test_cutoffs`` or ``min_train_cutoffs`` is
        not a positive whole number.
    ModelError
        When the cutoffs are not datetimes, hold a missing value, or allow
        no fold at all.

    Examples
    --------
    >>> import pandas as pd
    >>> cutoffs = pd.Series(pd.date_range("2024-01-01", periods=4, freq="7D"))
    >>> folds = rolling_origin_folds(cutoffs, horizon_days=14, test_cutoffs=1)
    >>> folds[0].test_cutoff.date(), folds[0].train_index.tolist(), folds[0].test_index.tolist()
    (datetime.date(2024, 1, 22), [0, 1], [3])
    """
    _check_count(horizon_days, "horizon_days", allow_none=False)
    _check_count(test_cutoffs, "test_cutoffs", allow_none=True)
    _check_count(min_train_cutoffs, "min_train_cutoffs", allow_none=False)
    if not pd.api.types.is_datetime64_any_dtype(cutoffs):
        raise ModelError(
            f"Cutoffs must be datetimes to be ordered in time; got dtype {cutoffs.dtype}."
        )
    if cutoffs.isna().any():
        raise ModelError(
            f"{int(cutoffs.isna().sum())} row(s) have no cutoff; every row of a backtest needs one."
        )
    values = pd.DatetimeIndex(cutoffs)
    distinct = values.unique().sort_values()
    horizon = pd.Timedelta(days=horizon_days)
    eligible: list[pd.Timestamp] = []
    for test_cutoff in distinct:
        closed = int((distinct + horizon <= test_cutoff).sum())
        if closed >= min_train_cutoffs:
            eligible.append(test_cutoff)
    if not eligible:
        span = (
            f"{len(distinct)} distinct cutoff(s) from {distinct[0]} to {distinct[-1]}"
            if len(distinct)
            else "no cutoff"
        )
        raise ModelError(
            f"No backtest fold is possible: the data has {span}, but testing on a cutoff "
            f"needs {min_train_cutoffs} earlier cutoff(s) whose {horizon_days}-day label "
            "window had closed by then. Add earlier cutoffs, space them further apart, or "
            "lower min_train_cutoffs."
        )
    if test_cutoffs is not None:
        eligible = eligible[-test_cutoffs:]
    return [
        Fold(
            test_cutoff=test_cutoff,
            train_index=np.flatnonzero(values + horizon <= test_cutoff),
            test_index=np.flatnonzero(values == test_cutoff),
        )
        for test_cutoff in eligible
    ]


@dataclass(frozen=True)
class BacktestResult:
    """Per-fold and pooled metrics of every model, and every prediction.

    Parameters
    ----------
    target : str
        The target column.
    task : {"binary", "regression"}
        How the target was scored.
    horizon_days : int
        The label horizon used to keep training labels in the past.
    folds : pandas.DataFrame
        One row per model and fold: ``model``, ``test_cutoff``, ``n_train``,
        ``n_test`` and the metrics (:func:`binary_metrics` or
        :func:`regression_metrics`).
    pooled : pandas.DataFrame
        One row per model: ``model`` and the metrics over every test row of
        every fold together.
    predictions : pandas.DataFrame
        ``model``, ``account_id``, ``cutoff``, ``y`` (the outcome) and ``p``
        (the predicted probability; for the recency baseline the risk score,
        a missing recency ranked riskiest; for a regression the prediction).
    score_only : tuple of str
        Models whose ``p`` ranks but is not a probability (the recency
        baseline): their log loss, Brier score and ECE are NaN.
    notes : tuple of str
        What was skipped, and why.
    """

    target: str
    task: Task
    horizon_days: int
    folds: pd.DataFrame
    pooled: pd.DataFrame
    predictions: pd.DataFrame
    score_only: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def models(self) -> tuple[str, ...]:
        """The model names, in the order they were scored."""
        return tuple(str(name) for name in self.pooled["model"])

    def _rows(self, model: str, last_fold_only: bool) -> pd.DataFrame:
        if model not in self.models:
            raise ModelError(f"No model {model!r} in this backtest; it has {list(self.models)}.")
        rows = self.predictions.loc[self.predictions["model"] == model]
        if last_fold_only:
            rows = rows.loc[rows["cutoff"] == rows["cutoff"].max()]
        return rows

    def reliability(self, model: str, last_fold_only: bool = True, bins: int = 10) -> pd.DataFrame:
        """The reliability table of one model's probabilities.

        Parameters
        ----------
        model : str
            A model name (see :attr:`models`).
        last_fold_only : bool, default True
            Use the latest test cutoff only (the model as it would be used
            today) rather than every fold.
        bins : int, default 10
            Equal-width probability bins.

        Returns
        -------
        pandas.DataFrame
            See :func:`reliability_table`.

        Raises
        ------
        ModelError
            For an unknown model, a regression target, or a baseline whose
            scores are not probabilities.
        """
        if self.task != "binary":
            raise ModelError("A reliability table needs probabilities; this is a regression.")
        if model in self.score_only:
            raise ModelError(f"{model!r} ranks accounts but gives no probabilities to calibrate.")
        rows = self._rows(model, last_fold_only)
        return reliability_table(rows["y"].to_numpy(), rows["p"].to_numpy(), bins=bins)

    def curves(
        self, last_fold_only: bool = False
    ) -> dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]]:
        """Outcomes and scores per model, ready for the ROC, PR and gains charts.

        Parameters
        ----------
        last_fold_only : bool, default False
            Keep only the latest test cutoff.

        Returns
        -------
        dict of str to (y, p)
            Float arrays per model name.
        """
        found: dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]] = {}
        for model in self.models:
            rows = self._rows(model, last_fold_only)
            found[model] = (rows["y"].to_numpy(dtype=float), rows["p"].to_numpy(dtype=float))
        return found


def _takes_cutoffs(estimator: Any) -> bool:
    """Whether ``estimator.fit`` accepts the training rows' dates as ``cutoffs``."""
    try:
        return "cutoffs" in inspect.signature(estimator.fit).parameters
    except (TypeError, ValueError):
        return False


def _infer_task(values: pd.Series) -> Task:
    return "binary" if bool(values.isin([0, 1]).all()) else "regression"


def _check_frame(
    frame: pd.DataFrame, features: Sequence[str], target: str, extra: Sequence[str | None]
) -> None:
    if "cutoff" not in frame.columns:
        raise ModelError(
            "A backtest needs a 'cutoff' column: a static table has no past to replay. "
            "Use cross-validation for it instead."
        )
    wanted = ["account_id", target, *features, *(name for name in extra if name is not None)]
    missing = [name for name in dict.fromkeys(wanted) if name not in frame.columns]
    if missing:
        raise ModelError(f"The frame has no column(s) {missing}; it has {list(frame.columns)}.")
    if not features:
        raise ModelError("A backtest needs at least one feature column.")


def _predict(estimator: Any, features: pd.DataFrame, task: Task) -> npt.NDArray[np.float64]:
    if task == "regression":
        return np.asarray(estimator.predict(features), dtype=float)
    proba = np.asarray(estimator.predict_proba(features), dtype=float)
    classes = np.asarray(getattr(estimator, "classes_", [0, 1]), dtype=float)
    column = np.flatnonzero(classes == 1.0)
    if column.size != 1:
        raise ModelError(f"The model's classes are {classes.tolist()}; one must be 1 (churned).")
    return proba[:, int(column[0])]


def backtest(
    frame: pd.DataFrame,
    features: Sequence[str],
    target: str,
    models: Mapping[str, Callable[[], Any]],
    *,
    horizon_days: int,
    recency_feature: str | None = None,
    naive_feature: str | None = None,
    task: Task | None = None,
    test_cutoffs: int | None = None,
    min_train_cutoffs: int = 1,
) -> BacktestResult:
    """Train and score each model on rolling-origin folds, with a baseline.

    Rows whose target is unknown (NaN, e.g. censored) are dropped first:
    they can neither teach nor judge. The remaining rows are sorted by
    cutoff then account, so an estimator that holds out its last rows for
    early stopping holds out the latest data. For each fold of
    :func:`rolling_origin_folds`, every model factory is called for a fresh
    estimator, fitted on the fold's training rows and asked for the test
    rows' probabilities (``predict_proba``) or predictions (``predict``).

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per ``(account_id, cutoff)`` with the features and target.
    features : sequence of str
        Feature columns, passed to the estimators in this order.
    target : str
        Target column: 0/1 (NaN unknown) or a number.
    models : mapping of str to callable
        Name to a factory returning a new, unfitted scikit-learn style
        estimator.
    horizon_days : int
        Days from a cutoff until its label is known (horizon plus lead).
    recency_feature : str, optional
        Churn baseline ``"recency"``: score = this column (larger is
        riskier; missing is riskiest). Skipped, with a note, when not given.
    naive_feature : str, optional
        Regression baseline ``"last_value"``: prediction = this column,
        missing values filled with the fold's median training target.
    task : {"binary", "regression"}, optional
        Inferred when not given: binary when every known target is 0 or 1.
    test_cutoffs : int, optional
        Test only the latest this many cutoffs.
    min_train_cutoffs : int, default 1
        Distinct training cutoffs a fold needs.

    Returns
    -------
    BacktestResult

    Raises
    ------
    ModelError
        When a column is missing, a baseline name is taken, no fold is
        possible, or no fold has both classes to train on.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> days = rng.integers(0, 60, 400)
    >>> offsets = pd.to_timedelta(np.repeat([0, 30, 60, 90], 100), unit="D")
    >>> frame = pd.DataFrame({
    ...     "account_id": [f"a{i % 100}" for i in range(400)],
    ...     "cutoff": pd.Timestamp("2024-01-01", tz="UTC") + offsets,
    ...     "days_since_login": days,
    ...     "churn_30d": (rng.random(400) < days / 80).astype(float),
    ... })
    >>> result = backtest(frame, ["days_since_login"], "churn_30d",
    ...                   {"logistic": LogisticRegression}, horizon_days=30,
    ...                   recency_feature="days_since_login")
    >>> print(result.folds[["model", "test_cutoff", "n_train", "n_test"]].to_string(index=False))
       model               test_cutoff  n_train  n_test
    logistic 2024-01-31 00:00:00+00:00      100     100
    logistic 2024-03-01 00:00:00+00:00      200     100
    logistic 2024-03-31 00:00:00+00:00      300     100
     recency 2024-01-31 00:00:00+00:00      100     100
     recency 2024-03-01 00:00:00+00:00      200     100
     recency 2024-03-31 00:00:00+00:00      300     100
    >>> bool(result.pooled.set_index("model").loc["logistic", "roc_auc"] > 0.6)
    True
    """
    _check_frame(frame, features, target, (recency_feature, naive_feature))
    known = frame.loc[frame[target].notna()]
    if known.empty:
        raise ModelError(f"Every value of {target!r} is unknown: there is nothing to backtest.")
    if task not in (None, "binary", "regression"):
        raise ConfigError(f"task must be 'binary' or 'regression'; got {task!r}.")
    task = task or _infer_task(known[target])
    if task == "binary" and not bool(known[target].isin([0, 1]).all()):
        raise ModelError(f"{target!r} must hold 0 and 1 for a binary backtest.")
    for reserved in (RECENCY_BASELINE, LAST_VALUE_BASELINE):
        if reserved in models:
            raise ModelError(
                f"{reserved!r} names a built-in baseline; give the model another name."
            )
    # Sorted by time so "the last rows" of a training set are its latest rows.
    data = known.sort_values(["cutoff", "account_id"], kind="stable")
    folds = rolling_origin_folds(
        data["cutoff"],
        horizon_days=horizon_days,
        test_cutoffs=test_cutoffs,
        min_train_cutoffs=min_train_cutoffs,
    )
    notes: list[str] = []
    baseline = _baseline(data, task, recency_feature, naive_feature, notes)
    outcomes = data[target].to_numpy(dtype=float)
    inputs = data.loc[:, list(features)]
    fold_rows: list[dict[str, Any]] = []
    predictions: list[pd.DataFrame] = []
    for fold in folds:
        y_train = outcomes[fold.train_index]
        if task == "binary" and np.unique(y_train).size < 2:
            notes.append(f"Fold {fold.test_cutoff} skipped: its training rows hold only one class.")
            continue
        train_inputs = inputs.iloc[fold.train_index]
        test_inputs = inputs.iloc[fold.test_index]
        train_cutoffs = data["cutoff"].iloc[fold.train_index]
        scored: dict[str, npt.NDArray[np.float64]] = {}
        for name, factory in models.items():
            estimator = factory()
            if _takes_cutoffs(estimator):
                # A pipeline that calibrates on its own latest cutoffs needs their dates.
                estimator.fit(train_inputs, y_train, cutoffs=train_cutoffs)
            else:
                estimator.fit(train_inputs, y_train)
            scored[name] = _predict(estimator, test_inputs, task)
            if scored[name].shape != (fold.test_index.size,) or not np.isfinite(scored[name]).all():
                raise ModelError(
                    f"Model {name!r} gave {scored[name].shape} predictions, or some not finite, "
                    f"for the {fold.test_index.size} rows of cutoff {fold.test_cutoff}."
                )
        if baseline is not None:
            scored[baseline[0]] = baseline[1](fold, outcomes)
        test = data.iloc[fold.test_index]
        y_test = outcomes[fold.test_index]
        for name, p in scored.items():
            fold_rows.append(
                {
                    "model": name,
                    "test_cutoff": fold.test_cutoff,
                    "n_train": int(fold.train_index.size),
                    "n_test": int(fold.test_index.size),
                    **_metrics(task, y_test, p, probabilities=name != RECENCY_BASELINE),
                }
            )
            predictions.append(
                pd.DataFrame(
                    {
                        "model": name,
                        # .array keeps the dtypes (str, datetime64[us, UTC]) as they were.
                        "account_id": test["account_id"].array,
                        "cutoff": test["cutoff"].array,
                        "y": y_test,
                        "p": p,
                    }
                )
            )
    if not fold_rows:
        raise ModelError(
            "Every backtest fold was skipped: " + " ".join(notes) + " Add more labelled cutoffs."
        )
    # Rows of one model together, models in the order given, folds in time order.
    fold_frame = pd.DataFrame(fold_rows)
    order = {name: i for i, name in enumerate(dict.fromkeys(fold_frame["model"]))}
    fold_frame = (
        fold_frame.assign(_order=fold_frame["model"].map(order))
        .sort_values(["_order", "test_cutoff"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )
    prediction_frame = pd.concat(predictions, ignore_index=True)
    score_only = (RECENCY_BASELINE,) if baseline and baseline[0] == RECENCY_BASELINE else ()
    pooled = pd.DataFrame(
        [
            {
                "model": name,
                **_metrics(
                    task,
                    rows["y"].to_numpy(dtype=float),
                    rows["p"].to_numpy(dtype=float),
                    probabilities=name not in score_only,
                ),
            }
            for name, rows in prediction_frame.groupby("model", sort=False)
        ]
    )
    return BacktestResult(
        target=target,
        task=task,
        horizon_days=horizon_days,
        folds=fold_frame,
        pooled=pooled.reset_index(drop=True),
        predictions=prediction_frame,
        score_only=score_only,
        notes=tuple(notes),
    )


def _metrics(
    task: Task, y: npt.NDArray[np.float64], p: npt.NDArray[np.float64], *, probabilities: bool
) -> dict[str, float]:
    if task == "regression":
        return regression_metrics(y, p)
    return binary_metrics(y, p, probabilities=probabilities)


def _numeric(data: pd.DataFrame, column: str, setting: str) -> npt.NDArray[np.float64]:
    if not pd.api.types.is_numeric_dtype(data[column]):
        raise ModelError(
            f"{setting} {column!r} must be a numeric column; it has dtype {data[column].dtype}."
        )
    return data[column].to_numpy(dtype=float, na_value=np.nan)


_Baseline = tuple[str, Callable[[Fold, npt.NDArray[np.float64]], npt.NDArray[np.float64]]]


def _baseline(
    data: pd.DataFrame,
    task: Task,
    recency_feature: str | None,
    naive_feature: str | None,
    notes: list[str],
) -> _Baseline | None:
    """The baseline's name and a function from (fold, outcomes) to its scores."""
    if task == "binary":
        if naive_feature is not None:
            notes.append("naive_feature ignored: it is the baseline of a regression target.")
        if recency_feature is None:
            notes.append("Recency baseline skipped: no recency_feature was given.")
            return None
        recency = _numeric(data, recency_feature, "recency_feature")
        # A missing recency means no activity was ever seen: the riskiest account. Any
        # value above every observed one ranks it so; one constant for the whole frame
        # keeps the pooled ranking across folds consistent. It orders rows, nothing more,
        # so using the whole column leaks nothing into the scores' ranking within a fold.
        finite = recency[np.isfinite(recency)]
        riskiest = float(finite.max()) + 1.0 if finite.size else 1.0
        filled = np.where(np.isfinite(recency), recency, riskiest)
        return RECENCY_BASELINE, lambda fold, outcomes: filled[fold.test_index]
    if recency_feature is not None:
        notes.append("recency_feature ignored: it is the baseline of a churn (0/1) target.")
    if naive_feature is None:
        notes.append("Last-value baseline skipped: no naive_feature was given.")
        return None
    last = _numeric(data, naive_feature, "naive_feature")

    def last_value(fold: Fold, outcomes: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        # Filled from the training rows only: the test rows' targets are the answer.
        fill = float(np.median(outcomes[fold.train_index])) if fold.train_index.size else 0.0
        values = last[fold.test_index]
        return np.where(np.isfinite(values), values, fill)

    return LAST_VALUE_BASELINE, last_value
