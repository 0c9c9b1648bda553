"""A MedicationDispense (with its MedicationRequest, Patient, Coverage, prescriber and pharmacy) → its NCPDP D.0
B1 through ``adapters.telecom``, the FHIR R4 Claim carrying the same facts, and a Binary holding the D.0 bytes.

A sync short fill is a complete fill with a shortened days supply (405-D5, 442-E7, 420-DK), never a D.0
partial fill: 343-HD, 344-HF and 345-HG stay empty. Resources are plain dicts; tests prove them valid R4.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from adapters.telecom import (
    RequestHeader,
    Segment,
    TelecomError,
    Transaction,
    Transmission,
    dictionary,
    serialize,
)
from adapters.telecom.fhir import DAW_SYSTEM, SCC_SYSTEM, SCC_URL, claim_id, rx_key
from adapters.telecom.overpunch import OverpunchError, encode_money, encode_quantity
from interop.claims.pricing import SCC_TEXT, Costs, Fill, FillKind, Pricing, price
from interop.claims.proration import DrugFacts, PlanRules, plan_for
from interop.fhir.ids import business_id
from interop.fhir.systems import OUR_BASE, CodeSystem, extension_url, identifier_system, normalize_ndc

Resource = dict[str, Any]

FILL_NUMBER_URL = extension_url("fill-number")
C4BB_INFO = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBSupportingInfoType"
C4BB_TEAM_ROLE = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBClaimPharmacyTeamRole"
ORIGIN_SYSTEM = "http://terminology.hl7.org/CodeSystem/NCPDPPrescriptionOriginCode"
INFO_SYSTEM = f"{OUR_BASE}/CodeSystem/claim-information"
"""Our supportingInfo categories: the D.0 request, 420-DK, expected patient pay, the proration rule."""
PRICE_SYSTEM = f"{OUR_BASE}/CodeSystem/ncpdp-pricing-component"
PRIORITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/processpriority"
CURRENCY_SYSTEM = "urn:iso:std:iso:4217"
ORDER_NUMBER_SYSTEM = identifier_system("prescriber-order-number", "ncpdp")
"""Identifier of a prescription that came by NCPDP SCRIPT: its 419-DJ origin is 3 (electronic)."""
D0_CONTENT_TYPE = "application/octet-stream"

SYNC_CODES = frozenset({"47", "61"})
ANCHOR_CODES = frozenset({"48"})
SOLID_ORAL_UNITS = frozenset({"EA", "TAB", "TABLET", "TABLETS", "CAP", "CAPSULE", "CAPSULES", "{TBL}", "{CAP}",
                              "C48542", "C48480"})
"""Quantity units (unit or code, upper case) of a solid oral dose: each, tablet, capsule (NCI C48542, C48480)."""
UNIT_OF_MEASURE = {"ML": "ML", "G": "GM", "GM": "GM"}
"""Quantity unit → 600-28 (NCPDP billing unit); everything else is EA."""
GENDER_CODE = {"male": "1", "female": "2", "unknown": "0"}
RELATIONSHIP_CODE = {"self": "1", "spouse": "2", "child": "3"}
NDC_SYSTEM = CodeSystem.NDC.value
NPI_SYSTEM = CodeSystem.NPI.value
UCUM_SYSTEM = CodeSystem.UCUM.value
CLAIM_TYPE_SYSTEM = CodeSystem.CLAIM_TYPE.value


@lru_cache(maxsize=1024)
def rx_system(npi: str) -> str:
    """Identifier system of the Rx numbers of the pharmacy with this NPI."""
    return identifier_system("rx-number", npi)


class BuildError(ValueError):
    """An input resource lacks what the claim needs; the message names the element (``Coverage.class``)."""


@dataclass(slots=True)
class ClaimInputs:
    """The resources a claim is built from (the prescriber may be absent: AM03 is then omitted)."""

    dispense: Resource
    request: Resource
    patient: Resource
    coverage: Resource
    pharmacy: Resource
    prescriber: Resource | None = None


@dataclass(slots=True)
class BuiltClaim:
    """The B1 (as values and bytes), the FHIR Claim and the Binary of its bytes, and the pricing behind them."""

    transmission: Transmission
    data: bytes
    claim: Resource
    binary: Resource
    pricing: Pricing
    plan: PlanRules


def _need(value: Any, where: str) -> Any:
    if value in (None, "", [], {}):
        raise BuildError(f"{where} is required to build the claim")
    return value


def _ref(resource: Resource) -> Resource:
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


@lru_cache(maxsize=4096, typed=True)
def _num(value: Decimal) -> int | float:
    """A JSON number for a Decimal (an int when whole); memoized by value, as amounts and quantities repeat
    across claims (six per Claim: 0.15 µs instead of 0.5 µs each in bench.bench_claims)."""
    whole = int(value)
    return whole if whole == value else float(value)


@lru_cache(maxsize=4096, typed=True)
def _overpunch(value: Decimal) -> str:
    """``encode_money`` memoized by value (equal Decimals encode alike; errors are not memoized): four per B1."""
    return encode_money(value)


def _money(value: Decimal) -> Resource:
    return {"value": _num(value), "currency": "USD"}


def _money_quantity(value: Decimal) -> Resource:
    return {"value": _num(value), "unit": "USD", "system": CURRENCY_SYSTEM, "code": "USD"}


def _ymd(value: str, where: str) -> str:
    compact = _compact_date(value)
    if compact is None:
        raise BuildError(f"{where} {value!r} is not a FHIR date")
    return compact


@lru_cache(maxsize=4096)
def _compact_date(value: str) -> str | None:
    """``2025-03-19`` (or a dateTime) → ``20250319``, None when not a date; memoized, as claims share their
    dates of service, birth dates and written dates: 0.1 µs instead of 0.7 µs, three per B1 (bench.bench_claims)."""
    day = value[:10]
    if len(day) != 10 or day[4] != "-" or day[7] != "-" or not (day[:4] + day[5:7] + day[8:]).isdigit():
        return None
    return day[:4] + day[5:7] + day[8:]


def npi_of(resource: Resource, where: str) -> str:
    """The NPI (http://hl7.org/fhir/sid/us-npi) among ``resource.identifier``."""
    for ident in resource.get("identifier", []):
        if ident.get("system") == NPI_SYSTEM and ident.get("value"):
            return str(ident["value"])
    raise BuildError(f"{where}.identifier has no NPI ({NPI_SYSTEM})")


def coverage_classes(coverage: Resource) -> dict[str, str]:
    """The Coverage's class values by type code (rxbin, rxpcn, rxgroup, rxid)."""
    out: dict[str, str] = {}
    for cls in coverage.get("class", []):
        for coding in cls.get("type", {}).get("coding", []):
            code = coding.get("code")
            if code and code not in out:
                out[code] = str(cls.get("value", ""))
    return out


def plan_of(coverage: Resource) -> PlanRules:
    """The plan settings for the Coverage's RxBIN/RxPCN (plans.json)."""
    classes = coverage_classes(coverage)
    return plan_for(_need(classes.get("rxbin"), "Coverage.class (rxbin)"), classes.get("rxpcn", ""))


def rx_number(request: Resource, dispense: Resource) -> str:
    """402-D2: the pharmacy's Rx number, from the MedicationDispense or MedicationRequest identifier."""
    for resource in (dispense, request):
        for ident in resource.get("identifier", []):
            if "/sid/rx-number/" in str(ident.get("system", "")) and ident.get("value"):
                return rx_key(str(ident["value"]))
    raise BuildError("MedicationDispense.identifier / MedicationRequest.identifier has no Rx number "
                     f"({OUR_BASE}/sid/rx-number/...)")


def scc_codes(dispense: Resource) -> list[str]:
    """The 420-DK codes the sync planner marked on the dispense (submission-clarification-code extension)."""
    return [str(ext["valueCoding"]["code"]) for ext in dispense.get("extension", [])
            if ext.get("url") == SCC_URL and ext.get("valueCoding", {}).get("code")]


def fill_kind(dispense: Resource) -> FillKind:
    """short when the planner marked a sync short fill (47/61), anchor for 48, else regular."""
    kind: FillKind = "regular"
    for code in scc_codes(dispense):
        if code in SYNC_CODES:
            return "short"
        if code in ANCHOR_CODES:
            kind = "anchor"
    return kind


_SOLID_ORAL = DrugFacts(solid_oral=True)
_NOT_SOLID_ORAL = DrugFacts(solid_oral=False)


def drug_facts(dispense: Resource) -> DrugFacts:
    """What the dispense says of the drug: solid oral when its quantity is counted in tablets or capsules."""
    quantity = dispense.get("quantity", {})
    if (str(quantity.get("unit", "")).upper() in SOLID_ORAL_UNITS
            or str(quantity.get("code", "")).upper() in SOLID_ORAL_UNITS):
        return _SOLID_ORAL
    return _NOT_SOLID_ORAL


def date_of_service(dispense: Resource) -> str:
    """401-D1 (CCYYMMDD): when the fill was prepared, else handed over."""
    when = dispense.get("whenPrepared") or dispense.get("whenHandedOver")
    return _ymd(_need(when, "MedicationDispense.whenPrepared"), "MedicationDispense.whenPrepared")


def _ndc(dispense: Resource, request: Resource) -> str:
    for resource in (dispense, request):
        for coding in resource.get("medicationCodeableConcept", {}).get("coding", []):
            if coding.get("system") == NDC_SYSTEM:
                ndc = normalize_ndc(str(coding.get("code", "")))
                if ndc:
                    return ndc
    raise BuildError("MedicationDispense.medicationCodeableConcept has no NDC coding (407-D7)")


def _fill_number(dispense: Resource) -> int:
    for ext in dispense.get("extension", []):
        if ext.get("url") == FILL_NUMBER_URL and isinstance(ext.get("valueUnsignedInt"), int):
            return int(ext["valueUnsignedInt"])
    raise BuildError(f"MedicationDispense.extension ({FILL_NUMBER_URL}) is required for 403-D3")


def _daw(dispense: Resource) -> str:
    for coding in dispense.get("substitution", {}).get("type", {}).get("coding", []):
        if coding.get("system") == DAW_SYSTEM and coding.get("code"):
            return str(coding["code"])
    return "0"


def _origin(request: Resource) -> str:
    """419-DJ: 3 electronic for a prescription received by SCRIPT, else 0 not known."""
    systems = {ident.get("system") for ident in request.get("identifier", [])}
    return "3" if ORDER_NUMBER_SYSTEM in systems else "0"


def _unit(dispense: Resource) -> str:
    quantity = dispense.get("quantity", {})
    return UNIT_OF_MEASURE.get(str(quantity.get("code") or quantity.get("unit") or "").upper(), "EA")


def build(inputs: ClaimInputs, costs: Costs, *, plan: PlanRules | None = None, kind: FillKind | None = None,
          drug: DrugFacts | None = None, prior_sync_fills: int = 0, software_vendor: str = "") -> BuiltClaim:
    """Price the dispense and build its B1, Claim and Binary (see the module docstring)."""
    dispense, request, patient, coverage, pharmacy = (inputs.dispense, inputs.request, inputs.patient,
                                                      inputs.coverage, inputs.pharmacy)
    classes = coverage_classes(coverage)
    if not classes.get("rxbin"):
        raise BuildError("Coverage.class (rxbin) is required to build the claim")
    plan = plan or plan_for(classes["rxbin"], classes.get("rxpcn", ""))
    days = int(_need(dispense.get("daysSupply", {}).get("value"), "MedicationDispense.daysSupply.value"))
    quantity = Decimal(str(_need(dispense.get("quantity", {}).get("value"), "MedicationDispense.quantity.value")))
    fill = Fill(days, kind or fill_kind(dispense), drug or drug_facts(dispense), prior_sync_fills)
    pricing = price(fill, costs, plan)
    npi = npi_of(pharmacy, "Organization (pharmacy)")
    rx = rx_number(request, dispense)
    dos = date_of_service(dispense)
    ndc = _ndc(dispense, request)
    fill_number = _fill_number(dispense)
    daw = _daw(dispense)
    origin = _origin(request)
    unit = _unit(dispense)
    transmission = Transmission(
        RequestHeader(bin=classes["rxbin"], transaction_code="B1", provider_id=npi,
                      date_of_service=dos, pcn=classes.get("rxpcn", ""), software_vendor=software_vendor),
        [_insurance(coverage, classes), _patient(patient)],
        [_transaction(inputs, plan, pricing, rx, ndc, quantity, fill_number, days, daw, origin, unit)],
    )
    data = _serialized(transmission)
    cid = claim_id(npi, rx, dos)
    binary = d0_binary(cid, "B1", data, patient)
    claim = _claim(inputs, cid, rx, npi, dos, ndc, quantity, fill_number, days, daw, origin, unit, pricing, binary)
    return BuiltClaim(transmission, data, claim, binary, pricing, plan)


def d0_binary(cid: str, transaction_code: str, data: bytes, patient: Resource | None) -> Resource:
    """A Binary holding a D.0 request of the Claim ``cid``: the B1 shares the Claim's id, a B2 or B3 is keyed
    by the claim and its 103-A3."""
    bid = cid if transaction_code == "B1" else business_id("Binary", "ncpdp-d0", cid, transaction_code)
    binary: Resource = {"resourceType": "Binary", "id": bid,
                        "contentType": D0_CONTENT_TYPE, "data": base64.b64encode(data).decode("ascii")}
    if patient is not None:
        binary["securityContext"] = _ref(patient)
    return binary


def _segment(segment_id: str, items: list[str]) -> Segment:
    """A segment from the builder's wire items (a 2-character id + text each), not checked one by one here:
    ``serialize`` counts the separators of the whole B1 once and ``_serialized`` names the bad item. Five
    ``from_wire`` checks (1.2 µs each) less per claim in bench.bench_claims."""
    seg = _new_segment(Segment)
    seg.id = segment_id
    seg.items = tuple(items)
    seg.offset = None
    return seg


_new_segment = Segment.__new__


def _serialized(transmission: Transmission) -> bytes:
    """The B1 bytes; a value holding FS, GS or RS is a BuildError naming its segment (``from_wire``'s check)."""
    try:
        return serialize(transmission)
    except TelecomError:
        for seg in transmission.segments + [s for t in transmission.transactions for s in t.segments]:
            try:
                Segment.from_wire(seg.id, seg.items)
            except TelecomError as exc:
                raise BuildError(f"segment AM{seg.id}: {exc.message}") from exc
        raise


def _insurance(coverage: Resource, classes: dict[str, str]) -> Segment:
    """AM04: 302-C2 cardholder id, 301-C1 group, 303-C3 person code, 306-C6 relationship."""
    items = ["C2" + str(_need(coverage.get("subscriberId"), "Coverage.subscriberId"))]
    group = classes.get("rxgroup")
    if group:
        items.append("C1" + group)
    if coverage.get("dependent"):
        items.append("C3" + str(coverage["dependent"]))
    for coding in coverage.get("relationship", {}).get("coding", []):
        relation = RELATIONSHIP_CODE.get(coding.get("code", ""))
        if relation:
            items.append("C6" + relation)
        break
    return _segment("04", items)


def _patient(patient: Resource) -> Segment:
    """AM01: 304-C4 date of birth, 305-C5 gender, 310-CA first and 311-CB last name."""
    items: list[str] = []
    if patient.get("birthDate"):
        items.append("C4" + _ymd(patient["birthDate"], "Patient.birthDate"))
    gender = GENDER_CODE.get(patient.get("gender", ""))
    if gender:
        items.append("C5" + gender)
    names = patient.get("name", [])
    if names:
        given = names[0].get("given", [])
        if given:
            items.append("CA" + str(given[0]).upper())
        if names[0].get("family"):
            items.append("CB" + str(names[0]["family"]).upper())
    return _segment("01", items)


def _typed(field_id: str, value: int) -> str:
    """A number field encoded by its fields.csv format (403-D3 and 415-DF are zero-filled to 2: ``02``)."""
    if value < 0:
        raise BuildError(f"{dictionary.label(field_id)} {value} must not be negative")
    return field_id + str(value).rjust(_width(field_id), "0")


@lru_cache(maxsize=64)
def _width(field_id: str) -> int:
    """The zero-fill width fields.csv gives a number field (1 when it gives none), read once per field id."""
    known = dictionary.fields().get(field_id)
    return known.width or 1 if known else 1


def _money_item(field_id: str, value: Decimal) -> str:
    """A money field (fields.csv format ``money``): signed overpunch, 2 implied decimals (409-D9 ``819{``)."""
    try:
        return field_id + encode_money(value)
    except OverpunchError as exc:
        raise BuildError(f"{dictionary.label(field_id)}: {exc}") from exc


def _quantity_text(quantity: Decimal) -> str:
    """442-E7 (fields.csv format ``quantity``): unsigned, 3 implied decimals (26 → ``26000``)."""
    try:
        return encode_quantity(quantity)
    except OverpunchError as exc:
        raise BuildError(f"442-E7 quantity dispensed: {exc}") from exc


def _transaction(inputs: ClaimInputs, plan: PlanRules, pricing: Pricing, rx: str, ndc: str, quantity: Decimal,
                 fill_number: int, days: int, daw: str, origin: str, unit: str) -> Transaction:
    """AM07 Claim (no 343-HD/344-HF/345-HG: a short fill is complete), AM11 Pricing, AM03 Prescriber.

    Text fields are written as wire items directly; typed ones go through the codec's ``encode_value``."""
    request = inputs.request
    claim = ["EM1", "D2" + (rx.rjust(plan.rx_number_width, "0") if rx.isdigit() else rx), "E103", "D7" + ndc,
             "E7" + _quantity_text(quantity), _typed("D3", fill_number), "D5" + str(days), "D61", "D8" + daw]
    if request.get("authoredOn"):
        claim.append("DE" + _ymd(request["authoredOn"], "MedicationRequest.authoredOn"))
    refills = request.get("dispenseRequest", {}).get("numberOfRepeatsAllowed")
    if isinstance(refills, int):
        claim.append(_typed("DF", refills))
    claim.append("DJ" + origin)
    if pricing.scc:
        claim.extend(("NX1", "DK" + pricing.scc))
    claim.append("28" + unit)
    try:
        amounts = ["D9" + _overpunch(pricing.ingredient_cost), "DC" + _overpunch(pricing.dispensing_fee),
                   "DQ" + _overpunch(pricing.usual_and_customary), "DU" + _overpunch(pricing.gross_amount_due)]
    except OverpunchError:
        amounts = [_money_item("D9", pricing.ingredient_cost), _money_item("DC", pricing.dispensing_fee),
                   _money_item("DQ", pricing.usual_and_customary), _money_item("DU", pricing.gross_amount_due)]
    amounts.append("DN" + pricing.basis_of_cost)
    segments = [_segment("07", claim), _segment("11", amounts)]
    if inputs.prescriber is not None:
        prescriber = ["EZ01", "DB" + npi_of(inputs.prescriber, "Practitioner")]
        names = inputs.prescriber.get("name", [])
        if names and names[0].get("family"):
            prescriber.append("DR" + str(names[0]["family"]).upper())
        segments.append(_segment("03", prescriber))
    return Transaction(segments)


# Constant CodeableConcepts every Claim shares (built once, never mutated).
_PHARMACY_TYPE: Resource = {"coding": [{"system": CLAIM_TYPE_SYSTEM, "code": "pharmacy"}]}
_NORMAL_PRIORITY: Resource = {"coding": [{"system": PRIORITY_SYSTEM, "code": "normal"}]}
_PRESCRIBING_ROLE: Resource = {"coding": [{"system": C4BB_TEAM_ROLE, "code": "prescribing"}]}
_INGREDIENT_COST: Resource = {"coding": [{"system": PRICE_SYSTEM, "code": "409-D9", "display": "Ingredient cost"}]}
_DISPENSING_FEE: Resource = {"coding": [{"system": PRICE_SYSTEM, "code": "412-DC", "display": "Dispensing fee"}]}


def _category(system: str, code: str) -> Resource:
    return {"coding": [{"system": system, "code": code}]}


_DAYS_SUPPLY = _category(C4BB_INFO, "dayssupply")
_REFILL_NUMBER = _category(C4BB_INFO, "refillnum")
_DAW_CODE = _category(C4BB_INFO, "dawcode")
_ORIGIN_CODE = _category(C4BB_INFO, "rxorigincode")
_REFILLS_AUTHORIZED = _category(C4BB_INFO, "refillsauthorized")
_NCPDP_REQUEST = _category(INFO_SYSTEM, "ncpdp-request")
_DISPENSE = _category(INFO_SYSTEM, "medication-dispense")
_PATIENT_PAY = _category(INFO_SYSTEM, "expected-patient-pay")
_RULE = _category(INFO_SYSTEM, "proration-rule")
_APPLIED = _category(INFO_SYSTEM, "proration-applied")
_FEE_WHOLE = _category(INFO_SYSTEM, "dispensing-fee-whole")
_EXPLANATION = _category(INFO_SYSTEM, "pricing-explanation")
_USUAL = _category(INFO_SYSTEM, "usual-and-customary")
_SCC_CATEGORY = _category(INFO_SYSTEM, "submission-clarification-code")
_SEQUENCES = {12: list(range(1, 13)), 13: list(range(1, 14)), 14: list(range(1, 15))}


def _claim(inputs: ClaimInputs, cid: str, rx: str, npi: str, dos: str, ndc: str, quantity: Decimal,
           fill_number: int, days: int, daw: str, origin: str, unit: str, pricing: Pricing,
           binary: Resource) -> Resource:
    """The FHIR R4 Claim (type pharmacy, use claim) of the B1: the same facts, and the B1 bytes by reference.

    Written as one dict literal over category concepts built at import (shared between claims, never mutated),
    not a helper per supportingInfo: 10.1 µs instead of 12.6 µs per Claim of bench.bench_claims."""
    served = f"{dos[:4]}-{dos[4:6]}-{dos[6:]}"
    decision = pricing.decision
    dispense = inputs.dispense
    info: list[Resource] = [
        {"sequence": 1, "category": _DAYS_SUPPLY,
         "valueQuantity": {"value": days, "unit": "day", "system": UCUM_SYSTEM, "code": "d"}},
        {"sequence": 2, "category": _REFILL_NUMBER, "valueQuantity": {"value": fill_number}},
        {"sequence": 3, "category": _DAW_CODE, "code": {"coding": [{"system": DAW_SYSTEM, "code": daw}]}},
        {"sequence": 4, "category": _ORIGIN_CODE, "code": {"coding": [{"system": ORIGIN_SYSTEM, "code": origin}]}},
        {"sequence": 5, "category": _NCPDP_REQUEST, "valueReference": {"reference": f"Binary/{binary['id']}"}},
        {"sequence": 6, "category": _DISPENSE,
         "valueReference": {"reference": f"{dispense['resourceType']}/{dispense['id']}"}},
        {"sequence": 7, "category": _PATIENT_PAY, "valueQuantity": _money_quantity(pricing.patient_pay)},
        {"sequence": 8, "category": _RULE, "valueString": decision.citation or decision.rule_id},
        {"sequence": 9, "category": _APPLIED, "valueBoolean": pricing.prorated},
        {"sequence": 10, "category": _FEE_WHOLE, "valueBoolean": decision.fee_whole},
        {"sequence": 11, "category": _EXPLANATION, "valueString": pricing.explanation},
        {"sequence": 12, "category": _USUAL, "valueQuantity": _money_quantity(pricing.usual_and_customary)},
    ]
    refills = inputs.request.get("dispenseRequest", {}).get("numberOfRepeatsAllowed")
    if isinstance(refills, int):
        info.append({"sequence": len(info) + 1, "category": _REFILLS_AUTHORIZED, "valueQuantity": {"value": refills}})
    if pricing.scc:
        coding = {"system": SCC_SYSTEM, "code": pricing.scc}
        if pricing.scc in SCC_TEXT:
            coding["display"] = SCC_TEXT[pricing.scc]
        info.append({"sequence": len(info) + 1, "category": _SCC_CATEGORY, "code": {"coding": [coding]}})
    gross = _money(pricing.gross_amount_due)
    item: Resource = {
        "sequence": 1,
        "informationSequence": list(_SEQUENCES[len(info)]),
        "productOrService": {"coding": [{"system": NDC_SYSTEM, "code": ndc}]},
        "servicedDate": served,
        "quantity": {"value": _num(quantity), "unit": unit},
        "net": gross,
        "detail": [
            {"sequence": 1, "productOrService": _INGREDIENT_COST, "net": _money(pricing.ingredient_cost)},
            {"sequence": 2, "productOrService": _DISPENSING_FEE, "net": _money(pricing.dispensing_fee)},
        ],
    }
    claim: Resource = {
        "resourceType": "Claim",
        "id": cid,
        "identifier": [{"system": rx_system(npi), "value": rx}],
        "status": "active",
        "type": _PHARMACY_TYPE,
        "use": "claim",
        "patient": _ref(inputs.patient),
        "billablePeriod": {"start": served, "end": served},
        "created": served,
        "provider": _ref(inputs.pharmacy),
        "priority": _NORMAL_PRIORITY,
        "prescription": _ref(inputs.request),
        "supportingInfo": info,
        "insurance": [{"sequence": 1, "focal": True, "coverage": _ref(inputs.coverage)}],
        "item": [item],
        "total": dict(gross),
    }
    if inputs.prescriber is not None:
        claim["careTeam"] = [{"sequence": 1, "provider": _ref(inputs.prescriber), "role": _PRESCRIBING_ROLE}]
        item["careTeamSequence"] = [1]
    return claim


def info_value(claim: Mapping[str, Any], code: str) -> Any:
    """The value of the Claim's supportingInfo of category ``code`` (valueX or code), or None."""
    for entry in claim.get("supportingInfo", []):
        if any(c.get("code") == code for c in entry.get("category", {}).get("coding", [])):
            for key, value in entry.items():
                if key.startswith("value") or key == "code":
                    return value
    return None
