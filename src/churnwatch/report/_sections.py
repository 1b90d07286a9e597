"""The report's sections that belong to no other concept: KPIs and model quality."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from churnwatch.models import ModelCard, ModelRegistry
from churnwatch.report._html import Card, Section
from churnwatch.report._kpis import BusinessKpis

__all__ = ["kpi_section", "model_section"]

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
