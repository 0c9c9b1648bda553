"""A small demo pharmacy built in code: what ``interop serve --demo`` loads into an empty store.

One pharmacy, its payer, two prescribers, five patients with their prescriptions (NDC and RxNorm codes,
dispenseRequest), a few months of fills and one Coverage each. Ids come from business keys
(``interop.fhir.ids.business_id``), so loading twice updates instead of duplicating.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from interop.fhir.ids import business_id
from interop.fhir.systems import CodeSystem, identifier_system

Resource = dict[str, Any]

PHARMACY = "Riverside Community Pharmacy"
PHARMACY_NPI = "1588667638"
PAYER = "Northwind Health Plan"

# (npi, family, given)
_PRESCRIBERS = (("1306849450", "Okafor", "Adaeze"), ("1730299841", "Lindqvist", "Erik"))
# (mrn, family, given, gender, birth date, member id)
_PATIENTS = (
    ("RCP-1001", "Alvarez", "Maria", "female", "1948-03-14", "NWH100200301"),
    ("RCP-1002", "Chen", "Wei", "male", "1956-11-02", "NWH100200302"),
    ("RCP-1003", "Johnson", "Dorothy", "female", "1939-07-23", "NWH100200303"),
    ("RCP-1004", "Nakamura", "Kenji", "male", "1961-01-30", "NWH100200304"),
    ("RCP-1005", "Osei", "Grace", "female", "1952-09-08", "NWH100200305"),
)
# (ndc11, rxnorm, display, tablets per day, days supply)
_DRUGS = (
    ("00093505801", "617310", "atorvastatin 20 MG Oral Tablet", 1, 30),
    ("00378018101", "861007", "metformin hydrochloride 500 MG Oral Tablet", 2, 30),
    ("68180051301", "314076", "lisinopril 10 MG Oral Tablet", 1, 30),
    ("69097012702", "197361", "amlodipine 5 MG Oral Tablet", 1, 30),
)
# patient index → drug indexes
_REGIMENS = ((0, 1, 2), (0, 3), (1, 2, 3), (2,), (0, 1))
_FILLS = 4


def _ref(rtype: str, id: str, display: str | None = None) -> Resource:
    ref: Resource = {"reference": f"{rtype}/{id}"}
    if display:
        ref["display"] = display
    return ref


def _org(name: str, kind: str, npi: str | None) -> Resource:
    org: Resource = {
        "resourceType": "Organization",
        "id": business_id("Organization", name),
        "active": True,
        "type": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": kind}]}
        ],
        "name": name,
    }
    if npi:
        org["identifier"] = [{"system": CodeSystem.NPI.value, "value": npi}]
    return org


def _practitioner(npi: str, family: str, given: str) -> Resource:
    return {
        "resourceType": "Practitioner",
        "id": business_id("Practitioner", npi),
        "identifier": [{"system": CodeSystem.NPI.value, "value": npi}],
        "active": True,
        "name": [{"family": family, "given": [given], "prefix": ["Dr."]}],
    }


def _patient(mrn: str, family: str, given: str, gender: str, birth: str) -> Resource:
    return {
        "resourceType": "Patient",
        "id": business_id("Patient", PHARMACY, mrn),
        "identifier": [
            {
                "type": {"coding": [{"system": CodeSystem.V2_0203.value, "code": "MR"}]},
                "system": identifier_system("mrn", PHARMACY),
                "value": mrn,
            }
        ],
        "active": True,
        "name": [{"use": "official", "family": family, "given": [given]}],
        "telecom": [{"system": "phone", "value": f"555-01{mrn[-2:]}", "use": "mobile"}],
        "gender": gender,
        "birthDate": birth,
    }


def _medication(ndc: str, rxnorm: str, display: str) -> Resource:
    return {
        "coding": [
            {"system": CodeSystem.NDC.value, "code": ndc, "display": display},
            {"system": CodeSystem.RXNORM.value, "code": rxnorm, "display": display},
        ],
        "text": display,
    }


def _quantity(value: float, unit: str, code: str) -> Resource:
    return {"value": value, "unit": unit, "system": CodeSystem.UCUM.value, "code": code}


def demo_resources(today: date) -> list[Resource]:
    """Every resource of the demo pharmacy, with fills spread over the months before ``today``."""
    pharmacy = _org(PHARMACY, "prov", PHARMACY_NPI)
    payer = _org(PAYER, "pay", None)
    prescribers = [_practitioner(*p) for p in _PRESCRIBERS]
    out: list[Resource] = [pharmacy, payer, *prescribers]
    for pi, (mrn, family, given, gender, birth, member) in enumerate(_PATIENTS):
        patient = _patient(mrn, family, given, gender, birth)
        pid = patient["id"]
        display = f"{given} {family}"
        out.append(patient)
        out.append(
            {
                "resourceType": "Coverage",
                "id": business_id("Coverage", PAYER, member),
                "status": "active",
                "subscriberId": member,
                "beneficiary": _ref("Patient", pid, display),
                "relationship": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
                            "code": "self",
                        }
                    ]
                },
                "payor": [_ref("Organization", payer["id"], PAYER)],
            }
        )
        for di in _REGIMENS[pi]:
            ndc, rxnorm, drug, per_day, days = _DRUGS[di]
            rx_number = f"{7100000 + pi * 10 + di}"
            prescriber = prescribers[(pi + di) % 2]
            start = today - timedelta(days=days * _FILLS + 5 * pi + 3)
            rx_id = business_id("MedicationRequest", PHARMACY, rx_number)
            medication = _medication(ndc, rxnorm, drug)
            out.append(
                {
                    "resourceType": "MedicationRequest",
                    "id": rx_id,
                    "identifier": [{"system": identifier_system("rx-number", PHARMACY), "value": rx_number}],
                    "status": "active",
                    "intent": "order",
                    "category": [
                        {"coding": [{"system": CodeSystem.MED_REQUEST_CATEGORY.value, "code": "community"}]}
                    ],
                    "medicationCodeableConcept": medication,
                    "subject": _ref("Patient", pid, display),
                    "authoredOn": start.isoformat(),
                    "requester": _ref("Practitioner", prescriber["id"]),
                    "dosageInstruction": [
                        {
                            "text": f"Take {per_day} tablet{'s' if per_day > 1 else ''} by mouth daily",
                            "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                        }
                    ],
                    "dispenseRequest": {
                        "validityPeriod": {
                            "start": start.isoformat(),
                            "end": (start + timedelta(days=365)).isoformat(),
                        },
                        "numberOfRepeatsAllowed": 11,
                        "quantity": _quantity(per_day * days, "tablet", "{tbl}"),
                        "expectedSupplyDuration": _quantity(days, "days", "d"),
                        "performer": _ref("Organization", pharmacy["id"], PHARMACY),
                    },
                }
            )
            for fill in range(_FILLS):
                handed = start + timedelta(days=1 + fill * days + (fill * 2) % 5)
                out.append(
                    {
                        "resourceType": "MedicationDispense",
                        "id": business_id("MedicationDispense", PHARMACY, rx_number, fill),
                        "identifier": [
                            {
                                "system": identifier_system("fill-number", PHARMACY),
                                "value": f"{rx_number}-{fill}",
                            }
                        ],
                        "status": "completed",
                        "medicationCodeableConcept": medication,
                        "subject": _ref("Patient", pid, display),
                        "performer": [{"actor": _ref("Organization", pharmacy["id"], PHARMACY)}],
                        "authorizingPrescription": [_ref("MedicationRequest", rx_id)],
                        "quantity": _quantity(per_day * days, "tablet", "{tbl}"),
                        "daysSupply": _quantity(days, "days", "d"),
                        "whenPrepared": f"{(handed - timedelta(days=1)).isoformat()}T16:00:00Z",
                        "whenHandedOver": f"{handed.isoformat()}T15:30:00Z",
                    }
                )
    return out


def demo_bundle(today: date) -> Resource:
    """The demo pharmacy as one transaction Bundle of PUT entries (idempotent to load)."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in demo_resources(today)
        ],
    }
