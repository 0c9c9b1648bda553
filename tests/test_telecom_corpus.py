"""Every file of ../shared/corpus/ncpdp-d0: byte-exact round trip, lenient repairs, FHIR output or a documented error."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.telecom import TelecomError, parse, parse_lenient, reversal, serialize
from adapters.telecom.fhir import FILL_NUMBER_URL, SCC_URL, convert, to_fhir
from tests.conftest import corpus_files
from tests.fhirschema import assert_valid

pytestmark = pytest.mark.corpus

WELL_FRAMED = corpus_files("ncpdp-d0", "synthetic/*.ncpdp")
COSYTE = corpus_files("ncpdp-d0", "cosyte-ncpdp/*.ncpdp")

LENIENT_REPAIRS = {
    "pbm-person-code.ncpdp": ["inserted RS before segment 'AM01' after the header",
                              "inserted FS before segment id 'AM04'",
                              "inserted GS before transaction-level Claim"],
    "pbm-reject-unknown.ncpdp": ["response header is 23 bytes: 401-D1 date of service missing",
                                 "inserted RS before segment 'AM21' after GS"],
    "pbm-response-dur.ncpdp": ["response header is 23 bytes", "inserted FS before segment id 'AM24'"],
}
"""cosyte's simplified framing, and the repairs parse_lenient must report for it."""

FHIR_OUTCOME: dict[str, str | None] = {
    "synthetic/b1-medsync-anchorfill-scc48.request.ncpdp": None,
    "synthetic/b1-medsync-shortfill-scc47.request.ncpdp": None,
    "synthetic/b1-medsync-shortfill-scc47.response.ncpdp": None,
    # A reject without a Response Claim segment (AM22) names no Rx number: it links only with its request.
    "synthetic/b1-reject-79-refill-too-soon.response.ncpdp": "no 402-D2 Rx number",
    # A reversal changes a claim the claims domain owns; the adapter maps B1 dispensing records only.
    "synthetic/b2-reversal-of-shortfill.request.ncpdp": "only B1 billing requests",
    "synthetic/b2-reversal-of-shortfill.response.ncpdp": "no 402-D2 Rx number",
    "cosyte-ncpdp/pbm-person-code.ncpdp": None,
    # cosyte's response headers stop before 401-D1: no date to key or date the ClaimResponse without a request.
    "cosyte-ncpdp/pbm-reject-unknown.ncpdp": "401-D1 date of service is blank",
    "cosyte-ncpdp/pbm-response-dur.ncpdp": "401-D1 date of service is blank",
    # A YAML fixture holding an NCPDP Batch Standard header record, not a Telecommunication transmission.
    "higher-pixels-ncpdp/records.yml": "NCPDP Batch transmission header record",
}
"""Each corpus file: None when it converts to FHIR, else the documented error it must fail with."""

PAIRS = [
    ("b1-medsync-shortfill-scc47.response.ncpdp", "b1-medsync-shortfill-scc47.request.ncpdp"),
    ("b2-reversal-of-shortfill.response.ncpdp", "b2-reversal-of-shortfill.request.ncpdp"),
    ("b1-reject-79-refill-too-soon.response.ncpdp", "b1-medsync-shortfill-scc47.request.ncpdp"),
]
"""Responses converted with the request they answer (same pharmacy, date of service and Rx)."""


def _data(corpus: Path, name: str) -> bytes:
    path = corpus / "ncpdp-d0" / name
    if path.suffix == ".yml":
        # The YAML double-quoted scalar of ":transmission_header:" uses JSON's escapes (\u0002 ... \u0003).
        line = next(x for x in path.read_text().splitlines() if x.startswith(":transmission_header:"))
        return str(json.loads(line.split(":", 2)[2].strip())).encode("latin-1")
    return path.read_bytes()


def _resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in bundle["entry"]]


def test_the_corpus_is_there_and_every_file_is_accounted_for(corpus: Path) -> None:
    folder = corpus / "ncpdp-d0"
    files = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()
             and p.name not in {"SOURCES.md", "LICENSE"}}
    assert files == set(FHIR_OUTCOME)
    assert len(WELL_FRAMED) == 6
    assert {p.name for p in COSYTE} == set(LENIENT_REPAIRS)


@pytest.mark.parametrize("path", WELL_FRAMED, ids=lambda p: p.name)
def test_well_framed_files_round_trip_byte_for_byte(path: Path) -> None:
    data = path.read_bytes()
    assert serialize(parse(data)) == data
    lenient, repairs = parse_lenient(data)
    assert repairs == []
    assert lenient == parse(data)


@pytest.mark.parametrize("path", COSYTE, ids=lambda p: p.name)
def test_cosyte_fixtures_need_the_lenient_mode_and_say_what_it_repaired(path: Path) -> None:
    data = path.read_bytes()
    with pytest.raises(TelecomError):
        parse(data)
    transmission, repairs = parse_lenient(data)
    described = [str(r) for r in repairs]
    for expected in LENIENT_REPAIRS[path.name]:
        assert any(expected in d for d in described), (expected, described)
    canonical = serialize(transmission)
    assert parse(canonical) == transmission


def test_cosyte_fixture_values_after_repair(corpus: Path) -> None:
    person, _ = parse_lenient(_data(corpus, "cosyte-ncpdp/pbm-person-code.ncpdp"))
    insurance = person.segment("04")
    assert insurance is not None
    assert (insurance.get("C2"), insurance.get("C3")) == ("SYNTHCARD09", "03")
    claim = person.transactions[0].segment("07")
    assert claim is not None
    assert claim.quantity("E7") == Decimal("30.000")
    reject, _ = parse_lenient(_data(corpus, "cosyte-ncpdp/pbm-reject-unknown.ncpdp"))
    assert reject.header.response_status == "R"  # type: ignore[union-attr]
    status = reject.transactions[0].segment("21")
    assert status is not None
    assert status.get_all("FB") == ["99"]


@pytest.mark.parametrize("name", sorted(FHIR_OUTCOME))
def test_each_file_converts_to_valid_fhir_or_fails_as_documented(corpus: Path, name: str) -> None:
    data = _data(corpus, name)
    expected_error = FHIR_OUTCOME[name]
    if expected_error is not None:
        with pytest.raises(TelecomError, match=expected_error):
            convert(data)
        return
    bundle = convert(data)
    assert_valid(bundle)
    for resource in _resources(bundle):
        assert_valid(resource)


@pytest.mark.parametrize(("response", "request_name"), PAIRS)
def test_responses_with_their_requests_convert(corpus: Path, response: str, request_name: str) -> None:
    answer = parse(_data(corpus, f"synthetic/{response}"))
    asked = parse(_data(corpus, f"synthetic/{request_name}"))
    bundle = to_fhir(answer, asked)
    assert_valid(bundle)
    for resource in _resources(bundle):
        assert_valid(resource)
        assert resource["patient"]["reference"].startswith("Patient/")
        assert resource["insurer"]["reference"].startswith("Organization/")


def test_short_fill_maps_to_dispense_request_and_paid_claim(corpus: Path) -> None:
    request = parse(_data(corpus, "synthetic/b1-medsync-shortfill-scc47.request.ncpdp"))
    by_type = {r["resourceType"]: r for r in _resources(to_fhir(request)) if r["resourceType"] != "Organization"}
    dispense = by_type["MedicationDispense"]
    assert dispense["quantity"] == {"value": 26, "unit": "EA"}
    assert dispense["daysSupply"]["value"] == 13
    assert dispense["whenHandedOver"] == dispense["whenPrepared"] == "2025-03-19"
    assert {"url": FILL_NUMBER_URL, "valueUnsignedInt": 2} in dispense["extension"]
    assert [e["valueCoding"]["code"] for e in dispense["extension"] if e["url"] == SCC_URL] == ["47"]
    assert dispense["medicationCodeableConcept"]["coding"][0]["code"] == "00000123401"
    assert dispense["substitution"]["type"]["coding"][0]["code"] == "0"
    med_request = by_type["MedicationRequest"]
    assert dispense["authorizingPrescription"] == [{"reference": f"MedicationRequest/{med_request['id']}"}]
    assert med_request["dispenseRequest"]["numberOfRepeatsAllowed"] == 5
    assert med_request["authoredOn"] == "2024-12-01"
    assert med_request["identifier"][0]["value"] == "123456"
    assert by_type["Practitioner"]["identifier"][0]["value"] == "1245319599"
    assert by_type["Patient"]["birthDate"] == "1950-01-01"
    assert by_type["Patient"]["gender"] == "female"
    coverage = by_type["Coverage"]
    assert (coverage["subscriberId"], coverage["dependent"]) == ("SYNTH0001", "01")
    assert [c["value"] for c in coverage["class"]] == ["999999", "MEDSYNC", "GRP001", "SYNTH0001"]

    anchor = parse(_data(corpus, "synthetic/b1-medsync-anchorfill-scc48.request.ncpdp"))
    anchor_types = {r["resourceType"]: r for r in _resources(to_fhir(anchor))}
    assert anchor_types["MedicationRequest"]["id"] == med_request["id"]
    assert anchor_types["MedicationDispense"]["id"] != dispense["id"]

    response = parse(_data(corpus, "synthetic/b1-medsync-shortfill-scc47.response.ncpdp"))
    (claim_response,) = _resources(to_fhir(response, request))
    totals = {t["category"]["coding"][0]["code"]: t["amount"]["value"] for t in claim_response["total"]}
    assert totals["505-F5"] == 20.37
    assert totals["509-F9"] == 59.63
    assert claim_response["payment"]["amount"]["value"] == 59.63
    assert claim_response["outcome"] == "complete"


def test_reject_maps_every_code_with_its_text(corpus: Path) -> None:
    request = parse(_data(corpus, "synthetic/b1-medsync-shortfill-scc47.request.ncpdp"))
    reject = parse(_data(corpus, "synthetic/b1-reject-79-refill-too-soon.response.ncpdp"))
    (claim_response,) = _resources(to_fhir(reject, request))
    assert claim_response["outcome"] == "error"
    assert claim_response["error"] == [{"code": {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/NCPDPRejectCode", "code": "79",
        "display": "Refill Too Soon"}]}}]


def test_the_reversal_of_the_short_fill_is_the_corpus_b2(corpus: Path) -> None:
    billing = parse(_data(corpus, "synthetic/b1-medsync-shortfill-scc47.request.ncpdp"))
    assert serialize(reversal(billing)) == _data(corpus, "synthetic/b2-reversal-of-shortfill.request.ncpdp")
