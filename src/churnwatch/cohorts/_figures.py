"""Plotly figures of retention: cohort heatmaps and the MRR movements chart.

Plotly is imported when a figure is built, not with the package: computing a
matrix should not pay for a charting library it does not use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churnwatch.cohorts._movements import MRRMovements
from churnwatch.cohorts._retention import CohortTable
from churnwatch.cohorts._revenue import RevenueRetention

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["movements_chart", "retention_heatmap", "revenue_heatmap"]

#: Bars above the axis add MRR, bars below remove it.
_MOVEMENT_COLOURS = {
    "new": "#2b8a3e",
    "expansion": "#74b816",
    "reactivation": "#1c7ed6",
    "contraction": "#f59f00",
    "churned": "#e03131",
}


def _cohort_labels(index: pd.Index, period: str) -> list[str]:
    return [
        pd.Timestamp(value).strftime("%Y-%m" if period == "month" else "%Y-%m-%d")
        for value in index
    ]


def _heatmap(
    shares: pd.DataFrame,
    labels: list[str],
    sizes: list[str],
    title: str,
    x_title: str,
    hover_value: str,
    customdata: np.ndarray[Any, Any],
) -> go.Figure:
    import plotly.graph_objects as go

    # NaN cells (periods past the end of the data) stay blank rather than 0.
    z = shares.to_numpy(dtype=float) * 100.0
    text = [["" if np.isnan(v) else f"{v:.0f}%" for v in row] for row in z]
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=[str(k) for k in shares.columns],
            y=[f"{label} ({size})" for label, size in zip(labels, sizes, strict=True)],
            text=text,
            texttemplate="%{text}",
            customdata=customdata,
            colorscale="Blues",
            zmin=0,
            zmax=max(100.0, float(np.nanmax(z))) if np.isfinite(z).any() else 100.0,
            colorbar={"title": "%"},
            hovertemplate=f"cohort %{{y}}<br>{x_title} %{{x}}<br>{hover_value}<extra></extra>",
            hoverongaps=False,
        )
    )
    figure.update_layout(
        title=title,
        xaxis={"title": x_title, "side": "top", "type": "category"},
        yaxis={"title": "cohort (size)", "autorange": "reversed", "type": "category"},
        template="plotly_white",
    )
    return figure


def retention_heatmap(table: CohortTable, *, rates: bool = True) -> go.Figure:
    """A heatmap of logo retention: cohorts down, periods since the cohort's across.

    Parameters
    ----------
    table : CohortTable
        From :func:`~churnwatch.cohorts.logo_retention`.
    rates : bool
        Colour by the share of the cohort (``True``) or show counts in the
        cells (``False``; the colour is still the share, so cohorts of
        different sizes compare).

    Returns
    -------
    plotly.graph_objects.Figure
        Unknown periods (past the end of the data) are blank.

    Examples
    --------
    >>> import pandas as pd
    >>> from churnwatch.cohorts._periods import ObservationEnd
    >>> import datetime as dt
    >>> table = CohortTable(
    ...     pd.DataFrame([[2.0, 1.0], [3.0, float("nan")]],
    ...                  index=pd.DatetimeIndex(["2024-01-01", "2024-02-01"], name="cohort")),
    ...     pd.Series([2, 3], index=pd.DatetimeIndex(["2024-01-01", "2024-02-01"])),
    ...     "month", "activity", "signup",
    ...     ObservationEnd(dt.datetime(2024, 3, 1, tzinfo=dt.UTC), "given"))
    >>> retention_heatmap(table).data[0].text[0]
    ['100%', '50%']
    """
    shares = table.rates
    figure = _heatmap(
        shares,
        _cohort_labels(table.counts.index, table.period),
        [str(int(s)) for s in table.sizes],
        f"Logo retention by {table.period}ly cohort ({table.basis} basis)",
        f"{table.period}s since the cohort's {table.period}",
        "%{customdata} accounts active",
        table.counts.to_numpy(),
    )
    if not rates:
        trace: Any = figure.data[0]
        trace.text = [
            ["" if np.isnan(v) else f"{v:.0f}" for v in row] for row in table.counts.to_numpy()
        ]
    return figure


def revenue_heatmap(revenue: RevenueRetention) -> go.Figure:
    """A heatmap of revenue retention: each cohort's MRR over its month-0 MRR.

    Cells above 100% are cohorts whose expansion outweighs their churn.

    Examples
    --------
    >>> from churnwatch.cohorts._periods import ObservationEnd
    >>> import datetime as dt
    >>> index = pd.DatetimeIndex(["2024-01-01"], name="cohort")
    >>> revenue = RevenueRetention(
    ...     pd.DataFrame([[100.0, 120.0]], index=index), pd.Series([3], index=index),
    ...     pd.DataFrame(), 1, ObservationEnd(dt.datetime(2024, 3, 1, tzinfo=dt.UTC), "given"))
    >>> revenue_heatmap(revenue).data[0].text[0]
    ['100%', '120%']
    """
    return _heatmap(
        revenue.rates,
        _cohort_labels(revenue.mrr.index, "month"),
        [str(int(s)) for s in revenue.accounts],
        "Revenue retention by first paying month (MRR in month k / month 0)",
        "months since the first paying month",
        "MRR %{customdata:,.2f}",
        revenue.mrr.to_numpy(),
    )


def movements_chart(movements: MRRMovements) -> go.Figure:
    """MRR movements per month as stacked bars, with net change and MRR as lines.

    New, expansion and reactivation stack above zero; contraction and churned
    below it. The net change line meets the top of the stack less its bottom.

    Examples
    --------
    >>> from churnwatch.cohorts._periods import ObservationEnd
    >>> import datetime as dt
    >>> cents = pd.DataFrame({"mrr": [100], "previous_mrr": [0], "new": [100],
    ...     "expansion": [0], "reactivation": [0], "contraction": [0], "churned": [0]},
    ...     index=pd.DatetimeIndex(["2024-01-01"], name="month"))
    >>> chart = movements_chart(MRRMovements(cents, ObservationEnd(
    ...     dt.datetime(2024, 2, 1, tzinfo=dt.UTC), "given")))
    >>> [trace.name for trace in chart.data]
    ['new', 'expansion', 'reactivation', 'contraction', 'churned', 'net change', 'MRR']
    """
    import plotly.graph_objects as go

    frame = movements.frame
    months = [m.strftime("%Y-%m") for m in frame.index]
    figure = go.Figure()
    for name, colour in _MOVEMENT_COLOURS.items():
        sign = -1.0 if name in ("contraction", "churned") else 1.0
        figure.add_bar(x=months, y=sign * frame[name].to_numpy(), name=name, marker_color=colour)
    figure.add_scatter(
        x=months,
        y=frame["net_change"],
        name="net change",
        mode="lines+markers",
        line_color="#212529",
    )
    figure.add_scatter(
        x=months, y=frame["mrr"], name="MRR", mode="lines", line={"dash": "dot"}, yaxis="y2"
    )
    figure.update_layout(
        title="MRR movements per month",
        barmode="relative",
        xaxis={"title": "month", "type": "category"},
        yaxis={"title": "change in MRR"},
        yaxis2={"title": "MRR", "overlaying": "y", "side": "right", "rangemode": "tozero"},
        template="plotly_white",
        legend={"orientation": "h"},
    )
    return figure
