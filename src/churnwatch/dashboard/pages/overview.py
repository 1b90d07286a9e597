"""Overview: the headline KPIs, a churn-spike alert, the churn trend and the risk mix."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from churnwatch.dashboard import _context as ctx
from churnwatch.dashboard import _data

__all__ = ["render"]


def render() -> None:
    """Draw the page."""
    st.title("Overview")
    model = ctx.model()
    meta = model.meta
    kpis = meta.get("kpis") or {}
    filters = ctx.account_filter()
    spike = kpis.get("churn_spike") or {}
    if spike.get("spike"):
        st.error(f"Churn spike: {spike.get('message') or 'churn is well above its baseline'}")
    summary = _data.account_summary(model, filters)
    columns = st.columns(5)
    columns[0].metric("Accounts", f"{summary['accounts']:,}")
    columns[1].metric("Active accounts", f"{summary['active_accounts']:,}")
    columns[2].metric(
        "Churn rate (latest month)",
        ctx.percent(kpis.get("churn_rate")),
        help="Share of the accounts active at the start of the latest month that churned in "
        "it, over all accounts.",
    )
    revenue_at_risk = summary["revenue_at_risk"]
    columns[3].metric(
        "Revenue at risk",
        ctx.money(float(revenue_at_risk) if revenue_at_risk is not None else None),
        help="Sum over accounts of monthly revenue x churn risk.",
    )
    columns[4].metric(
        "Revenue recovered",
        ctx.money(kpis.get("revenue_recovered")),
        help="Revenue at churn of the at-risk episodes that re-adopted (all accounts).",
    )
    ctx.filter_caption(filters, "accounts and revenue at risk; the rates are for all accounts")

    left, right = st.columns(2)
    with left:
        st.subheader("Churn by month")
        trend = ctx.table_or_info("churn_trend", "The churn trend is")
        if trend is not None and trend.num_rows:
            frame = trend.to_pandas()
            figure = px.line(frame, x="period", y="churn_rate", markers=True)
            figure.update_layout(yaxis_tickformat=".1%", yaxis_title="churn rate", height=340)
            st.plotly_chart(figure, width="stretch")
    with right:
        st.subheader("Accounts by risk tier")
        tiers = _data.tier_breakdown(model, filters)
        if tiers.empty:
            st.info("No account matches the filters.")
        else:
            figure = px.bar(
                tiers,
                x="risk_tier",
                y="accounts",
                color="risk_tier",
                hover_data=["revenue_at_risk"],
                color_discrete_map={
                    "high": "#d62728",
                    "medium": "#ff7f0e",
                    "low": "#2ca02c",
                    "unscored": "#b0b0b0",
                },
                category_orders={"risk_tier": ["high", "medium", "low", "unscored"]},
            )
            figure.update_layout(showlegend=False, height=340)
            st.plotly_chart(figure, width="stretch")
    st.subheader("Distribution of churn risk")
    histogram = _data.risk_histogram(model, filters)
    if histogram.empty:
        st.info(
            "No scored account matches the filters — run `churnwatch score`, then "
            "`churnwatch views refresh`."
        )
    else:
        figure = px.bar(histogram, x="risk_from", y="accounts")
        figure.update_layout(xaxis_title="churn risk (band start)", height=300, bargap=0.05)
        st.plotly_chart(figure, width="stretch")


if __name__ == "__main__":
    render()
