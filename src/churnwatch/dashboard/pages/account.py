"""Account: one account's risk, reasons, health, activity, features and outcomes."""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from churnwatch.dashboard import _context as ctx
from churnwatch.dashboard import _data
from churnwatch.outcomes import list_outcomes

__all__ = ["render"]


def _choose_account() -> str | None:
    """The account shown: from the link followed, or picked among the filtered accounts."""
    model = ctx.model()
    linked = st.query_params.get("account")
    search = st.text_input("Find an account (id or name)", value=linked or "", key="account_q")
    filters = dataclasses.replace(ctx.account_filter(), search=search.strip() or None)
    page = model.accounts_page(filters, limit=50, columns=["account_id", "name"])
    if page.total == 0:
        st.info("No account matches — change the search or the sidebar filters.")
        return None
    frame = ctx.mask_frame(page.rows.to_pandas())
    names = frame["name"] if "name" in frame.columns else frame["account_id"]
    labels = {a: f"{a} · {n}" for a, n in zip(frame["account_id"], names, strict=True)}
    ids = list(labels)
    index = ids.index(linked) if linked in ids else 0
    chosen = st.selectbox(
        f"Account ({page.total:,} match; the 50 riskiest are listed)",
        ids,
        index=index,
        format_func=labels.__getitem__,
        key="account_pick",
    )
    return str(chosen) if chosen is not None else None


def _headline(row: dict[str, Any]) -> None:
    shown = ctx.mask_frame(pd.DataFrame([row])).iloc[0]
    st.subheader(f"{shown.get('name') or row['account_id']}")
    st.caption(
        " · ".join(
            str(part)
            for part in (
                row["account_id"],
                shown.get("email"),
                row.get("plan"),
                row.get("region"),
                row.get("platform"),
                f"CSM {row.get('csm_id')}" if row.get("csm_id") else None,
                row.get("status"),
            )
            if part
        )
    )
    columns = st.columns(6)
    risk = row.get("churn_risk")
    columns[0].metric("Churn risk", ctx.percent(risk), help=row.get("risk_tier") or None)
    columns[1].metric("Revenue at risk", ctx.money(row.get("revenue_at_risk")))
    columns[2].metric("MRR", ctx.money(row.get("mrr")))
    health = row.get("health_score")
    columns[3].metric(
        "Health",
        "—" if health is None else f"{health:.0f}",
        help=row.get("health_band") or None,
    )
    days = row.get("predicted_days_to_churn")
    columns[4].metric("Predicted days to churn", "—" if days is None else f"{days:.0f}")
    columns[5].metric("Tracker", row.get("tracker_state") or "—")
    reasons = [row.get(f"reason_{i}") for i in (1, 2, 3)]
    reasons = [r for r in reasons if r]
    if reasons:
        st.markdown(
            "**Why at risk**\n\n" + "\n".join(f"{i}. {r}" for i, r in enumerate(reasons, 1))
        )
    st.caption(
        f"Risk tier {row.get('risk_tier') or '—'} · health band {row.get('health_band') or '—'} · "
        f"segment {row.get('segment') or '—'} · scored {row.get('scored_at') or 'never'}"
    )


def _activity(account_id: str) -> None:
    st.subheader("Activity (last 26 weeks)")
    if not ctx.has_table("activity"):
        ctx.table_or_info("activity", "Weekly activity is")
        return
    frame = ctx.model().rows_of("activity", account_id).to_pandas()
    if frame.empty:
        st.info("No activity in the last 26 weeks.")
        return
    long = frame.melt("week", ["events", "active_days"], var_name="measure")
    figure = px.bar(long, x="week", y="value", color="measure", barmode="group", height=340)
    figure.update_layout(yaxis_title=None, legend_title=None)
    st.plotly_chart(figure, width="stretch")


def _risk_history(account_id: str) -> None:
    st.subheader("Risk history")
    if not ctx.has_table("risk_history"):
        ctx.table_or_info("risk_history", "Risk history is")
        return
    frame = ctx.model().rows_of("risk_history", account_id).to_pandas()
    if frame.empty:
        st.info("This account was never scored.")
        return
    if frame["scored_at"].nunique() < 2:
        # One scoring so far: a line needs two points.
        st.caption(f"Scored once, on {frame['scored_at'].iloc[0]:%Y-%m-%d}.")
        figure = px.bar(frame, x="target", y="score", color="target", height=320)
        figure.update_layout(showlegend=False)
    else:
        figure = px.line(frame, x="scored_at", y="score", color="target", markers=True, height=320)
    figure.update_layout(yaxis_tickformat=".0%", yaxis_range=[0, 1])
    st.plotly_chart(figure, width="stretch")


def _features(account_id: str) -> None:
    st.subheader("Features at the latest cutoff")
    if not ctx.has_table("features"):
        ctx.table_or_info("features", "Features are")
        return
    frame = ctx.model().rows_of("features", account_id).to_pandas()
    if frame.empty:
        st.info("No features for this account.")
        return
    values = frame.drop(columns="account_id").iloc[0]
    st.dataframe(
        pd.DataFrame({"feature": values.index, "value": values.to_numpy()}),
        hide_index=True,
        width="stretch",
        height=320,
    )


def _outcomes(account_id: str) -> None:
    st.subheader("Tracker episodes and outcomes")
    found = ctx.episodes()
    if found is None:
        return
    episodes, _ = found
    mine = episodes.loc[episodes["account_id"] == account_id]
    if mine.empty:
        st.caption("No churn episode tracked for this account.")
    else:
        shown = ["episode_id", "product", "churned_at", "recovered_at", "outcome", "klass"]
        st.dataframe(mine[shown], hide_index=True, width="stretch")
    live = ctx.store()
    answers = list_outcomes(live, account_id=account_id, limit=20) if live is not None else []
    if answers:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "recorded_at": a.recorded_at,
                        "outcome": a.outcome,
                        "useful": a.useful,
                        "csm_id": a.csm_id,
                        "notes": a.notes,
                        "source": a.source,
                    }
                    for a in answers
                ]
            ),
            hide_index=True,
            width="stretch",
        )


def render() -> None:
    """Draw the page."""
    st.title("Account")
    account_id = _choose_account()
    if account_id is None:
        return
    row = _data.account_row(ctx.model(), account_id)
    if row is None:
        st.warning(f"No account {account_id!r} in the read model.")
        return
    _headline(row)
    left, right = st.columns(2)
    with left:
        _activity(account_id)
    with right:
        _risk_history(account_id)
    left, right = st.columns(2)
    with left:
        _features(account_id)
    with right:
        _outcomes(account_id)


if __name__ == "__main__":
    render()
