"""D.0 → FHIR on built transmissions: repeats through the mapping, 112-AN statuses, reject codes, keys."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from adapters.telecom import (
    RequestHeader,
    ResponseHeader,
    Segment,
    TelecomError,
    Transmission,
    parse,
    serialize,
)
from adapters.telecom.fhir import SCC_URL, claim_id, to_fhir
from tests.fhirschema import assert_valid

HEADER = RequestHeader(bin="610011", transaction_code="B1", pcn="RXPCN01", provider_id="1234567893",
                       date_of_service="20250401", software_vendor="SW", transaction_count=2)
PATIENT = Segment("01", [("CX", "99"), ("CY", "P-77"), ("C4", date(1948, 2, 29)), ("C5", "1"), ("CA", "AL"),
                         ("CB", "BEN"), ("CP", "11201")])
INSURANCE = Segment("04", [("C2", "MEM123"), ("C1", "G9"), ("C3", "002"), ("C6", "3")])
PRESCRIBER = Segment("03", [("EZ", "01"), ("DB", "1245319599"), ("DR", "WELBY"), ("2J", "MARCUS")])


def claim(rx: str, fill: int, *codes: str) -> list[Segment]:
    return [
        Segment("07", [("EM", "1"), ("D2", rx), ("E1", "03"), ("D7", "00000123401"), ("E7", Decimal("2.5")),
                       ("D3", fill), ("D5", 25), ("D8", "1"), ("DE", date(2025, 1, 2)), ("DF", 3),
                       ("NX", len(codes)), *(("DK", c) for c in codes), ("28", "ML")]),
        Segment("08", [("7E", 1), ("E4", "ER"), ("7E", 2), ("E4", "TD")]),
        PRESCRIBER,
    ]


def b1() -> Transmission:
    return Transmission(HEADER, [INSURANCE, PATIENT], [claim("000000000042", 0, "47", "20"), claim("43", 1)])


def resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    assert_valid(bundle)
    out = [entry["resource"] for entry in bundle["entry"]]
    for resource in out:
        assert_valid(resource)
    return out


def test_two_claims_two_scc_codes_one_prescriber() -> None:
    built = b1()
    assert parse(serialize(built)) == built
    out = resources(to_fhir(parse(serialize(built))))
    types = [r["resourceType"] for r in out]
    assert types.count("Practitioner") == 1
    assert types.count("MedicationDispense") == 2
    first = next(r for r in out if r["resourceType"] == "MedicationDispense")
    assert [e["valueCoding"]["code"] for e in first["extension"] if e["url"] == SCC_URL] == ["47", "20"]
    assert first["quantity"] == {"value": 2.5, "unit": "ML", "system": "http://unitsofmeasure.org", "code": "mL"}
    assert first["type"]["coding"][0]["code"] == "FF"
    assert first["identifier"][0]["value"] == "42"
    patient = next(r for r in out if r["resourceType"] == "Patient")
    assert patient["identifier"][0]["value"] == "P-77"
    assert patient["address"] == [{"postalCode": "11201"}]
    coverage = next(r for r in out if r["resourceType"] == "Coverage")
    assert coverage["relationship"]["coding"][0]["code"] == "child"


def test_ids_come_from_business_keys_not_text() -> None:
    first = {r["resourceType"] + r["id"] for r in resources(to_fhir(b1()))}
    renamed = Transmission(HEADER, [INSURANCE, Segment("01", [*PATIENT.fields[:5], ("CB", "BENNETT")])],
                           b1().transactions)
    assert {r["resourceType"] + r["id"] for r in resources(to_fhir(renamed))} == first


def test_patient_without_id_falls_back_to_member_then_demographics() -> None:
    member = Transmission(HEADER, [INSURANCE, Segment("01", [("CB", "X")])], b1().transactions)
    other_card = Transmission(HEADER, [Segment("04", [("C2", "OTHER")]), Segment("01", [("CB", "X")])],
                              b1().transactions)
    ids = [next(r["id"] for r in resources(to_fhir(t)) if r["resourceType"] == "Patient")
           for t in (member, other_card)]
    assert ids[0] != ids[1]
    nobody = Transmission(HEADER, [Segment("01", [("C5", "2")])], b1().transactions)
    with pytest.raises(TelecomError, match="no patient key"):
        to_fhir(nobody)


def response(status: str, *rejects: str) -> Transmission:
    header = ResponseHeader(transaction_code="B1", response_status="A", provider_id="1234567893",
                            date_of_service="20250401")
    segments = [Segment("21", [("AN", status), ("FA", len(rejects)), *(("FB", c) for c in rejects)]),
                Segment("22", [("EM", "1"), ("D2", "000000000042")]),
                Segment("23", [("F5", Decimal("-1.50")), ("F9", Decimal("10"))]),
                Segment("24", [("J6", 1), ("E4", "ER"), ("FY", "EARLY REFILL")])]
    return Transmission(header, [], [segments])


@pytest.mark.parametrize(("status", "outcome"), [("P", "complete"), ("D", "complete"), ("C", "complete"),
                                                 ("Q", "complete"), ("A", "complete"), ("S", "complete"),
                                                 ("R", "error")])
def test_response_status_maps_to_outcome_and_extension(status: str, outcome: str) -> None:
    (result,) = resources(to_fhir(response(status)))
    assert result["outcome"] == outcome
    assert result["extension"][0]["valueCoding"]["code"] == status
    assert result["request"] == {"reference": f"Claim/{claim_id('1234567893', '42', '20250401')}"}
    assert result["processNote"] == [{"type": "display", "text": "EARLY REFILL"}]


def test_every_reject_code_survives_and_wins_over_paid() -> None:
    (result,) = resources(to_fhir(response("P", "79", "76", "M9")))
    assert result["outcome"] == "error"
    codes = [e["code"]["coding"][0] for e in result["error"]]
    assert [c["code"] for c in codes] == ["79", "76", "M9"]
    assert codes[1]["display"] == "Plan Limitations Exceeded"
    assert "display" not in codes[2]
    totals = {t["category"]["coding"][0]["code"]: t["amount"]["value"] for t in result["total"]}
    assert totals == {"505-F5": -1.5, "509-F9": 10}


def test_unknown_status_is_never_read_as_paid() -> None:
    with pytest.raises(TelecomError, match="112-AN 'X'") as caught:
        to_fhir(response("X"))
    assert caught.value.field == "112-AN"


def test_requests_other_than_b1_are_refused_by_name() -> None:
    e1 = Transmission(RequestHeader(bin="1", transaction_code="E1", provider_id="1", date_of_service="20250101"),
                      [INSURANCE], [[Segment("07", [("D2", "1")])]])
    with pytest.raises(TelecomError, match="103-A3"):
        to_fhir(e1)


def test_the_conversion_front_door_detects_and_converts_d0() -> None:
    from interop.ingest.convert import ConversionError, convert, detect_format

    data = serialize(b1())
    assert detect_format(data) == "telecom"
    (bundle,) = convert(data)
    assert bundle == to_fhir(b1())
    f6 = b"99999999F6B1" + data[10:]
    with pytest.raises(ConversionError, match="F6"):
        convert(f6, "telecom")


@pytest.mark.parametrize("name", ["fill-number", "submission-clarification-code", "ncpdp-response-status"])
def test_our_extensions_are_defined_in_conformance(name: str) -> None:
    from importlib import resources as files

    from interop.fhir.systems import extension_url

    definition = json.loads(files.files("conformance").joinpath(f"StructureDefinition-{name}.json").read_text())
    assert_valid(definition)
    assert definition["url"] == extension_url(name)
    assert {"id": "Extension.url", "path": "Extension.url", "fixedUri": extension_url(name)} in (
        definition["differential"]["element"])


def test_response_status_code_system_lists_every_status() -> None:
    from importlib import resources as files

    from adapters.telecom.fhir import RESPONSE_STATUS, RESPONSE_STATUS_SYSTEM

    system = json.loads(files.files("conformance").joinpath(
        "CodeSystem-ncpdp-transaction-response-status.json").read_text())
    assert_valid(system)
    assert system["url"] == RESPONSE_STATUS_SYSTEM
    assert [c["code"] for c in system["concept"]] == list(RESPONSE_STATUS)


def test_dur_repeats_survive_the_mapping() -> None:
    out = resources(to_fhir(b1()))
    dispense = next(r for r in out if r["resourceType"] == "MedicationDispense")
    assert [n["text"] for n in dispense["note"]] == ["NCPDP DUR/PPS: reason for service 439-E4 ER",
                                                     "NCPDP DUR/PPS: reason for service 439-E4 TD"]
