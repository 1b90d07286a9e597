"""Plotly figures of survival results, for the HTML report and the dashboard.

Builders only: each takes a result and returns a :class:`plotly.graph_objects.Figure`
without showing or writing it.
"""

from __future__ import annotations

import plotly.graph_objects as go

from churnwatch.survival._cox import CoxResult
from churnwatch.survival._kaplan_meier import SurvivalCurves

__all__ = ["hazard_ratio_figure", "survival_figure"]

# Plotly's default qualitative palette, spelled out so bands match their lines.
_COLOURS = (
    "#636efa",
    "#ef553b",
    "#00cc96",
    "#ab63fa",
    "#ffa15a",
    "#19d3f3",
    "#ff6692",
    "#b6e880",
    "#ff97ff",
    "#fecb52",
)


def _band_colour(colour: str, opacity: float = 0.2) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{opacity})"


def survival_figure(curves: SurvivalCurves, *, title: str | None = None) -> go.Figure:
    """Kaplan-Meier curves with their confidence bands, one colour per group.

    The title carries the log-rank p-value when there are groups.

    Parameters
    ----------
    curves : SurvivalCurves
        From :func:`kaplan_meier` or :func:`analyze_survival`.
    title : str, optional
        Default: "Survival" (by the grouping attribute) with the test.

    Examples
    --------
    >>> from churnwatch.survival import kaplan_meier
    >>> curves = kaplan_meier([3, 5, 8, 4, 9, 12], [1, 1, 0, 1, 0, 1],
    ...                       groups=["a", "a", "a", "b", "b", "b"], by="plan")
    >>> figure = survival_figure(curves)
    >>> figure.layout.title.text.startswith("Survival by plan (log-rank p = ")
    True
    >>> len(figure.data)  # a band and a line per group
    4
    """
    figure = go.Figure()
    band_name = f"{1 - curves.alpha:.0%} confidence band"
    for index, group in enumerate(curves.groups):
        colour = _COLOURS[index % len(_COLOURS)]
        rows = curves.survival.loc[curves.survival["group"] == group]
        times = rows["timeline"].tolist()
        figure.add_trace(
            go.Scatter(
                x=times + times[::-1],
                y=rows["ci_upper"].tolist() + rows["ci_lower"].tolist()[::-1],
                fill="toself",
                fillcolor=_band_colour(colour),
                line={"width": 0, "shape": "hv"},
                hoverinfo="skip",
                showlegend=False,
                name=f"{group}: {band_name}",
                legendgroup=group,
            )
        )
        figure.add_trace(
            go.Scatter(
                x=times,
                y=rows["survival"].tolist(),
                mode="lines",
                line={"color": colour, "shape": "hv"},
                name=group,
                legendgroup=group,
                hovertemplate="day %{x:.0f}: %{y:.1%} still there<extra>" + group + "</extra>",
            )
        )
    if title is None:
        title = "Survival" if curves.by is None else f"Survival by {curves.by}"
        if curves.logrank is not None:
            title += f" (log-rank p = {curves.logrank.p_value:.3g})"
    figure.update_layout(
        title={"text": title},
        xaxis={"title": {"text": "days"}},
        yaxis={"title": {"text": "share still active"}, "range": [0, 1.02], "tickformat": ".0%"},
        template="plotly_white",
        legend={"title": {"text": curves.by or ""}},
    )
    return figure


def hazard_ratio_figure(result: CoxResult, *, title: str | None = None) -> go.Figure:
    """Hazard ratios with their intervals (log scale), violations of the assumption marked.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from churnwatch.survival import fit_cox
    >>> rng = np.random.default_rng(1)
    >>> usage = rng.normal(size=200)
    >>> days = rng.exponential(50 * np.exp(usage))
    >>> result = fit_cox(pd.DataFrame({"duration_days": days, "event_observed": 1,
    ...                                "usage": usage}))
    >>> list(hazard_ratio_figure(result).data[0].y)
    ['usage']
    """
    summary = result.summary.sort_values("hazard_ratio")
    violated = set(result.violations)
    labels = [f"{c} ⚠" if c in violated else c for c in summary["covariate"]]
    figure = go.Figure(
        go.Scatter(
            x=summary["hazard_ratio"],
            y=summary["covariate"],
            mode="markers",
            error_x={
                "type": "data",
                "symmetric": False,
                "array": (summary["hr_upper"] - summary["hazard_ratio"]).tolist(),
                "arrayminus": (summary["hazard_ratio"] - summary["hr_lower"]).tolist(),
            },
            text=labels,
            hovertemplate="%{text}: hazard ratio %{x:.2f}<extra></extra>",
        )
    )
    figure.add_vline(x=1, line_dash="dot", line_color="grey")
    unit = " per standard deviation" if result.standardized else ""
    figure.update_layout(
        title={"text": title or f"Hazard ratios{unit} (⚠: proportional hazards violated)"},
        xaxis={"title": {"text": "hazard ratio (>1: churns sooner)"}, "type": "log"},
        template="plotly_white",
    )
    return figure
