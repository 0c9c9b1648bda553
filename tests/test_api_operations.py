"""Operations registered in a registry are routed at system, type and instance level and listed in /metadata."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from interop.api import create_app
from interop.api.exchange import FhirRequest, FhirResponse
from interop.api.operations import OperationRegistry, load_operations, operation
from interop.store import open_repository
from interop.store.base import Repository
from tests.api_support import RecordingClient


def _registry() -> OperationRegistry:
    registry = OperationRegistry()

    @operation("echo", system=True, registry=registry, affects_state=False)
    def echo(req: FhirRequest, repo: Repository) -> FhirResponse:
        """Answer the Parameters it was given."""
        body = req.json() if req.body else {"resourceType": "Parameters"}
        return FhirResponse(200, body if isinstance(body, dict) else {"resourceType": "Parameters"})

    @operation("sync-plan", types=("Patient",), instance=True, registry=registry)
    def sync_plan(req: FhirRequest, repo: Repository) -> FhirResponse:
        """Plan one patient's refills."""
        stored = repo.read("Patient", req.id or "")
        return FhirResponse(
            200, {"resourceType": "Parameters", "parameter": [{"name": "patient", "valueString": stored.id}]}
        )

    @operation("census", types=("Patient",), registry=registry, affects_state=False)
    def census(req: FhirRequest, repo: Repository) -> FhirResponse:
        return FhirResponse(
            200,
            {"resourceType": "Parameters", "parameter": [{"name": "type", "valueString": req.type or ""}]},
        )

    return registry


@pytest.fixture
def client(tmp_path: Path) -> Iterator[RecordingClient]:
    repo = open_repository(f"sqlite:///{tmp_path / 'ops.db'}")
    try:
        with RecordingClient(create_app(repo, operations=_registry())) as c:
            yield c
    finally:
        repo.close()


def test_operations_are_routed_by_level(client: RecordingClient) -> None:
    params = {"resourceType": "Parameters", "parameter": [{"name": "x", "valueString": "y"}]}
    assert client.post("/fhir/$echo", json=params).json() == params
    assert client.get("/fhir/$echo").json() == {"resourceType": "Parameters"}
    pid = client.post("/fhir/Patient", json={"resourceType": "Patient"}).json()["id"]
    plan = client.post(f"/fhir/Patient/{pid}/$sync-plan", json={"resourceType": "Parameters"})
    assert plan.status_code == 200 and plan.json()["parameter"][0]["valueString"] == pid
    assert client.get("/fhir/Patient/$census").json()["parameter"][0]["valueString"] == "Patient"
    assert client.post(f"/fhir/Patient/{pid}/$census").status_code == 404  # type level only
    assert client.post("/fhir/Patient/$sync-plan").status_code == 404  # instance level only
    assert client.post("/fhir/$sync-plan").status_code == 404
    assert client.get(f"/fhir/Patient/{pid}/$sync-plan").status_code == 405  # changes state: POST only
    assert client.post("/fhir/Patient/nobody/$sync-plan").status_code == 404
    assert client.post("/fhir/Spaceship/$census").status_code == 404


def test_operations_appear_in_metadata(client: RecordingClient) -> None:
    rest = client.get("/fhir/metadata").json()["rest"][0]
    assert rest["operation"] == [
        {"name": "echo", "definition": "https://medsync-interop.org/fhir/OperationDefinition/echo"}
    ]
    patient = next(r for r in rest["resource"] if r["type"] == "Patient")
    assert [op["name"] for op in patient["operation"]] == ["sync-plan", "census"]
    assert patient["operation"][0]["documentation"] == "Plan one patient's refills."


def test_a_name_registered_twice_for_one_level_is_refused() -> None:
    registry = _registry()
    with pytest.raises(ValueError, match="registered twice"):
        operation("echo", system=True, registry=registry)(lambda req, repo: FhirResponse(200))


def test_the_process_registry_loads_the_ops_package() -> None:
    registry = load_operations()
    assert all(op.name for op in registry)
