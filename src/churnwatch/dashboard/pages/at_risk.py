"""At-risk accounts: the filtered list, sorted and paged, with a CSV download."""

from __future__ import annotations

import dataclasses
import functools
import math
from urllib.parse import quote

import streamlit as st

from churnwatch.dashboard import _context as ctx
from churnwatch.dashboard import _data
from churnwatch.views import SORTABLE

__all__ = ["render"]

#: The columns listed, in order (those the read model lacks are left out).
COLUMNS = (
    "account_id",
    "name",
    "email",
    "plan",
    "region",
    "csm_id",
    "churn_risk",
    "risk_tier",
    "revenue_at_risk",
    "mrr",
    "reason_1",
    "health_score",
    "predicted_days_to_churn",
    "tracker_state",
    "segment",
)


def render() -> None:
    """Draw the page."""
    st.title("At-risk accounts")
    model = ctx.model()
    filters = ctx.account_filter()
    top = st.columns([2, 2, 1, 1])
    search = top[0].text_input("Search id or name", key="at_risk_search")
    sort_by = top[1].selectbox("Sort by", SORTABLE, key="at_risk_sort")
    descending = top[2].toggle("Descending", value=True, key="at_risk_desc")
    min_risk = top[3].number_input(
        "Min risk", min_value=0.0, max_value=1.0, value=0.0, step=0.05, key="at_risk_min"
    )
    filters = dataclasses.replace(filters, search=search.strip() or None, min_risk=min_risk or None)
    present = model.columns("accounts")
    if "churn_risk" not in present:
        st.info(
            "Accounts are not scored yet — run `churnwatch score`, then "
            "`churnwatch views refresh`; listed by id meanwhile."
        )
    columns = [c for c in COLUMNS if c in present]
    rows = ctx.settings().dashboard.page_rows
    count = model.accounts_page(filters, limit=1, columns=["account_id"]).total
    pages = max(1, math.ceil(count / rows))
    page_number = st.number_input(
        f"Page (of {pages:,})", min_value=1, max_value=pages, value=1, key="at_risk_page"
    )
    page = _data.account_page(
        model,
        filters,
        sort_by=sort_by,
        descending=descending,
        offset=(int(page_number) - 1) * rows,
        limit=rows,
        columns=columns,
    )
    st.caption(
        f"{page.total:,} accounts match; showing {page.rows.num_rows:,} from {page.offset + 1:,}."
    )
    ctx.filter_caption(filters)
    frame = ctx.mask_frame(page.rows.to_pandas())
    frame.insert(0, "open", [f"account?account={quote(str(a))}" for a in frame["account_id"]])
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "open": st.column_config.LinkColumn("open", display_text="open"),
            "churn_risk": st.column_config.ProgressColumn(
                "churn risk", min_value=0.0, max_value=1.0, format="percent"
            ),
            "revenue_at_risk": st.column_config.NumberColumn("revenue at risk", format="%.0f"),
            "mrr": st.column_config.NumberColumn("MRR", format="%.0f"),
            "health_score": st.column_config.NumberColumn("health", format="%.0f"),
        },
    )
    mask = functools.partial(ctx.mask_frame, visible=ctx.personal_data_visible())

    def csv() -> bytes:
        return _data.accounts_csv(
            model, filters, sort_by=sort_by, descending=descending, columns=columns, mask=mask
        )

    st.download_button(
        "Download CSV (up to 100,000 accounts)",
        data=csv,
        file_name="at_risk_accounts.csv",
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
    )


if __name__ == "__main__":
    render()
