"""Codes with a required binding (conformance/required-bindings.json): the table agrees with the official
R4 4.0.1 StructureDefinitions and ValueSets both ways, and client writes with a bad code get a 422 naming
the element (Patient.gender, Patient.telecom[0].system) while the official examples still validate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from interop.api.app import create_app
from interop.fhir.validation import validate_resource
from interop.store import open_repository
from tests.api_support import SERVED
from tests.conftest import corpus_files
from tests.fhirschema import R4_PACKAGE, require_assets

NOT_ENUMERABLE = {
    "http://hl7.org/fhir/ValueSet/mimetypes|4.0.1": "BCP 13 MIME types (Attachment.contentType, Binary.contentType,"
    " Signature.sigFormat): a grammar over urn:ietf:bcp:13, no code list in the package",
    "http://hl7.org/fhir/ValueSet/currencies|4.0.1": "ISO 4217 currencies (Money.currency): urn:iso:std:iso:4217"
    " is an external code system, not in the package",
}
"""Required bindings on code elements of the served types that the table leaves out on purpose."""

NOT_WALKED = {"Reference", "Extension", "Resource"}
"""Element types the table does not descend into: Reference.type is only extensible, an Extension's value
can be any type, and contained resources are not checked."""


def table() -> dict[str, Any]:
    text = resources.files("conformance").joinpath("required-bindings.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


# ------------------------------------------------------------------------- the official definitions
@cache
def _by_url(kind: str) -> dict[str, dict[str, Any]]:
    found = {}
    for path in Path(R4_PACKAGE).glob(f"{kind}-*.json"):
        resource = json.loads(path.read_text(encoding="utf-8"))
        if resource.get("url"):
            found[resource["url"]] = resource
    return found


@cache
def _elements(type_or_profile: str) -> tuple[dict[str, Any], ...]:
    url = (
        type_or_profile
        if "/" in type_or_profile
        else f"http://hl7.org/fhir/StructureDefinition/{type_or_profile}"
    )
    return tuple(_by_url("StructureDefinition")[url]["snapshot"]["element"])


def _concept_codes(concepts: list[dict[str, Any]]) -> Iterator[str]:
    for concept in concepts:
        yield concept["code"]
        yield from _concept_codes(concept.get("concept", []))


@cache
def expansion(value_set: str) -> frozenset[str] | None:
    """The codes of an official value set, or None when it cannot be enumerated from the package."""
    vs = _by_url("ValueSet").get(value_set.split("|")[0])
    if vs is None or "compose" not in vs or vs["compose"].get("exclude"):
        return None
    codes: set[str] = set()
    for include in vs["compose"]["include"]:
        if include.get("filter"):
            return None
        for nested in include.get("valueSet", []):
            sub = expansion(nested)
            if sub is None:
                return None
            codes |= sub
        if "concept" in include:
            codes |= {c["code"] for c in include["concept"]}
        elif "system" in include:
            cs = _by_url("CodeSystem").get(include["system"])
            if cs is None or cs.get("content") != "complete":
                return None
            codes |= set(_concept_codes(cs.get("concept", [])))
    return frozenset(codes)


def _children(elements: tuple[dict[str, Any], ...], path: str) -> Iterator[dict[str, Any]]:
    depth = path.count(".") + 1
    for e in elements:
        if e["path"].startswith(path + ".") and e["path"].count(".") == depth and e.get("max") != "0":
            yield e


def _json_key(element: dict[str, Any], type_code: str) -> str:
    name: str = element["path"].rsplit(".", 1)[1]
    return name[:-3] + type_code[0].upper() + type_code[1:] if name.endswith("[x]") else name


def resolve(resource_type: str, path: str) -> dict[str, Any]:
    """The official element definition a table path (JSON keys from the resource) lands on."""
    elements, at = _elements(resource_type), resource_type
    for key in path.split("."):
        for child in _children(elements, at):
            if "contentReference" in child and _json_key(child, "") == key:
                at, last = child["contentReference"].lstrip("#"), child
                break
            matches = [t for t in child.get("type", []) if _json_key(child, t["code"]) == key]
            if matches:
                code, profile = matches[0]["code"], (matches[0].get("profile") or [None])[0]
                if code in ("BackboneElement", "Element") or code[0].islower():
                    at, last = child["path"], child
                else:
                    elements = _elements(profile or code)
                    at, last = elements[0]["path"], child
                break
        else:
            raise KeyError(f"{resource_type}.{path}: no official element {key!r} under {at}")
    return last


def official_bindings(resource_type: str) -> dict[str, str]:
    """Every code element with a required binding reachable from ``resource_type`` (JSON key path →
    value set), walking backbone elements and data types, with contentReference cycles as ``@path``."""
    found: dict[str, str] = {}

    def walk(
        elements: tuple[dict[str, Any], ...],
        at: str,
        prefix: str,
        seen: dict[str, str],
        types: frozenset[str],
    ) -> None:
        seen = {**seen, at: prefix.rstrip(".")}
        for child in _children(elements, at):
            name = child["path"].rsplit(".", 1)[1]
            if name in ("id", "extension", "modifierExtension", "contained"):
                continue
            if "contentReference" in child:
                target = child["contentReference"].lstrip("#")
                if target in seen:
                    found[prefix + name] = "@" + seen[target]
                else:
                    walk(elements, target, prefix + name + ".", seen, types)
                continue
            for t in child.get("type", []):
                code, key = t["code"], _json_key(child, t["code"])
                binding = child.get("binding", {})
                if code == "code" and binding.get("strength") == "required":
                    found[prefix + key] = binding["valueSet"]
                elif code in ("BackboneElement", "Element"):
                    walk(elements, child["path"], prefix + key + ".", seen, types)
                elif code[0].isupper() and code not in NOT_WALKED:
                    profile = (t.get("profile") or [code])[0]
                    if profile not in types:
                        sub = _elements(profile)
                        walk(sub, sub[0]["path"], prefix + key + ".", {}, types | {profile})

    walk(_elements(resource_type), resource_type, "", {}, frozenset())
    return found


# ------------------------------------------------------------------------------------ the table
@pytest.fixture(scope="module", autouse=True)
def _assets() -> None:
    require_assets()


def test_table_covers_exactly_the_served_types() -> None:
    assert sorted(table()["types"]) == sorted(SERVED)
    assert table()["fhirVersion"] == "4.0.1"


@pytest.mark.parametrize("resource_type", SERVED)
def test_every_entry_is_an_official_required_binding_with_the_same_codes(resource_type: str) -> None:
    data = table()
    for path, target in data["types"][resource_type].items():
        if target.startswith("@"):
            element = resolve(resource_type, path)
            assert element.get("contentReference") == f"#{resource_type}.{target[1:]}", (
                f"{resource_type}.{path}"
            )
            continue
        element = resolve(resource_type, path)
        assert [t["code"] for t in element["type"]] == ["code"], f"{resource_type}.{path}"
        binding = element.get("binding", {})
        assert binding.get("strength") == "required", f"{resource_type}.{path}: {binding}"
        assert binding.get("valueSet") == target, f"{resource_type}.{path}"
        assert sorted(data["valueSets"][target]) == sorted(expansion(target) or ()), target


@pytest.mark.parametrize("resource_type", SERVED)
def test_table_is_complete_for_the_type(resource_type: str) -> None:
    official = official_bindings(resource_type)
    expected = {path: vs for path, vs in official.items() if vs not in NOT_ENUMERABLE}
    assert table()["types"][resource_type] == expected


def test_exceptions_are_really_not_enumerable_and_no_other_binding_is() -> None:
    used = {vs for t in SERVED for vs in official_bindings(t).values() if not vs.startswith("@")}
    assert set(NOT_ENUMERABLE) <= used
    assert {vs for vs in used if expansion(vs) is None} == set(NOT_ENUMERABLE)
    assert set(table()["valueSets"]) == used - set(NOT_ENUMERABLE)


# ------------------------------------------------------------------------------- the write path
@pytest.mark.parametrize(
    ("resource", "expression"),
    [
        ({"resourceType": "Patient", "gender": "nope"}, "Patient.gender"),
        (
            {"resourceType": "Patient", "telecom": [{"system": "pigeon", "value": "x"}]},
            "Patient.telecom[0].system",
        ),
        (
            {"resourceType": "Patient", "name": [{"family": "A"}, {"use": "nick", "family": "B"}]},
            "Patient.name[1].use",
        ),
        ({"resourceType": "Patient", "contact": [{"gender": "m"}]}, "Patient.contact[0].gender"),
        (
            {
                "resourceType": "MedicationRequest",
                "status": "active",
                "intent": "order",
                "subject": {"reference": "Patient/p"},
                "medicationCodeableConcept": {"text": "x"},
                "dosageInstruction": [{"timing": {"repeat": {"period": 1, "periodUnit": "day"}}}],
            },
            "MedicationRequest.dosageInstruction[0].timing.repeat.periodUnit",
        ),
        (
            {
                "resourceType": "MedicationDispense",
                "status": "dispensed",
                "medicationCodeableConcept": {"text": "x"},
            },
            "MedicationDispense.status",
        ),
        ({"resourceType": "Task", "status": "requested", "intent": "command"}, "Task.intent"),
        (
            {
                "resourceType": "Questionnaire",
                "status": "active",
                "item": [{"linkId": "1", "type": "group", "item": [{"linkId": "1.1", "type": "yes-no"}]}],
            },
            "Questionnaire.item[0].item[0].type",
        ),
    ],
)
def test_bad_code_is_422_naming_the_element(
    sqlite_url: str, resource: dict[str, Any], expression: str
) -> None:
    repo = open_repository(sqlite_url)
    try:
        with TestClient(create_app(repo)) as client:
            response = client.post(
                f"/fhir/{resource['resourceType']}",
                content=json.dumps(resource),
                headers={"Content-Type": "application/fhir+json"},
            )
            assert response.status_code == 422, response.text
            body = response.json()
            assert body["resourceType"] == "OperationOutcome"
            issues = [i for i in body["issue"] if i["code"] == "code-invalid"]
            assert [i["expression"] for i in issues] == [[expression]]
            search = client.get(f"/fhir/{resource['resourceType']}", params={"_summary": "count"})
            assert search.json()["total"] == 0
    finally:
        repo.close()


def test_bad_code_in_a_transaction_names_the_entry(sqlite_url: str) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Patient", "gender": "female"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {"resourceType": "Patient", "gender": "f"},
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }
    repo = open_repository(sqlite_url)
    try:
        with TestClient(create_app(repo)) as client:
            response = client.post(
                "/fhir", content=json.dumps(bundle), headers={"Content-Type": "application/fhir+json"}
            )
            assert response.status_code == 422, response.text
            expressions = [i.get("expression") for i in response.json()["issue"]]
            assert ["Bundle.entry[1].resource.gender"] in expressions
            assert client.get("/fhir/Patient", params={"_summary": "count"}).json()["total"] == 0
    finally:
        repo.close()


def test_good_codes_are_accepted(sqlite_url: str) -> None:
    patient = {
        "resourceType": "Patient",
        "gender": "female",
        "telecom": [{"system": "phone", "use": "mobile", "value": "555-0100"}],
        "name": [{"use": "official", "family": "Doe"}],
    }
    repo = open_repository(sqlite_url)
    try:
        with TestClient(create_app(repo)) as client:
            response = client.post(
                "/fhir/Patient",
                content=json.dumps(patient),
                headers={"Content-Type": "application/fhir+json"},
            )
            assert response.status_code == 201, response.text
    finally:
        repo.close()


def _served_examples() -> list[Path]:
    return [p for p in corpus_files("fhir-r4-examples", "*.json") if p.name.split("-", 1)[0] in SERVED]


@pytest.mark.parametrize("path", _served_examples(), ids=lambda p: p.name)
def test_official_examples_still_validate(path: Path) -> None:
    resource = json.loads(path.read_text(encoding="utf-8"))
    assert validate_resource(resource, resource["resourceType"]) == []


def test_all_served_examples_are_checked(corpus: Path) -> None:
    assert len(_served_examples()) == 37
