"""The steps the CLI and the demo run: backtest a frame, train and register a model."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlglot import exp

from churnwatch.errors import ModelError
from churnwatch.features import FeatureSpec
from churnwatch.labels import CutoffSchedule, LabelSpec, infer_observation_end
from churnwatch.labels._schedule import to_utc
from churnwatch.models._backtest import BacktestResult, backtest
from churnwatch.models._drift import DriftProfile
from churnwatch.models._frame import TrainingFrame
from churnwatch.models._registry import ModelCard, ModelRegistry, fingerprint
from churnwatch.models._train import (
    ChurnPipeline,
    ModelKind,
    Task,
    TrainedModel,
    train_model,
)
from churnwatch.warehouse import Warehouse

__all__ = [
    "RegisteredModel",
    "backtest_frame",
    "data_time",
    "recency_feature",
    "register_model",
    "training_schedule",
]

#: The logistic-regression baseline every backtest reports beside the model.
LOGISTIC_BASELINE = "logistic"


def recency_feature(specs: Sequence[FeatureSpec]) -> str | None:
    """The feature of the recency baseline: days since the last event of any type.

    Examples
    --------
    >>> recency_feature([FeatureSpec("days_since_login", "recency", event_type="login"),
    ...                  FeatureSpec("days_since_last_event", "recency")])
    'days_since_last_event'
    """
    unfiltered = [
        spec.name
        for spec in specs
        if spec.kind == "recency" and spec.event_type is None and spec.property_name is None
    ]
    return unfiltered[0] if unfiltered else None


def backtest_frame(
    frame: TrainingFrame,
    target: str,
    *,
    kind: ModelKind = "lightgbm",
    search_iterations: int = 12,
    test_cutoffs: int | None = None,
    random_state: int = 0,
) -> BacktestResult:
    """Backtest the default pipeline on a training frame, beside two baselines.

    At each test cutoff ``T`` the pipeline (search, fit, calibration) trains
    on the cutoffs whose labels had settled by ``T`` and scores ``T``. The
    baselines are ``recency`` (days since the last event, the rule a
    customer-success team uses without a model) and ``logistic`` (a scaled,
    one-hot logistic regression on the same features, calibrated the same way).

    Parameters
    ----------
    frame : TrainingFrame
        From :func:`training_frame`.
    target : str
        One of ``frame.targets``.
    kind : {"lightgbm", "logistic", "mlp"}
        The model under test (named by its kind in the results).
    search_iterations : int
        Hyperparameter sets tried in each fold.
    test_cutoffs : int, optional
        Test only the latest this many cutoffs.
    random_state : int
        Seed.

    Returns
    -------
    BacktestResult
    """
    delay = frame.delay_days(target)
    task: Task = "binary" if frame.label_table(target).spec.binary else "regression"
    models: dict[str, Any] = {
        kind: lambda: ChurnPipeline(
            kind, search_iterations, horizon_days=delay, task=task, random_state=random_state
        )
    }
    if kind != LOGISTIC_BASELINE:
        # For a regression target the linear baseline is a ridge regression.
        models[LOGISTIC_BASELINE] = lambda: ChurnPipeline(
            "logistic", 0, horizon_days=delay, task=task, random_state=random_state
        )
    return backtest(
        frame.data,
        list(frame.features),
        target,
        models,
        horizon_days=delay,
        recency_feature=recency_feature(frame.specs) if task == "binary" else None,
        naive_feature=_naive_feature(frame, target) if task == "regression" else None,
        task=task,
        test_cutoffs=test_cutoffs,
    )


def _naive_feature(frame: TrainingFrame, target: str) -> str | None:
    """The last period's value of a regression target, for the "last value" baseline.

    Next month's sessions are predicted by last month's count of the same
    events; next month's revenue has no such feature and gets no baseline.
    """
    spec = frame.label_table(target).spec
    horizon = spec.horizon_days[spec.columns.index(target)]
    if spec.kind != "activity":
        return None
    wanted = spec.event_types[0] if spec.event_types and len(spec.event_types) == 1 else None
    for feature in frame.specs:
        if (
            feature.kind == "aggregate"
            and feature.function == "count"
            and feature.column is None
            and feature.window_days == horizon
            and feature.event_type == wanted
            and feature.property_name is None
        ):
            return feature.name
    return None


@dataclass
class RegisteredModel:
    """A model trained on a frame and saved in the registry.

    Attributes
    ----------
    model : TrainedModel
        The fitted, calibrated model.
    card : ModelCard
        Its registry entry.
    """

    model: TrainedModel
    card: ModelCard


def register_model(
    frame: TrainingFrame,
    target: str,
    registry: ModelRegistry,
    *,
    kind: ModelKind = "lightgbm",
    search_iterations: int = 12,
    backtest_result: BacktestResult | None = None,
    promote: bool = False,
    random_state: int = 0,
) -> RegisteredModel:
    """Train the pipeline on every settled label of ``frame`` and save it.

    The card records the feature and label specs, the training window, the
    held-out (calibration) metrics and, when given, the backtest's pooled
    metrics, a fingerprint of the training rows, and the training
    distribution of every feature for the drift check at scoring time.

    Parameters
    ----------
    frame : TrainingFrame
        From :func:`training_frame`.
    target : str
        One of ``frame.targets``; the registry name of the model.
    registry : ModelRegistry
        Where to save it.
    kind : {"lightgbm", "logistic", "mlp"}
        The model.
    search_iterations : int
        Hyperparameter sets tried.
    backtest_result : BacktestResult, optional
        Its backtest, whose pooled metrics go on the card.
    promote : bool
        Make it the version scoring applies.
    random_state : int
        Seed.

    Returns
    -------
    RegisteredModel
    """
    model = train_model(
        frame.data,
        list(frame.features),
        target,
        kind=kind,
        horizon_days=frame.delay_days(target),
        search_iterations=search_iterations,
        specs=frame.specs,
        random_state=random_state,
    )
    metrics: dict[str, Any] = {"holdout": model.validation}
    if backtest_result is not None:
        pooled = backtest_result.pooled.set_index("model")
        metrics["backtest"] = {
            name: {k: _plain(v) for k, v in row.items()} for name, row in pooled.iterrows()
        }
    known = frame.data.loc[frame.data[target].notna()]
    columns = ["account_id", "cutoff", *frame.features, target]
    profile = DriftProfile.fit(known, list(frame.features))
    card = registry.save(
        model,
        name=target,
        features=list(frame.features),
        metrics=metrics,
        data_fingerprint=fingerprint(known.loc[:, columns]),
        feature_specs=list(frame.specs),
        label_spec=_label_spec(frame, target),
        training_window=model.training_window,
        extra={
            "kind": kind,
            "params": {k: _plain(v) for k, v in model.params.items()},
            "rows": model.rows,
            "calibration": None if model.calibrator is None else model.calibrator.method,
            "observation_end": frame.label_table(target).observation_end.at.isoformat(),
            "drift": profile.to_dict(),
        },
    )
    if promote:
        card = registry.promote(target, card.version)
    return RegisteredModel(model=model, card=card)


def _label_spec(frame: TrainingFrame, target: str) -> dict[str, Any]:
    spec = frame.label_table(target).spec
    return {k: _plain(v) for k, v in dataclasses.asdict(spec).items()}


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of numpy scalars and tuples."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def training_schedule(
    warehouse: Warehouse,
    spec: LabelSpec,
    *,
    start: str | dt.date | None = None,
    every_days: int = 30,
    observation_end: str | None = None,
) -> CutoffSchedule:
    """Cutoffs every ``every_days`` from ``start`` up to the observation end.

    Without ``start``, the first cutoff comes ``every_days`` after the first
    event or subscription, so that the earliest examples have some history.

    Raises
    ------
    ModelError
        If the warehouse holds no dated rows.
    """
    end = (
        to_utc(observation_end, "observation_end")
        if observation_end is not None
        else infer_observation_end(warehouse, spec).at
    )
    if start is None:
        first = data_time(warehouse, "MIN")
        if first is None:
            raise ModelError("the warehouse holds no events or subscriptions to train on")
        begin: str | dt.date | dt.datetime = (first + dt.timedelta(days=every_days)).date()
    else:
        begin = start
    return CutoffSchedule.every(begin, end, days=every_days)


def data_time(warehouse: Warehouse, which: str) -> dt.datetime | None:
    """When the data starts (``which="MIN"``) or ends (``"MAX"``).

    The event log decides when it has rows: subscriptions often reach back
    years before the events were first exported, and cutoffs in those years
    would see accounts with no activity at all. Without events, the
    subscriptions' starts decide.
    """
    for table, column in (("events", "event_time"), ("subscriptions", "started_at")):
        value = (
            warehouse.query(exp.select(exp.func(which, exp.column(column))).from_(table))
            .column(0)[0]
            .as_py()
        )
        if value is not None:
            found: dt.datetime = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
            return found.astimezone(dt.UTC)
    return None
