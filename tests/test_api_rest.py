"""Every REST interaction of the FHIR API, in process (TestClient), on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from interop.api import create_app
from interop.config import Settings
from interop.store import open_repository
from interop.store.base import Repository
from tests.api_support import SERVED, RecordingClient, api, store_url

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordingClient]:
    with api(store_url(request.param, tmp_path, request)) as (c, _):
        yield c


def _tag() -> str:
    return uuid.uuid4().hex[:12]


def patient(tag: str, family: str = "Doe", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.4.1", "value": tag}],
        "name": [{"family": family, "given": ["Jane"]}],
        "birthDate": "1950-01-02",
        **extra,
    }


def create(client: RecordingClient, resource: dict[str, Any], **headers: str) -> dict[str, Any]:
    r = client.post(f"/fhir/{resource['resourceType']}", json=resource, headers=headers)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _params(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((link["url"] for link in bundle.get("link", []) if link["relation"] == relation), None)


# --------------------------------------------------------------------------------------------- metadata
def test_metadata_lists_what_is_served(client: RecordingClient) -> None:
    r = client.get("/fhir/metadata")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/fhir+json; charset=utf-8"
    cs = r.json()
    assert cs["resourceType"] == "CapabilityStatement"
    assert cs["fhirVersion"] == "4.0.1"
    assert "4.3.0" not in r.text
    assert "application/fhir+json" in cs["format"] and "json" in cs["format"]
    rest = cs["rest"][0]
    by_type = {res["type"]: res for res in rest["resource"]}
    assert sorted(by_type) == sorted(SERVED)
    dispense = by_type["MedicationDispense"]
    assert {i["code"] for i in dispense["interaction"]} >= {
        "read",
        "vread",
        "create",
        "update",
        "delete",
        "search-type",
    }
    assert {"patient", "status", "prescription"} <= {p["name"] for p in dispense["searchParam"]}
    assert "MedicationDispense:prescription" in dispense["searchInclude"]
    assert "MedicationDispense:patient" in by_type["Patient"]["searchRevInclude"]
    assert {i["code"] for i in rest["interaction"]} == {
        "transaction",
        "batch",
        "search-system",
        "history-system",
    }


# ----------------------------------------------------------------------------------------- create/read
def test_create_answers_201_with_location_etag_last_modified(client: RecordingClient) -> None:
    r = client.post("/fhir/Patient", json={**patient(_tag()), "id": "client-chosen"})
    assert r.status_code == 201
    body = r.json()
    assert body["id"] != "client-chosen"
    assert body["meta"]["versionId"] == "1"
    assert r.headers["location"] == f"http://testserver/fhir/Patient/{body['id']}/_history/1"
    assert r.headers["etag"] == 'W/"1"'
    modified = parsedate_to_datetime(r.headers["last-modified"])
    assert modified.tzinfo is not None and r.headers["last-modified"].endswith("GMT")
    read = client.get(f"/fhir/Patient/{body['id']}")
    assert read.status_code == 200
    assert read.json() == body
    assert read.headers["etag"] == 'W/"1"'
    assert read.headers["last-modified"] == r.headers["last-modified"]
    same = client.get(f"/fhir/Patient/{body['id']}", headers={"If-None-Match": 'W/"1"'})
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == 'W/"1"'
    assert client.get(f"/fhir/Patient/{body['id']}", headers={"If-None-Match": 'W/"0"'}).status_code == 200


def test_prefer_return(client: RecordingClient) -> None:
    minimal = client.post("/fhir/Patient", json=patient(_tag()), headers={"Prefer": "return=minimal"})
    assert minimal.status_code == 201 and minimal.content == b""
    assert "/fhir/Patient/" in minimal.headers["location"]
    oo = client.post("/fhir/Patient", json=patient(_tag()), headers={"Prefer": "return=OperationOutcome"})
    assert oo.status_code == 201 and oo.json()["resourceType"] == "OperationOutcome"
    full = client.post("/fhir/Patient", json=patient(_tag()), headers={"Prefer": "return=representation"})
    assert full.json()["resourceType"] == "Patient"


def test_vread_and_version_errors(client: RecordingClient) -> None:
    p = create(client, patient(_tag()))
    p["active"] = True
    assert client.put(f"/fhir/Patient/{p['id']}", json=p).status_code == 200
    v1 = client.get(f"/fhir/Patient/{p['id']}/_history/1")
    v2 = client.get(f"/fhir/Patient/{p['id']}/_history/2")
    assert v1.status_code == v2.status_code == 200
    assert "active" not in v1.json() and v2.json()["active"] is True
    assert v2.headers["etag"] == 'W/"2"'
    assert client.get(f"/fhir/Patient/{p['id']}/_history/9").status_code == 404
    bad = client.get(f"/fhir/Patient/{p['id']}/_history/x")
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"


# --------------------------------------------------------------------------------------------- update
def test_update_if_match_and_id_rules(client: RecordingClient) -> None:
    p = create(client, patient(_tag()))
    url = f"/fhir/Patient/{p['id']}"
    p["gender"] = "female"
    ok = client.put(url, json=p, headers={"If-Match": 'W/"1"'})
    assert ok.status_code == 200 and ok.headers["etag"] == 'W/"2"'
    stale = client.put(url, json=p, headers={"If-Match": 'W/"1"'})
    assert stale.status_code == 412 and stale.json()["resourceType"] == "OperationOutcome"
    bad_etag = client.put(url, json=p, headers={"If-Match": "yesterday"})
    assert bad_etag.status_code == 400
    mismatch = client.put(url, json={**p, "id": "another"})
    assert mismatch.status_code == 400
    assert mismatch.json()["issue"][0]["expression"] == ["Patient.id"]
    no_id = client.put(url, json={k: v for k, v in p.items() if k != "id"})
    assert no_id.status_code == 400
    new_id = f"put-{_tag()}"
    created = client.put(f"/fhir/Patient/{new_id}", json={**patient(_tag()), "id": new_id})
    assert created.status_code == 201
    assert created.headers["location"].endswith(f"/Patient/{new_id}/_history/1")


def test_conditional_create(client: RecordingClient) -> None:
    tag = _tag()
    first = client.post("/fhir/Patient", json=patient(tag), headers={"If-None-Exist": f"identifier={tag}"})
    assert first.status_code == 201
    again = client.post("/fhir/Patient", json=patient(tag), headers={"If-None-Exist": f"identifier={tag}"})
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    create(client, patient(tag))  # now two match
    many = client.post("/fhir/Patient", json=patient(tag), headers={"If-None-Exist": f"identifier={tag}"})
    assert many.status_code == 412


def test_conditional_update(client: RecordingClient) -> None:
    tag = _tag()
    made = client.put(f"/fhir/Patient?identifier={tag}", json=patient(tag))
    assert made.status_code == 201
    changed = client.put(f"/fhir/Patient?identifier={tag}", json=patient(tag, family="Roe"))
    assert changed.status_code == 200
    assert changed.json()["id"] == made.json()["id"]
    assert changed.json()["name"][0]["family"] == "Roe"
    no_criteria = client.put("/fhir/Patient", json=patient(tag))
    assert no_criteria.status_code == 400


# --------------------------------------------------------------------------------------------- delete
def test_delete_then_read_is_gone(client: RecordingClient) -> None:
    p = create(client, patient(_tag()))
    url = f"/fhir/Patient/{p['id']}"
    r = client.delete(url)
    assert r.status_code == 200 and r.json()["resourceType"] == "OperationOutcome"
    gone = client.get(url)
    assert gone.status_code == 410 and gone.json()["issue"][0]["code"] == "deleted"
    assert client.get(f"{url}/_history/2").status_code == 410
    history = client.get(f"{url}/_history").json()
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]
    assert "resource" not in history["entry"][0]
    q = create(client, patient(_tag()))
    minimal = client.delete(f"/fhir/Patient/{q['id']}", headers={"Prefer": "return=minimal"})
    assert minimal.status_code == 204 and minimal.content == b""


def test_conditional_delete(client: RecordingClient) -> None:
    tag = _tag()
    p = create(client, patient(tag))
    r = client.delete(f"/fhir/Patient?identifier={tag}")
    assert r.status_code == 200
    assert client.get(f"/fhir/Patient/{p['id']}").status_code == 410
    assert client.delete("/fhir/Patient").status_code == 400  # no criteria: never "delete everything"
    other = _tag()
    create(client, patient(other))
    create(client, patient(other))
    assert client.delete(f"/fhir/Patient?identifier={other}").status_code == 412


# -------------------------------------------------------------------------------------------- history
def test_history_instance_type_system_with_paging(client: RecordingClient) -> None:
    p = create(client, patient(_tag()))
    for family in ("A", "B"):
        p["name"][0]["family"] = family
        p = client.put(f"/fhir/Patient/{p['id']}", json=p).json()
    instance = client.get(f"/fhir/Patient/{p['id']}/_history", params={"_count": "2"}).json()
    assert instance["type"] == "history" and instance["total"] == 3
    assert [e["response"]["etag"] for e in instance["entry"]] == ['W/"3"', 'W/"2"']
    nxt = _link(instance, "next")
    assert nxt is not None and "_cursor" in _params(nxt)
    rest = client.get(nxt.replace("http://testserver", "")).json()
    assert [e["resource"]["meta"]["versionId"] for e in rest["entry"]] == ["1"]
    assert _link(rest, "next") is None
    typed = client.get("/fhir/Patient/_history", params={"_count": "1"}).json()
    assert typed["entry"][0]["fullUrl"].startswith("http://testserver/fhir/Patient/")
    assert client.get("/fhir/_history").json()["type"] == "history"
    since = client.get(f"/fhir/Patient/{p['id']}/_history", params={"_since": "2999-01-01T00:00:00Z"}).json()
    assert since["total"] == 0 and "entry" not in since
    assert client.get("/fhir/Patient/missing-one/_history").status_code == 404


# --------------------------------------------------------------------------------------------- search
def _pharmacy(client: RecordingClient, tag: str, fills: int) -> tuple[str, str]:
    pat = create(client, patient(tag))
    rx = create(
        client,
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "00093505801"}]
            },
            "subject": {"reference": f"Patient/{pat['id']}"},
        },
    )
    for i in range(fills):
        create(
            client,
            {
                "resourceType": "MedicationDispense",
                "status": "completed" if i % 4 else "in-progress",
                "medicationCodeableConcept": {"text": f"fill {i}"},
                "subject": {"reference": f"Patient/{pat['id']}"},
                "authorizingPrescription": [{"reference": f"MedicationRequest/{rx['id']}"}],
                "whenHandedOver": f"2026-0{1 + i % 9}-1{i % 10}T10:00:00Z",
            },
        )
    return pat["id"], rx["id"]


def test_search_paging_links_and_entries(client: RecordingClient) -> None:
    pid, _ = _pharmacy(client, _tag(), 7)
    first = client.get(
        "/fhir/MedicationDispense", params={"patient": pid, "_count": "2", "_total": "accurate"}
    )
    assert first.status_code == 200
    bundle = first.json()
    assert bundle["type"] == "searchset" and bundle["total"] == 7
    self_params = _params(_link(bundle, "self") or "")
    assert self_params["patient"] == [pid] and self_params["_count"] == ["2"]
    assert all(e["search"]["mode"] == "match" for e in bundle["entry"])
    assert all(
        e["fullUrl"] == f"http://testserver/fhir/MedicationDispense/{e['resource']['id']}"
        for e in bundle["entry"]
    )
    seen = [e["resource"]["id"] for e in bundle["entry"]]
    url = _link(bundle, "next")
    while url:
        page = client.get(url.replace("http://testserver", "")).json()
        seen += [e["resource"]["id"] for e in page["entry"]]
        url = _link(page, "next")
    assert len(seen) == len(set(seen)) == 7


def test_search_by_post_equals_get(client: RecordingClient) -> None:
    pid, _ = _pharmacy(client, _tag(), 5)
    by_get = client.get("/fhir/MedicationDispense", params={"patient": pid, "status": "completed"}).json()
    by_post = client.post(
        "/fhir/MedicationDispense/_search",
        data={"patient": pid, "status": "completed"},
    ).json()
    ids = sorted(e["resource"]["id"] for e in by_get["entry"])
    assert ids == sorted(e["resource"]["id"] for e in by_post["entry"])
    assert len(ids) == 3
    wrong = client.post(
        "/fhir/MedicationDispense/_search", content=b"{}", headers={"Content-Type": "application/json"}
    )
    assert wrong.status_code == 415


def test_search_include_and_revinclude(client: RecordingClient) -> None:
    pid, rx = _pharmacy(client, _tag(), 3)
    bundle = client.get(
        "/fhir/MedicationDispense", params={"patient": pid, "_include": "MedicationDispense:prescription"}
    ).json()
    modes = [(e["search"]["mode"], e["resource"]["resourceType"]) for e in bundle["entry"]]
    assert modes.count(("match", "MedicationDispense")) == 3
    assert ("include", "MedicationRequest") in modes
    included = [e for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert [e["resource"]["id"] for e in included] == [rx]
    rev = client.get("/fhir/Patient", params={"_id": pid, "_revinclude": "MedicationDispense:patient"}).json()
    assert sum(e["search"]["mode"] == "include" for e in rev["entry"]) == 3


def test_summary_and_elements(client: RecordingClient) -> None:
    pid, _ = _pharmacy(client, _tag(), 4)
    count = client.get("/fhir/MedicationDispense", params={"patient": pid, "_summary": "count"}).json()
    assert count["total"] == 4 and "entry" not in count
    subset = client.get(
        "/fhir/MedicationDispense", params={"patient": pid, "_elements": "whenHandedOver"}
    ).json()
    for entry in subset["entry"]:
        resource = entry["resource"]
        # status and medication[x] are mandatory (1..1), so they stay
        assert set(resource) == {
            "resourceType",
            "id",
            "meta",
            "status",
            "medicationCodeableConcept",
            "whenHandedOver",
        }
        assert {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
            "code": "SUBSETTED",
        } in resource["meta"]["tag"]
    summary = client.get("/fhir/Patient", params={"_id": pid, "_summary": "true"}).json()
    assert "birthDate" in summary["entry"][0]["resource"]
    text = client.get("/fhir/Patient", params={"_id": pid, "_summary": "text"}).json()
    assert "birthDate" not in text["entry"][0]["resource"]
    assert client.get("/fhir/Patient", params={"_summary": "everything"}).status_code == 400


def test_count_is_capped(tmp_path: Path) -> None:
    repo = open_repository(f"sqlite:///{tmp_path / 's.db'}")
    try:
        with RecordingClient(create_app(repo, Settings(max_count=3))) as c:
            for _ in range(5):
                create(c, patient("cap"))
            bundle = c.get("/fhir/Patient", params={"_count": "500"}).json()
            assert len(bundle["entry"]) == 3
            assert _params(_link(bundle, "self") or "")["_count"] == ["3"]
            assert c.get("/fhir/Patient", params={"_count": "-1"}).status_code == 400
    finally:
        repo.close()


def test_unknown_search_parameter_is_400(client: RecordingClient) -> None:
    r = client.get("/fhir/Patient", params={"shoe-size": "42"})
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"


# ------------------------------------------------------------------------------------------ negotiation
def test_format_accept_and_pretty(client: RecordingClient) -> None:
    p = create(client, patient(_tag()))
    url = f"/fhir/Patient/{p['id']}"
    for fmt in ("json", "application/json", "application/fhir+json"):
        assert client.get(url, params={"_format": fmt}).status_code == 200
    assert client.get(url, params={"_format": "xml"}).status_code == 406
    assert client.get(url, headers={"Accept": "application/fhir+xml"}).status_code == 406
    assert client.get(url, headers={"Accept": "text/html,application/xml;q=0.9,*/*;q=0.8"}).status_code == 200
    assert client.get(url, headers={"Accept": "application/json"}).status_code == 200
    assert client.get(url, headers={"Accept": "application/fhir+json; fhirVersion=4.0"}).status_code == 200
    assert client.get(url, headers={"Accept": "application/fhir+json; fhirVersion=4.3"}).status_code == 406
    pretty = client.get(url, params={"_pretty": "true"})
    assert pretty.content.startswith(b'{\n  "') and pretty.json() == p


def test_binary_json_representation(client: RecordingClient) -> None:
    b = create(client, {"resourceType": "Binary", "contentType": "text/plain", "data": "aGVsbG8="})
    r = client.get(f"/fhir/Binary/{b['id']}")
    assert r.status_code == 200 and r.json()["data"] == "aGVsbG8="


# ---------------------------------------------------------------------------------------------- batch
def test_batch_answers_each_entry(client: RecordingClient) -> None:
    pid = create(client, patient(_tag()))["id"]
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": patient(_tag()), "request": {"method": "POST", "url": "Patient"}},
            {
                "resource": {"resourceType": "Patient", "birthDate": "not-a-date"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {"request": {"method": "GET", "url": f"Patient/{pid}"}},
            {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
        ],
    }
    r = client.post("/fhir", json=bundle)
    assert r.status_code == 200
    statuses = [e["response"]["status"].split()[0] for e in r.json()["entry"]]
    assert statuses == ["201", "422", "200", "404"]
    outcome = r.json()["entry"][1]["response"]["outcome"]
    assert outcome["issue"][0]["expression"] == ["Bundle.entry[1].resource.birthDate"]


def test_transaction_rewrites_urn_uuid(client: RecordingClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0b7e8c1e-5f0a-4c1c-9d1e-000000000001",
                "resource": patient(_tag()),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {
                    "resourceType": "MedicationRequest",
                    "status": "active",
                    "intent": "order",
                    "medicationCodeableConcept": {"text": "x"},
                    "subject": {"reference": "urn:uuid:0b7e8c1e-5f0a-4c1c-9d1e-000000000001"},
                },
                "request": {"method": "POST", "url": "MedicationRequest"},
            },
        ],
    }
    r = client.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "transaction-response"
    patient_id = out["entry"][0]["resource"]["id"]
    rx_location = out["entry"][1]["response"]["location"]
    rx = client.get("/fhir/" + rx_location.split("/_history")[0]).json()
    assert rx["subject"]["reference"] == f"Patient/{patient_id}"


def test_repository_protocol_is_all_the_app_needs(tmp_path: Path) -> None:
    repo: Repository = open_repository(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        app = create_app(repo)
        assert app.state.fhir.repo is repo
    finally:
        repo.close()


def test_system_search_and_openapi(client: RecordingClient) -> None:
    p = create(client, patient(_tag()))
    found = client.get("/fhir", params={"_id": p["id"]}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [p["id"]]
    schema = client.get("/openapi.json").json()
    assert {"get", "put", "delete"} <= set(schema["paths"]["/fhir/{type}/{id}"])
    assert "post" in schema["paths"]["/fhir"] and "/fhir/metadata" in schema["paths"]
    assert client.get("/docs").status_code == 200


def test_sort_and_chained_search_pass_through(client: RecordingClient) -> None:
    tag = _tag()
    pid, _ = _pharmacy(client, tag, 5)
    bundle = client.get("/fhir/MedicationDispense", params={"patient": pid, "_sort": "-whenhandedover"}).json()
    handed = [e["resource"]["whenHandedOver"] for e in bundle["entry"]]
    assert handed == sorted(handed, reverse=True) and len(handed) == 5
    assert _params(_link(bundle, "self") or "")["_sort"] == ["-whenhandedover"]
    chained = client.get("/fhir/MedicationDispense", params={"patient.identifier": tag}).json()
    assert len(chained["entry"]) == 5
