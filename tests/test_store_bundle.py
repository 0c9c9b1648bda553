"""Batch and transaction Bundles on SQLite and PostgreSQL: order, urn:uuid rewriting, conditional entries,
all-or-nothing (checked by counting rows in the database), batch partial failure, the official examples."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from interop.store import (
    Gone,
    InvalidRequest,
    InvalidResource,
    NotFound,
    SqlRepository,
    VersionConflict,
)
from tests.conftest import corpus_files
from tests.storerepo import repo, row_counts

__all__ = ["repo"]

BASE = "http://127.0.0.1:8080/fhir"
EXAMPLES = [
    p
    for p in corpus_files("fhir-r4-examples", "*.json")
    if not p.name.startswith(("OperationOutcome-", "Bundle-"))
]


def transaction(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post(full_url: str, resource: dict[str, Any], **request: str) -> dict[str, Any]:
    return {"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": resource["resourceType"], **request}}


def put(resource: dict[str, Any], url: str | None = None, **request: str) -> dict[str, Any]:
    target = url or f"{resource['resourceType']}/{resource['id']}"
    return {"resource": resource, "request": {"method": "PUT", "url": target, **request}}


def status_of(response: dict[str, Any]) -> list[str]:
    return [e["response"]["status"] for e in response["entry"]]


def test_transaction_assigns_ids_and_rewrites_every_urn_uuid_reference(repo: SqlRepository) -> None:
    pat = "urn:uuid:0d2a4d6f-6c2b-4c0f-8d39-3f7f0a6b1c11"
    org = "urn:uuid:7c1d4e2a-1f11-4b7a-9a8e-2b0f5c7d9e22"
    dispense = {
        "resourceType": "MedicationDispense",
        "status": "completed",
        "contained": [{"resourceType": "Medication", "id": "m", "manufacturer": {"reference": org}}],
        "medicationReference": {"reference": "#m"},
        "subject": {"reference": pat, "display": "Doe"},
        "performer": [{"actor": {"reference": org}}],
        "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/workflow-supportingInfo",
                       "valueReference": {"reference": pat}}],
    }
    bundle = transaction(
        {"fullUrl": "urn:uuid:0f1e2d3c-0000-4000-8000-000000000003", "resource": dispense,
         "request": {"method": "POST", "url": "MedicationDispense"}},
        post(pat, {"resourceType": "Patient", "id": "ignored", "name": [{"family": "Doe"}]}),
        post(org, {"resourceType": "Organization", "name": "Main Street Pharmacy"}),
    )
    original = copy.deepcopy(bundle)
    response = repo.process_bundle(bundle, base_url=BASE)
    assert bundle == original  # the request is not modified
    assert response["type"] == "transaction-response"
    assert status_of(response) == ["201 Created"] * 3
    ids = [e["response"]["location"].split("/")[1] for e in response["entry"]]
    assert ids[1] != "ignored"
    for entry, rtype, id in zip(response["entry"], ("MedicationDispense", "Patient", "Organization"), ids, strict=True):
        assert entry["response"]["location"] == f"{rtype}/{id}/_history/1"
        assert entry["response"]["etag"] == 'W/"1"'
        assert entry["fullUrl"] == f"{BASE}/{rtype}/{id}"
        assert entry["resource"]["id"] == id
    stored = repo.read("MedicationDispense", ids[0]).resource()
    assert stored["subject"] == {"reference": f"Patient/{ids[1]}", "display": "Doe"}
    assert stored["performer"][0]["actor"]["reference"] == f"Organization/{ids[2]}"
    assert stored["contained"][0]["manufacturer"]["reference"] == f"Organization/{ids[2]}"
    assert stored["extension"][0]["valueReference"]["reference"] == f"Patient/{ids[1]}"
    assert stored["medicationReference"] == {"reference": "#m"}
    assert "urn:uuid" not in json.dumps(stored)
    found = repo.search("MedicationDispense", [("subject", f"Patient/{ids[1]}")])
    assert [s.id for s in found.matches] == [ids[0]]


def test_transaction_with_dangling_urn_uuid_writes_nothing(repo: SqlRepository) -> None:
    repo.update({"resourceType": "Patient", "id": "existing"})
    before = row_counts(repo)
    bundle = transaction(
        post("urn:uuid:11111111-1111-4111-8111-111111111111", {"resourceType": "Patient"}),
        post("urn:uuid:22222222-2222-4222-8222-222222222222",
             {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
              "subject": {"reference": "urn:uuid:99999999-9999-4999-8999-999999999999"}}),
    )
    with pytest.raises(InvalidRequest) as caught:
        repo.process_bundle(bundle)
    assert caught.value.expression[0] == "Bundle.entry[1]"
    assert "urn:uuid:99999999" in caught.value.message
    assert row_counts(repo) == before


def test_transaction_with_failing_entry_is_all_or_nothing(repo: SqlRepository) -> None:
    repo.update({"resourceType": "Patient", "id": "locked", "active": True})
    repo.update({"resourceType": "Patient", "id": "locked", "active": False})
    repo.update({"resourceType": "Patient", "id": "doomed"})
    before = row_counts(repo)
    bundle = transaction(
        {"request": {"method": "DELETE", "url": "Patient/doomed"}},
        post("urn:uuid:33333333-3333-4333-8333-333333333333", {"resourceType": "Patient", "gender": "female"}),
        put({"resourceType": "Patient", "id": "fresh"}),
        put({"resourceType": "Patient", "id": "locked"}, ifMatch='W/"1"'),
    )
    with pytest.raises(VersionConflict) as caught:
        repo.process_bundle(bundle)
    assert caught.value.expression[0] == "Bundle.entry[3]"
    assert row_counts(repo) == before
    assert repo.read("Patient", "doomed").version_id == 1
    with pytest.raises(NotFound):
        repo.read("Patient", "fresh")


def test_failing_transaction_inside_a_session_leaves_the_sessions_other_work(repo: SqlRepository) -> None:
    with repo.session() as s:
        s.update({"resourceType": "Patient", "id": "before"})
        with pytest.raises(InvalidRequest):
            s.process_bundle(transaction(
                put({"resourceType": "Patient", "id": "inside"}),
                put({"resourceType": "Patient", "id": "x"}, url="Patient/y"),
            ))
    assert repo.read("Patient", "before").version_id == 1
    with pytest.raises(NotFound):
        repo.read("Patient", "inside")


def test_transaction_order_and_conditional_entries(repo: SqlRepository) -> None:
    repo.update({"resourceType": "Patient", "id": "old", "identifier": [{"system": "urn:mrn", "value": "9"}]})
    repo.update({"resourceType": "Patient", "id": "keep", "identifier": [{"system": "urn:mrn", "value": "1"}]})
    bundle = transaction(
        # GET listed first is still answered after the writes
        {"request": {"method": "GET", "url": "Patient?identifier=urn:mrn|2"}},
        post("urn:uuid:44444444-4444-4444-8444-444444444444",
             {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "1"}]},
             ifNoneExist="identifier=urn:mrn|1"),
        put({"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "2"}], "active": True},
            url="Patient?identifier=urn:mrn|2"),
        {"request": {"method": "DELETE", "url": "Patient?identifier=urn:mrn|9"}},
        {"request": {"method": "GET", "url": "Patient/keep"}},
        post("urn:uuid:55555555-5555-4555-8555-555555555555",
             {"resourceType": "Observation", "status": "final", "code": {"text": "bp"},
              "subject": {"reference": "urn:uuid:44444444-4444-4444-8444-444444444444"}}),
    )
    response = repo.process_bundle(bundle)
    assert status_of(response) == ["200 OK", "200 OK", "201 Created", "204 No Content", "200 OK", "201 Created"]
    found = response["entry"][0]["resource"]
    assert found["type"] == "searchset"
    assert [e["resource"]["active"] for e in found["entry"]] == [True]
    assert response["entry"][1]["resource"]["id"] == "keep"
    assert response["entry"][4]["resource"]["id"] == "keep"
    obs_id = response["entry"][5]["response"]["location"].split("/")[1]
    assert repo.read("Observation", obs_id).resource()["subject"] == {"reference": "Patient/keep"}
    with pytest.raises(Gone):
        repo.read("Patient", "old")
    again = repo.process_bundle(transaction(
        put({"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "2"}], "active": False},
            url="Patient?identifier=urn:mrn|2"),
    ))
    assert status_of(again) == ["200 OK"]
    assert again["entry"][0]["resource"]["meta"]["versionId"] == "2"


def test_conditional_put_fullurl_resolves_to_the_matched_or_new_id(repo: SqlRepository) -> None:
    repo.update({"resourceType": "Patient", "id": "known", "identifier": [{"system": "urn:mrn", "value": "K"}]})
    known = "urn:uuid:88888888-8888-4888-8888-888888888888"
    new = "urn:uuid:99999999-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
    bundle = transaction(
        {"fullUrl": known, "resource": {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "K"}]},
         "request": {"method": "PUT", "url": "Patient?identifier=urn:mrn|K"}},
        {"fullUrl": new, "resource": {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "N"}]},
         "request": {"method": "PUT", "url": "Patient?identifier=urn:mrn|N"}},
        post("urn:uuid:bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb",
             {"resourceType": "Group", "type": "person", "actual": True,
              "member": [{"entity": {"reference": known}}, {"entity": {"reference": new}}]}),
    )
    response = repo.process_bundle(bundle)
    assert status_of(response) == ["200 OK", "201 Created", "201 Created"]
    new_id = response["entry"][1]["resource"]["id"]
    group_id = response["entry"][2]["resource"]["id"]
    members = repo.read("Group", group_id).resource()["member"]
    assert [m["entity"]["reference"] for m in members] == ["Patient/known", f"Patient/{new_id}"]


def test_transaction_rejects_patch_operations_and_duplicates(repo: SqlRepository) -> None:
    patch = transaction({"resource": {"resourceType": "Binary"}, "request": {"method": "PATCH", "url": "Patient/a"}})
    with pytest.raises(InvalidRequest) as caught:
        repo.process_bundle(patch)
    assert caught.value.status == 400 and caught.value.expression[0] == "Bundle.entry[0]"
    twice = transaction(put({"resourceType": "Patient", "id": "a"}), put({"resourceType": "Patient", "id": "a"}))
    with pytest.raises(InvalidRequest) as caught:
        repo.process_bundle(twice)
    assert caught.value.expression[0] == "Bundle.entry[1]"
    with pytest.raises(InvalidRequest):
        repo.process_bundle({"resourceType": "Bundle", "type": "collection", "entry": []})
    wrong_type = transaction({"resource": {"resourceType": "Observation"}, "request": {"method": "POST", "url": "Patient"}})
    with pytest.raises(InvalidResource) as caught:
        repo.process_bundle(wrong_type)
    assert caught.value.status == 422 and caught.value.expression[:2] == ["Bundle.entry[0]", "resource.resourceType"]
    assert row_counts(repo)["resource"] == 0


def test_batch_reports_each_failure_in_its_entry_and_keeps_the_rest(repo: SqlRepository) -> None:
    repo.update({"resourceType": "Patient", "id": "v2"})
    repo.update({"resourceType": "Patient", "id": "v2"})
    bundle = transaction(
        put({"resourceType": "Patient", "id": "ok-1"}),
        {"request": {"method": "GET", "url": "Patient/missing"}},
        put({"resourceType": "Patient", "id": "v2"}, ifMatch='W/"1"'),
        post("urn:uuid:66666666-6666-4666-8666-666666666666", {"resourceType": "Patient"}),
        {"request": {"method": "PATCH", "url": "Patient/ok-1"}},
        post("urn:uuid:77777777-7777-4777-8777-777777777777",
             {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
              "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"}}),
        {"request": {"method": "GET", "url": "Patient/ok-1"}},
        {"fullUrl": "urn:uuid:cccccccc-cccc-4ccc-8ccc-cccccccccccc",
         "resource": {"resourceType": "Patient", "id": "v2"}, "request": {"method": "PUT", "url": "Patient/v2", "ifMatch": "1"}},
        post("urn:uuid:dddddddd-dddd-4ddd-8ddd-dddddddddddd",
             {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
              "subject": {"reference": "urn:uuid:cccccccc-cccc-4ccc-8ccc-cccccccccccc"}}),
        kind="batch",
    )
    response = repo.process_bundle(bundle)
    assert response["type"] == "batch-response"
    assert status_of(response) == [
        "201 Created",
        "404 Not Found",
        "412 Precondition Failed",
        "201 Created",
        "400 Bad Request",
        "400 Bad Request",
        "200 OK",
        "412 Precondition Failed",
        "400 Bad Request",  # refers to the failed entry before it
    ]
    for i in (1, 2, 4, 5, 7, 8):
        outcome = response["entry"][i]["response"]["outcome"]
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["severity"] == "error"
        assert outcome["issue"][0]["diagnostics"]
    assert repo.read("Patient", "v2").version_id == 2
    counts = row_counts(repo)
    assert counts["resource"] == 3 and counts["resource_version"] == 4


def test_get_entries_honour_if_none_match(repo: SqlRepository) -> None:
    repo.update({"resourceType": "Patient", "id": "p"})
    bundle = transaction(
        {"request": {"method": "GET", "url": "Patient/p", "ifNoneMatch": 'W/"1"'}},
        {"request": {"method": "GET", "url": "Patient/p/_history/1"}},
        {"request": {"method": "GET", "url": "Patient/p", "ifModifiedSince": "2015-08-31T08:14:33+10:00"}},
        kind="batch",
    )
    response = repo.process_bundle(bundle)
    assert status_of(response) == ["304 Not Modified", "200 OK", "200 OK"]
    assert "resource" not in response["entry"][0]
    assert response["entry"][1]["resource"]["meta"]["versionId"] == "1"


def _without_meta(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "meta"}


@pytest.mark.corpus
def test_official_examples_load_in_one_transaction_and_read_back_equal(repo: SqlRepository, corpus: Path) -> None:
    assert len(EXAMPLES) >= 30
    resources = [json.loads(p.read_text(encoding="utf-8")) for p in EXAMPLES]
    response = repo.process_bundle(transaction(*(put(r) for r in resources)), base_url=BASE)
    assert status_of(response) == ["201 Created"] * len(resources)
    for path, original in zip(EXAMPLES, resources, strict=True):
        stored = repo.read(original["resourceType"], original["id"]).resource()
        assert _without_meta(stored) == _without_meta(original), path.name
        kept = {k: v for k, v in original.get("meta", {}).items() if k not in ("versionId", "lastUpdated")}
        assert {k: v for k, v in stored["meta"].items() if k not in ("versionId", "lastUpdated")} == kept
    assert row_counts(repo)["resource"] == len(resources)
    assert row_counts(repo)["idx_reference"] > 0


@pytest.mark.corpus
def test_official_transaction_example(repo: SqlRepository, corpus: Path) -> None:
    raw = orjson.loads((corpus / "fhir-r4-examples" / "Bundle-bundle-transaction.json").read_bytes())

    # As published it asks for an operation (ValueSet/$lookup), which a store cannot run: nothing is written.
    with pytest.raises(InvalidRequest) as caught:
        repo.process_bundle(raw)
    assert caught.value.expression[0] == "Bundle.entry[7]"
    assert row_counts(repo)["resource"] == 0

    # The rest of it, against the state it presumes: Patient/123a at version 2, Patient/12334, 234 and a
    # Patient with identifier 123456.
    repo.update({"resourceType": "Patient", "id": "123a"})
    repo.update({"resourceType": "Patient", "id": "123a", "active": True})
    repo.update({"resourceType": "Patient", "id": "12334"})
    repo.update({"resourceType": "Patient", "id": "234"})
    repo.update({"resourceType": "Patient", "id": "byident", "identifier": [{"value": "123456"}]})
    bundle = {**raw, "entry": [e for i, e in enumerate(raw["entry"]) if i != 7]}
    response = repo.process_bundle(bundle, base_url="http://example.org/fhir")
    assert status_of(response) == [
        "201 Created",  # POST Patient
        "201 Created",  # POST Patient, ifNoneExist matches nothing yet
        "201 Created",  # PUT Patient/123
        "201 Created",  # PUT Patient?identifier=...|456456, no match
        "200 OK",  # PUT Patient/123a, If-Match W/"2"
        "204 No Content",  # DELETE Patient/234
        "204 No Content",  # DELETE Patient?identifier=123456
        "200 OK",  # GET Patient?name=peter
        "200 OK",  # GET Patient/12334 (version 1, so If-None-Match W/"4" does not apply)
    ]
    for gone in ("234", "byident"):
        with pytest.raises(Gone):
            repo.read("Patient", gone)
    assert repo.read("Patient", "123a").version_id == 3
    peters = response["entry"][7]["resource"]
    assert peters["total"] == 5
    assert {e["resource"]["name"][0]["family"] for e in peters["entry"]} == {"Chalmers"}

    # A second run: the conditional create matches, the conditional update updates, and the If-Match on
    # Patient/123a (now version 3) fails, so the whole transaction is rolled back.
    before = row_counts(repo)
    with pytest.raises(VersionConflict) as caught:
        repo.process_bundle(bundle)
    assert caught.value.expression[0] == "Bundle.entry[4]"
    assert row_counts(repo) == before

    as_batch = repo.process_bundle({**raw, "type": "batch"})
    assert status_of(as_batch) == [
        "201 Created",
        "200 OK",  # ifNoneExist now matches
        "200 OK",
        "200 OK",  # conditional update of the Patient created above
        "412 Precondition Failed",
        "204 No Content",
        "204 No Content",
        "400 Bad Request",  # the operation
        "200 OK",
        "200 OK",
    ]
