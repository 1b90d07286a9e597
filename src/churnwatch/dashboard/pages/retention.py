"""Retention: the cohort heatmap, and Kaplan-Meier curves by an attribute with a log-rank test."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from churnwatch.dashboard import _context as ctx
from churnwatch.dashboard._data import filtered_durations
from churnwatch.views import AccountFilter

__all__ = ["render"]


def _cohorts() -> None:
    st.subheader("Cohort retention")
    table = ctx.table_or_info("cohort_retention", "Cohort retention is")
    if table is None or not table.num_rows:
        return
    ctx.filter_caption(ctx.account_filter(), "not here: cohorts are computed over all accounts")
    frame = table.to_pandas()
    grid = frame.pivot_table(index="cohort", columns="period", values="retention")
    figure = px.imshow(
        grid,
        color_continuous_scale="Blues",
        zmin=0,
        zmax=1,
        aspect="auto",
        labels={"x": "periods since start", "y": "cohort", "color": "retained"},
        text_auto=".0%",
    )
    figure.update_layout(height=max(320, 22 * len(grid)))
    st.plotly_chart(figure, width="stretch")


def _survival() -> None:
    st.subheader("Survival (Kaplan-Meier)")
    table = ctx.table_or_info("survival_curves", "Survival curves are")
    if table is None or not table.num_rows:
        return
    curves = table.to_pandas()
    attributes = sorted(curves["attribute"].unique(), key=lambda a: (a != "all", a))
    attribute = st.selectbox("Compare accounts by", attributes, key="km_attribute")
    chosen = curves.loc[curves["attribute"] == attribute]
    filters = ctx.account_filter()
    refit = _refit(filters, attribute)
    if refit is not None:
        chosen, test = refit
    else:
        test = _stored_test(attribute)
    figure = go.Figure()
    palette = px.colors.qualitative.Plotly
    for index, (group, rows) in enumerate(chosen.groupby("group", sort=True)):
        colour = palette[index % len(palette)]
        rows = rows.sort_values("days")
        figure.add_trace(
            go.Scatter(
                x=list(rows["days"]) + list(rows["days"])[::-1],
                y=list(rows["upper"]) + list(rows["lower"])[::-1],
                fill="toself",
                fillcolor=colour,
                opacity=0.15,
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
            )
        )
        figure.add_trace(
            go.Scatter(
                x=rows["days"],
                y=rows["survival"],
                name=str(group),
                line_shape="hv",
                line={"color": colour},
            )
        )
    figure.update_layout(
        xaxis_title="days since start",
        yaxis_title="still a customer",
        yaxis_range=[0, 1.02],
        height=420,
    )
    st.plotly_chart(figure, width="stretch")
    if attribute == "all":
        return
    if test is None:
        st.caption(f"No log-rank test for {attribute}.")
        return
    verdict = "differ" if test["p_value"] < 0.05 else "do not differ significantly"
    st.markdown(
        f"**Log-rank test** across {int(test['groups'])} groups of {attribute}: "
        f"χ² = {test['statistic']:.2f} on {int(test['degrees_of_freedom'])} degrees of freedom, "
        f"p = {test['p_value']:.3g} — the curves {verdict} (at 5%)."
    )


def _stored_test(attribute: str) -> dict[str, float] | None:
    """The read model's log-rank test across the groups of ``attribute``."""
    if attribute == "all" or not ctx.has_table("survival_tests"):
        return None
    found = ctx.model().table("survival_tests").to_pandas()
    found = found.loc[found["attribute"] == attribute]
    return None if found.empty else dict(found.iloc[0])


def _refit(
    filters: AccountFilter, attribute: str
) -> tuple[pd.DataFrame, dict[str, float] | None] | None:
    """Curves and log-rank test of just the filtered accounts; None without filters.

    The stored curves are of every account; with sidebar filters set, the
    Kaplan-Meier fit is run again on the filtered accounts' periods (the
    read model keeps each account's durations for this).
    """
    if filters == AccountFilter() or not ctx.has_table("survival_durations"):
        if filters != AccountFilter():
            st.caption("Curves of every account: the read model has no durations to filter.")
        return None
    from churnwatch.errors import AnalysisError
    from churnwatch.survival import kaplan_meier
    from churnwatch.views._curves import curve_rows

    lives = filtered_durations(ctx.model(), filters, None if attribute == "all" else attribute)
    ctx.filter_caption(filters, f"{len(lives):,} periods followed")
    if lives.empty:
        return pd.DataFrame(columns=["group", "days", "survival", "lower", "upper"]), None
    try:
        fitted = kaplan_meier(
            lives["duration_days"],
            lives["event_observed"],
            groups=lives["group"] if attribute != "all" else None,
            by=None if attribute == "all" else attribute,
        )
    except AnalysisError as exc:
        st.info(f"No curve for these accounts: {exc}")
        return pd.DataFrame(columns=["group", "days", "survival", "lower", "upper"]), None
    test = None
    if fitted.logrank is not None:
        test = {
            "statistic": float(fitted.logrank.statistic),
            "p_value": float(fitted.logrank.p_value),
            "degrees_of_freedom": float(fitted.logrank.degrees_of_freedom),
            "groups": float(lives["group"].nunique()),
        }
    return curve_rows(fitted.survival, attribute), test


def render() -> None:
    """Draw the page."""
    st.title("Retention")
    _cohorts()
    _survival()


if __name__ == "__main__":
    render()
