"""Refreshing the read model: every table of the dashboard and the API, computed at once.

:func:`refresh_views` reads the warehouse (canonical tables and
``risk_scores``), the model registry and the operational store, computes each
table of the read model with the domain's own functions (scoring, health,
segments, survival, cohorts, outcomes, the report's KPIs) and writes them as
one generation (:func:`churnwatch.views.write_generation`).

A table whose input is missing — no model trained, nothing scored, no
adoption tracked — is left out, and ``meta["missing"]`` says why, table by
table: a reader shows "not computed yet" with the reason, and a refresh never
fails for want of data the project does not have yet.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from churnwatch.config import Settings
from churnwatch.errors import ChurnwatchError
from churnwatch.models import ModelRegistry
from churnwatch.store import Store
from churnwatch.views._accounts import accounts_table, activity_table, risk_history_table
from churnwatch.views._analytics import (
    churn_trend_table,
    cohort_retention_table,
    segment_points_table,
    segment_profiles_table,
    survival_tables,
)
from churnwatch.views._diagnostics import (
    features_table,
    model_tables,
)
from churnwatch.views._generation import Generation, write_generation
from churnwatch.views._inputs import RefreshInputs
from churnwatch.views._read import ACCOUNT_FILTERS
from churnwatch.warehouse import Warehouse

__all__ = ["TABLES", "RefreshResult", "refresh_views"]

#: Every table a refresh may write, in the order they are computed.
TABLES = (
    "accounts",
    "risk_history",
    "activity",
    "features",
    "churn_trend",
    "cohort_retention",
    "survival_curves",
    "survival_tests",
    "survival_durations",
    "segment_points",
    "segment_profiles",
    "model_metrics",
    "model_curves",
    "importance",
    "pdp",
    "drift",
)

Builder = Callable[[RefreshInputs], dict[str, pa.Table]]


@dataclasses.dataclass(frozen=True)
class RefreshResult:
    """What a refresh wrote.

    Attributes
    ----------
    generation : Generation
        The generation written, now current.
    rows : dict of str to int
        Rows of each table written.
    missing : dict of str to str
        Each table (or ``accounts.<column>``) left out, and why.
    seconds : dict of str to float
        Time spent on each group of tables.
    """

    generation: Generation
    rows: dict[str, int]
    missing: dict[str, str]
    seconds: dict[str, float]


def refresh_views(
    settings: Settings,
    warehouse: Warehouse,
    root: Path,
    *,
    registry: ModelRegistry | None = None,
    store: Store | None = None,
    store_url: str | None = None,
    now: dt.datetime | None = None,
    on_progress: Callable[[str], Any] | None = None,
) -> RefreshResult:
    """Compute every table of the read model and write them as the current generation.

    Parameters
    ----------
    settings : Settings
        The project's settings.
    warehouse : Warehouse
        The canonical tables and ``risk_scores``.
    root : Path
        The read model's folder (``<project>/views``).
    registry : ModelRegistry, optional
        The project's models: model diagnostics and features need it.
    store : Store, optional
        The operational store: tracker states and revenue recovered need it.
    store_url : str, optional
        The store's URL, written to ``meta["store_url"]`` for live readers.
    now : datetime, optional
        The refresh time recorded in the meta document.
    on_progress : callable, optional
        Called with the name of each group of tables as it starts.

    Returns
    -------
    RefreshResult

    Examples
    --------
    >>> import tempfile
    >>> from churnwatch.warehouse import connect
    >>> root = Path(tempfile.mkdtemp())
    >>> with connect("duckdb:///:memory:") as wh:
    ...     wh.ensure_schema()
    ...     result = refresh_views(Settings(), wh, root)
    >>> result.rows["accounts"], "model_metrics" in result.missing
    (0, True)
    """
    say = on_progress or (lambda _name: None)
    warehouse.ensure_schema()
    inputs = RefreshInputs(settings, warehouse, registry=registry, store=store, store_url=store_url)
    tables: dict[str, pa.Table] = {}
    missing: dict[str, str] = {}
    seconds: dict[str, float] = {}
    notes: dict[str, str] = {}
    builders: list[tuple[str, tuple[str, ...], Builder]] = [
        ("accounts", ("accounts",), lambda i: {"accounts": accounts_table(i, notes)}),
        ("risk history", ("risk_history",), lambda i: {"risk_history": risk_history_table(i)}),
        ("activity", ("activity",), lambda i: {"activity": activity_table(i)}),
        ("features", ("features",), lambda i: {"features": features_table(i)}),
        ("churn trend", ("churn_trend",), lambda i: {"churn_trend": churn_trend_table(i)}),
        (
            "cohorts",
            ("cohort_retention",),
            lambda i: {"cohort_retention": cohort_retention_table(i)},
        ),
        (
            "survival",
            ("survival_curves", "survival_tests", "survival_durations"),
            survival_tables,
        ),
        (
            "segments",
            ("segment_points", "segment_profiles"),
            lambda i: {
                "segment_points": segment_points_table(i),
                "segment_profiles": segment_profiles_table(i),
            },
        ),
        (
            "model diagnostics",
            ("model_metrics", "model_curves", "importance", "pdp", "drift"),
            model_tables,
        ),
    ]
    for label, names, build in builders:
        say(label)
        started = dt.datetime.now(dt.UTC)
        try:
            built = build(inputs)
        except ChurnwatchError as exc:
            missing.update({name: str(exc) for name in names})
        except Exception as exc:
            if names == ("accounts",):
                raise  # without the account list there is no read model to serve
            # An analysis that broke on this data (a degenerate fit, say) costs
            # its own tables, not the refresh: the daily job still completes
            # and the reason is shown where the table would be.
            missing.update({name: f"failed: {type(exc).__name__}: {exc}" for name in names})
        else:
            tables.update(built)
            missing.update(
                {name: "not computed: its inputs are absent" for name in names if name not in built}
            )
        seconds[label] = (dt.datetime.now(dt.UTC) - started).total_seconds()
    missing.update(notes)
    meta = _meta(inputs, tables, missing)
    generation = write_generation(root, tables, meta, now=now)
    return RefreshResult(
        generation=generation,
        rows={name: table.num_rows for name, table in tables.items()},
        missing=missing,
        seconds=seconds,
    )


def _meta(
    inputs: RefreshInputs, tables: dict[str, pa.Table], missing: dict[str, str]
) -> dict[str, Any]:
    settings = inputs.settings
    accounts = tables.get("accounts")
    try:
        target, scored_at = inputs.scored_target()
        scored: str | None = scored_at.isoformat()
    except ChurnwatchError:
        target, scored = None, None
    return {
        "project": settings.project.name or "churnwatch",
        "scored_at": scored,
        "risk_target": target,
        "observation_end": _observation_end(inputs),
        "kpis": _kpis(inputs, accounts),
        "models": _models(inputs),
        "filter_values": _filter_values(accounts),
        "store_url": inputs.store_url,
        "missing": missing,
    }


def _observation_end(inputs: RefreshInputs) -> str | None:
    end = inputs.settings.data.observation_end
    if end:
        return str(end)
    return inputs.moment().isoformat()


def _kpis(inputs: RefreshInputs, accounts: pa.Table | None) -> dict[str, Any]:
    from churnwatch.report import business_kpis

    n_accounts = accounts.num_rows if accounts is not None else 0
    active = (
        int(pc.sum(pc.equal(accounts["status"], "active")).as_py() or 0)
        if accounts is not None
        else 0
    )
    at_risk = (
        float(pc.sum(accounts["revenue_at_risk"]).as_py() or 0.0) if accounts is not None else 0.0
    )
    rates: list[float] = []
    churn_rate: float | None = None
    try:
        kpis = inputs.shared(
            "business_kpis", lambda: business_kpis(inputs.warehouse, inputs.settings)
        )
    except ChurnwatchError:
        spike = False
    else:
        n_accounts = kpis.accounts
        rates = [float(r) for r in kpis.churn_trend["churn_rate"]]
        churn_rate = kpis.churn_rate
        spike = kpis.churn_spike
    return {
        "accounts": n_accounts,
        "active_accounts": active,
        "churn_rate": churn_rate,
        "revenue_at_risk": at_risk,
        "revenue_recovered": _recovered(inputs),
        "churn_spike": _spike(rates, spike),
    }


def _spike(rates: list[float], spike: bool) -> dict[str, Any]:
    clean = [r for r in rates if not math.isnan(r)]
    if not clean:
        return {"spike": False, "latest": None, "baseline": None, "message": "no settled window"}
    latest = clean[-1]
    baseline = sum(clean[:-1]) / len(clean[:-1]) if len(clean) > 1 else None
    if spike:
        message = (
            f"churn spiked: {latest:.1%} in the latest settled month against {baseline:.1%} before"
        )
    elif baseline is None:
        message = f"churn {latest:.1%} in the only settled month"
    else:
        message = f"churn {latest:.1%} in the latest settled month ({baseline:.1%} before)"
    return {"spike": spike, "latest": latest, "baseline": baseline, "message": message}


def _recovered(inputs: RefreshInputs) -> float | None:
    if inputs.store is None:
        return None
    from churnwatch.outcomes import compute_kpis

    try:
        found = compute_kpis(inputs.store, tracker=inputs.settings.tracker)
    except ChurnwatchError:  # nothing tracked yet
        return None
    return float(found.revenue_recovered)


def _models(inputs: RefreshInputs) -> dict[str, dict[str, Any]]:
    models: dict[str, dict[str, Any]] = {}
    for target, card in inputs.promoted_churn().items():
        backtest = card.metrics.get("backtest", {})
        kind = str(card.extra.get("kind", "lightgbm"))
        main = backtest.get(kind) or backtest.get("lightgbm") or card.metrics.get("holdout", {})
        auc = main.get("roc_auc") if isinstance(main, dict) else None
        models[target] = {
            "version": card.version,
            "roc_auc": float(auc) if isinstance(auc, int | float) else None,
            "features": list(card.features),
        }
    return models


def _filter_values(accounts: pa.Table | None) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for name in ACCOUNT_FILTERS:
        if accounts is None or name not in accounts.column_names:
            values[name] = []
            continue
        found = pc.unique(accounts[name].drop_null()).to_pylist()
        values[name] = sorted(str(v) for v in found)
    return values
