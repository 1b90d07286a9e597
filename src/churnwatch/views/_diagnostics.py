"""The model tables: features at scoring, metrics, curves, importance, PDP and drift.

Everything comes from the promoted churn models and their cards:

- ``model_metrics``: the card's backtest metrics (pooled over its folds, per
  method: the model and its baselines) and held-out metrics, plus the metrics
  of an *out-of-time check*: the promoted model applied to the settled cutoffs
  after its training window (the ones it never trained on), whose labels are
  known now.
- ``model_curves``: ROC, precision-recall and calibration of that check.
- ``importance``, ``pdp``: :func:`churnwatch.models.importance_table` and
  :func:`churnwatch.explain.partial_dependence` on the accounts scored today.
- ``drift``: :func:`churnwatch.models.psi` of today's features against the
  training profile saved in the card, as scoring reports it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.metrics import precision_recall_curve, roc_curve

from churnwatch.errors import ChurnwatchError
from churnwatch.features import FeatureSpec, compute_features
from churnwatch.labels import CutoffSchedule, LabelSpec, accounts_at_risk, make_labels
from churnwatch.models import (
    DriftProfile,
    ModelCard,
    binary_metrics,
    importance_table,
    psi,
    reliability_table,
)
from churnwatch.views._inputs import MissingInputError, RefreshInputs

__all__ = [
    "CHECK_CUTOFFS",
    "CHECK_ROWS",
    "PDP_FEATURES",
    "PDP_GRID_POINTS",
    "PDP_ROWS",
    "SAMPLE_ROWS",
    "features_table",
    "model_tables",
]

#: Settled cutoffs after the training window used by the out-of-time check.
CHECK_CUTOFFS = 3
#: Rows of the check scored at most (a fixed-seed sample of larger populations).
CHECK_ROWS = 50_000
#: Rows of today's features that importance, PDP and drift are computed on.
SAMPLE_ROWS = 20_000
#: Features (the most important numeric ones) with a partial-dependence curve.
PDP_FEATURES = 3
#: Rows a partial-dependence curve averages over, and its grid values: every
#: grid value costs one call of the model's predict, the slow part of a refresh.
PDP_ROWS = 500
PDP_GRID_POINTS = 10
#: Points kept per ROC or PR curve.
CURVE_POINTS = 200


def _specs(cards: dict[str, ModelCard]) -> list[FeatureSpec]:
    """The union of the promoted churn models' feature specs, by name."""
    specs: dict[str, FeatureSpec] = {}
    for card in cards.values():
        for spec in card.feature_specs or []:
            found = FeatureSpec.from_dict(spec)
            specs.setdefault(found.name, found)
    if not specs:
        raise MissingInputError(
            "the promoted models carry no feature specs to compute features from"
        )
    return list(specs.values())


def _cards(inputs: RefreshInputs) -> dict[str, ModelCard]:
    cards = inputs.promoted_churn()
    if not cards:
        raise MissingInputError("no promoted churn model: run 'churnwatch train'")
    return cards


def _today(inputs: RefreshInputs) -> pa.Table:
    """Every feature of the promoted churn models for the accounts scored today."""
    cards = _cards(inputs)
    try:
        population = inputs.latest_scores().select(["account_id", "scored_at"])
        population = population.rename_columns(["account_id", "cutoff"])
    except MissingInputError:
        card = next(iter(cards.values()))
        spec = LabelSpec.from_dict(card.label_spec or {"kind": "subscription"})
        population = accounts_at_risk(inputs.warehouse, spec, inputs.moment())
    population = population.sort_by("account_id")
    return compute_features(inputs.warehouse, population, _specs(cards))


def features_table(inputs: RefreshInputs) -> pa.Table:
    """``account_id`` and every numeric scoring feature at the latest cutoff."""
    found = inputs.shared("features", lambda: _today(inputs))
    keep = ["account_id"] + [
        name
        for name, kind in zip(found.column_names, found.schema.types, strict=True)
        if name not in ("account_id", "cutoff")
        and (pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_boolean(kind))
    ]
    table = found.select(keep)
    columns = [table["account_id"].cast(pa.string())] + [
        table[name].cast(pa.float64()) for name in keep[1:]
    ]
    return pa.table(columns, names=keep)


def model_tables(inputs: RefreshInputs) -> dict[str, pa.Table]:
    """``model_metrics``, ``model_curves``, ``importance``, ``pdp`` and ``drift``.

    Raises
    ------
    MissingInputError
        Without a promoted churn model.
    """
    cards = _cards(inputs)
    registry = inputs.registry
    assert registry is not None  # promoted models come from it
    metrics = [_card_metrics(card) for card in cards.values()]
    curves: list[pd.DataFrame] = []
    importance: list[pd.DataFrame] = []
    pdp: list[pd.DataFrame] = []
    drift: list[pd.DataFrame] = []
    today = inputs.shared("features", lambda: _today(inputs))
    if today.num_rows > SAMPLE_ROWS:
        # Sampled in Arrow: a million accounts' features never become one frame.
        rows = np.random.default_rng(0).choice(today.num_rows, SAMPLE_ROWS, replace=False)
        today = today.take(pa.array(np.sort(rows)))
    sample = today.to_pandas()
    for target, card in cards.items():
        model = registry.load(target, card.version).model
        checked = _out_of_time(inputs, card, model)
        if checked is not None:
            metrics.append(checked[0])
            curves.append(checked[1])
        if len(sample):
            ranked = importance_table(model, sample)
            importance.append(
                pd.DataFrame(
                    {
                        "target": target,
                        "feature": ranked["feature"].astype(str),
                        "importance": ranked["mean_abs_contribution"].astype(float),
                    }
                )
            )
            pdp.append(_pdp(model, sample, ranked["feature"].astype(str).tolist(), target))
            profile = card.extra.get("drift")
            if profile:
                found = psi(DriftProfile.from_dict(profile), sample)
                drift.append(found.loc[:, ["feature", "psi", "status"]].assign(target=target))
    tables = {
        "model_metrics": _table(metrics, ["target", "method", "cutoff", "metric", "value"]),
        "model_curves": _table(curves, ["target", "curve", "x", "y"]),
        "importance": _table(importance, ["target", "feature", "importance"]),
        "pdp": _table(pdp, ["target", "feature", "x", "y"]),
        "drift": _table(drift, ["target", "feature", "psi", "status"]),
    }
    # An empty part (no settled cutoff after training, no drift profile) is
    # left out, so meta says it is missing rather than showing an empty chart.
    return {name: table for name, table in tables.items() if table.num_rows}


def _table(parts: list[pd.DataFrame], columns: list[str]) -> pa.Table:
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    frame = frame.loc[:, columns]
    if "cutoff" in frame.columns:
        frame["cutoff"] = pd.to_datetime(frame["cutoff"], utc=True)
    return pa.Table.from_pandas(frame, preserve_index=False)


def _card_metrics(card: ModelCard) -> pd.DataFrame:
    """The card's backtest (pooled, per method) and held-out metrics in long form."""
    rows: list[dict[str, Any]] = []
    backtest = card.metrics.get("backtest", {})
    groups = {**{k: v for k, v in backtest.items() if isinstance(v, dict)}}
    if isinstance(card.metrics.get("holdout"), dict):
        groups["holdout"] = card.metrics["holdout"]
    for method, values in groups.items():
        for metric, value in values.items():
            if isinstance(value, int | float) and np.isfinite(value):
                rows.append(
                    {
                        "target": card.name,
                        "method": str(method),
                        "cutoff": pd.NaT,
                        "metric": str(metric),
                        "value": float(value),
                    }
                )
    return pd.DataFrame(rows, columns=["target", "method", "cutoff", "metric", "value"])


def _check_cutoffs(inputs: RefreshInputs, card: ModelCard) -> list[dt.datetime]:
    """Cutoffs after the training window whose labels have settled by now."""
    if not card.training_window or not card.label_spec:
        return []
    spec = LabelSpec.from_dict(card.label_spec)
    end = pd.Timestamp(card.training_window[1]).to_pydatetime()
    step = dt.timedelta(days=inputs.settings.model.cutoff_interval_days)
    settled = inputs.moment() - dt.timedelta(
        days=max(spec.horizon_days) + spec.settle_days + spec.lead_days
    )
    cutoffs = []
    at = end + step
    while at <= settled:
        cutoffs.append(at)
        at += step
    return cutoffs[-CHECK_CUTOFFS:]


def _out_of_time(
    inputs: RefreshInputs, card: ModelCard, model: Any
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Metrics and curves of the model on the settled cutoffs it never trained on."""
    cutoffs = _check_cutoffs(inputs, card)
    if not cutoffs or not card.label_spec:
        return None
    spec = LabelSpec.from_dict(card.label_spec)
    wh = inputs.warehouse
    labels = make_labels(
        wh, spec, CutoffSchedule.explicit(cutoffs), observation_end=inputs.moment()
    ).frame.to_pandas()
    column = card.name if card.name in labels.columns else spec.columns[-1]
    labels = labels.dropna(subset=[column])
    if len(labels) > CHECK_ROWS:
        labels = labels.sample(CHECK_ROWS, random_state=0)
    if labels.empty or labels[column].nunique() < 2:
        return None
    population = pa.Table.from_pandas(
        labels.loc[:, ["account_id", "cutoff"]].sort_values(["account_id", "cutoff"]),
        preserve_index=False,
    )
    features = compute_features(wh, population, _specs({card.name: card})).to_pandas()
    frame = features.merge(
        labels.loc[:, ["account_id", "cutoff", column]], on=["account_id", "cutoff"]
    )
    y = frame[column].to_numpy(dtype=float)
    try:
        p = np.asarray(model.predict(frame), dtype=float)
    except ChurnwatchError:
        return None
    last = max(cutoffs)
    found = binary_metrics(y, p)
    metrics = pd.DataFrame(
        {
            "target": card.name,
            "method": "out_of_time",
            "cutoff": last,
            "metric": list(found),
            "value": [float(v) for v in found.values()],
        }
    )
    return metrics, _curves(card.name, y, p)


def _curves(target: str, y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    fpr, tpr, _ = roc_curve(y, p)
    precision, recall, _ = precision_recall_curve(y, p)
    reliability = reliability_table(y, p).dropna(subset=["mean_predicted"])
    parts = [
        _thin("roc", fpr, tpr),
        _thin("pr", recall[::-1], precision[::-1]),
        _thin(
            "calibration",
            reliability["mean_predicted"].to_numpy(dtype=float),
            reliability["observed_rate"].to_numpy(dtype=float),
        ),
    ]
    return pd.concat(parts, ignore_index=True).assign(target=target)


def _thin(curve: str, x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    if len(x) > CURVE_POINTS:
        keep = np.unique(np.linspace(0, len(x) - 1, CURVE_POINTS).round().astype(int))
        x, y = x[keep], y[keep]
    return pd.DataFrame({"curve": curve, "x": x.astype(float), "y": y.astype(float)})


def _pdp(model: Any, sample: pd.DataFrame, ranked: list[str], target: str) -> pd.DataFrame:
    from churnwatch.explain import partial_dependence

    rows = sample.head(PDP_ROWS)
    numeric = [f for f in ranked if f in rows.columns and pd.api.types.is_numeric_dtype(rows[f])]
    parts = []
    for feature in numeric[:PDP_FEATURES]:
        found = partial_dependence(
            model.predict, rows, feature, grid_points=PDP_GRID_POINTS, ice_rows=0
        )
        parts.append(
            pd.DataFrame(
                {
                    "target": target,
                    "feature": feature,
                    "x": np.asarray(found.grid, dtype=float),
                    "y": np.asarray(found.average, dtype=float),
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
