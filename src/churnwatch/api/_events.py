"""``/events``: ingest a batch of events, checked row by row, stored once per event id.

The good events of a batch are kept even when others are refused; each
refusal names the event's index, the field and what was expected. The
events wait in the operational store's inbox until ``churnwatch events
drain`` (or the daily job) moves them into the warehouse.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from churnwatch.api._app import state_of
from churnwatch.api._auth import AUTH_RESPONSES, BODY_RESPONSES, writer
from churnwatch.inbox import EVENT_FIELDS, Rejection, check_events, store_events

__all__ = ["EventBatch", "IngestOut", "RejectionOut", "router"]

router = APIRouter(tags=["events"], dependencies=[writer], responses=AUTH_RESPONSES)
MAX_BATCH = 10_000


class EventBatch(BaseModel):
    """Events to ingest."""

    model_config = ConfigDict(extra="forbid")

    events: list[Any] = Field(
        max_length=MAX_BATCH,
        description="Objects with the fields of the canonical events table: "
        f"{', '.join(EVENT_FIELDS)}. account_id, event_time (ISO 8601 with a time zone) and "
        "event_type are required; event_id makes re-posting safe (without it, the event's "
        "account, time, type, user, value and duration identify it).",
    )


class RejectionOut(BaseModel):
    """Why one event was refused."""

    index: int = Field(description="Position of the event in the batch, from 0.")
    field: str | None = Field(description="The field at fault; null for the whole event.")
    message: str

    @classmethod
    def of(cls, rejection: Rejection) -> RejectionOut:
        """The answer for a :class:`~churnwatch.inbox.Rejection`."""
        return cls(index=rejection.index, field=rejection.field, message=rejection.message)


class IngestOut(BaseModel):
    """What happened to a batch."""

    received: int
    accepted: int = Field(description="Events stored now.")
    duplicates: int = Field(description="Events stored before (same id): acknowledged.")
    rejected: int = Field(description="Events refused (see rejections).")
    rejections: list[RejectionOut]


@router.post("/events", responses=BODY_RESPONSES)
def post_events(request: Request, batch: EventBatch) -> IngestOut:
    """Ingest events: valid ones are stored once each, invalid ones refused with reasons."""
    state = state_of(request)
    checked = check_events(batch.events)
    stored = store_events(state.store, checked.valid)
    return IngestOut(
        received=len(batch.events),
        accepted=stored.accepted,
        duplicates=stored.duplicates,
        rejected=checked.rejected_rows,
        rejections=[RejectionOut.of(r) for r in checked.rejections],
    )
