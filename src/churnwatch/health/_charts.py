"""Plotly figures of the health score, for the HTML report and the dashboard."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from churnwatch.errors import AnalysisError
from churnwatch.health._backtest import HealthBacktest
from churnwatch.health._score import HEALTH_TIERS

__all__ = ["TIER_COLORS", "health_histogram", "tier_churn_bars"]

#: One color per tier, healthiest first (green to red).
TIER_COLORS: dict[str, str] = {
    "Thriving": "#1a9850",
    "Healthy": "#91cf60",
    "At-risk": "#fc8d59",
    "Critical": "#d73027",
}


def health_histogram(scores: pd.DataFrame, *, column: str = "health_score") -> go.Figure:
    """Histogram of health scores in bins of 5 points, stacked and colored by tier.

    Parameters
    ----------
    scores : pandas.DataFrame
        :attr:`HealthScores.scores` (or any frame with the score column).
    column : str
        ``health_score``, or ``model_health`` for the model-based score.

    Examples
    --------
    >>> frame = pd.DataFrame({"health_score": [10.0, 55.0, 85.0, 90.0]})
    >>> [trace.name for trace in health_histogram(frame).data]
    ['Thriving', 'Healthy', 'At-risk', 'Critical']
    """
    if column not in scores.columns:
        raise AnalysisError(f"no column {column!r} to draw a histogram of")
    values = scores[column].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    figure = go.Figure()
    upper = 100.0
    for tier, lower in HEALTH_TIERS:
        mine = values[(values >= lower) & ((values < upper) | (upper == 100.0))]
        upper = lower
        figure.add_trace(
            go.Histogram(
                x=mine,
                name=tier,
                marker_color=TIER_COLORS[tier],
                xbins={"start": 0, "end": 100.0001, "size": 5},
            )
        )
    figure.update_layout(
        barmode="stack",
        title=f"Health score of {values.size:,} accounts",
        xaxis_title="health score (0 critical, 100 thriving)",
        yaxis_title="accounts",
        xaxis_range=[0, 100],
    )
    return figure


def tier_churn_bars(backtest: HealthBacktest) -> go.Figure:
    """Pooled churn rate per tier in the backtest, one bar group per score.

    Examples
    --------
    >>> from churnwatch.health import HealthComponent, health_backtest
    >>> frame = pd.DataFrame({"account_id": list("abcd"), "cutoff": ["2024-05-01"] * 4,
    ...                       "events_30d": [9, 5, 1, 0], "churn_30d": [0, 0, 1, 1]})
    >>> result = health_backtest(frame, "churn_30d",
    ...                          [HealthComponent("events_30d", "higher_is_better")])
    >>> tier_churn_bars(result).data[0].name
    'health'
    """
    pooled = backtest.tiers.loc[backtest.tiers["cutoff"] == "pooled"]
    figure = go.Figure()
    for score, rows in pooled.groupby("score", sort=False):
        figure.add_trace(
            go.Bar(
                x=rows["tier"],
                y=rows["churn_rate"],
                name=str(score),
                text=[f"{n:,} accounts" for n in rows["accounts"]],
            )
        )
    figure.update_layout(
        barmode="group",
        title=f"Churn ({backtest.label}) by health tier, pooled over the backtest",
        yaxis_title="churn rate",
        yaxis_tickformat=".0%",
    )
    return figure
