"""Client-write validation (interop.fhir.validation), the demo pharmacy and the response subsetting."""

from __future__ import annotations

from datetime import date

import pytest

from interop.api.subsetting import SUBSETTED, summarized, with_elements
from interop.demo import demo_bundle, demo_resources
from interop.fhir.validation import validate_resource
from tests.fhirschema import assert_valid


def test_valid_resource_has_no_issues() -> None:
    assert validate_resource({"resourceType": "Patient", "birthDate": "1950-01-02"}, "Patient") == []


@pytest.mark.parametrize(
    ("data", "status", "expression"),
    [
        ([], 400, "Resource"),
        ({"id": "x"}, 400, "Resource.resourceType"),
        ({"resourceType": "Spaceship"}, 400, "Spaceship.resourceType"),
        ({"resourceType": "Citation"}, 400, "Citation.resourceType"),  # R4B-only, not R4
        ({"resourceType": "HumanName"}, 400, "HumanName.resourceType"),  # a data type, not a resource
        ({"resourceType": "Practitioner"}, 400, "Practitioner.resourceType"),  # the URL says Patient
        ({"resourceType": "Patient", "birthDate": "1990-02-30x"}, 422, "Patient.birthDate"),
        ({"resourceType": "Patient", "name": [{"given": ["a", 3]}]}, 422, "Patient.name[0].given[1]"),
        ({"resourceType": "Patient", "contact": [{"gender": 5}]}, 422, "Patient.contact[0].gender"),
        ({"resourceType": "Patient", "colour": "blue"}, 422, "Patient.colour"),
    ],
)
def test_issues_name_the_element(data: object, status: int, expression: str) -> None:
    issues = validate_resource(data, "Patient")
    assert issues, data
    assert issues[0].status == status
    assert issues[0].expression == [expression]


def test_root_replaces_the_type_for_bundle_entries() -> None:
    issues = validate_resource({"resourceType": "Patient", "birthDate": 1}, root="Bundle.entry[4].resource")
    assert issues[0].expression == ["Bundle.entry[4].resource.birthDate"]


def test_demo_pharmacy_is_valid_r4_and_deterministic() -> None:
    today = date(2026, 11, 26)
    resources = demo_resources(today)
    kinds = {r["resourceType"] for r in resources}
    assert kinds == {
        "Organization",
        "Practitioner",
        "Patient",
        "Coverage",
        "MedicationRequest",
        "MedicationDispense",
    }
    assert sum(r["resourceType"] == "Patient" for r in resources) == 5
    assert sum(r["resourceType"] == "Coverage" for r in resources) == 5
    for resource in resources:
        assert_valid(resource)
        assert validate_resource(resource) == []
    assert demo_bundle(today) == demo_bundle(today)
    rx = next(r for r in resources if r["resourceType"] == "MedicationRequest")
    systems = {c["system"] for c in rx["medicationCodeableConcept"]["coding"]}
    assert systems == {"http://hl7.org/fhir/sid/ndc", "http://www.nlm.nih.gov/research/umls/rxnorm"}
    assert rx["dispenseRequest"]["expectedSupplyDuration"]["code"] == "d"
    fills = [r for r in resources if r["resourceType"] == "MedicationDispense"]
    assert all(f["whenHandedOver"] < f"{today.isoformat()}T23:59:59Z" for f in fills)
    assert len({f["id"] for f in fills}) == len(fills)


def test_subsetting_keeps_mandatory_elements_and_tags() -> None:
    dispense = {
        "resourceType": "MedicationDispense",
        "id": "d1",
        "meta": {"versionId": "3"},
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
        "status": "completed",
        "medicationCodeableConcept": {"text": "x"},
        "quantity": {"value": 30},
        "note": [{"text": "n"}],
    }
    subset = with_elements(dispense, frozenset({"quantity"}))
    assert set(subset) == {"resourceType", "id", "meta", "status", "medicationCodeableConcept", "quantity"}
    assert subset["meta"] == {"versionId": "3", "tag": [SUBSETTED]}
    assert "note" not in summarized(dispense, "true") and "status" in summarized(dispense, "true")
    assert "text" not in summarized(dispense, "data") and "note" in summarized(dispense, "data")
    assert set(summarized(dispense, "text")) == {
        "resourceType",
        "id",
        "meta",
        "text",
        "status",
        "medicationCodeableConcept",
    }
    assert summarized(dispense, "false") is dispense
    assert_valid(subset)
