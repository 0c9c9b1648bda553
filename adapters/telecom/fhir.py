"""D.0 to FHIR R4: a B1 dispensing record becomes a transaction Bundle, a response becomes ClaimResponses.

Ids come from business keys (``interop.fhir.ids.business_id``): the pharmacy (201-B1) + Rx number (402-D2)
key the MedicationRequest, + fill number (403-D3) the MedicationDispense, so a record sent twice updates.
Resources are plain dicts; tests prove them valid against the official R4 schema. D.0 carries no pickup
date, so 401-D1 fills both whenPrepared and whenHandedOver (a later B2 reversal is the claims domain's news).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from adapters.telecom import dictionary
from adapters.telecom.codec import parse, parse_lenient
from adapters.telecom.errors import TelecomError
from adapters.telecom.model import Header, Segment, Transaction, Transmission
from interop.fhir.ids import business_id
from interop.fhir.systems import OUR_BASE, CodeSystem, extension_url, identifier_system, normalize_ndc

Resource = dict[str, Any]

FILL_NUMBER_URL = extension_url("fill-number")
"""MedicationDispense extension: 403-D3 fill number (0 original, 1-99 refill), valueUnsignedInt."""
SCC_URL = extension_url("submission-clarification-code")
"""MedicationDispense extension, repeating: each 420-DK code (47 / 48 / 61 mark sync fills), valueCoding."""
RESPONSE_STATUS_URL = extension_url("ncpdp-response-status")
"""ClaimResponse extension: 112-AN transaction response status as sent (P D C Q A S R), valueCoding."""

SCC_SYSTEM = f"{OUR_BASE}/CodeSystem/ncpdp-submission-clarification-code"
RESPONSE_STATUS_SYSTEM = f"{OUR_BASE}/CodeSystem/ncpdp-transaction-response-status"
AMOUNT_SYSTEM = f"{OUR_BASE}/CodeSystem/ncpdp-response-amount"
BIN_SYSTEM = f"{OUR_BASE}/sid/ncpdp-bin"
NCPDP_PROVIDER_ID = "http://terminology.hl7.org/CodeSystem/NCPDPProviderIdentificationNumber"
REJECT_SYSTEM = "http://terminology.hl7.org/CodeSystem/NCPDPRejectCode"
DAW_SYSTEM = "http://terminology.hl7.org/CodeSystem/NCPDPDispensedAsWrittenOrProductSelectionCode"
COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
PAYMENT_TYPE = "http://terminology.hl7.org/CodeSystem/ex-paymenttype"

GENDER = {"0": "unknown", "1": "male", "2": "female"}
"""305-C5 patient gender code."""
RELATION = {"1": "self", "2": "spouse", "3": "child", "4": "other"}
"""306-C6 patient relationship code → subscriber-relationship (0 "not specified" maps to nothing)."""
UCUM_UNITS = {"ML": "mL", "GM": "g"}
"""600-28 unit of measure → UCUM; EA (each) stays text only."""

RESPONSE_STATUS = {
    "P": ("Paid", "complete"),
    "D": ("Duplicate of Paid", "complete"),
    "C": ("Captured", "complete"),
    "Q": ("Duplicate of Captured", "complete"),
    "A": ("Approved", "complete"),
    "S": ("Duplicate of Approved", "complete"),
    "R": ("Rejected", "error"),
}
"""112-AN → (display, ClaimResponse.outcome). Any 511-FB reject code makes the outcome error, whatever AN says."""

DUR_FIELDS = (("E4", "reason for service 439-E4"), ("E5", "professional service 440-E5"),
              ("E6", "result of service 441-E6"), ("8E", "level of effort 474-8E"),
              ("J9", "co-agent id qualifier 475-J9"), ("H6", "co-agent id 476-H6"))
"""AM08 DUR/PPS group fields, in the words of the MedicationDispense.note they become."""

STANDARD_ADJUDICATION = {"FI": "copay", "FH": "deductible", "F9": "benefit", "AW": "tax", "AX": "tax"}
"""Response pricing amounts that also have a code in the base adjudication code system."""


def to_fhir(transmission: Transmission, request: Transmission | None = None) -> Resource:
    """A transaction Bundle for a B1 request (dispensing) or any response (ClaimResponses).

    ``request`` is the B1/B2/B3 the response answers; it supplies the patient, payer and Rx numbers a
    response does not repeat. Other request types (B2, B3, E1) raise a TelecomError naming 103-A3.
    """
    if transmission.is_response:
        return _bundle(claim_responses(transmission, request))
    code = transmission.header.transaction_code
    if code != "B1":
        raise TelecomError(
            f"transaction code {code!r}: only B1 billing requests (dispensing records) and responses map to FHIR; "
            "a B2 reversal or B3 rebill changes a claim the claims domain owns", 8, field="103-A3")
    return _bundle(dispensing(transmission))


def convert(data: bytes, strict: bool = False) -> Resource:
    """Bytes of one transmission → its transaction Bundle. Canonical framing is read strictly; unless
    ``strict``, a transmission that fails is read again leniently (cosyte-style framing)."""
    try:
        transmission = parse(data)
    except TelecomError:
        if strict:
            raise
        transmission, _ = parse_lenient(data)
    return to_fhir(transmission)


def to_bundles(data: bytes, strict: bool = False) -> list[Resource]:
    """The ``CONVERTERS["telecom"]`` entry of ``interop.ingest.convert``: one Bundle per D.0 transmission."""
    return [convert(data, strict)]


def claim_id(pharmacy_id: str, rx_number: str, date_of_service: str) -> str:
    """Claim id from its business keys: pharmacy 201-B1, Rx 402-D2 (leading zeros dropped), date 401-D1.

    A B2 reversal and a B3 rebill carry the same three, so they name the same Claim; the claims builder
    must mint the FHIR Claim it sends with this id for the ClaimResponse's ``request`` to resolve.
    """
    return business_id("Claim", pharmacy_id, rx_key(rx_number), date_of_service)


def rx_key(rx_number: str) -> str:
    """402-D2 as the pharmacy knows it: D.0 zero-pads the numeric Rx number (9(12)), other feeds do not."""
    value = rx_number.strip()
    return (value.lstrip("0") or "0") if value.isdigit() else value


# --------------------------------------------------------------------------------------------- B1


def dispensing(transmission: Transmission) -> list[Resource]:
    """Resources of a B1: Patient, Coverage + payer, pharmacy, and per claim a prescriber, MedicationRequest
    and MedicationDispense."""
    header = transmission.header
    pharmacy_id = header.provider_id
    if not pharmacy_id:
        raise TelecomError("201-B1 service provider id is blank: no pharmacy to key the prescription", 23,
                           field="201-B1")
    pharmacy = _pharmacy(header)
    patient_seg = transmission.segment("01")
    insurance = transmission.segment("04")
    patient = _patient(patient_seg, insurance, header)
    resources = [patient, pharmacy]
    coverage = _coverage(insurance, header, _ref(patient))
    resources.extend(coverage)
    when = _iso(header.service_date)
    for number, transaction in enumerate(transmission.transactions, 1):
        resources.extend(_claim_resources(transaction, number, pharmacy_id, _ref(patient), _ref(pharmacy), when))
    return _unique(resources)


def _claim_resources(transaction: Transaction, number: int, pharmacy_id: str, patient: Resource,
                     pharmacy: Resource, when: str) -> list[Resource]:
    claim = transaction.segment("07")
    if claim is None:
        raise TelecomError(f"transaction {number} has no Claim segment (AM07)", segment="07")
    rx = claim.get("D2")
    if not rx:
        raise TelecomError("402-D2 Rx number missing", claim.offset, "07", "402-D2")
    rx_number = rx_key(rx)
    fill = claim.number("D3")
    if fill is None:
        raise TelecomError("403-D3 fill number missing", claim.offset, "07", "403-D3")
    drug = _drug(claim)
    out: list[Resource] = []
    prescriber = _prescriber(transaction.segment("03"))
    rx_system = identifier_system("rx-number", pharmacy_id)
    request: Resource = {
        "resourceType": "MedicationRequest",
        "id": business_id("MedicationRequest", "rx-number", pharmacy_id, rx_number),
        "identifier": [{"system": rx_system, "value": rx_number}],
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": drug,
        "subject": patient,
    }
    written = claim.date_value("DE")
    if written is not None:
        request["authoredOn"] = _iso(written)
    if prescriber is not None:
        out.append(prescriber)
        request["requester"] = _ref(prescriber)
    dispense_request: Resource = {"performer": pharmacy}
    refills = claim.number("DF")
    if refills is not None:
        dispense_request["numberOfRepeatsAllowed"] = refills
    prescribed = claim.quantity("ET")
    if prescribed is not None:
        dispense_request["quantity"] = _quantity(prescribed, claim.get("28"))
    request["dispenseRequest"] = dispense_request
    extensions: list[Resource] = [{"url": FILL_NUMBER_URL, "valueUnsignedInt": fill}]
    extensions.extend({"url": SCC_URL, "valueCoding": {"system": SCC_SYSTEM, "code": code}}
                      for code in claim.get_all("DK") if code)
    dispense: Resource = {
        "resourceType": "MedicationDispense",
        "id": business_id("MedicationDispense", pharmacy_id, rx_number, "fill", str(fill)),
        "extension": extensions,
        "identifier": [{"system": rx_system, "value": rx_number}],
        "status": "completed",
        "medicationCodeableConcept": drug,
        "subject": patient,
        "performer": [{"actor": pharmacy}],
        "authorizingPrescription": [_ref(request)],
        "type": {"coding": [{"system": CodeSystem.V3_ACT_CODE.value, "code": "FF" if fill == 0 else "RF"}]},
    }
    dispensed = claim.quantity("E7")
    if dispensed is not None:
        dispense["quantity"] = _quantity(dispensed, claim.get("28"))
    days = claim.number("D5")
    if days is not None:
        dispense["daysSupply"] = {"value": days, "unit": "day", "system": CodeSystem.UCUM.value, "code": "d"}
    dispense["whenPrepared"] = when
    dispense["whenHandedOver"] = when
    daw = claim.get("D8")
    if daw:
        dispense["substitution"] = {"wasSubstituted": False,
                                    "type": {"coding": [{"system": DAW_SYSTEM, "code": daw}]}}
    notes = [{"text": text} for seg in transaction.segments if seg.id == "08" for text in _dur_groups(seg)]
    if notes:
        dispense["note"] = notes
    out.extend([request, dispense])
    return out


def _dur_groups(seg: Segment) -> list[str]:
    """AM08 DUR/PPS: each group opened by its 473-7E counter, as one readable note (the repeats stay apart)."""
    groups: list[dict[str, str]] = []
    for fid, value in seg.fields:
        if fid == "7E" or not groups:
            groups.append({})
        if fid != "7E":
            groups[-1][fid] = value
    names = dict(DUR_FIELDS)
    return ["NCPDP DUR/PPS: " + ", ".join(f"{names.get(fid, dictionary.label(fid))} {value}"
                                          for fid, value in group.items())
            for group in groups if group]


def _drug(claim: Segment) -> Resource:
    """407-D7 under qualifier 436-E1: 03 is an NDC (normalized to 11 digits); anything else stays text."""
    product = claim.get("D7")
    if not product:
        raise TelecomError("407-D7 product/service id missing", claim.field_offset("D7") or claim.offset, "07",
                           "407-D7")
    qualifier = claim.get("E1") or ""
    ndc = normalize_ndc(product) if qualifier == "03" else None
    if ndc is not None:
        return {"coding": [{"system": CodeSystem.NDC.value, "code": ndc}]}
    return {"text": f"product/service id {product} (436-E1 qualifier {qualifier or 'blank'})"}


def _quantity(value: Decimal, unit: str | None) -> Resource:
    out: Resource = {"value": _number(value)}
    if unit:
        out["unit"] = unit
        ucum = UCUM_UNITS.get(unit)
        if ucum:
            out["system"] = CodeSystem.UCUM.value
            out["code"] = ucum
    return out


def _patient(patient: Segment | None, insurance: Segment | None, header: Header) -> Resource:
    """AM01 → Patient keyed by the pharmacy's patient id (332-CY, never an SSN), else the plan member
    (BIN, PCN, 302-C2, 303-C3), else name + 304-C4 date of birth."""
    seg = patient or Segment("01")
    qualifier, pid = seg.get("CX") or "", seg.get("CY") or ""
    first, last, birth = seg.get("CA") or "", seg.get("CB") or "", seg.date_value("C4")
    card = insurance.get("C2") if insurance is not None else None
    resource: Resource = {"resourceType": "Patient"}
    if pid and qualifier != "01":
        system = identifier_system(f"ncpdp-patient-id-{qualifier or 'unqualified'}", header.provider_id)
        resource["id"] = business_id("Patient", system, pid)
        resource["identifier"] = [{"system": system, "value": pid}]
    elif card and insurance is not None:
        resource["id"] = business_id("Patient", *_member_key(insurance, header))
    elif last and birth is not None:
        resource["id"] = business_id("Patient", "demographics", last, first or "-", _iso(birth))
    else:
        raise TelecomError("no patient key: 332-CY patient id, 302-C2 cardholder id or 311-CB last name with "
                           "304-C4 date of birth is needed", segment="01")
    if first or last:
        name: Resource = {}
        if last:
            name["family"] = last
        if first:
            name["given"] = [first]
        resource["name"] = [name]
    gender = GENDER.get(seg.get("C5") or "")
    if gender:
        resource["gender"] = gender
    if birth is not None:
        resource["birthDate"] = _iso(birth)
    telecom = [{"system": kind, "value": value}
               for kind, value in (("phone", seg.get("CQ")), ("email", seg.get("HN"))) if value]
    if telecom:
        resource["telecom"] = telecom
    address: Resource = {}
    for key, fid in (("city", "CN"), ("state", "CO"), ("postalCode", "CP")):
        value = seg.get(fid)
        if value:
            address[key] = value
    street = seg.get("CM")
    if street:
        address["line"] = [street]
    if address:
        resource["address"] = [address]
    return resource


def _member_key(insurance: Segment, header: Header) -> tuple[str, ...]:
    bin_, pcn = getattr(header, "bin", ""), getattr(header, "pcn", "")
    return (f"bin:{bin_}", f"pcn:{pcn}", f"cardholder:{insurance.get('C2') or ''}",
            f"person:{insurance.get('C3') or ''}")


def _coverage(insurance: Segment | None, header: Header, patient: Resource) -> list[Resource]:
    """AM04 + header BIN/PCN → Coverage (classes rxbin, rxpcn, rxgroup, rxid) and the payer Organization."""
    if insurance is None or not insurance.get("C2"):
        return []
    bin_, pcn = getattr(header, "bin", ""), getattr(header, "pcn", "")
    card, group, person = insurance.get("C2") or "", insurance.get("C1"), insurance.get("C3")
    payer: Resource = {
        "resourceType": "Organization",
        "id": business_id("Organization", "ncpdp-payer", f"bin:{bin_}", f"pcn:{pcn}"),
        "identifier": [{"system": BIN_SYSTEM, "value": bin_}],
        "active": True,
        "type": [{"coding": [{"system": ORG_TYPE, "code": "pay"}]}],
        "name": f"BIN {bin_}" + (f" PCN {pcn}" if pcn else ""),
    }
    classes = [(code, value) for code, value in (("rxbin", bin_), ("rxpcn", pcn), ("rxgroup", group),
                                                  ("rxid", card)) if value]
    coverage: Resource = {
        "resourceType": "Coverage",
        "id": business_id("Coverage", *_member_key(insurance, header)),
        "status": "active",
        "subscriberId": card,
        "beneficiary": patient,
        "payor": [_ref(payer)],
        "class": [{"type": {"coding": [{"system": COVERAGE_CLASS, "code": code}]}, "value": value}
                  for code, value in classes],
    }
    if person:
        coverage["dependent"] = person
    relation = RELATION.get(insurance.get("C6") or "")
    if relation:
        coverage["relationship"] = {"coding": [{"system": RELATIONSHIP, "code": relation}]}
    return [payer, coverage]


def _pharmacy(header: Header) -> Resource:
    """201-B1 under 202-B2: 01 is an NPI, 07 an NCPDP provider id; other qualifiers keep their own system."""
    qualifier, value = header.provider_id_qualifier, header.provider_id
    if qualifier == "01":
        system = CodeSystem.NPI.value
    elif qualifier == "07":
        system = NCPDP_PROVIDER_ID
    else:
        system = identifier_system(f"ncpdp-provider-id-qualifier-{qualifier or 'blank'}", "ncpdp")
    return {
        "resourceType": "Organization",
        "id": business_id("Organization", system, value),
        "identifier": [{"system": system, "value": value}],
        "active": True,
        "type": [{"coding": [{"system": ORG_TYPE, "code": "prov"}]}],
    }


def _prescriber(seg: Segment | None) -> Resource | None:
    """AM03 → Practitioner: 411-DB under 466-EZ (01 NPI, 12 DEA), named by 427-DR / 364-2J."""
    if seg is None:
        return None
    qualifier, value = seg.get("EZ") or "", seg.get("DB") or ""
    if not value:
        return None
    if qualifier == "01":
        key: tuple[str, ...] = (CodeSystem.NPI.value, value)
        identifier: Resource = {"system": CodeSystem.NPI.value, "value": value}
    elif qualifier == "12":
        key = ("DEA", value)
        identifier = {"type": {"coding": [{"system": CodeSystem.V2_0203.value, "code": "DEA"}]}, "value": value}
    else:
        system = identifier_system(f"ncpdp-prescriber-id-qualifier-{qualifier or 'blank'}", "ncpdp")
        key = (system, value)
        identifier = {"system": system, "value": value}
    resource: Resource = {"resourceType": "Practitioner", "id": business_id("Practitioner", *key),
                          "identifier": [identifier]}
    last, first = seg.get("DR"), seg.get("2J")
    if last or first:
        name: Resource = {}
        if last:
            name["family"] = last
        if first:
            name["given"] = [first]
        resource["name"] = [name]
    return resource


# --------------------------------------------------------------------------------------------- responses


def claim_responses(response: Transmission, request: Transmission | None = None) -> list[Resource]:
    """One ClaimResponse per response transaction, linked to the Claim of the same position in ``request``."""
    header = response.header
    if request is not None and request.is_response:
        raise TelecomError("the request given to link a response is itself a response")
    if request is not None and len(request.transactions) != len(response.transactions):
        raise TelecomError(f"the response has {len(response.transactions)} transactions, the request "
                           f"{len(request.transactions)}", field="109-A9")
    date_of_service = header.date_of_service or (request.header.date_of_service if request else "")
    if not date_of_service:
        raise TelecomError("401-D1 date of service is blank and no request was given", 23, field="401-D1")
    created = _iso(_service_date(date_of_service))
    patient: Resource
    insurer: Resource
    if request is not None:
        patient = _ref(_patient(request.segment("01"), request.segment("04"), request.header))
        coverage = _coverage(request.segment("04"), request.header, patient)
        insurer = _ref(coverage[0]) if coverage else {"display": "no insurance segment (AM04) in the request"}
    else:
        patient = {"display": "patient of the claim (the response was converted without its request)"}
        insurer = {"display": "payer of the claim (the response was converted without its request)"}
    out = []
    for number, transaction in enumerate(response.transactions):
        answered = request.transactions[number] if request is not None else None
        out.append(_claim_response(transaction, number + 1, header, answered, date_of_service, created,
                                   patient, insurer))
    return out


def _claim_response(transaction: Transaction, number: int, header: Header, answered: Transaction | None,
                    date_of_service: str, created: str, patient: Resource, insurer: Resource) -> Resource:
    status = transaction.segment("21")
    if status is None:
        raise TelecomError(f"response transaction {number} has no Response Status segment (AM21)", segment="21")
    an = status.get("AN") or ""
    known = RESPONSE_STATUS.get(an)
    if known is None:
        raise TelecomError(f"112-AN {an!r} is not a known transaction response status (P D C Q A S R); an "
                           "unknown status is never read as paid", status.field_offset("AN"), "21", "112-AN")
    display, outcome = known
    rejects = [code for code in status.get_all("FB") if code]
    if rejects:
        outcome = "error"
    rx = _response_rx(transaction, answered, number)
    resource: Resource = {
        "resourceType": "ClaimResponse",
        "id": business_id("ClaimResponse", header.provider_id or "blank", rx, date_of_service,
                          header.transaction_code),
        "extension": [{"url": RESPONSE_STATUS_URL,
                       "valueCoding": {"system": RESPONSE_STATUS_SYSTEM, "code": an, "display": display}}],
        "status": "active",
        "type": {"coding": [{"system": CodeSystem.CLAIM_TYPE.value, "code": "pharmacy"}]},
        "use": "claim",
        "patient": patient,
        "created": created,
        "insurer": insurer,
        "request": {"reference": f"Claim/{claim_id(header.provider_id or 'blank', rx, date_of_service)}"},
        "outcome": outcome,
        "disposition": display + (f"; rejected {', '.join(rejects)}" if rejects else ""),
    }
    authorization = status.get("F3")
    if authorization:
        resource["identifier"] = [{"system": identifier_system("ncpdp-authorization", header.provider_id or "blank"),
                                   "value": authorization}]
    pricing = transaction.segment("23")
    if pricing is not None:
        totals, paid = _amounts(pricing)
        if totals:
            resource["total"] = totals
        if paid is not None:
            resource["payment"] = {"type": {"coding": [{"system": PAYMENT_TYPE, "code": "complete"}]},
                                   "amount": {"value": paid, "currency": "USD"}}
    notes = [text for text in (*status.get_all("F4"), *status.get_all("FQ")) if text.strip()]
    notes.extend(text for seg in transaction.segments if seg.id == "24" for text in seg.get_all("FY") if text)
    if notes:
        resource["processNote"] = [{"type": "display", "text": text} for text in notes]
    if rejects:
        table = dictionary.reject_codes()
        errors = []
        for code in rejects:
            coding: Resource = {"system": REJECT_SYSTEM, "code": code}
            if code in table:
                coding["display"] = table[code]
            errors.append({"code": {"coding": [coding]}})
        resource["error"] = errors
    return resource


def _response_rx(transaction: Transaction, answered: Transaction | None, number: int) -> str:
    claim = transaction.segment("22")
    rx = claim.get("D2") if claim is not None else None
    if not rx and answered is not None:
        request_claim = answered.segment("07")
        rx = request_claim.get("D2") if request_claim is not None else None
    if not rx:
        raise TelecomError(f"response transaction {number}: no 402-D2 Rx number in a Response Claim segment "
                           "(AM22) and no request to take it from, so the ClaimResponse cannot be linked to its "
                           "Claim", segment="22", field="402-D2")
    return rx_key(rx)


def _amounts(pricing: Segment) -> tuple[list[Resource], int | float | None]:
    """Every money field of AM23 (505-F5 patient pay, 506-F6, 507-F7, 509-F9 ...) as a ClaimResponse.total."""
    fields = dictionary.fields()
    totals = []
    paid = None
    for fid, raw in pricing.fields:
        known = fields.get(fid)
        if known is None or known.format != "money" or not raw:
            continue
        value = pricing.money(fid)
        if value is None:
            continue
        codings = [{"system": AMOUNT_SYSTEM, "code": known.field, "display": known.name}]
        standard = STANDARD_ADJUDICATION.get(fid)
        if standard:
            codings.append({"system": ADJUDICATION, "code": standard})
        totals.append({"category": {"coding": codings}, "amount": {"value": _number(value), "currency": "USD"}})
        if fid == "F9":
            paid = _number(value)
    return totals, paid


# --------------------------------------------------------------------------------------------- helpers


def _bundle(resources: list[Resource]) -> Resource:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": f"urn:uuid:{r['id']}", "resource": r,
             "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in resources
        ],
    }


def _unique(resources: list[Resource]) -> list[Resource]:
    """Drop repeats of one resource (the same prescriber on two claims), keeping the first."""
    seen: set[tuple[str, str]] = set()
    out = []
    for resource in resources:
        key = (resource["resourceType"], resource["id"])
        if key not in seen:
            seen.add(key)
            out.append(resource)
    return out


def _ref(resource: Resource) -> Resource:
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


def _iso(day: date) -> str:
    return day.isoformat()


def _service_date(raw: str) -> date:
    try:
        return date(int(raw[0:4]), int(raw[4:6]), int(raw[6:8]))
    except ValueError:
        raise TelecomError(f"401-D1 {raw!r} is not a CCYYMMDD date", field="401-D1") from None


def _number(value: Decimal) -> int | float:
    """A Decimal as a JSON number: exact for D.0 amounts (at most 10 significant digits survive a float)."""
    return int(value) if value == value.to_integral_value() else float(value)
