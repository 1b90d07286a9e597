"""The application factory: settings and store in, a FastAPI app out."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from churnwatch.config import Settings
from churnwatch.errors import ChurnwatchError, StoreError, UnknownEpisodeError
from churnwatch.store import Store

__all__ = ["ApiState", "create_app", "state_of"]


@dataclasses.dataclass
class ApiState:
    """What every router needs, held by the application.

    Attributes
    ----------
    settings : Settings
        The project settings.
    store : Store
        The operational store.
    slack_signing_secret : str or None
        The Slack app's signing secret; the Slack endpoint refuses every
        request while it is not set.
    clock : callable
        Unix time (for the Slack replay window).
    """

    settings: Settings
    store: Store
    slack_signing_secret: str | None = None
    clock: Callable[[], float] = time.time


def state_of(request: Request) -> ApiState:
    """The application's state, for a router."""
    state: ApiState = request.app.state.churnwatch
    return state


async def _user_error(_request: Request, exc: Exception) -> JSONResponse:
    # A store that cannot be reached is the server's trouble, not the caller's.
    if isinstance(exc, StoreError):
        status = 503
    elif isinstance(exc, UnknownEpisodeError):
        status = 404
    else:
        status = 422
    return JSONResponse({"detail": str(exc)}, status_code=status)


def create_app(
    settings: Settings,
    *,
    store: Store,
    slack_signing_secret: str | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """The Churnwatch REST API over an operational store.

    Parameters
    ----------
    settings : Settings
        The project settings.
    store : Store
        The operational store (answers are written there, KPIs read from it).
    slack_signing_secret : str, optional
        The Slack app's signing secret (read from the environment at the edge).
    clock : callable
        Unix time, for the Slack signature's replay window.

    Returns
    -------
    FastAPI
    """
    from churnwatch.api import _feedback, _kpis, _slack

    app = FastAPI(
        title="Churnwatch",
        summary="Customer-success answers, Slack interactions and the churn KPIs.",
    )
    app.state.churnwatch = ApiState(settings, store, slack_signing_secret, clock)
    app.add_exception_handler(ChurnwatchError, _user_error)
    app.include_router(_feedback.router)
    app.include_router(_slack.router)
    app.include_router(_kpis.router)
    return app
