"""The real Python FHIR clients, fhirpy (SyncFHIRClient) and fhirclient, against ``interop serve`` running
under uvicorn in a subprocess on a free 127.0.0.1 port with a temporary SQLite file."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fhirclient import client as smart_client
from fhirclient.models.humanname import HumanName
from fhirclient.models.identifier import Identifier
from fhirclient.models.medicationdispense import MedicationDispense as SmartDispense
from fhirclient.models.patient import Patient as SmartPatient
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound

from tests.api_support import live_server, record

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("live") / "live.db"
    with live_server(f"sqlite:///{db}", "--demo") as live:
        yield live.base


@pytest.fixture(autouse=True)
def recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Record every body the clients receive (both send through ``requests``) for the schema check."""
    send = requests.Session.send

    def recording_send(
        self: requests.Session, prepared: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        response = send(self, prepared, **kwargs)
        record(
            f"{prepared.method} {prepared.url} -> {response.status_code}",
            response.content,
            response.headers.get("content-type"),
        )
        return response

    monkeypatch.setattr(requests.Session, "send", recording_send)


def test_fhirpy_crud_conditional_create_search_paging_include(base: str) -> None:
    client = SyncFHIRClient(base)
    tag = uuid.uuid4().hex[:10]
    system = "urn:oid:2.16.840.1.113883.19.5"
    patient = client.resource(
        "Patient", identifier=[{"system": system, "value": tag}], name=[{"family": "Fhirpy"}]
    )
    patient.save()
    assert patient.id and patient["meta"]["versionId"] == "1"

    read = client.reference("Patient", patient.id).to_resource()
    assert read["name"][0]["family"] == "Fhirpy"

    read["birthDate"] = "1961-04-05"
    read.save()
    assert client.reference("Patient", patient.id).to_resource()["birthDate"] == "1961-04-05"
    assert read["meta"]["versionId"] == "2"

    again, created = (
        client.resources("Patient")
        .search(identifier=f"{system}|{tag}")
        .get_or_create(client.resource("Patient", identifier=[{"system": system, "value": tag}]))
    )
    assert not created and again.id == patient.id

    for i in range(5):
        client.resource(
            "MedicationDispense",
            status="completed",
            medicationCodeableConcept={"text": f"fill {i}"},
            subject={"reference": f"Patient/{patient.id}"},
        ).save()
    search = client.resources("MedicationDispense").search(patient=patient.id, status="completed").limit(2)
    all_fills = list(search)  # follows the next links page by page
    assert len(all_fills) == 5 and len({f.id for f in all_fills}) == 5
    assert len(search.fetch()) == 2

    rx_id = client.resources("MedicationRequest").limit(1).fetch()[0].id  # from the demo pharmacy
    with_rx = (
        client.resources("MedicationDispense")
        .search(prescription=rx_id)
        .include("MedicationDispense", "prescription")
    )
    bundle = with_rx.fetch_raw()
    modes = {(e["search"]["mode"], e["resource"]["resourceType"]) for e in bundle["entry"]}
    assert modes == {("match", "MedicationDispense"), ("include", "MedicationRequest")}

    patient.delete()
    with pytest.raises(ResourceNotFound):
        client.reference("Patient", patient.id).to_resource()


def test_fhirclient_crud_conditional_create_search_paging_include(base: str) -> None:
    settings = {"app_id": "medsync-tests", "api_base": base + "/"}
    smart = smart_client.FHIRClient(settings=settings)
    server = smart.server
    tag = uuid.uuid4().hex[:10]

    patient = SmartPatient({"name": [{"family": "Smart"}]})
    patient.identifier = [Identifier({"system": "urn:oid:2.16.840.1.113883.19.5", "value": tag})]
    created = patient.create(server)
    assert created is not None and created["resourceType"] == "Patient"
    pid = created["id"]

    read = SmartPatient.read(pid, server)
    assert read.name[0].family == "Smart"

    read.name = [HumanName({"family": "Smart", "given": ["Ada"]})]
    read.update(server)
    assert SmartPatient.read(pid, server).name[0].given == ["Ada"]

    conditional = server.post_json(
        "Patient",
        SmartPatient({"name": [{"family": "Smart"}]}).as_json(),
    )
    assert conditional.status_code == 201
    again = server.session.post(
        base + "/Patient",
        json={
            "resourceType": "Patient",
            "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": tag}],
        },
        headers={"If-None-Exist": f"identifier={tag}", "Content-Type": "application/fhir+json"},
    )
    assert again.status_code == 200 and again.json()["id"] == pid

    for i in range(3):
        SmartDispense(
            {
                "status": "completed",
                "medicationCodeableConcept": {"text": f"fill {i}"},
                "subject": {"reference": f"Patient/{pid}"},
            }
        ).create(server)
    bundle = SmartDispense.where(struct={"patient": pid, "_count": "2"}).perform(server)
    assert len(bundle.entry) == 2
    next_url = next(link.url for link in bundle.link if link.relation == "next")
    rest = server.request_json(next_url.replace(base + "/", ""))
    assert len(rest["entry"]) == 1

    demo_rx = server.request_json("MedicationRequest?_count=1")["entry"][0]["resource"]["id"]
    resources = SmartDispense.where(
        struct={"prescription": demo_rx, "_include": "MedicationDispense:prescription"}
    ).perform_resources(server)
    assert {r.resource_type for r in resources} == {"MedicationDispense", "MedicationRequest"}

    read.delete()
    gone = server.session.get(f"{base}/Patient/{pid}", headers={"Accept": "application/fhir+json"})
    assert gone.status_code == 410 and gone.json()["resourceType"] == "OperationOutcome"


def test_serve_prints_urls_and_loads_the_demo_once(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    runs = []
    for _ in range(2):
        with live_server(db, "--demo") as live:
            bundle = requests.get(f"{live.base}/Patient", params={"_summary": "count"}, timeout=10).json()
            assert bundle["total"] == 5
            assert requests.get(live.base.replace("/fhir", "/docs"), timeout=10).status_code == 200
        runs.append(live)
    first, second = runs
    assert f"FHIR base URL: {first.base}" in first.output
    assert f"API docs:      {first.base.replace('/fhir', '/docs')}" in first.output
    assert "Loaded the demo pharmacy" in first.output
    assert "Loaded the demo pharmacy" not in second.output  # the store was no longer empty
