"""Runs last (file name): every FHIR JSON body any test received from the API validates against the official
R4 JSON schema. Bodies are recorded by ``tests.api_support.record``: every TestClient response with a FHIR
content type in the whole suite (the hook is in tests/conftest.py) and the live clients' responses."""

from __future__ import annotations

from tests.api_support import RECORDED, response_errors
from tests.fhirschema import require_assets


def test_every_recorded_api_response_is_valid_r4() -> None:
    require_assets()
    assert RECORDED, "no API response was recorded: run this file together with the tests/test_api_*.py suite"
    problems: list[str] = []
    for where, body in RECORDED:
        problems += [f"{where}: {error}" for error in response_errors(body)]
    assert not problems, f"{len(problems)} schema violations in {len(RECORDED)} responses:\n" + "\n".join(
        problems[:30]
    )
