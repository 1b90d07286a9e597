"""The REST API: CSM answers, the Slack interaction endpoint and the KPIs.

A FastAPI application from :func:`create_app`, one router per concept
(``feedback``, ``slack``, ``kpis``), served by ``churnwatch serve``
(uvicorn). The application holds the settings and the operational store;
routers read them from the request. Bad input gets a 4xx answer with a
message saying what was wrong, never a 500.

Examples
--------
>>> from churnwatch.config import Settings
>>> from churnwatch.store import open_store
>>> app = create_app(Settings(), store=open_store("sqlite://"))
>>> sorted(app.openapi()["paths"])
['/kpis', '/outcomes', '/slack/interactions']
"""

from __future__ import annotations

from churnwatch.api._app import ApiState, create_app

__all__ = ["ApiState", "create_app"]
