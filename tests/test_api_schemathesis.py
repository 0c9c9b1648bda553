"""schemathesis against the app's own OpenAPI document (every FHIR route), with an all-scopes token:
no 5xx and no response that contradicts the document. Bounded for CI (a few examples per operation)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings

from interop.api import create_app
from interop.store import open_repository
from tests.security_support import ALL, AUDITOR, bearer
from tests.security_support import settings as secured_settings
from tests.test_security_auth import _patient


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    path: Path = tmp_path_factory.mktemp("schemathesis") / "store.db"
    repo = open_repository(f"sqlite:///{path}")
    repo.create(_patient("Fuzzington", "MRN-1"))
    try:
        yield create_app(repo, secured_settings())
    finally:
        repo.close()


@pytest.fixture(scope="module")
def api_schema(app: FastAPI) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


TOKEN = bearer(f"{ALL} {AUDITOR}", ttl=3600)
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
]
EXAMPLES = 8
"""Generated requests per operation: 22 operations x 8 runs in well under a minute."""


def test_the_document_describes_every_fhir_route(api_schema: schemathesis.BaseSchema) -> None:
    raw = api_schema.raw_schema
    paths = raw["paths"]
    for path in ("/fhir/metadata", "/fhir/{type}", "/fhir/{type}/{id}", "/fhir/{type}/{id}/_history/{vid}", "/fhir"):
        assert path in paths, path
    assert raw["components"]["securitySchemes"]["smart"]["scheme"] == "bearer"
    assert paths["/fhir/metadata"]["get"]["security"] == []


def test_no_server_error_and_no_schema_violation(api_schema: schemathesis.BaseSchema) -> None:
    """Each operation of the document gets ``EXAMPLES`` generated requests (hypothesis, derandomized)."""
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 21
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=TOKEN, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # every operation is tried; all failures are reported together
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
