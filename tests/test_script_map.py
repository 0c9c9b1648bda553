"""SCRIPT → FHIR mapping, field by field, on hand-written 2017071 and 2023011 messages (tests/script_messages.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.script import convert, to_fhir
from adapters.script.errors import AmbiguousMessageError, InvalidValueError, MissingElementError, ScriptError
from adapters.script.inbound import FILL_NUMBER_URL, NCPDP_PROVIDER_ID, ORDER_NUMBER_SYSTEM
from interop.fhir.ids import business_id
from interop.fhir.systems import extension_url
from tests import script_messages as sm
from tests.fhirschema import assert_valid

Resource = dict[str, Any]


def _resources(bundle: Resource) -> dict[str, list[Resource]]:
    by_type: dict[str, list[Resource]] = {}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert entry["request"] == {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
        assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
        by_type.setdefault(resource["resourceType"], []).append(resource)
    return by_type


def _one(bundle: Resource, resource_type: str) -> Resource:
    found = _resources(bundle)[resource_type]
    assert len(found) == 1
    return found[0]


def _all_valid(bundle: Resource) -> None:
    assert_valid(bundle)
    for entry in bundle["entry"]:
        assert_valid(entry["resource"])


def _ref(resource: Resource) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


@pytest.mark.parametrize("version", ["2017071", "2023011"])
def test_new_rx_maps_every_field(version: str) -> None:
    conversion = convert(sm.new_rx(version=version))
    bundle = conversion.bundle
    assert (conversion.version, conversion.transaction, conversion.warnings) == (version, "NewRx", ())
    _all_valid(bundle)
    assert bundle["type"] == "transaction"
    assert bundle["identifier"]["value"] == "MSG-NEWRX-1"
    request = _one(bundle, "MedicationRequest")
    patient = _one(bundle, "Patient")
    practitioner = _one(bundle, "Practitioner")
    pharmacy = _one(bundle, "Organization")
    medication = _one(bundle, "Medication")

    assert request["id"] == business_id("MedicationRequest", "order", "ORD-1001")
    assert (request["status"], request["intent"]) == ("active", "order")
    assert request["identifier"][0]["system"] == ORDER_NUMBER_SYSTEM
    assert request["identifier"][0]["value"] == "ORD-1001"
    assert request["identifier"][0]["type"]["coding"][0]["code"] == "PLAC"
    assert request["subject"] == {"reference": _ref(patient)}
    assert request["requester"] == {"reference": _ref(practitioner)}
    assert request["medicationReference"] == {"reference": _ref(medication)}
    assert request["authoredOn"] == "2026-10-01"
    assert request["note"] == [{"text": "Check potassium in 3 months."}]
    assert request["reasonCode"] == [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10",
                                                  "display": "Essential hypertension"}],
                                      "text": "Essential hypertension"}]
    dispense = request["dispenseRequest"]
    assert dispense["quantity"] == {"value": 90, "unit": "Tablet", "system": "http://ncimeta.nci.nih.gov",
                                    "code": "C48542"}
    assert dispense["numberOfRepeatsAllowed"] == 3
    assert dispense["expectedSupplyDuration"] == {"value": 90, "unit": "days",
                                                  "system": "http://unitsofmeasure.org", "code": "d"}
    assert dispense["validityPeriod"] == {"start": "2026-10-01"}
    assert dispense["performer"] == {"reference": _ref(pharmacy)}
    assert request["substitution"] == {"allowedBoolean": True}
    dosage = request["dosageInstruction"]
    assert len(dosage) == 1
    assert dosage[0]["text"] == "Take 1 tablet by mouth once daily."
    assert dosage[0]["sequence"] == 1
    assert dosage[0]["timing"] == {"code": {"text": "once daily"}}
    assert dosage[0]["route"]["coding"] == [{"system": "http://snomed.info/sct", "code": "26643006",
                                             "display": "by mouth"}]
    assert dosage[0]["method"]["coding"][0]["code"] == "419652001"
    assert dosage[0]["doseAndRate"] == [{"doseQuantity": {"value": 1, "unit": "Tablet",
                                                          "system": "http://ncimeta.nci.nih.gov", "code": "C48542"}}]

    assert medication["code"]["coding"] == [
        {"system": "http://hl7.org/fhir/sid/ndc", "code": "68180051301"},
        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "314076"},
    ]
    assert medication["code"]["text"] == "Lisinopril 10 MG Oral Tablet"
    assert medication["id"] == business_id("Medication", "http://hl7.org/fhir/sid/ndc", "68180051301")

    assert patient["name"] == [{"family": "Quill", "given": ["Harper", "J"]}]
    assert (patient["gender"], patient["birthDate"]) == ("female", "1951-06-30")
    assert patient["identifier"][0]["value"] == "MRN-4471"
    assert patient["identifier"][0]["type"]["coding"][0]["code"] == "MR"
    assert patient["id"] == business_id("Patient", patient["identifier"][0]["system"], "MRN-4471")
    assert patient["address"] == [{"line": ["12 Elm St"], "city": "Springfield", "state": "IL",
                                   "postalCode": "62701", "country": "US"}]
    assert patient["telecom"] == [{"system": "phone", "value": "2175550100"}]

    assert practitioner["identifier"][0] == {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1122334455"}
    assert practitioner["identifier"][1]["value"] == "AQ1234563"
    assert practitioner["id"] == business_id("Practitioner", "http://hl7.org/fhir/sid/us-npi", "1122334455")
    assert practitioner["name"] == [{"family": "Okafor", "given": ["Ada"], "suffix": ["MD"]}]

    assert pharmacy["identifier"] == [{"system": NCPDP_PROVIDER_ID, "value": "1439900"},
                                      {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}]
    assert pharmacy["id"] == business_id("Organization", NCPDP_PROVIDER_ID, "1439900")
    assert pharmacy["name"] == "Main Street Pharmacy"


def test_namespace_does_not_change_the_result() -> None:
    assert to_fhir(sm.new_rx(namespace=True)) == to_fhir(sm.new_rx(namespace=False))


def test_versions_map_to_the_same_resources() -> None:
    assert to_fhir(sm.new_rx(version="2017071"))["entry"] == to_fhir(sm.new_rx(version="2023011"))["entry"]


def test_liquid_quantity_gets_ucum_ml_and_substitution_not_allowed() -> None:
    bundle = to_fhir(sm.new_rx(medication=sm.LIQUID))
    _all_valid(bundle)
    request = _one(bundle, "MedicationRequest")
    assert request["dispenseRequest"]["quantity"] == {"value": 150.5, "unit": "mL",
                                                      "system": "http://unitsofmeasure.org", "code": "mL"}
    assert request["dispenseRequest"]["numberOfRepeatsAllowed"] == 0
    assert request["substitution"] == {"allowedBoolean": False}
    assert request["authoredOn"] == "2026-10-02T09:15:00Z"
    assert request["dosageInstruction"] == [{"text": "Take 7.5 mL by mouth twice daily."}]


def test_ids_come_from_business_keys_not_display_text() -> None:
    first = to_fhir(sm.new_rx())
    assert first == to_fhir(sm.new_rx())
    renamed = sm.new_rx().replace(b"Lisinopril 10 MG Oral Tablet", b"LISINOPRIL 10MG TAB (renamed)")
    second = to_fhir(renamed)
    assert [e["resource"]["id"] for e in first["entry"]] == [e["resource"]["id"] for e in second["entry"]]
    other_order = to_fhir(sm.new_rx(order="ORD-9999"))
    assert _one(other_order, "MedicationRequest")["id"] != _one(first, "MedicationRequest")["id"]


def test_new_rx_without_order_number_is_keyed_by_its_message_id() -> None:
    bundle = to_fhir(sm.new_rx(order=""))
    request = _one(bundle, "MedicationRequest")
    assert request["id"] == business_id("MedicationRequest", "message", "MSG-NEWRX-1")
    assert "identifier" not in request


def test_substitutions_outside_0_1_is_an_error_naming_the_element() -> None:
    with pytest.raises(InvalidValueError, match=r"NewRx/MedicationPrescribed/Substitutions: '7' is not 0 or 1"):
        to_fhir(sm.new_rx(substitutions="7"))


def test_bad_date_and_bad_ndc_name_their_element() -> None:
    bad_date = sm.new_rx().replace(b"<WrittenDate><Date>2026-10-01", b"<WrittenDate><Date>10/01/2026")
    with pytest.raises(InvalidValueError, match="MedicationPrescribed/WrittenDate: '10/01/2026'"):
        to_fhir(bad_date)
    bad_ndc = sm.new_rx().replace(b"68180-0513-01", b"6818005130")
    with pytest.raises(InvalidValueError, match="DrugCoded/ProductCode: '6818005130' is not an NDC"):
        to_fhir(bad_ndc)
    arabic_digits = sm.new_rx().replace(b"68180-0513-01", "٦٨١٨٠٠٥١٣٠١".encode())
    with pytest.raises(InvalidValueError, match="is not an NDC"):
        to_fhir(arabic_digits)
    bad_quantity = sm.new_rx().replace(b"<Value>90</Value>", b"<Value>ninety</Value>")
    with pytest.raises(InvalidValueError, match="Quantity/Value: 'ninety' is not a decimal"):
        to_fhir(bad_quantity)


def test_new_rx_needs_a_medication() -> None:
    document = sm.wrap("NewRx", sm.PATIENT, sm.header("M-1"))
    with pytest.raises(MissingElementError, match="NewRx/MedicationPrescribed: missing"):
        to_fhir(document)


# RxFill ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "fill", "fhir_status", "fill_type"),
    [
        ("Dispensed", 2, "completed", None),
        ("PartiallyDispensed", 0, "completed", "FFP"),
        ("PartiallyDispensed", 3, "completed", "RFP"),
        ("NotDispensed", 1, "declined", None),
        ("Transferred", 1, "stopped", None),
    ],
)
def test_rx_fill_statuses(status: str, fill: int, fhir_status: str, fill_type: str | None) -> None:
    bundle = to_fhir(sm.rx_fill(status, fill=fill))
    _all_valid(bundle)
    dispense = _one(bundle, "MedicationDispense")
    new_rx_request = _one(to_fhir(sm.new_rx()), "MedicationRequest")
    assert dispense["status"] == fhir_status
    assert dispense["authorizingPrescription"] == [{"reference": _ref(new_rx_request)}]
    assert dispense["extension"] == [{"url": extension_url("fill-number"), "valueUnsignedInt": fill}]
    assert extension_url("fill-number") == FILL_NUMBER_URL
    if fill_type is None:
        assert "type" not in dispense
    else:
        assert dispense["type"]["coding"][0]["code"] == fill_type
        assert dispense["type"]["coding"][0]["system"] == "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    pharmacy = _one(bundle, "Organization")
    assert dispense["performer"] == [{"actor": {"reference": _ref(pharmacy)}}]
    assert dispense["identifier"][0]["value"] == "RX-778812"
    assert dispense["id"] == business_id("MedicationDispense", "1439900", "RX-778812", "fill", str(fill))
    assert dispense["quantity"] == {"value": 30, "unit": "Tablet", "system": "http://ncimeta.nci.nih.gov",
                                    "code": "C48542"}
    assert dispense["daysSupply"] == {"value": 30, "unit": "days", "system": "http://unitsofmeasure.org",
                                      "code": "d"}
    assert dispense["subject"] == {"reference": _ref(_one(bundle, "Patient"))}
    assert dispense["substitution"] == {"wasSubstituted": False}
    if status in ("Dispensed", "PartiallyDispensed"):
        assert dispense["whenHandedOver"] == "2026-10-03"
    else:
        assert "whenHandedOver" not in dispense
    if status == "NotDispensed":
        assert dispense["statusReasonCodeableConcept"] == {"text": "AA Patient declined."}
    if status == "Transferred":
        assert dispense["note"][0]["text"].startswith("Transferred to another pharmacy")
        assert dispense["note"][1] == {"text": "Moved to store 22."}


def test_rx_fill_short_sync_fill_is_complete_with_short_days_and_substitution_detected() -> None:
    bundle = to_fhir(sm.rx_fill("Dispensed", quantity="13", days=13, ndc="00093505601"))
    dispense = _one(bundle, "MedicationDispense")
    assert dispense["status"] == "completed" and "type" not in dispense
    assert dispense["daysSupply"]["value"] == 13
    assert dispense["quantity"]["value"] == 13
    assert dispense["substitution"] == {"wasSubstituted": True}
    medication = next(r for r in _resources(bundle)["Medication"] if r["id"] in dispense["medicationReference"]["reference"])
    assert medication["code"]["coding"][0]["code"] == "00093505601"


def test_rx_fill_without_fill_status_is_a_documented_error() -> None:
    document = sm.rx_fill("Dispensed").replace(b"<FillStatus><Dispensed><Note>Picked up by patient.</Note>"
                                               b"</Dispensed></FillStatus>", b"")
    with pytest.raises(MissingElementError, match="RxFill/FillStatus"):
        to_fhir(document)


def test_rx_fill_with_two_statuses_is_ambiguous() -> None:
    document = sm.rx_fill("Dispensed").replace(b"</Dispensed>", b"</Dispensed><NotDispensed/>")
    with pytest.raises(AmbiguousMessageError, match="FillStatus holds 2 choices"):
        to_fhir(document)


# CancelRx and responses ------------------------------------------------------------------------------------


def test_cancel_rx_cancels_the_same_medication_request() -> None:
    bundle = to_fhir(sm.cancel_rx())
    _all_valid(bundle)
    request = _one(bundle, "MedicationRequest")
    assert request["id"] == _one(to_fhir(sm.new_rx()), "MedicationRequest")["id"]
    assert request["status"] == "cancelled"
    assert "CancelRx" in request["statusReason"]["text"]
    task = _one(bundle, "Task")
    assert task["status"] == "requested"
    assert task["code"]["coding"][0] == {"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "abort"}
    assert task["focus"] == {"reference": _ref(request)}
    assert task["id"] == business_id("Task", task["identifier"][0]["system"], "MSG-CANCEL-1")


def test_cancel_rx_response_updates_the_cancel_task() -> None:
    cancel_task = _one(to_fhir(sm.cancel_rx()), "Task")
    denied = sm.response("CancelRxResponse", "Denied", with_drug=False).replace(b"MSG-REQ-1", b"MSG-CANCEL-1")
    task = _one(to_fhir(denied), "Task")
    assert task["id"] == cancel_task["id"]
    assert task["status"] == "rejected"
    assert task["businessStatus"] == {"text": "Denied"}
    assert task["statusReason"] == {"text": "AT Patient not seen in a year."}
    linked = sm.response("CancelRxResponse", "Approved", with_drug=False, order="ORD-1001")
    approved = _one(to_fhir(linked.replace(b"MSG-REQ-1", b"MSG-CANCEL-1")), "Task")
    assert (approved["id"], approved["status"]) == (cancel_task["id"], "completed")
    assert approved["focus"] == cancel_task["focus"]


@pytest.mark.parametrize("outcome", ["Approved", "ApprovedWithChanges", "Replace"])
@pytest.mark.parametrize("nested", [False, True])
def test_renewal_approvals_make_a_new_medication_request(outcome: str, nested: bool) -> None:
    bundle = to_fhir(sm.response("RxRenewalResponse", outcome, nested=nested))
    _all_valid(bundle)
    task = _one(bundle, "Task")
    request = _one(bundle, "MedicationRequest")
    assert task["id"] == business_id("Task", task["identifier"][0]["system"], "MSG-REQ-1")
    assert task["status"] == "completed"
    assert task["businessStatus"] == {"text": outcome}
    assert task["code"]["coding"][0]["code"] == "approve"
    assert task["output"] == [{"type": {"text": f"{outcome} prescription"},
                               "valueReference": {"reference": _ref(request)}}]
    assert "focus" not in task
    assert request["id"] == business_id("MedicationRequest", "order", "ORD-2002")
    assert request["status"] == "active"
    assert request["dispenseRequest"]["numberOfRepeatsAllowed"] == 3
    assert task["for"] == request["subject"] == {"reference": _ref(_one(bundle, "Patient"))}
    note = "Dose changed." if nested else "As requested."
    assert task["note"] == [{"text": note}]


def test_renewal_denied_is_a_rejected_task_and_no_prescription() -> None:
    bundle = to_fhir(sm.response("RxRenewalResponse", "Denied", with_drug=False))
    _all_valid(bundle)
    assert set(_resources(bundle)) == {"Task"}
    task = _one(bundle, "Task")
    assert (task["status"], task["businessStatus"]["text"]) == ("rejected", "Denied")
    assert task["focus"] == {"reference": f"MedicationRequest/{business_id('MedicationRequest', 'order', 'ORD-2002')}"}
    assert task["statusReason"] == {"text": "AT Patient not seen in a year."}


def test_response_without_outcome_or_with_two_is_refused() -> None:
    none = sm.response("RxRenewalResponse", "Approved").replace(b"<Approved><Note>As requested.</Note></Approved>",
                                                                b"")
    with pytest.raises(MissingElementError, match="Response carries no outcome"):
        to_fhir(none)
    two = sm.response("RxRenewalResponse", "Approved").replace(b"</Approved>", b"</Approved><Denied/>")
    with pytest.raises(AmbiguousMessageError, match=r"2 outcomes \(Approved, Denied\)"):
        to_fhir(two)


def test_change_request_and_validated_response() -> None:
    bundle = to_fhir(sm.change_request())
    _all_valid(bundle)
    task = _one(bundle, "Task")
    assert (task["status"], task["code"]["coding"][0]["code"]) == ("requested", "change")
    assert task["focus"] == {"reference": f"MedicationRequest/{business_id('MedicationRequest', 'order', 'ORD-1001')}"}
    assert task["reasonCode"] == {"text": "G"}
    assert task["requester"] == {"reference": _ref(_one(bundle, "Organization"))}
    assert task["owner"] == {"reference": _ref(_one(bundle, "Practitioner"))}
    inputs = {item["type"]["text"]: item for item in task["input"]}
    assert inputs["MedicationPrescribed/Quantity"]["valueQuantity"]["value"] == 90
    assert inputs["MedicationPrescribed/DaysSupply"]["valueQuantity"]["value"] == 90
    assert inputs["MedicationPrescribed/NumberOfRefills"]["valueUnsignedInt"] == 3

    answered = to_fhir(sm.response("RxChangeResponse", "Validated", with_drug=False))
    _all_valid(answered)
    answer = _one(answered, "Task")
    assert answer["id"] == task["id"]
    assert (answer["status"], answer["businessStatus"]["text"]) == ("completed", "Validated")
    denied = _one(to_fhir(sm.response("RxChangeResponse", "Denied", with_drug=False)), "Task")
    assert denied["status"] == "rejected"


def test_response_needs_relates_to() -> None:
    document = sm.response("RxRenewalResponse", "Denied", with_drug=False).replace(
        b"<RelatesToMessageID>MSG-REQ-1</RelatesToMessageID>", b"")
    with pytest.raises(MissingElementError, match="RelatesToMessageID"):
        to_fhir(document)


def test_missing_patient_keeps_the_prescription_with_a_warning() -> None:
    document = sm.new_rx().replace(sm.PATIENT.encode(), b"")
    conversion = convert(document)
    _all_valid(conversion.bundle)
    request = _one(conversion.bundle, "MedicationRequest")
    assert request["subject"] == {"display": "Patient not identified in the SCRIPT message"}
    assert conversion.warnings == ("Message/Body/NewRx/Patient missing: subject carries a display only",)


def test_front_door_detects_and_converts_script() -> None:
    from interop.ingest.convert import CONVERTERS, ConversionError, detect_format
    from interop.ingest.convert import convert as front_door

    document = sm.new_rx()
    assert detect_format(document) == "script"
    assert "script" in CONVERTERS
    assert front_door(document) == [to_fhir(document)]
    no_patient = document.replace(sm.PATIENT.encode(), b"")
    assert len(front_door(no_patient)) == 1
    with pytest.raises(ConversionError, match="Patient missing"):
        front_door(no_patient, strict=True)
    with pytest.raises(ConversionError, match="not a SCRIPT Message"):
        front_door(b"<Envelope/>", "script")


def test_nci_unit_table() -> None:
    from adapters.script.units import nci_units, quantity, ucum_to_nci

    table = nci_units()
    assert all(code.startswith("C") and code[1:].isdigit() for code in table)
    assert (table["C48542"].display, table["C48542"].ucum) == ("Tablet", "")
    assert table["C28254"].ucum == "mL" and table["C48155"].ucum == "g"
    assert quantity(5, "C28254") == {"value": 5, "unit": "mL", "system": "http://unitsofmeasure.org", "code": "mL"}
    assert quantity(2, "C99999", "widget") == {"value": 2, "unit": "widget", "system": "http://ncimeta.nci.nih.gov",
                                               "code": "C99999"}
    assert quantity(14, "each") == {"value": 14, "unit": "each"}
    assert quantity(1, "") == {"value": 1}
    assert (ucum_to_nci("g"), ucum_to_nci("mL"), ucum_to_nci("furlong")) == ("C48155", "C28254", "")


_SOURCES = [sm.new_rx(), sm.rx_fill("PartiallyDispensed"), sm.cancel_rx(),
            sm.response("RxRenewalResponse", "ApprovedWithChanges", nested=True), sm.change_request()]


def _mangled(data: st.DataObject) -> bytes:
    """A valid message with one stretch of up to 200 bytes cut, doubled or blanked."""
    source = data.draw(st.sampled_from(_SOURCES))
    start = data.draw(st.integers(min_value=0, max_value=len(source)))
    end = data.draw(st.integers(min_value=start, max_value=min(len(source), start + 200)))
    how = data.draw(st.sampled_from(["cut", "double", "blank"]))
    middle = {"cut": b"", "double": source[start:end] * 2, "blank": b" " * (end - start)}[how]
    return source[:start] + middle + source[end:]


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mangled_messages_convert_or_fail_with_a_script_error(data: st.DataObject) -> None:
    """Never a crash: a Bundle or a ScriptError with a message."""
    try:
        bundle = to_fhir(_mangled(data))
    except ScriptError as exc:
        assert str(exc)
        return
    assert all(entry["resource"]["id"] for entry in bundle["entry"])


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_what_converts_from_mangled_messages_is_valid_r4(data: st.DataObject) -> None:
    """Whatever a damaged message still yields passes the official R4 schema (fewer examples: ~30 ms each)."""
    try:
        bundle = to_fhir(_mangled(data))
    except ScriptError:
        return
    _all_valid(bundle)
