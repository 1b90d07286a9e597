"""The REST API: accounts and their risk, scoring on demand, event ingest, retention, answers.

A FastAPI application from :func:`create_app`, one router per concept
(``health``, ``accounts``, ``scoring``, ``events``, ``retention``,
``feedback``, ``slack``, ``kpis``), served by ``churnwatch serve``
(uvicorn). The application holds the settings, the operational store, the
read model (``<project>/views``) and the promoted models; routers read them
from the request. Every endpoint but ``/health`` and the Slack one (which
checks Slack's signature) needs an API key (:func:`create_api_key`); bad
input gets a 4xx answer with a message saying what was wrong, never a 500.

Examples
--------
>>> from churnwatch.config import Settings
>>> from churnwatch.store import open_store
>>> app = create_app(Settings(), store=open_store("sqlite://"))
>>> sorted(app.openapi()["paths"])[:4]
['/accounts', '/accounts/{account_id}', '/accounts/{account_id}/score', '/cohorts']
"""

from __future__ import annotations

from churnwatch.api._app import ApiState, create_app
from churnwatch.api._keys import (
    SCOPES,
    ApiKey,
    authenticate,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)

__all__ = [
    "SCOPES",
    "ApiKey",
    "ApiState",
    "authenticate",
    "create_api_key",
    "create_app",
    "list_api_keys",
    "revoke_api_key",
]
