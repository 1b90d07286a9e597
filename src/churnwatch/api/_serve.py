"""The application a ``churnwatch serve`` worker process builds.

uvicorn starts each worker in a process of its own and imports the app
there; :func:`app_from_environment` builds it from the project folder the
``serve`` command put in the environment (this is the edge of the program:
reading the environment is its job).
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

from churnwatch.api._app import create_app
from churnwatch.config import load_settings
from churnwatch.models import ModelRegistry
from churnwatch.store import open_store

__all__ = ["PROJECT_ENV", "app_from_environment"]

#: The project folder of the server (set by ``churnwatch serve``).
PROJECT_ENV = "CHURNWATCH_API_PROJECT"


def app_from_environment() -> FastAPI:
    """The API of the project named by ``CHURNWATCH_API_PROJECT`` (default: this folder)."""
    project = Path(os.environ.get(PROJECT_ENV) or ".")
    settings = load_settings(project)
    store_url = os.environ.get("CHURNWATCH_STORE_URL") or settings.store.url
    store = open_store(store_url, base_dir=project)
    return create_app(
        settings,
        store=store,
        slack_signing_secret=os.environ.get("SLACK_SIGNING_SECRET") or None,
        views_root=project / "views",
        registry=ModelRegistry(project / "models"),
        warm=True,
    )
