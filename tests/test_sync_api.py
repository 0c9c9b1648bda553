"""``$sync-plan``, ``$sync-enroll`` and ``$sync-candidates`` through the FHIR API on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from interop.api.app import create_app
from interop.store import SqlRepository
from interop.sync import load_settings
from interop.sync.events import observe
from interop.sync.replanning import replan_listener
from tests.api_support import RecordingClient
from tests.fhirschema import assert_valid
from tests.sync_builders import request
from tests.sync_store import TODAY, current, open_store, provenances, seed, sync_plans, worked_patient


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[SqlRepository]:
    repo = open_store(request, sqlite_url)
    try:
        yield repo
    finally:
        repo.close()


@pytest.fixture
def client(store: SqlRepository) -> Iterator[RecordingClient]:
    repo = observe(store, [replan_listener(load_settings(), lambda: TODAY)])
    with RecordingClient(create_app(repo)) as c:
        yield c


def _params(**values: Any) -> dict[str, Any]:
    kinds = {"anchorDate": "valueDate", "today": "valueDate", "cycleDays": "valueInteger", "count": "valueInteger"}
    return {"resourceType": "Parameters", "parameter": [{"name": k, kinds[k]: v} for k, v in values.items()]}


def _by_type(bundle: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def test_sync_plan_returns_the_plan_bundle_without_storing(client: RecordingClient, store: SqlRepository) -> None:
    seed(store, worked_patient("pat-1"))
    response = client.post("/fhir/Patient/pat-1/$sync-plan", json=_params(today="2026-06-25", anchorDate="2026-07-20"))
    assert response.status_code == 200
    bundle = response.json()
    assert bundle["type"] == "collection"
    assert all(e["fullUrl"].startswith("http://testserver/fhir/") for e in bundle["entry"])
    (careplan,) = _by_type(bundle, "CarePlan")
    assert careplan["status"] == "draft" and careplan["period"]["start"] == "2026-07-20"
    short = [t for t in _by_type(bundle, "Task") if any(i.get("valueString") == "short" for i in t["input"])]
    assert {t["focus"]["reference"] for t in short} == {"MedicationRequest/pat-1-lis", "MedicationRequest/pat-1-ator"}
    for entry in bundle["entry"]:
        assert_valid(entry["resource"])
    assert_valid(bundle)
    assert sync_plans(store) == [] and current(store, "Task") == []


def test_sync_plan_answers_get_with_query_parameters(client: RecordingClient, store: SqlRepository) -> None:
    seed(store, worked_patient("pat-1"))
    response = client.get("/fhir/Patient/pat-1/$sync-plan?today=2026-06-25&cycleDays=28")
    assert response.status_code == 200
    (careplan,) = _by_type(response.json(), "CarePlan")
    assert careplan["extension"][0]["valueDuration"]["value"] == 28


def test_unknown_patient_is_404(client: RecordingClient) -> None:
    for op in ("$sync-plan", "$sync-enroll"):
        response = client.post(f"/fhir/Patient/nobody/{op}", json=_params(today="2026-06-25"))
        assert response.status_code == 404
        assert response.json()["issue"][0]["code"] == "not-found"


def test_unplannable_inputs_are_422_with_the_element_path(client: RecordingClient, store: SqlRepository) -> None:
    seed(store, [*worked_patient("pat-1"), {"resourceType": "Patient", "id": "no-drugs"}])
    response = client.post("/fhir/Patient/pat-1/$sync-plan", json=_params(cycleDays=45))
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["Parameters.parameter.where(name = 'cycleDays')"]
    response = client.post("/fhir/Patient/no-drugs/$sync-enroll", json=_params(today="2026-06-25"))
    assert response.status_code == 422
    outcome = response.json()
    assert outcome["issue"][0]["expression"] == ["MedicationRequest.subject"]
    assert_valid(outcome)
    assert sync_plans(store) == []


def test_bad_parameters_are_400(client: RecordingClient, store: SqlRepository) -> None:
    seed(store, worked_patient("pat-1"))
    response = client.post("/fhir/Patient/pat-1/$sync-plan", json=_params(anchorDate="July 20"))
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Parameters.parameter.where(name = 'anchorDate')"]
    response = client.post("/fhir/Patient/pat-1/$sync-plan", json={"resourceType": "Patient"})
    assert response.status_code == 400


def test_sync_enroll_stores_and_replaces_with_history(client: RecordingClient, store: SqlRepository) -> None:
    seed(store, worked_patient("pat-1"))
    first = client.post("/fhir/Patient/pat-1/$sync-enroll", json=_params(today="2026-06-25", anchorDate="2026-07-20"))
    assert first.status_code == 200 and first.json()["type"] == "transaction-response"
    first_id = first.headers["location"].rsplit("/", 1)[1]
    assert client.get(f"/fhir/CarePlan/{first_id}").json()["status"] == "active"
    appointments = client.get("/fhir/Appointment?patient=Patient/pat-1&status=booked").json()
    assert len(appointments["entry"]) == 3
    second = client.post("/fhir/Patient/pat-1/$sync-enroll", json=_params(today="2026-06-25", anchorDate="2026-07-10"))
    second_id = second.headers["location"].rsplit("/", 1)[1]
    assert second_id != first_id
    history = client.get(f"/fhir/CarePlan/{first_id}/_history").json()
    assert sorted(e["resource"]["status"] for e in history["entry"]) == ["active", "revoked"]
    active = client.get("/fhir/CarePlan?subject=Patient/pat-1&status=active").json()
    assert [e["resource"]["id"] for e in active["entry"]] == [second_id]
    for resource in current(store, "Task") + current(store, "Appointment") + sync_plans(store):
        assert_valid(resource)
    assert provenances(store) == []


def test_a_prescription_posted_through_the_api_replans(client: RecordingClient, store: SqlRepository) -> None:
    seed(store, worked_patient("pat-1"))
    client.post("/fhir/Patient/pat-1/$sync-enroll", json=_params(today="2026-06-25", anchorDate="2026-07-20"))
    new = request("pat-1-amlo", "amlodipine 5 mg tablet", patient="Patient/pat-1")
    assert client.put("/fhir/MedicationRequest/pat-1-amlo", json=new).status_code == 201
    (prov,) = provenances(store)
    assert prov["reason"][0]["coding"][0]["code"] == "new-prescription"
    (careplan,) = sync_plans(store, "active")
    found = client.get(f"/fhir/Provenance?target=CarePlan/{careplan['id']}").json()
    assert [e["resource"]["id"] for e in found["entry"]] == [prov["id"]]


def test_sync_candidates_ranks_with_reasons(client: RecordingClient, store: SqlRepository) -> None:
    seed(store, worked_patient("pat-a", june=(1, 2, 3)) + worked_patient("pat-b") + worked_patient("pat-c"))
    client.post("/fhir/Patient/pat-c/$sync-enroll", json=_params(today="2026-06-25"))
    response = client.post("/fhir/$sync-candidates", json=_params(today="2026-06-25", count=5))
    assert response.status_code == 200
    body = response.json()
    assert_valid(body)
    ranked = [{p["name"]: p for p in c["part"]} for c in body["parameter"]]
    assert [r["patient"]["valueReference"]["reference"] for r in ranked] == ["Patient/pat-b", "Patient/pat-a"]
    assert [r["rank"]["valueInteger"] for r in ranked] == [1, 2]
    reasons = [p["valueString"] for p in body["parameter"][0]["part"] if p["name"] == "reason"]
    assert any("3 maintenance drugs" in r for r in reasons)


def test_operations_are_listed_in_metadata(client: RecordingClient) -> None:
    rest = client.get("/fhir/metadata").json()["rest"][0]
    system_ops = {o["name"] for o in rest.get("operation", [])}
    patient = next(r for r in rest["resource"] if r["type"] == "Patient")
    patient_ops = {o["name"] for o in patient.get("operation", [])}
    assert "sync-candidates" in system_ops and {"sync-plan", "sync-enroll"} <= patient_ops
