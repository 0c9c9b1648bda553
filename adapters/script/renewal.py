"""Outbound SCRIPT RxRenewalRequest (pharmacy → prescriber) built from FHIR resources.

The sync planner asks for a renewal when the refills left cannot reach the anchor date; this writes the
message from the MedicationRequest, its last MedicationDispense and the three parties (2017071 by default,
2023011 selectable). The output reads back through ``read_message`` to the same facts (tests prove it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from lxml import etree

from adapters.script.errors import InvalidValueError, MissingElementError
from adapters.script.inbound import NCPDP_PROVIDER_ID, ORDER_NUMBER_SYSTEM, US_MBI
from adapters.script.reader import DEFAULT_VERSION, NAMESPACE, SUPPORTED_VERSIONS
from adapters.script.units import nci_units, ucum_to_nci
from interop.fhir.ids import NAMESPACE as ID_NAMESPACE
from interop.fhir.systems import OUR_BASE, CodeSystem

Resource = Mapping[str, Any]

VERSION_STAMPS = {"2017071": "20170715", "2023011": "20230115"}
"""Message/@*Version values written per SCRIPT version (2017071's is seen in real traffic; 2023011's is [wk])."""
UNSPECIFIED_UNIT = "C38046"
"""NCI 'Unspecified' QuantityUnitOfMeasure, written when the FHIR quantity names no NCI or UCUM unit."""
_RX_NUMBER_PREFIX = f"{OUR_BASE}/sid/rx-number/"
_GENDER = {"male": "M", "female": "F", "unknown": "U", "other": "X"}
_RXNORM_QUALIFIER = "SCD"
"""DrugDBCode qualifier for an RxNorm code: FHIR keeps no term type, so the clinical drug (SCD) is assumed."""


def renewal_message_id(medication_request_id: str, sent_time: datetime) -> str:
    """A MessageID stable for one prescription and send time, so a retried build resends the same message."""
    return uuid.uuid5(ID_NAMESPACE, f"RxRenewalRequest|{medication_request_id}|{sent_time.isoformat()}").hex


def build_renewal_request(
    medication_request: Resource,
    last_dispense: Resource,
    *,
    patient: Resource,
    prescriber: Resource,
    pharmacy: Resource,
    medications: Iterable[Resource] = (),
    sent_time: datetime,
    message_id: str = "",
    version: str = DEFAULT_VERSION,
) -> bytes:
    """An RxRenewalRequest XML document (UTF-8) asking ``prescriber`` to renew ``medication_request``.

    ``medications`` resolves ``medicationReference`` of the request and the dispense; ``sent_time`` must be
    timezone-aware (Header/SentTime); ``message_id`` defaults to ``renewal_message_id``.
    """
    if version not in SUPPORTED_VERSIONS:
        raise InvalidValueError(f"cannot write SCRIPT version {version!r}", path="version")
    if sent_time.tzinfo is None:
        raise InvalidValueError("sent_time must be timezone-aware", path="sent_time")
    by_ref = {f"Medication/{m.get('id')}": m for m in medications}
    pharmacy_ids = _identifiers(pharmacy)
    ncpdp, pharmacy_npi = pharmacy_ids.get(NCPDP_PROVIDER_ID, ""), pharmacy_ids.get(CodeSystem.NPI.value, "")
    if not (ncpdp or pharmacy_npi):
        raise MissingElementError("pharmacy has no NCPDPID or NPI identifier", path="Organization.identifier")
    prescriber_npi = _identifiers(prescriber).get(CodeSystem.NPI.value, "")
    if not prescriber_npi:
        raise MissingElementError("prescriber has no NPI identifier", path="Practitioner.identifier")

    stamp = VERSION_STAMPS[version]
    root = etree.Element(f"{{{NAMESPACE}}}Message", nsmap={None: NAMESPACE})
    for name in ("DatatypesVersion", "TransportVersion"):
        root.set(name, stamp)
    root.set("TransactionDomain", "SCRIPT")
    for name in ("TransactionVersion", "StructuresVersion", "ECLVersion"):
        root.set(name, stamp)
    header = _sub(root, "Header")
    _sub(header, "To", prescriber_npi).set("Qualifier", "D")
    _sub(header, "From", ncpdp or pharmacy_npi).set("Qualifier", "P")
    _sub(header, "MessageID",
         message_id or renewal_message_id(str(medication_request.get("id", "")), sent_time))
    _sub(header, "SentTime", sent_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    rx_number = _value_with_prefix(last_dispense.get("identifier", ()), _RX_NUMBER_PREFIX)
    if rx_number:
        _sub(header, "RxReferenceNumber", rx_number)
    order = _order_number(medication_request)
    if order:
        _sub(header, "PrescriberOrderNumber", order)

    body = _sub(_sub(root, "Body"), "RxRenewalRequest")
    _patient(_sub(_sub(body, "Patient"), "HumanPatient"), patient)
    _pharmacy(_sub(body, "Pharmacy"), ncpdp, pharmacy_npi, pharmacy)
    _prescriber(_sub(_sub(body, "Prescriber"), "NonVeterinarian"), prescriber)
    _dispensed(_sub(body, "MedicationDispensed"), last_dispense, by_ref)
    _prescribed(_sub(body, "MedicationPrescribed"), medication_request, by_ref)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _sub(parent: etree._Element, name: str, value: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, f"{{{NAMESPACE}}}{name}")
    if value is not None:
        child.text = value
    return child


def _identifiers(resource: Resource) -> dict[str, str]:
    return {str(i.get("system", "")): str(i.get("value", "")) for i in resource.get("identifier", ())
            if i.get("value")}


def _value_with_prefix(identifiers: Iterable[Resource], prefix: str) -> str:
    for identifier in identifiers:
        if str(identifier.get("system", "")).startswith(prefix) and identifier.get("value"):
            return str(identifier["value"])
    return ""


def _order_number(request: Resource) -> str:
    """Header/PrescriberOrderNumber: the identifier in our order-number system, else any of type PLAC."""
    for identifier in request.get("identifier", ()):
        codes = {c.get("code") for c in identifier.get("type", {}).get("coding", ())}
        if identifier.get("system") == ORDER_NUMBER_SYSTEM or "PLAC" in codes:
            return str(identifier.get("value", ""))
    return ""


def _name(parent: etree._Element, resource: Resource) -> None:
    names = resource.get("name") or [{}]
    name = names[0]
    node = _sub(parent, "Name")
    _sub(node, "LastName", str(name.get("family", "")))
    given = list(name.get("given", ()))
    if given:
        _sub(node, "FirstName", str(given[0]))
    if len(given) > 1:
        _sub(node, "MiddleName", " ".join(str(g) for g in given[1:]))
    suffix = list(name.get("suffix", ()))
    if suffix:
        _sub(node, "Suffix", str(suffix[0]))


def _contact(parent: etree._Element, resource: Resource) -> None:
    addresses = resource.get("address") or []
    if addresses:
        address = addresses[0]
        node = _sub(parent, "Address")
        for index, line in enumerate(list(address.get("line", ()))[:2]):
            _sub(node, f"AddressLine{index + 1}", str(line))
        for key, element in (("city", "City"), ("state", "StateProvince"), ("postalCode", "PostalCode"),
                             ("country", "CountryCode")):
            if address.get(key):
                _sub(node, element, str(address[key]))
    phones = [t for t in resource.get("telecom", ()) if t.get("system") == "phone" and t.get("value")]
    if phones:
        _sub(_sub(_sub(parent, "CommunicationNumbers"), "PrimaryTelephone"), "Number", str(phones[0]["value"]))


def _patient(node: etree._Element, patient: Resource) -> None:
    identification: list[tuple[str, str]] = []
    for identifier in patient.get("identifier", ()):
        codes = {c.get("code") for c in identifier.get("type", {}).get("coding", ())}
        value = str(identifier.get("value", ""))
        if "MR" in codes and value:
            identification.append(("MedicalRecordIdentificationNumberEHR", value))
        elif identifier.get("system") == US_MBI and value:
            identification.append(("MedicareNumber", value))
    if identification:
        ident = _sub(node, "Identification")
        for element, value in identification:
            _sub(ident, element, value)
    _name(node, patient)
    gender = _GENDER.get(str(patient.get("gender", "")))
    if gender:
        _sub(node, "Gender", gender)
    if patient.get("birthDate"):
        _sub(_sub(node, "DateOfBirth"), "Date", str(patient["birthDate"]))
    _contact(node, patient)


def _pharmacy(node: etree._Element, ncpdp: str, npi: str, pharmacy: Resource) -> None:
    ident = _sub(node, "Identification")
    if ncpdp:
        _sub(ident, "NCPDPID", ncpdp)
    if npi:
        _sub(ident, "NPI", npi)
    if pharmacy.get("name"):
        _sub(node, "BusinessName", str(pharmacy["name"]))
    _contact(node, pharmacy)


def _prescriber(node: etree._Element, prescriber: Resource) -> None:
    ident = _sub(node, "Identification")
    for identifier in prescriber.get("identifier", ()):
        codes = {c.get("code") for c in identifier.get("type", {}).get("coding", ())}
        if "DEA" in codes and identifier.get("value"):
            _sub(ident, "DEANumber", str(identifier["value"]))
    _sub(ident, "NPI", _identifiers(prescriber)[CodeSystem.NPI.value])
    _name(node, prescriber)
    _contact(node, prescriber)


def _concept(resource: Resource, by_ref: Mapping[str, Resource], where: str) -> Resource:
    """The drug's CodeableConcept: medicationCodeableConcept, or the referenced Medication's code."""
    if "medicationCodeableConcept" in resource:
        concept: Resource = resource["medicationCodeableConcept"]
        return concept
    reference = str(resource.get("medicationReference", {}).get("reference", ""))
    medication = by_ref.get(reference)
    if medication is None:
        raise MissingElementError(f"{reference or 'medication'} not among the medications passed in",
                                  path=f"{where}.medicationReference")
    code: Resource = medication.get("code", {})
    return code


def _drug(node: etree._Element, concept: Resource) -> None:
    """DrugDescription and DrugCoded (ProductCode ND, DrugDBCode RxNorm)."""
    codings = {str(c.get("system")): str(c.get("code")) for c in concept.get("coding", ()) if c.get("code")}
    description = str(concept.get("text") or "")
    if not description:
        description = next((str(c.get("display")) for c in concept.get("coding", ()) if c.get("display")), "")
    _sub(node, "DrugDescription", description)
    ndc, rxnorm = codings.get(CodeSystem.NDC.value), codings.get(CodeSystem.RXNORM.value)
    if ndc or rxnorm:
        coded = _sub(node, "DrugCoded")
        if ndc:
            product = _sub(coded, "ProductCode")
            _sub(product, "Code", ndc)
            _sub(product, "Qualifier", "ND")
        if rxnorm:
            db = _sub(coded, "DrugDBCode")
            _sub(db, "Code", rxnorm)
            _sub(db, "Qualifier", _RXNORM_QUALIFIER)


def _decimal_text(value: object) -> str:
    """Plain decimal notation (``90``, ``150.5``, ``0.0000001``), never an exponent SCRIPT would refuse."""
    return format(Decimal(str(value)).normalize(), "f")


def _quantity(node: etree._Element, amount: Resource | None) -> None:
    if not amount or amount.get("value") is None:
        return
    quantity = _sub(node, "Quantity")
    _sub(quantity, "Value", _decimal_text(amount["value"]))
    _sub(quantity, "CodeListQualifier", "38")
    code = str(amount.get("code", ""))
    if amount.get("system") == CodeSystem.NCI.value and code in nci_units():
        nci = code
    elif amount.get("system") == CodeSystem.UCUM.value:
        nci = ucum_to_nci(code) or UNSPECIFIED_UNIT
    else:
        nci = UNSPECIFIED_UNIT
    _sub(_sub(quantity, "QuantityUnitOfMeasure"), "Code", nci)


def _days(duration: Resource | None, where: str) -> str:
    if not duration or duration.get("value") is None:
        return ""
    if duration.get("code", "d") != "d":
        raise InvalidValueError(f"days supply in {duration.get('code')!r}, not days (d)", path=where)
    value = Decimal(str(duration["value"]))
    if value != value.to_integral_value() or value < 0:
        raise InvalidValueError(f"days supply {value} is not a whole number of days", path=where)
    return str(int(value))


def _sig(node: etree._Element, resource: Resource) -> None:
    texts = [str(d["text"]) for d in resource.get("dosageInstruction", ()) if d.get("text")]
    if texts:
        _sub(_sub(node, "Sig"), "SigText", " ".join(texts))


def _dispensed(node: etree._Element, dispense: Resource, by_ref: Mapping[str, Resource]) -> None:
    """MedicationDispensed: the last fill (drug, quantity, days supply, LastFillDate, Sig)."""
    _drug(node, _concept(dispense, by_ref, "MedicationDispense"))
    _quantity(node, dispense.get("quantity"))
    days = _days(dispense.get("daysSupply"), "MedicationDispense.daysSupply")
    if days:
        _sub(node, "DaysSupply", days)
    when = str(dispense.get("whenHandedOver") or dispense.get("whenPrepared") or "")
    if when:
        _sub(_sub(node, "LastFillDate"), "Date", when[:10])
    _sig(node, dispense)


def _prescribed(node: etree._Element, request: Resource, by_ref: Mapping[str, Resource]) -> None:
    """MedicationPrescribed: the prescription being renewed, by the same table as NewRx read backwards."""
    _drug(node, _concept(request, by_ref, "MedicationRequest"))
    dispense = request.get("dispenseRequest", {})
    _quantity(node, dispense.get("quantity"))
    days = _days(dispense.get("expectedSupplyDuration"), "MedicationRequest.dispenseRequest.expectedSupplyDuration")
    if days:
        _sub(node, "DaysSupply", days)
    if request.get("authoredOn"):
        _sub(_sub(node, "WrittenDate"), "Date", str(request["authoredOn"])[:10])
    allowed = request.get("substitution", {}).get("allowedBoolean")
    if isinstance(allowed, bool):
        _sub(node, "Substitutions", "0" if allowed else "1")
    repeats = dispense.get("numberOfRepeatsAllowed")
    if repeats is not None:
        _sub(node, "NumberOfRefills", str(int(repeats)))
    _sig(node, request)
    notes = [str(n["text"]) for n in request.get("note", ()) if n.get("text")]
    if notes:
        _sub(node, "Note", " ".join(notes))

