"""``/accounts``: the accounts with their churn risk, filtered, sorted and paged; one account.

Both read the read model (``<project>/views``): the list is filtered,
sorted and paged by DuckDB over its ``accounts`` table; one account is a
dictionary lookup in memory, with its risk history.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from churnwatch.api._app import NotFoundError, state_of
from churnwatch.api._auth import AUTH_RESPONSES, ErrorOut, reader
from churnwatch.views import SORTABLE, AccountFilter

__all__ = ["AccountDetail", "AccountOut", "AccountsPage", "RiskPoint", "router"]

router = APIRouter(tags=["accounts"], dependencies=[reader], responses=AUTH_RESPONSES)
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such account."},
    503: {"model": ErrorOut, "description": "The read model is not computed yet."},
}
SortColumn = Literal[
    "churn_risk",
    "revenue_at_risk",
    "mrr",
    "health_score",
    "predicted_days_to_churn",
    "created_at",
    "account_id",
]
assert set(SortColumn.__args__) == set(SORTABLE)  # type: ignore[attr-defined]


class AccountOut(BaseModel):
    """One account of the read model: attributes, risk, reasons, health, segment, tracker state.

    A field the read model does not hold (not computed yet) is null.
    """

    model_config = ConfigDict(extra="ignore")

    account_id: str
    name: str | None = None
    email: str | None = None
    plan: str | None = None
    region: str | None = None
    platform: str | None = None
    csm_id: str | None = None
    created_at: dt.datetime | None = None
    status: str | None = Field(default=None, description="'active' or 'churned'.")
    mrr: float | None = None
    churn_risk: float | None = Field(
        default=None, description="Calibrated P(churn) at the last scoring; null if unscored."
    )
    risk_tier: str | None = Field(default=None, description="'high', 'medium' or 'low'.")
    revenue_at_risk: float | None = Field(default=None, description="churn_risk x mrr.")
    reason_1: str | None = None
    reason_2: str | None = None
    reason_3: str | None = None
    predicted_days_to_churn: float | None = None
    health_score: float | None = Field(default=None, description="0 to 100.")
    health_band: str | None = None
    segment: str | None = None
    tracker_state: str | None = None
    scored_at: dt.datetime | None = None


class AccountsPage(BaseModel):
    """A page of accounts."""

    items: list[AccountOut]
    total: int = Field(description="Accounts matching the filters, on every page.")
    offset: int
    limit: int
    next: str | None = Field(description="URL of the next page; null on the last.")


class RiskPoint(BaseModel):
    """One scoring of the account."""

    scored_at: dt.datetime | None
    target: str | None
    score: float | None


class AccountDetail(AccountOut):
    """One account with its risk history (oldest first)."""

    risk_history: list[RiskPoint]


def _values(values: list[str] | None) -> tuple[str, ...]:
    return tuple(values or ())


_Filter = Annotated[
    list[str] | None, Query(max_length=100, description="Keep these values (repeatable).")
]


@router.get("/accounts", responses=_ERRORS)
def list_accounts(
    request: Request,
    offset: Annotated[int, Query(ge=0, le=100_000_000, description="Accounts to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="Accounts per page.")] = 50,
    tier: _Filter = None,
    csm: _Filter = None,
    region: _Filter = None,
    plan: _Filter = None,
    platform: _Filter = None,
    segment: _Filter = None,
    min_risk: Annotated[
        float | None, Query(ge=0, le=1, description="Keep accounts with at least this risk.")
    ] = None,
    search: Annotated[
        str | None, Query(max_length=200, description="Text in the account's id or name.")
    ] = None,
    sort: Annotated[SortColumn, Query(description="Column to sort by.")] = "churn_risk",
    order: Annotated[Literal["asc", "desc"], Query(description="Sort direction.")] = "desc",
) -> AccountsPage:
    """Accounts with their churn risk, filtered, sorted (riskiest first by default) and paged."""
    state = state_of(request)
    assert state.lookups is not None
    views = state.lookups.model()
    filters = AccountFilter(
        risk_tier=_values(tier),
        csm_id=_values(csm),
        region=_values(region),
        plan=_values(plan),
        platform=_values(platform),
        segment=_values(segment),
        min_risk=min_risk,
        search=search or None,
    )
    page = views.accounts_page(
        filters,
        sort_by=sort,
        descending=order == "desc",
        offset=offset,
        limit=limit,
        columns=list(AccountOut.model_fields),
    )
    following = None
    if offset + limit < page.total:
        following = str(request.url.include_query_params(offset=offset + limit, limit=limit))
    return AccountsPage(
        items=[AccountOut.model_validate(row) for row in page.rows.to_pylist()],
        total=page.total,
        offset=offset,
        limit=limit,
        next=following,
    )


# Async: the lookup is a dictionary access and a slice in memory, cheaper
# than the hop to the thread pool a sync endpoint would take.
@router.get("/accounts/{account_id}", responses=_ERRORS)
async def get_account(
    request: Request,
    account_id: Annotated[str, Path(max_length=255, description="The account's id.")],
) -> AccountDetail:
    """One account: risk, tier, revenue at risk, reasons, health, segment, tracker state."""
    state = state_of(request)
    assert state.lookups is not None
    accounts = state.lookups.index("accounts")
    row = accounts.first(account_id) if accounts is not None else None
    if row is None:
        raise NotFoundError(f"no account {account_id!r} in the read model")
    history = state.lookups.index("risk_history")
    points = history.rows(account_id) if history is not None else []
    return AccountDetail.model_validate({**row, "risk_history": points})
