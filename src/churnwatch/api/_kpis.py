"""``/kpis``: the customer-success KPIs and the impact against the holdout."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request

from churnwatch.api._app import state_of
from churnwatch.api._auth import AUTH_RESPONSES, reader
from churnwatch.outcomes import Kpis, compute_kpis

__all__ = ["router"]

_EARLIEST = dt.date(1900, 1, 1)
_LATEST = dt.date(2200, 12, 31)
router = APIRouter(tags=["kpis"], dependencies=[reader], responses=AUTH_RESPONSES)


@router.get("/kpis", response_model=Kpis)
def get_kpis(
    request: Request,
    as_of: Annotated[dt.date | None, Query(description="Snapshot date (YYYY-MM-DD).")] = None,
    window_days: Annotated[
        int | None, Query(ge=1, le=3650, description="Recovery window of the impact report.")
    ] = None,
) -> dict[str, Any]:
    """The KPIs as of a snapshot date (default: the last one tracked)."""
    state = state_of(request)
    if as_of is not None and not _EARLIEST <= as_of <= _LATEST:
        # The KPI arithmetic runs on nanosecond timestamps, which end there.
        raise HTTPException(
            422, f"as_of {as_of} is out of range: give a date from {_EARLIEST} to {_LATEST}"
        )
    kpis = compute_kpis(
        state.store, as_of=as_of, tracker=state.settings.tracker, window_days=window_days
    )
    return kpis.as_json()
