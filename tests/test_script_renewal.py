"""Outbound RxRenewalRequest: built from FHIR, read back through our own hardened reader to the same facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters.script import build_renewal_request, read_message, renewal_message_id, to_fhir
from adapters.script.elements import read_drug, read_party
from adapters.script.errors import InvalidValueError, MissingElementError
from adapters.script.reader import NAMESPACE
from adapters.script.tree import node_at
from tests import script_messages as sm
from tests.fhirschema import assert_valid

Resource = dict[str, Any]
SENT = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


def _by_type(*bundles: Resource) -> dict[str, list[Resource]]:
    """Resources by type, the first of each id kept (a NewRx's Medication carries more codes than a fill's)."""
    found: dict[str, list[Resource]] = {}
    seen: set[str] = set()
    for bundle in bundles:
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if resource["id"] not in seen:
                seen.add(resource["id"])
                found.setdefault(resource["resourceType"], []).append(resource)
    return found


@pytest.fixture
def stored() -> dict[str, list[Resource]]:
    """What the store would hold after a NewRx and its refill: the inputs of a renewal."""
    return _by_type(to_fhir(sm.new_rx()), to_fhir(sm.rx_fill("Dispensed", fill=3)))


def _build(stored: dict[str, list[Resource]], **options: Any) -> bytes:
    return build_renewal_request(
        stored["MedicationRequest"][0],
        stored["MedicationDispense"][0],
        patient=stored["Patient"][0],
        prescriber=stored["Practitioner"][0],
        pharmacy=stored["Organization"][0],
        medications=stored["Medication"],
        sent_time=options.pop("sent_time", SENT),
        **options,
    )


@pytest.mark.parametrize("version", ["2017071", "2023011"])
def test_renewal_round_trips_the_key_facts(stored: dict[str, list[Resource]], version: str) -> None:
    document = _build(stored, version=version)
    message = read_message(document)
    assert (message.version, message.transaction) == (version, "RxRenewalRequest")
    request = stored["MedicationRequest"][0]
    assert message.message_id == renewal_message_id(request["id"], SENT)
    assert message.sent_time == "2026-11-26T09:30:00Z"
    assert message.header_text("PrescriberOrderNumber") == "ORD-1001"
    assert message.header_text("RxReferenceNumber") == "RX-778812"
    assert message.header_text("To") == "1122334455"
    assert message.header_text("From") == "1439900"

    prescribed = read_drug(node_at(message.body, "MedicationPrescribed") or {}, "MedicationPrescribed")
    assert prescribed.description == "Lisinopril 10 MG Oral Tablet"
    assert prescribed.product_code is not None and prescribed.product_code.code == "68180051301"
    assert prescribed.db_code is not None and prescribed.db_code.code == "314076"
    assert prescribed.quantity == Decimal(90)
    assert prescribed.quantity_unit is not None and prescribed.quantity_unit.code == "C48542"
    assert (prescribed.days_supply, prescribed.refills) == (90, 3)
    assert prescribed.written_date == "2026-10-01"
    assert prescribed.substitutions == "0"
    assert prescribed.sig_text == "Take 1 tablet by mouth once daily."
    assert prescribed.note == "Check potassium in 3 months."

    dispensed = read_drug(node_at(message.body, "MedicationDispensed") or {}, "MedicationDispensed")
    assert (dispensed.quantity, dispensed.days_supply) == (Decimal(30), 30)
    assert dispensed.last_fill_date == "2026-10-03"
    assert dispensed.product_code is not None and dispensed.product_code.code == "68180051301"

    patient = read_party(node_at(message.body, "Patient/HumanPatient") or {}, "Patient")
    assert (patient.family, patient.given, patient.gender, patient.birth_date) == (
        "Quill", ("Harper", "J"), "F", "1951-06-30")
    assert patient.identifier("MedicalRecordIdentificationNumberEHR") == "MRN-4471"
    assert patient.address is not None and patient.address.city == "Springfield"
    pharmacy = read_party(node_at(message.body, "Pharmacy") or {}, "Pharmacy")
    assert (pharmacy.identifier("NCPDPID"), pharmacy.identifier("NPI")) == ("1439900", "1234567893")
    assert pharmacy.business_name == "Main Street Pharmacy"
    prescriber = read_party(node_at(message.body, "Prescriber/NonVeterinarian") or {}, "Prescriber")
    assert (prescriber.identifier("NPI"), prescriber.identifier("DEANumber")) == ("1122334455", "AQ1234563")
    assert (prescriber.family, prescriber.suffix) == ("Okafor", "MD")


def test_renewal_maps_back_to_a_requested_task_on_the_same_prescription(stored: dict[str, list[Resource]]) -> None:
    bundle = to_fhir(_build(stored))
    assert_valid(bundle)
    resources = _by_type(bundle)
    for items in resources.values():
        for resource in items:
            assert_valid(resource)
    task = resources["Task"][0]
    request = stored["MedicationRequest"][0]
    assert task["status"] == "requested"
    assert task["code"]["coding"][0]["code"] == "approve"
    assert task["focus"] == {"reference": f"MedicationRequest/{request['id']}"}
    assert task["for"] == request["subject"]
    assert task["owner"] == request["requester"]
    assert task["requester"] == request["dispenseRequest"]["performer"]
    inputs = {item["type"]["text"]: item for item in task["input"]}
    assert inputs["MedicationDispensed/LastFillDate"]["valueDate"] == "2026-10-03"
    assert inputs["MedicationPrescribed/NumberOfRefills"]["valueUnsignedInt"] == 3
    assert inputs["MedicationPrescribed"]["valueReference"] == request["medicationReference"]


def test_renewal_document_is_namespaced_with_version_attributes(stored: dict[str, list[Resource]]) -> None:
    root = etree.fromstring(_build(stored, version="2023011"))
    assert root.tag == f"{{{NAMESPACE}}}Message"
    assert root.get("TransactionVersion") == "20230115"
    assert etree.fromstring(_build(stored)).get("TransactionVersion") == "20170715"


def test_message_id_is_stable_and_overridable(stored: dict[str, list[Resource]]) -> None:
    assert _build(stored) == _build(stored)
    assert read_message(_build(stored, message_id="REN-42")).message_id == "REN-42"
    later = read_message(_build(stored, sent_time=SENT + timedelta(days=1)))
    assert later.message_id != read_message(_build(stored)).message_id
    eastern = read_message(_build(stored, sent_time=SENT.astimezone(timezone(timedelta(hours=-5)))))
    assert eastern.sent_time == "2026-11-26T09:30:00Z"


def test_ucum_quantity_is_written_as_its_nci_code(stored: dict[str, list[Resource]]) -> None:
    liquid = _by_type(to_fhir(sm.new_rx(medication=sm.LIQUID)))
    document = build_renewal_request(
        liquid["MedicationRequest"][0], stored["MedicationDispense"][0], patient=stored["Patient"][0],
        prescriber=stored["Practitioner"][0], pharmacy=stored["Organization"][0],
        medications=[*liquid["Medication"], *stored["Medication"]], sent_time=SENT)
    drug = read_drug(node_at(read_message(document).body, "MedicationPrescribed") or {}, "MedicationPrescribed")
    assert drug.quantity == Decimal("150.5")
    assert drug.quantity_unit is not None and drug.quantity_unit.code == "C28254"
    assert drug.substitutions == "1"
    assert drug.written_date == "2026-10-02"


def test_bad_inputs_name_the_fhir_element(stored: dict[str, list[Resource]]) -> None:
    with pytest.raises(InvalidValueError, match="sent_time must be timezone-aware"):
        _build(stored, sent_time=datetime(2026, 11, 26, 9, 30))
    with pytest.raises(InvalidValueError, match=r"cannot write SCRIPT version '10\.6'"):
        _build(stored, version="10.6")
    anonymous = {**stored, "Organization": [{"resourceType": "Organization", "id": "x", "name": "No ids"}]}
    with pytest.raises(MissingElementError, match=r"Organization.identifier: pharmacy has no NCPDPID or NPI"):
        _build(anonymous)
    no_medication = {**stored, "Medication": []}
    with pytest.raises(MissingElementError, match=r"MedicationDispense.medicationReference: Medication/"):
        _build(no_medication)
    weeks = dict(stored["MedicationRequest"][0])
    weeks["dispenseRequest"] = {**weeks["dispenseRequest"],
                                "expectedSupplyDuration": {"value": 2, "unit": "wk",
                                                           "system": "http://unitsofmeasure.org", "code": "wk"}}
    with pytest.raises(InvalidValueError, match="expectedSupplyDuration: days supply in 'wk'"):
        _build({**stored, "MedicationRequest": [weeks]})


_XML_TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0xD7FF, blacklist_categories=("Cs",)),
                    min_size=1, max_size=60).filter(lambda s: bool(s.strip()))


@settings(max_examples=60, deadline=None)
@given(
    quantity=st.decimals(min_value=Decimal("0.001"), max_value=Decimal("99999"), places=3),
    days=st.integers(min_value=1, max_value=365),
    refills=st.integers(min_value=0, max_value=11),
    allowed=st.booleans(),
    ndc=st.from_regex(r"\A[0-9]{11}\Z"),
    sig=_XML_TEXT,
    description=_XML_TEXT,
    version=st.sampled_from(["2017071", "2023011"]),
)
def test_any_prescription_round_trips(quantity: Decimal, days: int, refills: int, allowed: bool, ndc: str,
                                      sig: str, description: str, version: str) -> None:
    stored = _by_type(to_fhir(sm.new_rx()), to_fhir(sm.rx_fill("Dispensed")))
    medication = {"resourceType": "Medication", "id": "m1",
                  "code": {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": ndc}], "text": description}}
    request = {
        **stored["MedicationRequest"][0],
        "medicationReference": {"reference": "Medication/m1"},
        "dosageInstruction": [{"text": sig}],
        "dispenseRequest": {"quantity": {"value": float(quantity), "unit": "mL", "system": "http://unitsofmeasure.org",
                                         "code": "mL"},
                            "expectedSupplyDuration": {"value": days, "unit": "days",
                                                       "system": "http://unitsofmeasure.org", "code": "d"},
                            "numberOfRepeatsAllowed": refills},
        "substitution": {"allowedBoolean": allowed},
    }
    document = build_renewal_request(request, stored["MedicationDispense"][0], patient=stored["Patient"][0],
                                     prescriber=stored["Practitioner"][0], pharmacy=stored["Organization"][0],
                                     medications=[medication, *stored["Medication"]], sent_time=SENT,
                                     version=version)
    message = read_message(document)
    assert message.version == version
    drug = read_drug(node_at(message.body, "MedicationPrescribed") or {}, "MedicationPrescribed")
    assert drug.quantity == Decimal(str(float(quantity)))
    assert drug.quantity_unit is not None and drug.quantity_unit.code == "C28254"
    assert (drug.days_supply, drug.refills, drug.substitutions) == (days, refills, "0" if allowed else "1")
    assert drug.product_code is not None and drug.product_code.code == ndc
    assert (drug.sig_text, drug.description) == (sig.strip(), description.strip())


def test_prescription_with_an_inline_drug_and_no_order_number(stored: dict[str, list[Resource]]) -> None:
    request = {key: value for key, value in stored["MedicationRequest"][0].items()
               if key not in ("identifier", "medicationReference")}
    request["medicationCodeableConcept"] = {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "617314",
                    "display": "atorvastatin 10 MG Oral Tablet"}]}
    document = build_renewal_request(request, stored["MedicationDispense"][0], patient=stored["Patient"][0],
                                     prescriber=stored["Practitioner"][0], pharmacy=stored["Organization"][0],
                                     medications=stored["Medication"], sent_time=SENT)
    message = read_message(document)
    assert message.header_text("PrescriberOrderNumber") == ""
    drug = read_drug(node_at(message.body, "MedicationPrescribed") or {}, "MedicationPrescribed")
    assert drug.description == "atorvastatin 10 MG Oral Tablet"
    assert drug.product_code is None
    assert drug.db_code is not None and (drug.db_code.code, drug.db_code.qualifier) == ("617314", "SCD")
    task = next(e["resource"] for e in to_fhir(document)["entry"] if e["resource"]["resourceType"] == "Task")
    assert "focus" not in task
