"""Bad input answers a specific OperationOutcome with the right status, and writes nothing (checked in the
database tables themselves), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import create_engine, func, select

from interop.api import create_app
from interop.api.outcome import outcome_for
from interop.config import Settings
from interop.store import open_repository
from interop.store.base import Unavailable
from interop.store.schema import metadata
from tests.api_support import RecordingClient, store_url

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[RecordingClient, str]]:
    url = store_url(request.param, tmp_path, request)
    repo = open_repository(url)
    try:
        with RecordingClient(create_app(repo, Settings(max_body_bytes=20_000))) as client:
            yield client, url
    finally:
        repo.close()


def table_counts(url: str) -> dict[str, int]:
    """Rows in every store table, read with SQL directly (not through the repository)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in metadata.sorted_tables
            }
    finally:
        engine.dispose()


def _issue(r: Any) -> dict[str, Any]:
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert r.headers["content-type"] == "application/fhir+json; charset=utf-8"
    issue: dict[str, Any] = body["issue"][0]
    assert issue["severity"] in ("error", "fatal") and issue["diagnostics"]
    return issue


def test_malformed_json_is_400_with_offset(env: tuple[RecordingClient, str]) -> None:
    client, url = env
    before = table_counts(url)
    r = client.post(
        "/fhir/Patient",
        content=b'{"resourceType": "Patient", "name": [',
        headers={"Content-Type": "application/fhir+json"},
    )
    assert r.status_code == 400
    assert "byte" in _issue(r)["diagnostics"]
    assert client.post("/fhir/Patient", content=b"").status_code == 400
    assert client.post("/fhir/Patient", content=b"[1, 2]").status_code == 400
    assert table_counts(url) == before


def test_wrong_and_unknown_resource_types(env: tuple[RecordingClient, str]) -> None:
    client, url = env
    before = table_counts(url)
    wrong = client.post("/fhir/Patient", json={"resourceType": "Practitioner"})
    assert wrong.status_code == 400 and _issue(wrong)["expression"] == ["Practitioner.resourceType"]
    unknown_body = client.post("/fhir/Patient", json={"resourceType": "Spaceship"})
    assert unknown_body.status_code == 400 and "Spaceship" in _issue(unknown_body)["diagnostics"]
    r4b_only = client.post("/fhir/Patient", json={"resourceType": "SubscriptionStatus"})
    assert r4b_only.status_code == 400
    missing = client.post("/fhir/Patient", json={"name": [{"family": "X"}]})
    assert missing.status_code == 400 and _issue(missing)["expression"] == ["Resource.resourceType"]
    unknown_url = client.get("/fhir/Spaceship/1")
    assert unknown_url.status_code == 404 and _issue(unknown_url)["code"] == "not-found"
    assert client.post("/fhir/Observation", json={"resourceType": "Observation"}).status_code == 404
    assert table_counts(url) == before


def test_invalid_resource_is_422_naming_the_element(env: tuple[RecordingClient, str]) -> None:
    client, url = env
    before = table_counts(url)
    r = client.post(
        "/fhir/Patient", json={"resourceType": "Patient", "birthDate": "1990-13-45", "name": [{"given": [7]}]}
    )
    assert r.status_code == 422
    expressions = [i["expression"][0] for i in r.json()["issue"]]
    assert expressions == ["Patient.birthDate", "Patient.name[0].given[0]"]
    extra = client.post("/fhir/Patient", json={"resourceType": "Patient", "shoeSize": 42})
    assert extra.status_code == 422 and _issue(extra)["expression"] == ["Patient.shoeSize"]
    required = client.post("/fhir/MedicationDispense", json={"resourceType": "MedicationDispense"})
    assert required.status_code == 422 and _issue(required)["expression"] == ["MedicationDispense.status"]
    assert table_counts(url) == before


def test_bad_id_unknown_id_method_content_type(env: tuple[RecordingClient, str]) -> None:
    client, _ = env
    assert client.get("/fhir/Patient/not$valid").status_code in (400, 404)
    bad = client.get("/fhir/Patient/" + "x" * 65)
    assert bad.status_code == 400 and _issue(bad)["code"] == "invalid"
    assert _issue(client.get("/fhir/Patient/nobody"))["code"] == "not-found"
    method = client.patch("/fhir/Patient/nobody", json={})
    assert method.status_code == 405 and method.headers["allow"]
    _issue(method)
    xml = client.post(
        "/fhir/Patient", content=b"<Patient/>", headers={"Content-Type": "application/fhir+xml"}
    )
    assert xml.status_code == 415 and _issue(xml)["code"] == "not-supported"
    nowhere = client.get("/elsewhere")
    assert nowhere.status_code == 404
    _issue(nowhere)


def test_oversized_body_is_413_declared_or_streamed(env: tuple[RecordingClient, str]) -> None:
    client, url = env
    before = table_counts(url)
    big = orjson.dumps({"resourceType": "Patient", "name": [{"text": "x" * 30_000}]})
    declared = client.post("/fhir/Patient", content=big, headers={"Content-Type": "application/fhir+json"})
    assert declared.status_code == 413 and _issue(declared)["code"] == "too-long"

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    streamed = client.post(
        "/fhir/Patient", content=chunks(), headers={"Content-Type": "application/fhir+json"}
    )
    assert streamed.status_code == 413
    transaction = client.post("/fhir", content=big)
    assert transaction.status_code == 413
    assert table_counts(url) == before


def _transaction(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def _post(resource: dict[str, Any], full_url: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }
    if full_url:
        entry["fullUrl"] = full_url
    return entry


PATIENT = {"resourceType": "Patient", "name": [{"family": "Atomic"}]}


def test_transaction_with_dangling_reference_writes_nothing(env: tuple[RecordingClient, str]) -> None:
    client, url = env
    before = table_counts(url)
    dangling = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "x"},
        "subject": {"reference": "urn:uuid:5f1d2c9e-0000-4000-8000-00000000dead"},
    }
    r = client.post(
        "/fhir",
        json=_transaction(_post(PATIENT, "urn:uuid:5f1d2c9e-0000-4000-8000-000000000001"), _post(dangling)),
    )
    assert r.status_code == 400
    issue = _issue(r)
    assert "Bundle.entry[1]" in issue["expression"][0] and "urn:uuid:" in issue["diagnostics"]
    assert table_counts(url) == before


def test_transaction_with_a_failing_entry_writes_nothing(env: tuple[RecordingClient, str]) -> None:
    client, url = env
    before = table_counts(url)
    stale = {
        "resource": {"resourceType": "Patient", "id": "never-there"},
        "request": {"method": "PUT", "url": "Patient/never-there", "ifMatch": 'W/"4"'},
    }
    r = client.post("/fhir", json=_transaction(_post(PATIENT), _post(PATIENT), stale))
    assert r.status_code in (409, 412)
    assert "Bundle.entry[2]" in _issue(r)["expression"][0]
    assert table_counts(url) == before
    invalid = _post({"resourceType": "Patient", "birthDate": "soon"})
    r = client.post("/fhir", json=_transaction(_post(PATIENT), invalid))
    assert r.status_code == 422
    assert _issue(r)["expression"] == ["Bundle.entry[1].resource.birthDate"]
    assert table_counts(url) == before
    unserved = _post({"resourceType": "Observation", "status": "final", "code": {"text": "x"}})
    r = client.post("/fhir", json=_transaction(_post(PATIENT), unserved))
    assert r.status_code == 400
    assert _issue(r)["expression"] == ["Bundle.entry[1].resource.resourceType"]
    assert table_counts(url) == before
    not_a_bundle = client.post("/fhir", json=PATIENT)
    assert not_a_bundle.status_code == 400
    history = client.post("/fhir", json={"resourceType": "Bundle", "type": "history"})
    assert history.status_code == 400 and _issue(history)["expression"] == ["Bundle.type"]
    assert table_counts(url) == before


def test_store_unavailable_maps_to_503() -> None:
    status, body = outcome_for(Unavailable("the database cannot be reached"))
    assert status == 503
    assert orjson.loads(body)["issue"][0]["code"] == "transient"


def test_unexpected_error_is_500_without_details() -> None:
    status, body = outcome_for(RuntimeError("secret connection string"))
    assert status == 500
    assert b"secret" not in body and orjson.loads(body)["issue"][0]["severity"] == "fatal"


def test_serve_refuses_an_unreachable_store_with_a_clear_message() -> None:
    from click.testing import CliRunner

    from interop.cli import main

    result = CliRunner().invoke(main, ["serve", "--db", "postgresql+psycopg://postgres@127.0.0.1:1/none"])
    assert result.exit_code != 0
    assert "cannot open the store at postgresql+psycopg://postgres@127.0.0.1:1/none" in result.output
