"""HL7 v2 → FHIR mapping, field by field, on fixtures written here (RDE, RDS, OMP, ORM, SIU, ADT)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.hl7v2 import parse_message
from adapters.hl7v2.mapping import MappingError, TableError, clear_cache, days_supply, to_bundle
from interop.fhir.ids import business_id
from interop.fhir.systems import CodeSystem, extension_url, identifier_system
from tests.fhirschema import assert_valid

REFILLS = extension_url("refills-remaining")
SOURCE = extension_url("days-supply-source")

MSH = "MSH|^~\\&|PHARMSYS|RX01|EHR|HOSP|20250105093000-0500||{type}|{ctl}|P|2.5.1\r"
PID = "PID|1||MRN1^^^HOSP^MR~123-45-6789^^^USSSA^SS||DOE^JANE^Q^^^^L||19600101|F|||1 MAIN ST^^SPRINGFIELD^IL^62701^USA^H||^PRN^PH^^^217^5550100\r"
ORC = "ORC|{orc1}|PL1^EHR|{rx}^RX01||{orc5}||||20250101120000-0500|||1234567893^SMITH^ANN^^^^^^NPI^L^^^NPI\r"
RXE = (
    "RXE|{rxe1}|{drug}|1||{give_unit}|TAB^tablet|^Take 1 tablet daily||G|{qty}|{unit}|5|||{rx}|{remaining}|1|"
    "20241201||||||||||||||20250101120000-0500\r"
)
TQ1 = "TQ1|1||{freq}|||{duration}|{start}|{end}|{priority}\r"
RXR = "RXR|PO^Oral^HL70162\r"
RXD = "RXD|{fill}|{drug}|{handed}|{dqty}|{unit}||{rx}|{rxd8}" + "|" * 25 + "{rxd33}\r"

DRUG = "0071-0156-23^LIPITOR 20 MG TABLET^NDC^617310^atorvastatin 20 MG Oral Tablet^RXNORM"


def rde(**kw: str) -> str:
    v = {"type": "RDE^O11^RDE_O11", "ctl": "M1", "orc1": "NW", "orc5": "", "rx": "RX100", "rxe1": "",
         "drug": DRUG, "give_unit": "TAB", "qty": "90", "unit": "TAB^tablet", "remaining": "3",
         "freq": "QD", "duration": "", "start": "", "end": "", "priority": "", "tq1": "yes"}
    v.update(kw)
    tq1 = TQ1.format(**v) if v["tq1"] else ""
    return MSH.format(**v) + PID + ORC.format(**v) + RXE.format(**v) + tq1 + RXR


def rds(**kw: str) -> str:
    v = {"type": "RDS^O13^RDS_O13", "ctl": "M2", "orc1": "RE", "orc5": "", "rx": "RX100", "rxe1": "",
         "drug": DRUG, "give_unit": "TAB", "qty": "90", "unit": "TAB^tablet", "remaining": "3",
         "freq": "QD", "duration": "", "start": "", "end": "", "priority": "", "fill": "1",
         "handed": "20250105", "dqty": "90", "rxd8": "3", "rxd33": "", "tq1": "yes", "extra": ""}
    v.update(kw)
    tq1 = TQ1.format(**v) if v["tq1"] else ""
    return (MSH.format(**v) + PID + ORC.format(**v) + RXE.format(**v) + tq1 + RXR + RXD.format(**v)
            + v["extra"])


def convert(text: str) -> dict[str, Any]:
    bundle = to_bundle(parse_message(text))
    for entry in bundle["entry"]:
        assert_valid(entry["resource"])
        assert entry["request"] == {"method": "PUT", "url": f"{entry['resource']['resourceType']}/{entry['resource']['id']}"}
    assert "example.com" not in json.dumps(bundle) and "4.3.0" not in json.dumps(bundle)
    return bundle


def only(bundle: dict[str, Any], rtype: str) -> dict[str, Any]:
    found = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]
    assert len(found) == 1, f"{len(found)} {rtype} in the bundle"
    return found[0]


def ext(resource: dict[str, Any], url: str) -> Any:
    values = [e for e in resource.get("extension", []) if e["url"] == url]
    return values[0] if values else None


@pytest.fixture
def mappings_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("INTEROP_MAPPINGS_DIR", str(tmp_path))
    (tmp_path / "hl7v2" / "senders").mkdir(parents=True)
    clear_cache()
    yield tmp_path
    clear_cache()


def test_rde_o11_medication_request_fields() -> None:
    bundle = convert(rde())
    assert bundle["type"] == "transaction"
    mr = only(bundle, "MedicationRequest")
    assert mr["id"] == business_id("MedicationRequest", "RX01", "RX100")
    assert mr["status"] == "active" and mr["intent"] == "order"
    assert {"use": "official", "system": identifier_system("rx-number", "RX01"), "value": "RX100"} in mr["identifier"]
    codings = mr["medicationCodeableConcept"]["coding"]
    assert codings[0] == {"system": CodeSystem.NDC.value, "code": "00071015623", "display": "LIPITOR 20 MG TABLET"}
    assert codings[1]["system"] == CodeSystem.RXNORM.value and codings[1]["code"] == "617310"
    assert mr["authoredOn"] == "2025-01-01T12:00:00-05:00"
    dr = mr["dispenseRequest"]
    assert dr["quantity"] == {"value": 90, "unit": "tablet", "system": CodeSystem.UCUM.value, "code": "{tbl}"}
    assert dr["numberOfRepeatsAllowed"] == 5
    assert dr["expectedSupplyDuration"] == {"value": 90, "unit": "day", "system": CodeSystem.UCUM.value, "code": "d"}
    assert ext(mr, SOURCE)["valueCode"] == "quantity-daily-dose"
    assert ext(mr, REFILLS) == {"url": REFILLS, "valueUnsignedInt": 3}
    dosage = mr["dosageInstruction"][0]
    assert dosage["text"] == "Take 1 tablet daily"
    assert dosage["timing"]["repeat"] == {"frequency": 1, "period": 1, "periodUnit": "d"}
    assert dosage["route"]["coding"][0]["code"] == "PO"
    assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == 1
    assert mr["substitution"] == {"allowedBoolean": True}
    practitioner = only(bundle, "Practitioner")
    assert mr["requester"]["reference"] == f"Practitioner/{practitioner['id']}"
    assert practitioner["identifier"] == [{"system": CodeSystem.NPI.value, "value": "1234567893"}]
    assert practitioner["id"] == business_id("Practitioner", CodeSystem.NPI.value, "1234567893")
    medication = only(bundle, "Medication")
    assert medication["id"] == business_id("Medication", CodeSystem.NDC.value, "00071015623")
    assert medication["form"]["coding"][0]["code"] == "TAB"
    patient = only(bundle, "Patient")
    assert mr["subject"]["reference"] == f"Patient/{patient['id']}"
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["Patient", "Medication", "Practitioner", "MedicationRequest"]


def test_patient_fields_and_key() -> None:
    patient = only(convert(rde()), "Patient")
    assert patient["id"] == business_id("Patient", "HOSP", "MRN1")
    assert patient["identifier"][0]["system"] == identifier_system("mrn", "HOSP")
    assert patient["identifier"][1] == {
        "system": "http://hl7.org/fhir/sid/us-ssn", "value": "123-45-6789",
        "type": {"coding": [{"system": CodeSystem.V2_0203.value, "code": "SS"}]},
    }
    assert patient["name"] == [{"use": "official", "family": "DOE", "given": ["JANE", "Q"]}]
    assert patient["birthDate"] == "1960-01-01" and patient["gender"] == "female"
    assert patient["address"][0] == {
        "city": "SPRINGFIELD", "state": "IL", "postalCode": "62701", "country": "USA", "line": ["1 MAIN ST"],
        "use": "home",
    }
    assert patient["telecom"] == [{"system": "phone", "value": "(217) 5550100", "use": "home"}]


def test_rds_o13_dispense_fields_and_link_to_request() -> None:
    bundle = convert(rds())
    mr = only(bundle, "MedicationRequest")
    md = only(bundle, "MedicationDispense")
    assert md["id"] == business_id("MedicationDispense", "RX01", "RX100", "fill", "1")
    assert md["status"] == "completed"
    assert md["authorizingPrescription"][0]["reference"] == f"MedicationRequest/{mr['id']}"
    assert md["authorizingPrescription"][0]["identifier"]["value"] == "RX100"
    assert md["type"]["coding"][0] == {"system": CodeSystem.V3_ACT_CODE.value, "code": "FF", "display": "First Fill"}
    assert md["quantity"]["value"] == 90 and md["quantity"]["code"] == "{tbl}"
    assert md["daysSupply"] == {"value": 90, "unit": "day", "system": CodeSystem.UCUM.value, "code": "d"}
    assert ext(md, SOURCE)["valueCode"] == "quantity-daily-dose"
    assert ext(md, REFILLS)["valueUnsignedInt"] == 3
    assert md["whenHandedOver"] == "2025-01-05"
    org = only(bundle, "Organization")
    assert md["performer"] == [{"actor": {"reference": f"Organization/{org['id']}"}}]


def test_dispense_type_from_rxd33_and_from_fill_number() -> None:
    refill = only(convert(rds(fill="2")), "MedicationDispense")
    assert refill["type"]["coding"][0]["code"] == "RF"
    partial = only(convert(rds(rxd33="Q")), "MedicationDispense")
    assert [c["code"] for c in partial["type"]["coding"]] == ["RFP", "Q"]
    by_counts = only(convert(rds(fill="")), "MedicationDispense")
    assert by_counts["type"]["coding"][0]["code"] == "RF", "RXE-17 says one refill was dispensed"
    assert by_counts["id"] == business_id("MedicationDispense", "RX01", "RX100", "date", "20250105")


@pytest.mark.parametrize(
    ("kw", "days", "rule"),
    [
        ({"duration": "90^D&day&ISO"}, 90, "tq1-service-duration"),
        ({"duration": "4^WK"}, 28, "tq1-service-duration"),
        ({"start": "20250101", "end": "20250130"}, 30, "tq1-start-end"),
        ({"start": "202501010800", "end": "202501310800"}, 30, "tq1-start-end"),
        ({"freq": "BID", "dqty": "60"}, 30, "quantity-daily-dose"),
        ({"freq": "Q8H", "dqty": "45"}, 15, "quantity-daily-dose"),
        ({"freq": "QOD", "dqty": "15"}, 30, "quantity-daily-dose"),
        ({"freq": "BID", "dqty": "25"}, 12, "quantity-daily-dose"),
    ],
)
def test_days_supply_rules_in_order(kw: dict[str, str], days: int, rule: str) -> None:
    md = only(convert(rds(**kw)), "MedicationDispense")
    assert md["daysSupply"]["value"] == days
    assert ext(md, SOURCE) == {"url": SOURCE, "valueCode": rule}


@pytest.mark.parametrize(
    "kw",
    [
        {"give_unit": "MG"},
        {"freq": "PRN"},
        {"priority": "PRN"},
        {"freq": "ASDIR"},
        {"tq1": ""},
    ],
)
def test_days_supply_left_empty_rather_than_guessed(kw: dict[str, str]) -> None:
    bundle = convert(rds(**kw))
    md = only(bundle, "MedicationDispense")
    assert "daysSupply" not in md and ext(md, SOURCE) is None
    assert "expectedSupplyDuration" not in only(bundle, "MedicationRequest")["dispenseRequest"]


def test_days_supply_from_legacy_rxe1_timing() -> None:
    text = rds(tq1="", rxe1="1^QD").replace("2.5.1", "2.3")
    md = only(convert(text), "MedicationDispense")
    assert md["daysSupply"]["value"] == 90 and ext(md, SOURCE)["valueCode"] == "quantity-daily-dose"


def test_days_supply_from_sender_configured_field(mappings_dir: Path) -> None:
    (mappings_dir / "hl7v2" / "senders" / "RX01.json").write_text(json.dumps({"days_supply_field": "ZRX-2"}))
    md = only(convert(rds(tq1="", extra="ZRX|x|28\r")), "MedicationDispense")
    assert md["daysSupply"]["value"] == 28 and ext(md, SOURCE)["valueCode"] == "sender-field"
    with pytest.raises(MappingError) as caught:
        convert(rds(tq1="", extra="ZRX|x|2.5\r"))
    assert (caught.value.segment, caught.value.field) == ("ZRX", 2)


def test_ids_stable_under_resend_and_drug_description_change() -> None:
    first = convert(rds())
    again = convert(rds(ctl="M9").replace("20250105093000-0500", "20250106100000-0500"))
    renamed = convert(rds(drug=DRUG.replace("LIPITOR 20 MG TABLET", "ATORVASTATIN CALCIUM 20MG TAB")))
    ids = [[e["request"]["url"] for e in b["entry"]] for b in (first, again, renamed)]
    assert ids[0] == ids[1] == ids[2]
    assert first == again
    other_rx = convert(rds(rx="RX101"))
    assert only(other_rx, "MedicationRequest")["id"] != only(first, "MedicationRequest")["id"]
    assert only(other_rx, "Patient")["id"] == only(first, "Patient")["id"]


def test_rde_and_rds_share_the_prescription_id() -> None:
    order = only(convert(rde()), "MedicationRequest")
    fill = only(convert(rds()), "MedicationDispense")
    assert fill["authorizingPrescription"][0]["reference"] == f"MedicationRequest/{order['id']}"


@pytest.mark.parametrize(
    ("orc1", "orc5", "request_status", "dispense_status"),
    [
        ("NW", "", "active", "completed"),
        ("CA", "", "cancelled", "cancelled"),
        ("DC", "", "stopped", "stopped"),
        ("HD", "", "on-hold", "on-hold"),
        ("RE", "CM", "completed", "completed"),
        ("RE", "IP", "active", "in-progress"),
        ("XO", "ER", "entered-in-error", "entered-in-error"),
    ],
)
def test_statuses_from_orc1_and_orc5(orc1: str, orc5: str, request_status: str, dispense_status: str) -> None:
    bundle = convert(rds(orc1=orc1, orc5=orc5))
    assert only(bundle, "MedicationRequest")["status"] == request_status
    assert only(bundle, "MedicationDispense")["status"] == dispense_status


@pytest.mark.parametrize(
    ("drug", "system", "code"),
    [
        ("00071015623^Lipitor^NDC", CodeSystem.NDC.value, "00071015623"),
        ("71015-623^Lipitor^N4", None, None),
        ("0071-0156-23^Lipitor^", CodeSystem.NDC.value, "00071015623"),
        ("00071-156-23^Lipitor^NDC", CodeSystem.NDC.value, "00071015623"),
        ("617310^atorvastatin^RXN", CodeSystem.RXNORM.value, "617310"),
        ("617310^atorvastatin^RXNORM", CodeSystem.RXNORM.value, "617310"),
        ("123456^atorvastatin^FDDC", "http://terminology.hl7.org/CodeSystem/FDDC", "123456"),
        ("39400010100310^atorvastatin^MGPI", "http://terminology.hl7.org/CodeSystem/MGPI", "39400010100310"),
        ("A77^atorvastatin^99LOC", identifier_system("code", "RX01-99LOC"), "A77"),
        ("01151327^Doxycycline^NDC", identifier_system("code", "RX01-NDC"), "01151327"),
        ("A77^atorvastatin", identifier_system("code", "RX01-unlabelled"), "A77"),
    ],
)
def test_code_system_aliases(drug: str, system: str | None, code: str | None) -> None:
    concept = only(convert(rde(drug=drug)), "MedicationRequest")["medicationCodeableConcept"]
    if system is None:
        assert concept["coding"][0]["system"] != CodeSystem.NDC.value
    else:
        assert concept["coding"][0]["system"] == system and concept["coding"][0]["code"] == code


def test_sender_override_tables(mappings_dir: Path) -> None:
    senders = mappings_dir / "hl7v2" / "senders"
    senders.joinpath("RX01.json").write_text(
        json.dumps({"order_status": {"orc1": {"NW": "on-hold"}}, "frequencies": {"QWK": [1, 1, "wk"]},
                    "timezone": "America/Chicago"})
    )
    bundle = convert(rde(freq="QWK", qty="4").replace("20250101120000-0500", "20250101120000"))
    mr = only(bundle, "MedicationRequest")
    assert mr["status"] == "on-hold"
    assert mr["dispenseRequest"]["expectedSupplyDuration"]["value"] == 28
    assert mr["authoredOn"] == "2025-01-01T12:00:00-06:00"
    other = only(convert(rde().replace("|RX01|", "|RX02|")), "MedicationRequest")
    assert other["status"] == "active"
    (mappings_dir / "hl7v2" / "order_status.json").write_text(json.dumps({"map": {"orc1": {"NW": "draft"}}}))
    clear_cache()
    assert only(convert(rde().replace("|RX01|", "|RX02|")), "MedicationRequest")["status"] == "draft"


def test_omp_o09_rxo_original_order() -> None:
    text = (
        MSH.format(type="OMP^O09^OMP_O09", ctl="M3") + PID
        + "ORC|NW|PL9^EHR|||||||20250101\r"
        + "RXO|617310^atorvastatin 20 MG^RXNORM|1||TAB|||^take one daily||N||30|TAB^tablet|2|1234567893^SMITH^ANN^^^^^^NPI\r"
        + "TQ1|1||QD\r"
    )
    bundle = convert(text)
    mr = only(bundle, "MedicationRequest")
    assert mr["intent"] == "original-order"
    assert mr["id"] == business_id("MedicationRequest", "RX01", "PL9")
    assert mr["substitution"] == {"allowedBoolean": False}
    assert mr["dispenseRequest"]["numberOfRepeatsAllowed"] == 2
    assert mr["dispenseRequest"]["expectedSupplyDuration"]["value"] == 30
    assert mr["authoredOn"] == "2025-01-01"
    assert "Practitioner/" in mr["requester"]["reference"]


def test_orm_o01_and_rde_o25_and_rde_o01() -> None:
    orm = MSH.format(type="ORM^O01", ctl="M4") + PID + "ORC|NW|PL7\rRXO|617310^atorvastatin^RXNORM|1||TAB\r"
    assert only(convert(orm), "MedicationRequest")["intent"] == "original-order"
    assert only(convert(rde(type="RDE^O25^RDE_O25")), "MedicationRequest")["id"] == business_id(
        "MedicationRequest", "RX01", "RX100"
    )
    legacy = rde(type="RDE^O01", tq1="").replace("2.5.1", "2.3")
    assert only(convert(legacy), "MedicationRequest")["status"] == "active"
    legacy_fill = rds(type="RDS^O01", tq1="", rxe1="1^QD").replace("2.5.1", "2.4")
    assert only(convert(legacy_fill), "MedicationDispense")["daysSupply"]["value"] == 90


def test_no_dispense_from_ft1_charge_lines() -> None:
    text = rde() + "FT1|1|||20250105||CG|00071015623^LIPITOR^NDC|||1\r"
    bundle = convert(text)
    assert not [e for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationDispense"]


def test_two_order_groups_give_two_requests_and_dispenses() -> None:
    text = rds()
    second = ORC.format(orc1="RE", orc5="", rx="RX200") + RXE.format(
        rxe1="", drug="617310^atorvastatin^RXNORM", give_unit="TAB", qty="30", unit="TAB", rx="RX200", remaining="0"
    ) + RXD.format(fill="4", drug="617310^atorvastatin^RXNORM", handed="20250105", dqty="30", unit="TAB", rxd8="0", rxd33="",
                   rx="RX200")
    bundle = convert(text + second)
    requests = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationRequest"]
    dispenses = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationDispense"]
    assert len(requests) == 2 and len(dispenses) == 2
    assert dispenses[1]["authorizingPrescription"][0]["reference"] == f"MedicationRequest/{requests[1]['id']}"
    assert dispenses[1]["type"]["coding"][0]["code"] == "RF"


SIU = (
    "MSH|^~\\&|SCHED|RX01|PHARM|RX01|20250110080000-0500||SIU^{event}^SIU_{event}|S1|P|2.5.1\r"
    "SCH|PLC1^EHR|APT77^RX01|||||^Pickup|PICKUP^Med sync pickup^LOCAL|15|MIN|^^^20250115100000-0500^20250115101500-0500||||||||||||||{sch25}\r"
    "PID|1||MRN1^^^HOSP^MR||DOE^JANE\r"
    "RGS|1\r"
    "AIL|1||COUNTER^1^^RX01\r"
    "AIP|1||1234567893^SMITH^ANN^^^^^^NPI|PHARM\r"
)


@pytest.mark.parametrize(
    ("event", "sch25", "status"),
    [
        ("S12", "", "booked"),
        ("S12", "Booked", "booked"),
        ("S14", "Complete", "fulfilled"),
        ("S13", "Pending", "pending"),
        ("S15", "Booked", "cancelled"),
        ("S16", "", "cancelled"),
        ("S17", "", "entered-in-error"),
        ("S26", "Booked", "noshow"),
    ],
)
def test_siu_appointment(event: str, sch25: str, status: str) -> None:
    bundle = convert(SIU.format(event=event, sch25=sch25))
    appt = only(bundle, "Appointment")
    assert appt["id"] == business_id("Appointment", "RX01", "filler", "APT77")
    assert appt["status"] == status
    assert appt["start"] == "2025-01-15T10:00:00-05:00" and appt["end"] == "2025-01-15T10:15:00-05:00"
    assert appt["minutesDuration"] == 15
    assert appt["appointmentType"]["coding"][0]["code"] == "PICKUP"
    actors = [p["actor"]["reference"].split("/")[0] for p in appt["participant"]]
    assert actors == ["Patient", "Practitioner", "Location"]
    assert only(bundle, "Patient")["id"] == business_id("Patient", "HOSP", "MRN1")


def test_siu_start_from_tq1_and_placer_fallback() -> None:
    text = SIU.format(event="S12", sch25="").replace("|APT77^RX01|", "||") + ""
    text = text.replace("RGS|1\r", "TQ1|1||||||20250116090000-0500|20250116091500-0500\rRGS|1\r")
    appt = only(convert(text), "Appointment")
    assert appt["id"] == business_id("Appointment", "RX01", "placer", "PLC1")
    assert appt["start"] == "2025-01-16T09:00:00-05:00"


ADT = (
    "MSH|^~\\&|REG|HOSP|PHARM|RX01|20250101080000||ADT^{event}|A1|P|2.5.1\r"
    "EVN|{event}|20250101080000\r"
    "PID|1||MRN1^^^HOSP^MR||{name}||19600101|F\r"
    "PV1|1|O\r"
)


def test_adt_register_update_same_patient() -> None:
    a04 = only(convert(ADT.format(event="A04", name="DOE^JANE")), "Patient")
    a08 = only(convert(ADT.format(event="A08", name="SMITH^JANE")), "Patient")
    assert a04["id"] == a08["id"] and a08["name"][0]["family"] == "SMITH"
    for event in ("A01", "A28", "A31"):
        assert only(convert(ADT.format(event=event, name="DOE^JANE")), "Patient")["id"] == a04["id"]


def test_adt_a40_merge_links_both_records() -> None:
    text = ADT.format(event="A40", name="DOE^JANE") + "MRG|OLD9^^^HOSP^MR\r"
    bundle = convert(text)
    patients = {p["id"]: p for p in (e["resource"] for e in bundle["entry"])}
    survivor = patients[business_id("Patient", "HOSP", "MRN1")]
    retired = patients[business_id("Patient", "HOSP", "OLD9")]
    assert survivor["link"] == [{"other": {"reference": f"Patient/{retired['id']}"}, "type": "replaces"}]
    assert retired["link"] == [{"other": {"reference": f"Patient/{survivor['id']}"}, "type": "replaced-by"}]
    assert retired["active"] is False


@pytest.mark.parametrize(
    ("text", "segment", "field", "code"),
    [
        (rde().replace("PID|1||MRN1^^^HOSP^MR~123-45-6789^^^USSSA^SS|", "PID|1|||"), "PID", 3, "101"),
        (rde(drug=""), "RXE", 2, "101"),
        (rde(rx="").replace("ORC|NW|PL1^EHR|", "ORC|NW||"), "RXE", 15, "101"),
        (rds(handed="2025-01-05", fill=""), "RXD", 3, "102"),
        (rds(dqty="ninety"), "RXD", 4, "102"),
        (rde(remaining="-1"), "RXE", 16, "102"),
        (ADT.format(event="A02", name="X"), "MSH", 9, "201"),
        (ADT.format(event="A04", name="X").replace("ADT^A04", "MFN^M01"), "MSH", 9, "200"),
        (MSH.format(type="RDE^O11", ctl="1") + "ORC|NW|1\rRXE||123^X^NDC\r", "PID", None, "100"),
        (MSH.format(type="RDE^O11", ctl="1") + PID, "MSH", 9, "100"),
        (ADT.format(event="A40", name="X"), "MRG", None, "100"),
    ],
)
def test_mapping_errors_name_segment_and_field(text: str, segment: str, field: int | None, code: str) -> None:
    with pytest.raises(MappingError) as caught:
        to_bundle(parse_message(text))
    err = caught.value
    assert (err.segment, err.field, err.code) == (segment, field, code)


def test_time_without_offset_uses_sender_zone(mappings_dir: Path) -> None:
    (mappings_dir / "hl7v2" / "senders" / "RX01.json").write_text(json.dumps({"timezone": "America/New_York"}))
    text = rds(handed="202507041015")
    assert only(convert(text), "MedicationDispense")["whenHandedOver"] == "2025-07-04T10:15:00-04:00"


def test_appointment_duration_over_a_year_is_an_error_not_an_overflow() -> None:
    text = SIU.format(event="S12", sch25="").replace("|15|MIN|^^^20250115100000-0500^20250115101500-0500|",
                                                     "|99999999999|MIN|^^^20250115100000-0500|")
    with pytest.raises(MappingError) as caught:
        to_bundle(parse_message(text))
    assert (caught.value.segment, caught.value.field, caught.value.code) == ("SCH", 9, "102")


def test_bundles_do_not_share_objects_with_later_conversions() -> None:
    first = convert(rds())
    for entry in first["entry"]:
        entry["resource"].clear()
    second = convert(rds())
    assert only(second, "Patient")["name"][0]["family"] == "DOE"
    assert only(second, "Medication")["code"]["coding"][0]["code"] == "00071015623"
    assert only(second, "MedicationRequest")["dosageInstruction"][0]["timing"]["code"]["text"] == "QD"
    assert only(second, "Practitioner")["identifier"][0]["value"] == "1234567893"


def test_extension_definitions_ship_in_conformance() -> None:
    folder = Path(__file__).resolve().parent.parent / "conformance"
    names = ["StructureDefinition-refills-remaining", "StructureDefinition-days-supply-source",
             "CodeSystem-days-supply-source", "ValueSet-days-supply-source"]
    resources = [json.loads((folder / f"{n}.json").read_text()) for n in names]
    for resource in resources:
        assert_valid(resource)
    assert resources[0]["url"] == REFILLS and resources[1]["url"] == SOURCE
    codes = {c["code"] for c in resources[2]["concept"]}
    assert codes == {days_supply.TQ1_SERVICE_DURATION, days_supply.TQ1_START_END, days_supply.QUANTITY_DAILY_DOSE,
                     days_supply.SENDER_FIELD}


def test_prescriber_at_ordering_facility_is_a_practitioner_role() -> None:
    orc = ORC.format(orc1="NW", orc5="", rx="RX100").rstrip("\r") + "|||||||||SPRINGFIELD CLINIC^^^^^NPPES^^^^1851234567\r"
    text = rde().replace(ORC.format(orc1="NW", orc5="", rx="RX100"), orc)
    bundle = convert(text)
    role = only(bundle, "PractitionerRole")
    org = only(bundle, "Organization")
    prac = only(bundle, "Practitioner")
    assert only(bundle, "MedicationRequest")["requester"] == {"reference": f"PractitionerRole/{role['id']}"}
    assert role["practitioner"] == {"reference": f"Practitioner/{prac['id']}"}
    assert role["organization"] == {"reference": f"Organization/{org['id']}"}
    assert org["name"] == "SPRINGFIELD CLINIC" and org["identifier"][0]["value"] == "1851234567"


def _cold(text: str) -> bytes:
    clear_cache()
    return orjson.dumps(to_bundle(parse_message(text)))


def test_remembered_templates_give_the_same_bytes_as_a_cold_start() -> None:
    from datetime import date

    from interop.ingest.synth import load_drugs, patient_feed

    drugs = load_drugs()
    messages = [text for i in (1, 2, 3) for _, _, text in patient_feed(i, 11, date(2025, 1, 1), drugs)]
    messages += [rds(fill=str(n), rxd8=str(5 - n), remaining=str(5 - n), handed=f"2025010{n}") for n in (1, 2, 3)]
    messages += [rds(fill="", handed="20250107"), rds(rxd33="Q", fill="2"), rde(remaining=""), rde(remaining="2")]
    cold = [_cold(text) for text in messages]
    clear_cache()
    warm = [orjson.dumps(to_bundle(parse_message(text))) for text in messages]
    assert warm == cold
    assert len(set(warm)) == len(warm)


def test_per_fill_field_cannot_be_the_days_supply_field(mappings_dir: Path) -> None:
    (mappings_dir / "hl7v2" / "senders" / "RX01.json").write_text(json.dumps({"days_supply_field": "RXD-8"}))
    with pytest.raises(TableError, match="per-fill"):
        to_bundle(parse_message(rds()))


def test_huge_number_is_a_data_type_error_not_a_serialization_crash() -> None:
    text = rds().replace("|1||TAB|TAB^tablet|", "|1E100||TAB|TAB^tablet|")
    with pytest.raises(MappingError) as caught:
        to_bundle(parse_message(text))
    assert (caught.value.segment, caught.value.field, caught.value.code) == ("RXE", 3, "102")


def test_prescriber_id_is_the_same_from_every_feed() -> None:
    """A prescriber keyed by NPI gets one id whether HL7 v2, SCRIPT or D.0 names them (system URI + NPI)."""
    bundle = convert(rde())
    practitioner = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Practitioner")
    assert practitioner["id"] == business_id("Practitioner", CodeSystem.NPI.value, "1234567893")


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"fill": "²"}, None),  # RXD-1 not an ASCII number: no fill number, as for any other non-number
        ({"handed": "2025010²"}, "RXD-3"),
        ({"handed": "20250105120000+0²00"}, "RXD-3"),
        ({"handed": "20250105120000.²"}, "RXD-3"),
    ],
)
def test_digits_outside_ascii_are_a_mapping_error_not_a_crash(kw: dict[str, str], error: str | None) -> None:
    """``str.isdigit`` accepts superscripts and other digits that ``int`` refuses: numeric fields are ASCII."""
    text = rds(**kw)
    if error is None:
        dispense = only(convert(text), "MedicationDispense")
        assert "²" not in json.dumps(dispense)
        return
    with pytest.raises(MappingError, match=error):
        to_bundle(parse_message(text))


def test_ack_of_a_message_whose_version_has_a_superscript_digit() -> None:
    from adapters.hl7v2.ack import build_ack

    ack = build_ack(parse_message(rds().replace("|2.5.1", "|2.⁵")), None)
    assert ack.startswith("MSH|") and "MSA|AA|" in ack
