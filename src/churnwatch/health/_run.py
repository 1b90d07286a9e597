"""Health scores from a warehouse: the rule-based score and the model-based one."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from sqlglot import exp

from churnwatch._health_settings import DEFAULT_COMPONENTS, HealthComponent
from churnwatch.config import Settings
from churnwatch.errors import AnalysisError
from churnwatch.features._portable import instant
from churnwatch.health._frame import analysis_cutoff, population_frame, project_specs
from churnwatch.health._score import HealthScores, _tiers, score_health
from churnwatch.warehouse import Warehouse

__all__ = ["account_health", "health_components", "model_health", "model_target"]


def model_target(settings: Settings) -> str:
    """The target whose risk scores give the model-based health score.

    Examples
    --------
    >>> from churnwatch.config import parse_settings
    >>> model_target(parse_settings({"churn": {"horizon_days": 14}}))
    'churn_14d'
    """
    return settings.health.model_target or f"churn_{settings.churn.horizon_days}d"


def health_components(
    settings: Settings, warehouse: Warehouse
) -> tuple[tuple[HealthComponent, ...], list[str]]:
    """The project's components that the data can feed, and notes on those left out.

    Declared components (``[[health.components]]``) must all name a feature of
    the project's feature set; of the defaults, those whose feature the data
    cannot give (no payments table, no support events) drop out with a note.

    Raises
    ------
    AnalysisError
        If a declared component names no feature of the project.

    Examples
    --------
    >>> from churnwatch.config import parse_settings
    >>> from churnwatch.warehouse import connect
    >>> settings = parse_settings({"health": {"components": [
    ...     {"metric": "tenure_days", "direction": "higher_is_better"}]}})
    >>> with connect("duckdb:///:memory:") as wh:
    ...     wh.ensure_schema()
    ...     components, notes = health_components(settings, wh)
    >>> [c.metric for c in components], notes
    (['tenure_days'], [])
    """
    declared = settings.health.resolved()
    wanted = declared or DEFAULT_COMPONENTS
    found = project_specs(settings, warehouse, [c.metric for c in wanted])
    if declared is not None:
        absent = [c.metric for c in declared if c.metric not in found]
        if absent:
            raise AnalysisError(
                f"[[health.components]] metric(s) {', '.join(absent)} are not features of "
                "this project; `churnwatch features --explain` lists them"
            )
        return declared, []
    chosen = tuple(c for c in DEFAULT_COMPONENTS if c.metric in found)
    notes = [
        f"{c.label} ({c.metric}) left out: the data has no such feature (its table is "
        "empty or absent); its weight goes to the others"
        for c in DEFAULT_COMPONENTS
        if c.metric not in found
    ]
    if not chosen:
        raise AnalysisError(
            "the data feeds none of the default health signals; declare "
            "[[health.components]] over the project's features"
        )
    return chosen, notes


def account_health(
    warehouse: Warehouse,
    settings: Settings,
    *,
    as_of: dt.date | dt.datetime | None = None,
) -> HealthScores:
    """Health score and tier of every current customer as of a day.

    Parameters
    ----------
    warehouse : Warehouse
        Holds the canonical tables.
    settings : Settings
        The project's settings: ``[health]`` components, ``[churn]`` (who is
        a current customer), ``[features]``.
    as_of : date or datetime, optional
        A date scores with the data up to the end of that day; a datetime is
        the cutoff itself. Default: the end of the data.

    Returns
    -------
    HealthScores
        One row per account at risk at the cutoff; the notes say which
        default components the data could not feed.

    Examples
    --------
    >>> import tempfile
    >>> from churnwatch.ingest import ingest
    >>> from churnwatch.simulate import simulate
    >>> from churnwatch.warehouse import connect
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     sim = simulate(tmp, n_accounts=200, end="2024-06-30", events_per_account=20)
    ...     with connect("duckdb:///:memory:") as wh:
    ...         _ = ingest(sim.settings(), wh)
    ...         health = account_health(wh, sim.settings())
    >>> list(health.tier_counts()["tier"])
    ['Thriving', 'Healthy', 'At-risk', 'Critical']
    >>> bool(health.scores["health_score"].between(0, 100).all())
    True
    """
    cutoff = analysis_cutoff(warehouse, as_of)
    components, notes = health_components(settings, warehouse)
    specs = project_specs(settings, warehouse, [c.metric for c in components])
    frame = population_frame(warehouse, settings, [cutoff], list(specs.values()))
    result = score_health(frame, components)
    result.notes = notes + result.notes
    return result


def model_health(
    warehouse: Warehouse,
    target: str,
    *,
    as_of: dt.date | dt.datetime | None = None,
) -> pd.DataFrame:
    """The model-based health score, ``100 * (1 - P(churn))``, of the latest scoring run.

    Reads the rows of ``risk_scores`` (see :mod:`churnwatch.scoring`) of
    ``target`` at the latest ``scored_at`` on or before the cutoff. The
    probability is calibrated, so a model health of 70 means a 30% chance
    of churn over the target's horizon.

    Parameters
    ----------
    warehouse : Warehouse
        Holds ``risk_scores``.
    target : str
        The model's target, such as ``churn_30d``.
    as_of : date or datetime, optional
        Use the latest run on or before this cutoff (a date: the end of that
        day); default: the latest run.

    Returns
    -------
    pandas.DataFrame
        ``account_id``, ``scored_at``, ``model_version``, ``churn_probability``,
        ``model_health``, ``model_tier``. Empty when there is no such run.

    Examples
    --------
    >>> from churnwatch.warehouse import connect
    >>> with connect("duckdb:///:memory:") as wh:
    ...     model_health(wh, "churn_30d").empty  # nothing scored yet
    True
    """
    columns = [
        "account_id",
        "scored_at",
        "model_version",
        "churn_probability",
        "model_health",
        "model_tier",
    ]
    from churnwatch.scoring import RISK_SCORES_TABLE

    if not warehouse.table_exists(RISK_SCORES_TABLE):
        return pd.DataFrame(columns=columns)
    mine = exp.column("target").eq(exp.Literal.string(target))
    latest = exp.select(exp.func("MAX", exp.column("scored_at"))).from_(RISK_SCORES_TABLE)
    if as_of is not None:
        cutoff = analysis_cutoff(warehouse, as_of)
        mine_before = exp.and_(mine, exp.column("scored_at") <= instant(cutoff, warehouse.dialect))
        latest = latest.where(mine_before)
    else:
        latest = latest.where(mine)
    query = (
        exp.select("account_id", "scored_at", "model_version", "score")
        .from_(RISK_SCORES_TABLE)
        .where(exp.and_(mine.copy(), exp.column("scored_at").eq(latest.subquery())))
        .order_by("account_id")
    )
    rows = warehouse.query(query).to_pandas()
    if rows.empty:
        return pd.DataFrame(columns=columns)
    probability = rows["score"].to_numpy(dtype=float)
    if ((probability < 0) | (probability > 1)).any():
        raise AnalysisError(
            f"risk_scores of {target!r} are not probabilities: a model-based health score "
            "needs a churn target"
        )
    health = np.round(100.0 * (1.0 - probability), 6)
    return pd.DataFrame(
        {
            "account_id": rows["account_id"].astype(str),
            "scored_at": rows["scored_at"],
            "model_version": rows["model_version"],
            "churn_probability": probability,
            "model_health": health,
            "model_tier": _tiers(health),
        }
    )
