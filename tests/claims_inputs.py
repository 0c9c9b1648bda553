"""FHIR input equivalent to the synthetic D.0 corpus (research/ncpdp.md §1.11): the 13-day short fill of Rx
123456 on 2025-03-19 (420-DK 47) and the 30-day anchor fill on 2025-04-01 (420-DK 48), with their prices."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from adapters.telecom.fhir import SCC_SYSTEM, SCC_URL
from interop.claims.building import FILL_NUMBER_URL, ORDER_NUMBER_SYSTEM, ClaimInputs
from interop.claims.pricing import Costs
from interop.fhir.ids import business_id
from interop.fhir.systems import CodeSystem, identifier_system

NPI = "1234567893"
RX_SYSTEM = identifier_system("rx-number", NPI)
DAW = "http://terminology.hl7.org/CodeSystem/NCPDPDispensedAsWrittenOrProductSelectionCode"
CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"

PHARMACY: dict[str, Any] = {"resourceType": "Organization", "id": business_id("Organization", "npi", NPI),
                            "identifier": [{"system": CodeSystem.NPI.value, "value": NPI}], "name": "Synthetic Pharmacy"}
PATIENT: dict[str, Any] = {"resourceType": "Patient", "id": business_id("Patient", "claims-test", "jane"),
                           "name": [{"family": "Synthetic", "given": ["Jane"]}], "gender": "female",
                           "birthDate": "1950-01-01"}
PRESCRIBER: dict[str, Any] = {"resourceType": "Practitioner", "id": business_id("Practitioner", "1245319599"),
                              "identifier": [{"system": CodeSystem.NPI.value, "value": "1245319599"}]}


def coverage(bin_number: str = "999999", pcn: str = "MEDSYNC") -> dict[str, Any]:
    """Jane's Coverage under ``bin_number`` (999999: the corpus's Part D plan)."""
    return {
        "resourceType": "Coverage", "id": business_id("Coverage", bin_number, pcn, "SYNTH0001"), "status": "active",
        "subscriberId": "SYNTH0001", "dependent": "01",
        "relationship": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
                                     "code": "self"}]},
        "beneficiary": {"reference": f"Patient/{PATIENT['id']}"},
        "payor": [{"display": f"BIN {bin_number}"}],
        "class": [{"type": {"coding": [{"system": CLASS, "code": code}]}, "value": value}
                  for code, value in (("rxbin", bin_number), ("rxpcn", pcn), ("rxgroup", "GRP001")) if value],
    }


REQUEST: dict[str, Any] = {
    "resourceType": "MedicationRequest", "id": business_id("MedicationRequest", "rx-number", NPI, "123456"),
    "identifier": [{"system": RX_SYSTEM, "value": "123456"},
                   {"system": ORDER_NUMBER_SYSTEM, "value": "SYNTH-ORDER-1"}],
    "status": "active", "intent": "order",
    "medicationCodeableConcept": {"coding": [{"system": CodeSystem.NDC.value, "code": "00000123401"}]},
    "subject": {"reference": f"Patient/{PATIENT['id']}"}, "authoredOn": "2024-12-01",
    "requester": {"reference": f"Practitioner/{PRESCRIBER['id']}"},
    "dispenseRequest": {"numberOfRepeatsAllowed": 5},
}


def dispense(fill: int, day: str, days: int, quantity: int, scc: str | None,
             handed_over: str | None = None) -> dict[str, Any]:
    """Fill ``fill`` of Rx 123456 prepared on ``day``."""
    extension: list[dict[str, Any]] = [{"url": FILL_NUMBER_URL, "valueUnsignedInt": fill}]
    if scc:
        extension.append({"url": SCC_URL, "valueCoding": {"system": SCC_SYSTEM, "code": scc}})
    resource: dict[str, Any] = {
        "resourceType": "MedicationDispense", "id": business_id("MedicationDispense", NPI, "123456", "fill", fill),
        "extension": extension, "identifier": [{"system": RX_SYSTEM, "value": "123456"}],
        "status": "completed" if handed_over else "in-progress",
        "medicationCodeableConcept": {"coding": [{"system": CodeSystem.NDC.value, "code": "00000123401"}]},
        "subject": {"reference": f"Patient/{PATIENT['id']}"},
        "performer": [{"actor": {"reference": f"Organization/{PHARMACY['id']}"}}],
        "authorizingPrescription": [{"reference": f"MedicationRequest/{REQUEST['id']}"}],
        "quantity": {"value": quantity, "unit": "EA"},
        "daysSupply": {"value": days, "unit": "day", "system": CodeSystem.UCUM.value, "code": "d"},
        "whenPrepared": day,
        "substitution": {"wasSubstituted": False, "type": {"coding": [{"system": DAW, "code": "0"}]}},
    }
    if handed_over:
        resource["whenHandedOver"] = handed_over
    return resource


SHORT_FILL = dispense(2, "2025-03-19", 13, 26, "47")
ANCHOR_FILL = dispense(3, "2025-04-01", 30, 60, "48")
SHORT_COSTS = Costs(Decimal("81.90"), Decimal("2.00"), Decimal("110.00"), copay=Decimal("47.00"))
ANCHOR_COSTS = Costs(Decimal("189.00"), Decimal("2.00"), Decimal("250.00"), copay=Decimal("47.00"))


def inputs(dispense_resource: dict[str, Any], cov: dict[str, Any] | None = None) -> ClaimInputs:
    return ClaimInputs(dispense_resource, REQUEST, PATIENT, cov or coverage(), PHARMACY, PRESCRIBER)
