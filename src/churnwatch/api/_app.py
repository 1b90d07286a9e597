"""The application factory: settings, store, read model and models in, a FastAPI app out."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from churnwatch.config import Settings
from churnwatch.errors import ChurnwatchError, ModelError, StoreError, UnknownEpisodeError
from churnwatch.store import Store
from churnwatch.views import ReadModel, ViewsNotFoundError

if TYPE_CHECKING:
    from churnwatch.api._auth import KeyCache
    from churnwatch.api._lookup import Lookups
    from churnwatch.api._scorer import Scorer
    from churnwatch.models import ModelRegistry

__all__ = ["ApiState", "NotFoundError", "create_app", "state_of"]


class NotFoundError(ChurnwatchError):
    """The account (or other thing) a request names does not exist: answered with 404."""


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
    views : ReadModel or None
        The project's read model (``<project>/views``); without one the
        account, cohort and survival endpoints answer 503 saying how to
        compute it.
    registry : ModelRegistry or None
        The promoted models, for scoring on demand.
    require_keys : bool
        Whether requests need an API key (off only for a test of the old
        routes on their own).
    """

    settings: Settings
    store: Store
    slack_signing_secret: str | None = None
    clock: Callable[[], float] = time.time
    views: ReadModel | None = None
    registry: ModelRegistry | None = None
    require_keys: bool = True
    keys: KeyCache | None = None
    lookups: Lookups | None = None
    scorer: Scorer | None = None


def state_of(request: Request) -> ApiState:
    """The application's state, for a router."""
    state: ApiState = request.app.state.churnwatch
    return state


def _status_of(exc: Exception) -> int:
    # A store or read model that is not there is the server's trouble, not the caller's.
    # So is a model that is not trained or promoted yet.
    if isinstance(exc, StoreError | ViewsNotFoundError | ModelError):
        return 503
    if isinstance(exc, UnknownEpisodeError | NotFoundError):
        return 404
    return 422


async def _user_error(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=_status_of(exc))


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # FastAPI's own 422 body, minus the echo of the input (which may be huge or
    # not JSON-encodable, such as bytes of a body that was not UTF-8).
    errors: list[dict[str, Any]] = [
        {key: value for key, value in error.items() if key in ("loc", "msg", "type")}
        for error in exc.errors()
    ]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


def create_app(
    settings: Settings,
    *,
    store: Store,
    slack_signing_secret: str | None = None,
    clock: Callable[[], float] = time.time,
    views_root: Path | None = None,
    registry: ModelRegistry | None = None,
    require_keys: bool = True,
    warm: bool = False,
) -> FastAPI:
    """The Churnwatch REST API over an operational store and a read model.

    Parameters
    ----------
    settings : Settings
        The project settings.
    store : Store
        The operational store (answers, API keys and posted events are
        written there, KPIs read from it).
    slack_signing_secret : str, optional
        The Slack app's signing secret (read from the environment at the edge).
    clock : callable
        Unix time, for the Slack signature's replay window.
    views_root : Path, optional
        The read model's folder (``<project>/views``).
    registry : ModelRegistry, optional
        The model registry (``<project>/models``) for scoring on demand.
    require_keys : bool
        Require an API key on every endpoint but ``/health`` and Slack's.
    warm : bool
        Load the read model's indexes and the promoted models at startup
        (when the server's lifespan runs) rather than at the first request.

    Returns
    -------
    FastAPI
    """
    from churnwatch.api import (
        _accounts,
        _events,
        _feedback,
        _health,
        _kpis,
        _retention,
        _scoring,
        _slack,
    )
    from churnwatch.api._auth import KeyCache
    from churnwatch.api._lookup import Lookups
    from churnwatch.api._scorer import Scorer

    views = ReadModel(views_root) if views_root is not None else None
    state = ApiState(
        settings,
        store,
        slack_signing_secret,
        clock,
        views=views,
        registry=registry,
        require_keys=require_keys,
    )
    lookups = Lookups(views)
    scorer = Scorer(registry, settings, lookups)
    state.keys = KeyCache(store)
    state.lookups = lookups
    state.scorer = scorer

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if warm:
            lookups.warm()
            scorer.warm()
        yield

    app = FastAPI(
        title="Churnwatch",
        summary="Churn risk of every account, scoring on demand, event ingest, retention "
        "summaries, customer-success answers and KPIs.",
        description="Every endpoint but `/health` and `/slack/interactions` needs an API key "
        "(`churnwatch apikey create`), sent as `Authorization: Bearer <key>` or "
        "`X-API-Key: <key>`. Keys of scope `read` may call GET endpoints; `write` keys may "
        "call every endpoint.",
        lifespan=lifespan,
    )
    app.state.churnwatch = state
    app.add_exception_handler(ChurnwatchError, _user_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for module in (
        _health,
        _accounts,
        _scoring,
        _events,
        _retention,
        _feedback,
        _kpis,
        _slack,
    ):
        app.include_router(module.router)
    return app
