"""``/health``: is the store reachable, which read model and models are served."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from churnwatch.api._app import state_of
from churnwatch.errors import ChurnwatchError

__all__ = ["HealthOut", "router"]

router = APIRouter(tags=["health"])


class ReadModelOut(BaseModel):
    """The read model generation served."""

    generation: str
    refreshed_at: str | None
    scored_at: str | None


class HealthOut(BaseModel):
    """The server's state; ``status`` is ``ok`` or ``degraded``."""

    status: str
    store_reachable: bool
    store_error: str | None
    read_model: ReadModelOut | None = Field(description="Null until the read model is computed.")
    read_model_error: str | None
    models: dict[str, str] = Field(description="Promoted model version by target.")
    models_error: str | None


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


@router.get("/health", responses={503: {"model": HealthOut, "description": "Store unreachable."}})
def health(request: Request) -> Any:
    """Whether the API can serve: no API key needed."""
    state = state_of(request)
    store_error = None
    try:
        with state.store.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any failure to reach it is what this endpoint reports
        store_error = _first_line(exc)
    read_model = None
    read_model_error = None
    try:
        assert state.lookups is not None
        generation = state.lookups.served()
        meta = generation.meta
        read_model = ReadModelOut(
            generation=generation.name,
            refreshed_at=meta.get("refreshed_at"),
            scored_at=meta.get("scored_at"),
        )
    except (ChurnwatchError, OSError, ValueError) as exc:
        read_model_error = _first_line(exc)
    models: dict[str, str] = {}
    models_error = None
    try:
        assert state.scorer is not None
        models = {name: found.card.version for name, found in state.scorer.models().items()}
    except (ChurnwatchError, OSError) as exc:
        models_error = _first_line(exc)
    ok = store_error is None and read_model is not None
    body = HealthOut(
        status="ok" if ok else "degraded",
        store_reachable=store_error is None,
        store_error=store_error,
        read_model=read_model,
        read_model_error=read_model_error,
        models=models,
        models_error=models_error,
    )
    if store_error is not None:
        return JSONResponse(body.model_dump(mode="json"), status_code=503)
    return body
