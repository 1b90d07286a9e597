"""Plotly figures of segments, for the HTML report and the dashboard."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from churnwatch.errors import AnalysisError
from churnwatch.segments._run import Segmentation

__all__ = ["segment_profile_bars", "segment_profile_table", "segment_scatter"]

_MAX_POINTS = 20_000


def segment_scatter(segmentation: Segmentation, *, max_points: int = _MAX_POINTS) -> go.Figure:
    """The accounts on the first two principal components, colored by segment name.

    Parameters
    ----------
    segmentation : Segmentation
        From :func:`segment_frame` or :func:`segment_accounts`.
    max_points : int
        Larger populations are drawn from a seeded sample of this many rows,
        so that a report stays light.

    Examples
    --------
    >>> import numpy as np
    >>> from churnwatch.segments import segment_frame
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"account_id": [f"a{i}" for i in range(100)],
    ...                       "events_30d": np.r_[rng.poisson(40, 50), rng.poisson(1, 50)],
    ...                       "tenure_days": rng.uniform(100, 300, 100)})
    >>> figure = segment_scatter(segment_frame(frame, k_range=(2, 2)))
    >>> sorted(trace.name for trace in figure.data)
    ['Casual', 'Power users']
    """
    points = segmentation.assignments
    if len(points) > max_points:
        points = points.sample(n=max_points, random_state=0).sort_index()
    figure = go.Figure()
    for segment_id, rows in points.groupby("segment_id", sort=True):
        figure.add_trace(
            go.Scattergl(
                x=rows["pc1"],
                y=rows["pc2"],
                mode="markers",
                name=str(rows["segment"].iloc[0]),
                text=rows["account_id"],
                marker={"size": 5, "opacity": 0.6},
                legendrank=int(str(segment_id)) + 1,
            )
        )
    ratio = segmentation.model.pca_.explained_variance_ratio_
    figure.update_layout(
        title=f"{segmentation.k} segments of {len(segmentation.assignments):,} accounts",
        xaxis_title=f"PC1 ({ratio[0]:.0%} of variance)",
        yaxis_title=f"PC2 ({ratio[1]:.0%} of variance)" if len(ratio) > 1 else "PC2",
    )
    return figure


def segment_profile_table(segmentation: Segmentation) -> go.Figure:
    """One row per segment: size, share, churn rate, revenue and the feature medians.

    Examples
    --------
    >>> import numpy as np
    >>> from churnwatch.segments import segment_frame
    >>> frame = pd.DataFrame({"account_id": [f"a{i}" for i in range(40)],
    ...                       "events_30d": [30] * 20 + [0] * 20,
    ...                       "tenure_days": list(range(40))})
    >>> table = segment_profile_table(segment_frame(frame, k_range=(2, 2)))
    >>> list(table.data[0].header.values[:3])
    ['segment', 'accounts', 'share']
    """
    profiles = segmentation.profiles
    axes = set(segmentation.model.axes_)
    shown = [c for c in profiles.columns if c not in axes and c != "segment_id"]
    cells = []
    for column in shown:
        values = profiles[column]
        if column in ("share", "churn_rate"):
            cells.append([f"{v:.1%}" if pd.notna(v) else "" for v in values])
        elif pd.api.types.is_float_dtype(values):
            cells.append([f"{v:,.1f}" if pd.notna(v) else "" for v in values])
        else:
            cells.append([str(v) for v in values])
    headers = [c.removeprefix("median_") for c in shown]
    return go.Figure(go.Table(header={"values": headers}, cells={"values": cells}))


def segment_profile_bars(segmentation: Segmentation) -> go.Figure:
    """Each segment's profile: standard deviations from the population on every axis.

    Examples
    --------
    >>> import numpy as np
    >>> from churnwatch.segments import segment_frame
    >>> frame = pd.DataFrame({"account_id": [f"a{i}" for i in range(40)],
    ...                       "events_30d": [30] * 20 + [0] * 20,
    ...                       "tenure_days": list(range(40))})
    >>> [t.name for t in segment_profile_bars(segment_frame(frame, k_range=(2, 2))).data]
    ['Power users', 'Casual']
    """
    profiles = segmentation.profiles
    axes = list(segmentation.model.axes_)
    if not axes:
        raise AnalysisError("the segmentation has no profile axes to draw")
    figure = go.Figure()
    for row in profiles.itertuples(index=False):
        values = [getattr(row, axis) for axis in axes]
        figure.add_trace(go.Bar(x=axes, y=values, name=str(row.segment)))
    figure.update_layout(
        barmode="group",
        title="Segment profiles against the population",
        yaxis_title="standard deviations from the population",
    )
    return figure
