"""The shared HL7 v2 corpus: every message converts (as shipped and with CR terminators), every resource is
valid R4, and where FHIR-Converter's expected output maps the same field we agree on the value."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.hl7v2 import parse_batch
from adapters.hl7v2.mapping import to_bundle
from interop.fhir.systems import normalize_ndc
from tests.conftest import corpus_files
from tests.fhirschema import assert_valid

pytestmark = pytest.mark.corpus

MESSAGES = corpus_files("hl7v2", "*.hl7")
EXPECTED = [p for p in MESSAGES if (p.parent.parent / "hl7v2-expected" / (p.stem + ".json")).is_file()]
JSON = dict[str, Any]


def _convert(data: bytes) -> list[JSON]:
    return [to_bundle(m) for m in parse_batch(data)]


def _resources(bundle: JSON, rtype: str) -> list[JSON]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def _instant(value: str | None) -> datetime | str | None:
    if value is None or len(value) <= 10:
        return value
    return datetime.fromisoformat(value)


def _codes(concept: JSON) -> set[str]:
    out = set()
    for c in concept.get("coding", []):
        code = c.get("code")
        if code:
            out.add(code)
            ndc = normalize_ndc(code)
            if ndc:
                out.add(ndc)
    return out


def _their_medication_codes(bundle: JSON, resource: JSON) -> set[str]:
    if "medicationCodeableConcept" in resource:
        return _codes(resource["medicationCodeableConcept"])
    ref = resource["medicationReference"]["reference"]
    for med in _resources(bundle, "Medication"):
        if f"Medication/{med['id']}" == ref:
            return _codes(med["code"])
    return set()


def test_corpus_is_present(corpus: Path) -> None:
    assert len(MESSAGES) == 46, "the shared corpus ships 46 HL7 v2 messages"


@pytest.mark.parametrize("path", MESSAGES, ids=lambda p: p.stem)
def test_converts_as_shipped_and_with_cr(corpus: Path, path: Path) -> None:
    data = path.read_bytes()
    shipped = _convert(data)
    with_cr = _convert(data.replace(b"\r\n", b"\r").replace(b"\n", b"\r"))
    assert shipped == with_cr and len(shipped) == 1
    text = json.dumps(shipped)
    assert "example.com" not in text and "4.3.0" not in text
    for entry in shipped[0]["entry"]:
        assert_valid(entry["resource"])


@pytest.mark.parametrize("path", EXPECTED, ids=lambda p: p.stem)
def test_agrees_with_fhir_converter_where_both_map(corpus: Path, path: Path) -> None:
    theirs = json.loads((corpus / "hl7v2-expected" / (path.stem + ".json")).read_text(encoding="utf-8-sig"))
    ours = _convert(path.read_bytes())[0]

    their_ids = {i.get("value") for p in _resources(theirs, "Patient") for i in p.get("identifier", [])}
    our_ids = {i["value"] for p in _resources(ours, "Patient") for i in p["identifier"]}
    assert our_ids and our_ids <= their_ids

    our_requests = _resources(ours, "MedicationRequest")
    for mine in our_requests:
        candidates = [r for r in _resources(theirs, "MedicationRequest")
                      if r["intent"] == ("filler-order" if mine["intent"] == "order" else "original-order")]
        their = candidates[our_requests.index(mine)]
        assert _codes(mine["medicationCodeableConcept"]) & _their_medication_codes(theirs, their)
        for key in ("quantity", "numberOfRepeatsAllowed"):
            if key in their.get("dispenseRequest", {}) and key in mine.get("dispenseRequest", {}):
                a, b = their["dispenseRequest"][key], mine["dispenseRequest"][key]
                assert (a["value"] == b["value"]) if key == "quantity" else (a == b)
        if "authoredOn" in their:
            assert _instant(mine.get("authoredOn")) == _instant(their["authoredOn"])

    their_fills = [d for d in _resources(theirs, "MedicationDispense") if "whenHandedOver" in d]
    our_fills = _resources(ours, "MedicationDispense")
    assert len(our_fills) == len(their_fills)
    for mine, their in zip(our_fills, their_fills, strict=True):
        assert _codes(mine["medicationCodeableConcept"]) & _their_medication_codes(theirs, their)
        assert mine["quantity"]["value"] == their["quantity"]["value"]
        assert _instant(mine["whenHandedOver"]) == _instant(their["whenHandedOver"])

    for mine, their in zip(_resources(ours, "Appointment"), _resources(theirs, "Appointment"), strict=True):
        assert mine["status"] == their["status"]
        assert _instant(mine.get("start")) == _instant(their.get("start"))
        assert _instant(mine.get("end")) == _instant(their.get("end"))
