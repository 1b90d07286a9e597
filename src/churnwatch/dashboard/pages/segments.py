"""Segments: accounts on their two principal components, and what each segment looks like."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from churnwatch.dashboard import _context as ctx
from churnwatch.dashboard import _data

__all__ = ["render"]


def render() -> None:
    """Draw the page."""
    st.title("Segments")
    filters = ctx.account_filter()
    if ctx.table_or_info("segment_points", "Segments are") is not None:
        points = _data.segment_points(ctx.model(), filters)
        st.caption(f"{len(points):,} sampled accounts on the first two principal components.")
        ctx.filter_caption(filters)
        if points.empty:
            st.info("No sampled account matches the filters.")
        else:
            figure = px.scatter(
                points.sort_values("segment"),
                x="pc1",
                y="pc2",
                color="segment",
                hover_data=["account_id", "churn_risk"],
                opacity=0.7,
                render_mode="webgl",
                height=480,
            )
            figure.update_traces(marker={"size": 5})
            st.plotly_chart(figure, width="stretch")
    st.subheader("Segment profiles")
    table = ctx.table_or_info("segment_profiles", "Segment profiles are")
    if table is None or not table.num_rows:
        return
    profiles = table.to_pandas()
    if filters.segment:
        profiles = profiles.loc[profiles["segment"].isin(filters.segment)]
    sizes = profiles.groupby("segment", as_index=False)["accounts"].max()
    grid = profiles.pivot_table(index="feature", columns="segment", values="mean")
    # Each feature on its own scale: how far a segment's mean lies from the others'.
    spread = grid.std(axis=1).replace(0.0, 1.0)
    scaled = grid.sub(grid.mean(axis=1), axis=0).div(spread, axis=0)
    left, right = st.columns([1, 2])
    with left:
        figure = px.bar(sizes, x="segment", y="accounts", color="segment", height=360)
        figure.update_layout(showlegend=False)
        st.plotly_chart(figure, width="stretch")
    with right:
        figure = px.imshow(
            scaled,
            color_continuous_scale="RdBu_r",
            zmin=-2,
            zmax=2,
            aspect="auto",
            labels={"color": "z across segments"},
            height=max(360, 24 * len(scaled)),
        )
        st.plotly_chart(figure, width="stretch")
    st.dataframe(grid.round(3), width="stretch")


if __name__ == "__main__":
    render()
