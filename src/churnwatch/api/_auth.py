"""Who is calling: the API key of a request, and whether its scope allows the endpoint.

A key comes as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.
Verified keys are remembered for a few seconds, so that a busy client costs
one store lookup every few seconds rather than one per request; a revoked
key is refused within that time.
"""

from __future__ import annotations

import threading
import time
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from churnwatch.api._app import state_of
from churnwatch.api._keys import ApiKey, Scope, authenticate
from churnwatch.store import Store

__all__ = ["AUTH_RESPONSES", "BODY_RESPONSES", "ErrorOut", "KeyCache", "reader", "writer"]

#: Seconds a verified key is trusted without asking the store again.
KEY_CACHE_SECONDS = 5.0
_MAX_CACHED = 10_000


class ErrorOut(BaseModel):
    """An error: what was wrong and what to do."""

    detail: Any


#: The error answers every authenticated endpoint documents.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No API key, or an unknown or revoked one."},
    403: {"model": ErrorOut, "description": "The key's scope does not allow this endpoint."},
    422: {
        "model": ErrorOut,
        "description": "Invalid input: `detail` says what was wrong (a message, or a list of "
        "the parameters at fault).",
    },
}
#: The error answers of an endpoint that reads a request body, besides those.
BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body could not be read (not UTF-8 JSON)."},
}

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An API key: `Authorization: Bearer <key>`.",
)
_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="api_key",
    description="An API key in the `X-API-Key` header.",
)


class KeyCache:
    """Keys verified recently, by the key's text, each with the time it stops being trusted.

    Parameters
    ----------
    store : Store
        Where the keys' digests are.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._known: dict[str, tuple[ApiKey, float]] = {}

    def find(self, key: str) -> ApiKey | None:
        """The live key ``key`` is, or None."""
        now = time.monotonic()
        with self._lock:
            cached = self._known.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        found = authenticate(self.store, key)
        with self._lock:
            if found is None:
                self._known.pop(key, None)
            else:
                if len(self._known) >= _MAX_CACHED:
                    self._known.clear()
                self._known[key] = (found, now + KEY_CACHE_SECONDS)
        return found


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def _caller(
    request: Request,
    scope: Scope,
    bearer: HTTPAuthorizationCredentials | None,
    header: str | None,
) -> ApiKey | None:
    state = state_of(request)
    if not state.require_keys:
        return None
    key = header or (bearer.credentials if bearer is not None else None)
    if not key:
        raise _unauthorized(
            "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>' "
            "(make one with 'churnwatch apikey create --scope read --name NAME')"
        )
    assert state.keys is not None
    found = state.keys.find(key)
    if found is None:
        raise _unauthorized("unknown or revoked API key")
    if not found.allows(scope):
        raise HTTPException(
            403,
            f"the API key {found.name!r} has scope {found.scope!r}; this endpoint needs a key "
            f"of scope {scope!r}",
        )
    return found


# Async, so that checking a key costs no hop to the thread pool: a verified
# key is a dictionary hit, and the store is asked at most every few seconds.
async def _reader(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> ApiKey | None:
    return _caller(request, "read", bearer, header)


async def _writer(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> ApiKey | None:
    return _caller(request, "write", bearer, header)


#: Route dependency: a key of scope ``read`` or ``write``.
reader = Depends(_reader)
#: Route dependency: a key of scope ``write``.
writer = Depends(_writer)
