"""How good a health score is: its ranking of later churn, at past cutoffs.

A health score is a set of rules someone wrote; :func:`health_backtest`
says how well they would have worked. At each past cutoff the score is
computed from what was known then, and set against the churn label over
the horizon that followed (:func:`churnwatch.labels.make_labels`): censored
examples are left out, never counted as stayers. The metrics are those of
the churn models (:func:`churnwatch.models.binary_metrics`) on the risk
``100 - score``: ROC AUC, and lift and recall in the lowest-scored 10%.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlglot import exp

from churnwatch._health_settings import HealthComponent
from churnwatch.config import Settings
from churnwatch.errors import AnalysisError, LabelError, ModelError
from churnwatch.features import compute_features
from churnwatch.features._portable import instant
from churnwatch.health._frame import project_specs
from churnwatch.health._run import health_components, model_target
from churnwatch.health._score import HEALTH_TIERS, _tiers, score_health
from churnwatch.labels import LabelSpec, make_labels
from churnwatch.models._metrics import binary_metrics
from churnwatch.warehouse import Warehouse

__all__ = ["HealthBacktest", "backtest_health", "health_backtest"]

_METRICS = ("roc_auc", "lift_top10", "recall_top10", "n", "positives", "base_rate")


@dataclass
class HealthBacktest:
    """A health score set against later churn.

    Attributes
    ----------
    metrics : pandas.DataFrame
        One row per cutoff and score (``health``, and ``model`` when model
        scores were given), then the pooled rows (``cutoff`` "pooled"):
        ``cutoff, score, roc_auc, lift_top10, recall_top10, n, positives,
        base_rate``. The ranking is by risk, ``100 - score``: lift and recall
        are those of the lowest-scored 10%.
    tiers : pandas.DataFrame
        Churn per tier, per cutoff and pooled: ``cutoff, score, tier,
        accounts, churners, churn_rate``. A score worth its name has churn
        rising from Thriving to Critical.
    scores : pandas.DataFrame
        The scored examples: ``account_id, cutoff, health_score,
        health_tier``, the label, and ``model_health`` when given.
    label : str
        The label column.
    notes : list of str
        What was left out (unscorable rows, absent components).
    """

    metrics: pd.DataFrame
    tiers: pd.DataFrame
    scores: pd.DataFrame
    label: str
    notes: list[str] = field(default_factory=list)

    @property
    def pooled(self) -> pd.DataFrame:
        """The pooled metrics, one row per score."""
        return self.metrics.loc[self.metrics["cutoff"] == "pooled"].reset_index(drop=True)


def _day(cutoff: object) -> str:
    """A cutoff as its ISO date, the key of its rows in the tables."""
    return str(pd.Timestamp(str(cutoff)).date())


def _tier_rows(frame: pd.DataFrame, score: str, label: str, cutoff: str) -> list[dict[str, object]]:
    tier_column = "health_tier" if score == "health" else "model_tier"
    rows: list[dict[str, object]] = []
    for tier, _ in HEALTH_TIERS:
        mine = frame.loc[frame[tier_column] == tier, label]
        rows.append(
            {
                "cutoff": cutoff,
                "score": score,
                "tier": tier,
                "accounts": len(mine),
                "churners": int(mine.sum()),
                "churn_rate": float(mine.mean()) if len(mine) else np.nan,
            }
        )
    return rows


def _metric_row(frame: pd.DataFrame, score: str, label: str, cutoff: str) -> dict[str, object]:
    column = "health_score" if score == "health" else "model_health"
    found = binary_metrics(
        frame[label].to_numpy(dtype=float),
        100.0 - frame[column].to_numpy(dtype=float),
        probabilities=False,
    )
    return {"cutoff": cutoff, "score": score, **{k: found[k] for k in _METRICS}}


def health_backtest(
    frame: pd.DataFrame,
    label: str,
    components: Sequence[HealthComponent] | None = None,
    *,
    model_probability: str | None = None,
) -> HealthBacktest:
    """Backtest a health score on a frame of past cutoffs and their later churn.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``account_id``, ``cutoff``, the metric columns and the label column
        (0/1; NaN where censored, such rows are left out).
    label : str
        The label column, such as ``churn_30d``.
    components : sequence of HealthComponent, optional
        As in :func:`score_health` (default: the five default signals the
        frame has).
    model_probability : str, optional
        A column of calibrated churn probabilities: the model-based score
        ``100 * (1 - P)`` is backtested beside, on the rows that have one.

    Returns
    -------
    HealthBacktest

    Raises
    ------
    AnalysisError
        If a column is missing or no row has both a label and a score.

    Examples
    --------
    >>> frame = pd.DataFrame({
    ...     "account_id": list("abcd"), "cutoff": ["2024-05-01"] * 4,
    ...     "days_since_last_event": [1.0, 10.0, 20.0, 40.0],
    ...     "churn_30d": [0, 0, 1, 1]})
    >>> recency = HealthComponent("days_since_last_event", "lower_is_better", bad=30, good=3)
    >>> result = health_backtest(frame, "churn_30d", [recency])
    >>> result.pooled[["score", "roc_auc", "n"]]
        score  roc_auc    n
    0  health      1.0  4.0
    """
    needed = ["account_id", "cutoff", label, *([model_probability] if model_probability else [])]
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise AnalysisError(f"the backtest frame has no column(s) {', '.join(absent)}")
    notes: list[str] = []
    known = frame.loc[frame[label].notna()].reset_index(drop=True)
    if len(known) < len(frame):
        notes.append(f"{len(frame) - len(known):,} censored example(s) left out")
    scored = score_health(known, components)
    notes += scored.notes
    result = scored.scores.loc[:, ["account_id", "cutoff", "health_score", "health_tier"]]
    result[label] = known[label].to_numpy(dtype=float)
    if model_probability:
        probability = known[model_probability].to_numpy(dtype=float)
        result["model_health"] = np.round(100.0 * (1.0 - probability), 6)
        result["model_tier"] = _tiers(result["model_health"].to_numpy(dtype=float))
    unscored = result["health_score"].isna()
    if unscored.any():
        notes.append(f"{int(unscored.sum()):,} example(s) with no health signal left out")
    result = result.loc[~unscored].reset_index(drop=True)
    if result.empty:
        raise AnalysisError("no example has both a settled label and a health score")
    scores = ["health", *(["model"] if model_probability else [])]
    metric_rows: list[dict[str, object]] = []
    tier_rows: list[dict[str, object]] = []
    groups = [(_day(c), part) for c, part in result.groupby("cutoff")]
    for name, part in [*groups, ("pooled", result)]:
        for score in scores:
            rows = part if score == "health" else part.loc[part["model_health"].notna()]
            if rows.empty:
                continue
            metric_rows.append(_metric_row(rows, score, label, name))
            tier_rows += _tier_rows(rows, score, label, name)
    if model_probability and result["model_health"].isna().all():
        notes.append("no model score at these cutoffs: the model-based score is not backtested")
    return HealthBacktest(
        metrics=pd.DataFrame(metric_rows),
        tiers=pd.DataFrame(tier_rows),
        scores=result,
        label=label,
        notes=notes,
    )


def _model_probabilities(
    warehouse: Warehouse, target: str, cutoffs: Sequence[dt.datetime]
) -> pd.DataFrame | None:
    """Risk scores of ``target`` written at exactly these cutoffs, if any were."""
    from churnwatch.scoring import RISK_SCORES_TABLE

    if not warehouse.table_exists(RISK_SCORES_TABLE):
        return None
    query = (
        exp.select("account_id", "scored_at", "score")
        .from_(RISK_SCORES_TABLE)
        .where(
            exp.and_(
                exp.column("target").eq(exp.Literal.string(target)),
                exp.column("scored_at").isin(*[instant(c, warehouse.dialect) for c in cutoffs]),
            )
        )
    )
    rows = warehouse.query(query)
    if rows.num_rows == 0:
        return None
    found: pd.DataFrame = rows.to_pandas()
    found["account_id"] = found["account_id"].astype(str)
    found["cutoff"] = pd.to_datetime(found.pop("scored_at"), utc=True)
    return found.rename(columns={"score": "_model_probability"})


def backtest_health(
    warehouse: Warehouse,
    settings: Settings,
    *,
    cutoffs_count: int | None = None,
) -> HealthBacktest:
    """Backtest the project's health score at its latest settled past cutoffs.

    The cutoffs are the training schedule's (every ``[model]
    cutoff_interval_days``), the latest ``[health] backtest_cutoffs_count``
    of them whose ``[churn]`` labels have settled. The model-based score is
    backtested beside wherever ``risk_scores`` holds a run of
    ``[health] model_target`` at one of those cutoffs (a run scored then,
    so out of sample); a model is never applied after the fact to cutoffs
    it was trained on.

    Parameters
    ----------
    warehouse : Warehouse
        Holds the canonical tables.
    settings : Settings
        The project's settings.
    cutoffs_count : int, optional
        Overrides ``[health] backtest_cutoffs_count``.

    Returns
    -------
    HealthBacktest

    Raises
    ------
    AnalysisError
        If no past cutoff has settled labels.

    Examples
    --------
    >>> import tempfile
    >>> from churnwatch.ingest import ingest
    >>> from churnwatch.simulate import simulate
    >>> from churnwatch.warehouse import connect
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     sim = simulate(tmp, n_accounts=300, end="2024-09-30", events_per_account=20)
    ...     with connect("duckdb:///:memory:") as wh:
    ...         _ = ingest(sim.settings(), wh)
    ...         result = backtest_health(wh, sim.settings(), cutoffs_count=2)
    >>> list(result.pooled["score"]), result.label
    (['health'], 'churn_30d')
    """
    from churnwatch.models._workflow import training_schedule

    count = cutoffs_count or settings.health.backtest_cutoffs_count
    label_spec = LabelSpec.from_settings(settings.churn)
    end = settings.data.observation_end
    try:
        schedule = training_schedule(
            warehouse,
            label_spec,
            every_days=settings.model.cutoff_interval_days,
            observation_end=end,
        )
        labels = make_labels(warehouse, label_spec, schedule, observation_end=end)
    except (LabelError, ModelError) as exc:
        # Too little data for one cutoff (or none at all) is a limit of the data,
        # which callers of an analysis catch as such.
        raise AnalysisError(f"the health score cannot be backtested: {exc}") from None
    label = label_spec.columns[0]
    table = labels.frame.to_pandas()
    settled = table.loc[table[label].notna(), "cutoff"].drop_duplicates().sort_values()
    chosen = [pd.Timestamp(c).to_pydatetime() for c in settled.iloc[-count:]]
    if not chosen:
        raise AnalysisError(
            f"no past cutoff has settled churn labels ({schedule.description}): the data is "
            "too short for the horizon"
        )
    components, notes = health_components(settings, warehouse)
    specs = project_specs(settings, warehouse, [c.metric for c in components])
    examples = table.loc[table["cutoff"].isin(settled.iloc[-count:])]
    examples = examples.sort_values(["cutoff", "account_id"], ignore_index=True)
    keys = pa.Table.from_pandas(examples.loc[:, ["account_id", "cutoff"]], preserve_index=False)
    frame = compute_features(warehouse, keys, list(specs.values())).to_pandas()
    frame[label] = examples[label].to_numpy(dtype=float)
    target = model_target(settings)
    model = _model_probabilities(warehouse, target, chosen)
    probability = None
    if model is not None:
        frame = frame.merge(model, on=["account_id", "cutoff"], how="left")
        probability = "_model_probability"
    else:
        notes.append(f"no {target} scores in risk_scores at these cutoffs: health score only")
    result = health_backtest(frame, label, components, model_probability=probability)
    result.notes = notes + result.notes
    return result
