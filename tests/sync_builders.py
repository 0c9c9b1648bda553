"""FHIR R4 inputs for the sync planner tests: MedicationRequest, MedicationDispense and Coverage as dicts."""

from __future__ import annotations

from datetime import date
from typing import Any

from interop.fhir.systems import CodeSystem, extension_url

PATIENT = "Patient/pat-1"


def request(
    rid: str,
    name: str,
    *,
    quantity: float = 30,
    days: int = 30,
    refills: int = 5,
    unit: str = "TAB",
    prn: bool = False,
    course: str | None = None,
    status: str = "active",
    requester: bool = True,
    rxnorm: str | None = None,
    validity_end: date | None = None,
    dosage: dict[str, Any] | None = None,
    patient: str = PATIENT,
) -> dict[str, Any]:
    """An active outpatient MedicationRequest with a dispenseRequest (quantity, supply, repeats)."""
    med: dict[str, Any] = {"text": name}
    if rxnorm:
        med["coding"] = [{"system": CodeSystem.RXNORM.value, "code": rxnorm, "display": name}]
    dose: dict[str, Any] = dict(dosage or {"text": "as directed"})
    if prn:
        dose["asNeededBoolean"] = True
    res: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": med,
        "subject": {"reference": patient},
        "authoredOn": "2026-01-05",
        "dosageInstruction": [dose],
        "dispenseRequest": {
            "numberOfRepeatsAllowed": refills,
            "quantity": {"value": quantity, "unit": unit},
            "expectedSupplyDuration": {"value": days, "unit": "days", "system": CodeSystem.UCUM.value, "code": "d"},
        },
    }
    if validity_end is not None:
        res["dispenseRequest"]["validityPeriod"] = {"start": "2026-01-05", "end": validity_end.isoformat()}
    if requester:
        res["requester"] = {"reference": "Practitioner/prescriber-1"}
    if course:
        res["courseOfTherapyType"] = {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy",
                        "code": course}]
        }
    return res


def dispense(
    did: str,
    rid: str,
    when: date,
    *,
    quantity: float = 30,
    days: int = 30,
    unit: str = "TAB",
    scc: str | None = None,
    patient: str = PATIENT,
) -> dict[str, Any]:
    """A completed MedicationDispense of ``rid`` handed over on ``when``."""
    res: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "id": did,
        "status": "completed",
        "medicationCodeableConcept": {"text": rid},
        "subject": {"reference": patient},
        "authorizingPrescription": [{"reference": f"MedicationRequest/{rid}"}],
        "quantity": {"value": quantity, "unit": unit},
        "daysSupply": {"value": days, "unit": "days", "system": CodeSystem.UCUM.value, "code": "d"},
        "whenHandedOver": when.isoformat(),
    }
    if scc:
        res["extension"] = [{"url": extension_url("submission-clarification-code"),
                             "valueCoding": {"code": scc}}]
    return res


def coverage(payer: str | None = None, copay: float | None = None, patient: str = PATIENT) -> dict[str, Any]:
    """A pharmacy Coverage; ``payer`` is the RxBIN class value the payer rules are keyed by."""
    res: dict[str, Any] = {
        "resourceType": "Coverage",
        "id": "cov-1",
        "status": "active",
        "beneficiary": {"reference": patient},
        "payor": [{"display": "Synthetic plan"}],
    }
    if payer:
        res["class"] = [{
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class", "code": "rxbin"}]},
            "value": payer,
        }]
    if copay is not None:
        res["costToBeneficiary"] = [{
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-copay-type",
                                 "code": "copay"}]},
            "valueMoney": {"value": copay, "currency": "USD"},
        }]
    return res


def worked_example() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """medsync.md §2.2: lisinopril Jun 1, atorvastatin Jun 10, metformin Jun 20 (2/day), all 30 days."""
    requests = [
        request("lisinopril", "lisinopril 10 mg tablet", rxnorm="314076"),
        request("atorvastatin", "atorvastatin 20 mg tablet", rxnorm="617310"),
        request("metformin", "metformin 500 mg tablet", quantity=60, rxnorm="861007"),
    ]
    dispenses = [
        dispense("d-lis", "lisinopril", date(2026, 6, 1)),
        dispense("d-ator", "atorvastatin", date(2026, 6, 10)),
        dispense("d-met", "metformin", date(2026, 6, 20), quantity=60),
    ]
    return requests, dispenses
