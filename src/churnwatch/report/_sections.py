"""The report's sections: each reads one concept's results and lays them out.

The analyses live in their own modules (cohorts, survival, segments, health);
a section only chooses what to show and how, never computes a figure itself.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.graph_objects as go

from churnwatch.config import Settings
from churnwatch.errors import AnalysisError
from churnwatch.models import ModelCard, ModelRegistry
from churnwatch.report._html import Card, Section
from churnwatch.report._kpis import BusinessKpis
from churnwatch.warehouse import Warehouse

__all__ = [
    "cohort_section",
    "health_section",
    "kpi_section",
    "model_section",
    "segment_section",
    "survival_section",
]

_BASELINES = {"lightgbm": "model", "logistic": "logistic baseline", "recency": "recency baseline"}
_METRICS = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC",
    "lift_top10": "lift, top 10%",
    "recall_top10": "recall, top 10%",
    "brier": "Brier",
    "ece": "calibration error",
}


def kpi_section(kpis: BusinessKpis) -> Section:
    """Headline cards and the monthly churn-rate trend."""
    cards = [
        Card("Accounts", f"{kpis.accounts:,}"),
        Card("Subscribers", f"{kpis.subscribers:,}", "a subscription running now"),
        Card("MRR", _money(kpis.mrr)),
    ]
    if kpis.churn_rate is not None:
        cards.append(
            Card(
                "Churn rate",
                f"{kpis.churn_rate:.1%}",
                "latest settled window" + (": a spike" if kpis.churn_spike else ""),
                tone="alert" if kpis.churn_spike else "",
            )
        )
    if kpis.revenue_at_risk is not None:
        cards.append(Card("Revenue at risk", _money(kpis.revenue_at_risk), "per month, Σ P×MRR"))
        cards.append(Card("High-risk accounts", f"{kpis.high_risk_accounts:,}", "P(churn) ≥ 30%"))
    section = Section(
        "kpis",
        "The business at a glance",
        f"As of {kpis.as_of.date().isoformat()}. Churn: {kpis.churn_label}.",
        cards=cards,
    )
    if kpis.revenue_at_risk is None:
        section.missing = "No risk scores yet: run `churnwatch train` and `churnwatch score`."
    trend = kpis.churn_trend
    if len(trend):
        figure = go.Figure(
            go.Scatter(
                x=trend["cutoff"],
                y=trend["churn_rate"],
                mode="lines+markers",
                customdata=trend[["at_risk", "churned"]],
                hovertemplate="%{x|%Y-%m-%d}: %{y:.1%} (%{customdata[1]} of %{customdata[0]})"
                "<extra></extra>",
            )
        )
        figure.update_layout(
            title="Churn rate of each monthly window (by the window's start)",
            yaxis={"tickformat": ".0%", "rangemode": "tozero"},
            height=320,
        )
        section.figures.append(figure)
    return section


def model_section(registry: ModelRegistry | None) -> Section:
    """Backtest metrics of the promoted churn models against their baselines."""
    section = Section(
        "model",
        "Model quality",
        "Rolling-origin backtest: each test cutoff scored by a model trained only on what had "
        "settled before it, beside two baselines.",
    )
    cards = _promoted(registry)
    if not cards:
        section.missing = "No promoted model: run `churnwatch train`."
        return section
    rows = []
    for card in cards:
        backtest = card.metrics.get("backtest", {})
        for method, label in _BASELINES.items():
            metrics = backtest.get(method)
            if metrics:
                rows.append(
                    {"target": card.name, "version": card.version, "method": label}
                    | {name: metrics.get(key) for key, name in _METRICS.items()}
                )
    if not rows:
        section.missing = "The promoted models carry no backtest metrics."
        return section
    table = pd.DataFrame(rows)
    section.tables.append(("Pooled backtest metrics", table))
    figure = go.Figure()
    for method in table["method"].unique():
        part = table[table["method"] == method]
        figure.add_bar(name=method, x=part["target"], y=part["ROC AUC"])
    figure.update_layout(
        title="Backtest ROC AUC: model against baselines",
        barmode="group",
        yaxis={"range": [0.5, 1.0]},
        height=320,
    )
    section.figures.append(figure)
    return section


def _promoted(registry: ModelRegistry | None) -> list[ModelCard]:
    if registry is None:
        return []
    promoted = registry.promoted()
    return [promoted[name] for name in sorted(promoted) if name.startswith("churn")]


def _money(value: float) -> str:
    return f"{value:,.0f}"


def cohort_section(warehouse: Warehouse, settings: Settings, as_of: dt.datetime) -> Section:
    """Logo-retention heatmap, revenue retention and MRR movements."""
    from churnwatch.cohorts import (
        logo_retention,
        movements_chart,
        mrr_movements,
        retention_heatmap,
        revenue_heatmap,
        revenue_retention,
    )

    section = Section(
        "cohorts",
        "Cohorts and revenue retention",
        "Monthly signup cohorts: the share of each cohort active k months later, each revenue "
        "cohort's MRR against its first month, and where each month's MRR change came from.",
    )
    logos = logo_retention(warehouse, settings, observation_end=as_of)
    section.figures.append(retention_heatmap(logos))
    try:
        revenue = revenue_retention(warehouse, settings, observation_end=as_of)
        movements = mrr_movements(warehouse, settings, observation_end=as_of)
    except AnalysisError as exc:
        section.missing = f"Revenue retention: {exc}"
        return section
    section.figures.append(revenue_heatmap(revenue))
    section.figures.append(movements_chart(movements))
    return section


def health_section(warehouse: Warehouse, settings: Settings, as_of: dt.datetime) -> Section:
    """The health score's distribution by tier, and its backtest against churn."""
    from churnwatch.health import (
        account_health,
        backtest_health,
        health_histogram,
        tier_churn_bars,
    )

    scored = account_health(warehouse, settings, as_of=as_of)
    section = Section(
        "health",
        "Health score",
        "A weighted mean of "
        + ", ".join(c.metric for c in scored.components)
        + " on 0–100 (Thriving 80+, Healthy 60+, At-risk 40+, Critical below). "
        + " ".join(scored.notes),
    )
    counts = scored.tier_counts()
    section.cards = [
        Card(str(row.tier), f"{row.accounts:,}", f"{row.share:.0%} of customers")
        for row in counts.itertuples()
    ]
    section.figures.append(health_histogram(scored.scores))
    try:
        backtest = backtest_health(warehouse, settings)
    except AnalysisError as exc:
        section.missing = f"Backtest of the score: {exc}"
        return section
    section.figures.append(tier_churn_bars(backtest))
    section.tables.append(
        ("How well the score foresaw churn (pooled over past cutoffs)", backtest.pooled)
    )
    return section


def survival_section(
    warehouse: Warehouse, settings: Settings, as_of: dt.datetime, by: str
) -> Section:
    """Kaplan-Meier curves by an attribute, medians, retention, log-rank and Cox."""
    from churnwatch.survival import analyze_survival, cox_on_features, hazard_ratio_figure

    # Durations are censored at the report's instant, not the project's end.
    settings = settings.model_copy(
        update={"data": settings.data.model_copy(update={"observation_end": as_of.isoformat()})}
    )
    analysis = analyze_survival(warehouse, settings, by=by or None)
    section = Section("survival", "Survival", analysis.describe().splitlines()[0])
    section.figures.append(analysis.figure())
    curves = analysis.by_group
    if curves is not None and curves.logrank is not None:
        section.intro += " " + curves.logrank.describe() + "."
    section.tables.append(("Median lifetime", analysis.medians))
    section.tables.append(("Retention", analysis.retention))
    try:
        cox = cox_on_features(warehouse, settings)
    except AnalysisError as exc:
        section.missing = f"Cox model: {exc}"
        return section
    section.figures.append(hazard_ratio_figure(cox))
    return section


def segment_section(warehouse: Warehouse, settings: Settings, as_of: dt.datetime) -> Section:
    """Behavioural segments on the PCA map, with their profiles, churn and revenue."""
    from churnwatch.segments import segment_accounts, segment_profile_bars, segment_scatter

    found = segment_accounts(warehouse, settings, as_of=as_of)
    section = Section(
        "segments",
        "Segments",
        f"{found.k} segments of current customers (Gaussian mixture, the number chosen by BIC), "
        "named from how each differs from the population. " + " ".join(found.notes),
    )
    section.figures.append(segment_scatter(found))
    section.figures.append(segment_profile_bars(found))
    shown = [c for c in _SEGMENT_COLUMNS if c in found.profiles.columns]
    section.tables.append(("Segment profiles", found.profiles.loc[:, shown]))
    return section


_SEGMENT_COLUMNS = (
    "segment",
    "accounts",
    "share",
    "churn_rate",
    "churn_examples",
    "mrr_total",
    "mrr_mean",
)
