"""Interventions: tracker KPIs by time since churn, region and CSM; impact; the win/loss form."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.express as px
import streamlit as st

from churnwatch.dashboard import _context as ctx
from churnwatch.dashboard import _data
from churnwatch.errors import ChurnwatchError
from churnwatch.outcomes import OUTCOME_KINDS, ImpactReport, kpis_from_episodes, record_outcome

__all__ = ["render"]


def _headline(episodes: pd.DataFrame, as_of: dt.date) -> None:
    kpis = kpis_from_episodes(episodes, as_of)
    columns = st.columns(6)
    columns[0].metric("Episodes", f"{kpis.episodes:,}")
    columns[1].metric("Accounts at risk", f"{kpis.accounts_at_risk:,}")
    columns[2].metric("Revenue at risk", ctx.money(kpis.revenue_at_risk))
    columns[3].metric("Revenue recovered", ctx.money(kpis.revenue_recovered))
    columns[4].metric("CSM true wins", f"{kpis.csm_true_wins:,}")
    columns[5].metric("Self-service wins", f"{kpis.self_service_wins:,}")
    st.subheader("By time since churn")
    buckets = pd.DataFrame([vars(row) for row in kpis.buckets])
    long = buckets.melt(
        "bucket", ["at_risk_accounts", "churned_accounts", "won_accounts"], var_name="accounts"
    )
    left, right = st.columns([3, 2])
    with left:
        figure = px.bar(long, x="bucket", y="value", color="accounts", barmode="group", height=340)
        figure.update_layout(yaxis_title="accounts")
        st.plotly_chart(figure, width="stretch")
    with right:
        st.dataframe(
            buckets[
                ["bucket", "at_risk_accounts", "at_risk_revenue", "revenue_lost", "revenue_won"]
            ],
            hide_index=True,
            width="stretch",
        )
    _impact(kpis.impact)


def _impact(impact: ImpactReport) -> None:
    st.subheader("Impact against the holdout")
    if impact.episodes_holdout == 0:
        st.info(
            "No holdout: set [tracker] holdout_share (such as 0.1) to measure whether "
            "notifications bring accounts back."
        )
        return
    columns = st.columns(4)
    columns[0].metric(
        "Recovered, notified",
        ctx.percent(impact.rate_notified),
        help=f"{impact.recovered_notified} of {impact.episodes_notified} episodes",
    )
    columns[1].metric(
        "Recovered, holdout",
        ctx.percent(impact.rate_holdout),
        help=f"{impact.recovered_holdout} of {impact.episodes_holdout} episodes",
    )
    interval = (
        f"{impact.confidence:.0%} interval {ctx.percent(impact.incremental_rate_low)} to "
        f"{ctx.percent(impact.incremental_rate_high)}"
    )
    columns[2].metric(
        "Incremental recovery",
        ctx.percent(impact.incremental_rate),
        help=interval,
    )
    columns[3].metric(
        "Incremental revenue",
        ctx.money(impact.incremental_revenue),
        help=f"{ctx.money(impact.incremental_revenue_low)} to "
        f"{ctx.money(impact.incremental_revenue_high)}",
    )
    st.caption(interval + (f" · {impact.note}" if impact.note else ""))


def _by(episodes: pd.DataFrame, as_of: dt.date, column: str, title: str) -> None:
    st.subheader(title)
    table = _data.kpis_by(episodes, as_of, column)
    if table.empty:
        st.caption("No episode.")
        return
    st.dataframe(table, hide_index=True, width="stretch")


def _form(episodes: pd.DataFrame) -> None:
    st.subheader("Record a win or a loss")
    open_ones = episodes.loc[~episodes["recovered"]].sort_values("churned_at", ascending=False)
    if open_ones.empty:
        st.caption("No open episode.")
        return
    labels: dict[str, str] = {}
    for row in open_ones.head(500).to_dict("records"):
        answered = f" · answered {row['outcome']}" if isinstance(row["outcome"], str) else ""
        labels[str(row["episode_id"])] = (
            f"{row['account_id']} · {row['product'] or 'product'} · churned "
            f"{row['churned_at']:%Y-%m-%d}{answered}"
        )
    with st.form("outcome", clear_on_submit=True):
        episode_id = st.selectbox("Episode", list(labels), format_func=labels.__getitem__)
        outcome = st.radio("Outcome", OUTCOME_KINDS, horizontal=True)
        useful = st.radio("Was the alert useful?", ("not said", "yes", "no"), horizontal=True)
        csm_id = st.text_input("CSM id (empty: the episode's CSM)")
        notes = st.text_area("Notes")
        submitted = st.form_submit_button("Record", type="primary")
    if not submitted:
        return
    live = ctx.store()
    if live is None or episode_id is None:
        st.error("The operational store is not available.")
        return
    try:
        answer = record_outcome(
            live,
            str(outcome),
            episode_id=str(episode_id),
            csm_id=csm_id.strip() or None,
            useful={"yes": True, "no": False}.get(str(useful)),
            notes=notes.strip() or None,
            source="dashboard",
        )
    except ChurnwatchError as exc:
        st.error(str(exc))
        return
    ctx.forget_episodes()
    st.success(f"Recorded {answer.outcome} for {answer.account_id} (episode {answer.episode_id}).")


def render() -> None:
    """Draw the page."""
    st.title("Interventions")
    found = ctx.episodes()
    if found is None:
        return
    episodes, as_of = found
    filters = ctx.account_filter()
    episodes = _data.filter_episodes(episodes, filters, ctx.model())
    st.caption(f"As of the snapshot of {as_of.isoformat()}.")
    ctx.filter_caption(filters, "region and CSM at churn; the others as the accounts are now")
    _headline(episodes, as_of)
    left, right = st.columns(2)
    with left:
        _by(episodes, as_of, "region", "By region")
    with right:
        _by(episodes, as_of, "csm_id", "By CSM (the 20 with most episodes)")
    _form(episodes)


if __name__ == "__main__":
    render()
