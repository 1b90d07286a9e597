"""``/outcomes``: record a CSM's answer, list the answers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from churnwatch.api._app import state_of
from churnwatch.api._auth import AUTH_RESPONSES, BODY_RESPONSES, ErrorOut, reader, writer
from churnwatch.outcomes import Outcome, list_outcomes, record_outcome

__all__ = ["OutcomeIn", "router"]

router = APIRouter(tags=["feedback"], responses=AUTH_RESPONSES)


class OutcomeIn(BaseModel):
    """A CSM's answer about an at-risk episode."""

    model_config = ConfigDict(extra="forbid")

    outcome: Literal["won", "lost", "not_useful"]
    episode_id: str | None = Field(default=None, max_length=255)
    account_id: str | None = Field(default=None, max_length=255)
    product: str | None = Field(default=None, max_length=128)
    csm_id: str | None = Field(default=None, max_length=255)
    useful: bool | None = None
    notes: str | None = Field(default=None, max_length=10_000)


@router.post(
    "/outcomes",
    status_code=201,
    response_model=Outcome,
    dependencies=[writer],
    responses={
        **BODY_RESPONSES,
        404: {"model": ErrorOut, "description": "No such episode, or no open one of the account."},
    },
)
def post_outcome(answer: OutcomeIn, request: Request) -> dict[str, Any]:
    """Record an answer (by episode id, or by account for its open episode)."""
    state = state_of(request)
    stored = record_outcome(
        state.store,
        answer.outcome,
        episode_id=answer.episode_id,
        account_id=answer.account_id,
        product=answer.product,
        csm_id=answer.csm_id,
        useful=answer.useful,
        notes=answer.notes,
        source="api",
    )
    return stored.as_json()


@router.get("/outcomes", dependencies=[reader], response_model=list[Outcome])
def get_outcomes(
    request: Request,
    episode_id: Annotated[str | None, Query(max_length=255)] = None,
    account_id: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[dict[str, Any]]:
    """The answers recorded, newest first."""
    state = state_of(request)
    found = list_outcomes(state.store, episode_id=episode_id, account_id=account_id, limit=limit)
    return [answer.as_json() for answer in found]
