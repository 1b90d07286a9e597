"""Scoring on demand: one account from its read-model features, or from posted events.

See :mod:`churnwatch.api._scorer` for what each computes.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from churnwatch.api._app import state_of
from churnwatch.api._auth import AUTH_RESPONSES, BODY_RESPONSES, ErrorOut, writer
from churnwatch.api._events import RejectionOut
from churnwatch.api._scorer import Scored
from churnwatch.inbox import check_events

__all__ = ["RealtimeIn", "ScoreOut", "router"]

router = APIRouter(tags=["scoring"], dependencies=[writer], responses=AUTH_RESPONSES)
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such account, or no model of that target."},
    503: {"model": ErrorOut, "description": "No promoted model, or no read model yet."},
}
_Target = Annotated[
    str | None,
    Query(
        max_length=64,
        description="The promoted model's target (default: churn at the project's horizon).",
    ),
]


class ScoreOut(BaseModel):
    """An account scored now by a promoted model."""

    account_id: str
    target: str
    model_version: str
    score: float = Field(description="Calibrated P(target) (binary targets), else the value.")
    risk_tier: str | None
    mrr: float | None
    revenue_at_risk: float | None
    reasons: list[str] = Field(description="What raises the risk most (above the lowest tier).")
    features_as_of: dt.datetime | None = Field(description="The moment the features describe.")
    computed_features: list[str] = Field(
        description="Features computed from the posted events (POST /score only)."
    )
    kept_features: list[str] = Field(
        description="Features that events cannot change, kept from the read model "
        "(POST /score only): subscription, payment, user and attribute features."
    )

    @classmethod
    def of(cls, scored: Scored) -> ScoreOut:
        """The answer for a :class:`Scored`."""
        return cls.model_validate(scored, from_attributes=True)


class RealtimeIn(BaseModel):
    """An account's recent events, to score it from them."""

    model_config = ConfigDict(extra="forbid")

    account_id: str = Field(min_length=1, max_length=255)
    events: list[Any] = Field(
        max_length=10_000,
        description="Events of the account (fields of the canonical events table; "
        "`account_id` may be left out). Features computed from events see only these.",
    )
    as_of: dt.datetime | None = Field(
        default=None,
        description="The moment to score at, with a time zone (default: now). Events at or "
        "after it are not seen, as in the daily scoring.",
    )
    target: str | None = Field(default=None, max_length=64)


class RealtimeRejected(BaseModel):
    """An invalid real-time scoring request: ``rejections`` lists each invalid event's faults."""

    detail: Any
    rejections: list[RejectionOut] = Field(default_factory=list)


# Async: about a millisecond of CPU in memory (the model is loaded once), which
# a thread would not run any sooner (the GIL) but would add a hop to.
@router.post("/accounts/{account_id}/score", responses=_ERRORS)
async def score_account(
    request: Request,
    account_id: Annotated[str, Path(max_length=255, description="The account's id.")],
    target: _Target = None,
) -> ScoreOut:
    """Score an account now from its features in the read model, with the promoted model."""
    state = state_of(request)
    assert state.scorer is not None
    return ScoreOut.of(state.scorer.score_account(account_id, target))


@router.post(
    "/score",
    response_model=ScoreOut,
    responses={
        **_ERRORS,
        **BODY_RESPONSES,
        422: {"model": RealtimeRejected, "description": "Invalid request or events."},
    },
)
def score_events(request: Request, body: RealtimeIn) -> Any:
    """Score an account in real time from its recent events (see `computed_features`)."""
    state = state_of(request)
    assert state.scorer is not None
    now = dt.datetime.now(dt.UTC)
    if body.as_of is not None and body.as_of.tzinfo is None:
        raise HTTPException(422, "as_of needs a time zone, such as 2024-03-01T00:00:00Z")
    as_of = body.as_of.astimezone(dt.UTC) if body.as_of is not None else now
    events = [
        {**event, "account_id": body.account_id}
        if isinstance(event, dict) and "account_id" not in event
        else event
        for event in body.events
    ]
    checked = check_events(events, now=max(now, as_of))
    if checked.rejections:
        refused = RealtimeRejected(
            detail=f"{checked.rejected_rows} of {len(events)} events are not valid",
            rejections=[RejectionOut.of(r) for r in checked.rejections],
        )
        return JSONResponse(refused.model_dump(mode="json"), status_code=422)
    others = sorted({e["account_id"] for e in checked.valid} - {body.account_id})
    if others:
        raise HTTPException(
            422, f"every event must be account {body.account_id!r}'s; found {', '.join(others)}"
        )
    scored = state.scorer.score_events(
        body.account_id, checked.valid, as_of=as_of, target=body.target
    )
    return ScoreOut.of(scored)
