"""Schemathesis against the OpenAPI schema: generated requests never get a server error.

Every operation of the schema is called with requests generated from it
(valid and invalid), carrying a write key, on a real server over the test
business's read model and model. The check is that none is answered with a
5xx, and that each answer is one the schema documents.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from churnwatch.api import create_app
from churnwatch.config import Settings
from churnwatch.store import open_store

from .conftest import Api


def _schema() -> dict[str, Any]:
    # The schema does not depend on the data: an application over an empty
    # in-memory store declares the same operations as the one under test.
    with open_store("sqlite://") as store:
        return create_app(Settings(), store=store).openapi()


schema = schemathesis.openapi.from_dict(_schema())


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case: schemathesis.Case, api: Api) -> None:
    case.call_and_validate(
        base_url=api.url,
        headers={"X-API-Key": api.write_key},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
