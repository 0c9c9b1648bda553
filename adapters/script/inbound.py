"""SCRIPT 2017071/2023011 messages to one FHIR R4 transaction Bundle each (tables in docs/script-mapping.md).

NewRx → MedicationRequest, RxFill → MedicationDispense, CancelRx → the same MedicationRequest cancelled,
requests and responses → Task. Ids come from business keys (Header/PrescriberOrderNumber, NCPDPID/NPI,
patient identifiers), never from display text, so a message delivered twice lands on the same resources.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from adapters.script.elements import (
    RXNORM_QUALIFIERS,
    Address,
    Coded,
    Drug,
    Party,
    SigInstruction,
    find_party,
    read_drug,
    zoned_datetime,
)
from adapters.script.errors import (
    AmbiguousMessageError,
    InvalidValueError,
    MissingElementError,
    StrictModeError,
    UnsupportedTransactionError,
)
from adapters.script.reader import DEFAULT_MAX_BYTES, DEFAULT_VERSION, ScriptMessage, read_message
from adapters.script.tree import Node, elements, node_at, text
from adapters.script.units import quantity
from interop.fhir.ids import business_id as _business_id
from interop.fhir.systems import CodeSystem, extension_url, normalize_ndc
from interop.fhir.systems import identifier_system as _identifier_system

log = logging.getLogger(__name__)

business_id = lru_cache(maxsize=8192)(_business_id)
"""Ids of the same pharmacy, prescriber and drug recur in every message: hashing them once is enough."""
identifier_system = lru_cache(maxsize=1024)(_identifier_system)

Resource = dict[str, Any]

NCI_SYSTEM = CodeSystem.NCI.value
NDC_SYSTEM = CodeSystem.NDC.value
NPI_SYSTEM = CodeSystem.NPI.value
RXNORM_SYSTEM = CodeSystem.RXNORM.value
SNOMED_SYSTEM = CodeSystem.SNOMED.value
UCUM_SYSTEM = CodeSystem.UCUM.value
V2_0203_SYSTEM = CodeSystem.V2_0203.value
V3_ACT_CODE_SYSTEM = CodeSystem.V3_ACT_CODE.value
"""Plain-str copies of the code systems used on the hot path (enum member access costs a descriptor call)."""
NCPDP_PROVIDER_ID = "http://terminology.hl7.org/CodeSystem/NCPDPProviderIdentificationNumber"
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
US_MBI = "http://hl7.org/fhir/sid/us-mbi"
MESSAGE_ID_SYSTEM = identifier_system("script-message-id", "ncpdp")
ORDER_NUMBER_SYSTEM = identifier_system("prescriber-order-number", "ncpdp")
FILL_NUMBER_URL = extension_url("fill-number")
UNIDENTIFIED_PATIENT = "Patient not identified in the SCRIPT message"

PATIENT_KEY_ELEMENTS = ("MedicalRecordIdentificationNumberEHR", "MedicareNumber", "MedicaidNumber",
                        "PatientAccountNumber", "PayerID")
"""Patient/HumanPatient/Identification children usable as keys, best first (SocialSecurity never is)."""

PRESCRIBER_SENT = frozenset({"NewRx", "CancelRx", "RxRenewalResponse", "RxChangeResponse"})

FILL_STATUS = {
    "Dispensed": "completed",
    "PartiallyDispensed": "completed",
    "NotDispensed": "declined",
    "Transferred": "stopped",
}
RESPONSE_STATUS = {
    "Approved": "completed",
    "ApprovedWithChanges": "completed",
    "Replace": "completed",
    "Validated": "completed",
    "Denied": "rejected",
    "DeniedNewPrescriptionToFollow": "rejected",
}
TASK_CODES = {
    "CancelRx": "abort",
    "CancelRxResponse": "abort",
    "RxRenewalRequest": "approve",
    "RxRenewalResponse": "approve",
    "RxChangeRequest": "change",
    "RxChangeResponse": "change",
}
_GENDER = {"M": "male", "F": "female", "U": "unknown", "X": "other"}
_CODE_QUALIFIER_SYSTEMS = {"SNOMED": SNOMED_SYSTEM, "SCT": SNOMED_SYSTEM,
                           "NCI": NCI_SYSTEM, "ABF": ICD10CM, "LD": SNOMED_SYSTEM}


@dataclass(frozen=True, slots=True)
class Conversion:
    """One message converted: the transaction Bundle, what was read, and what was assumed on the way."""

    bundle: Resource
    version: str
    transaction: str
    warnings: tuple[str, ...]


def to_fhir(
    data: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES, default_version: str = DEFAULT_VERSION
) -> Resource:
    """One SCRIPT document → its FHIR R4 transaction Bundle (raises a ``ScriptError`` naming the element)."""
    return convert(data, max_bytes=max_bytes, default_version=default_version).bundle


def convert(
    data: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES, default_version: str = DEFAULT_VERSION
) -> Conversion:
    """Like ``to_fhir``, keeping the version read and the warnings (missing version, unidentified patient)."""
    return message_to_fhir(read_message(data, max_bytes=max_bytes, default_version=default_version))


def to_bundles(data: bytes, strict: bool = False) -> list[Resource]:
    """The front door's converter (``interop.ingest.convert.CONVERTERS["script"]``): one document, one Bundle.

    ``strict`` refuses what the lenient reading accepts with a warning (no version, no Patient).
    """
    conversion = convert(data)
    if strict and conversion.warnings:
        raise StrictModeError("; ".join(conversion.warnings))
    return [conversion.bundle]


def message_to_fhir(message: ScriptMessage) -> Conversion:
    """Map an already-read message by its Body transaction."""
    mapper = _MAPPERS.get(message.transaction)
    if mapper is None:
        raise UnsupportedTransactionError(
            f"{message.transaction} is not mapped (supported: {', '.join(_MAPPERS)})", path=message.body_path
        )
    builder = _Builder(message)
    mapper(builder)
    bundle: Resource = {"resourceType": "Bundle", "type": "transaction"}
    if message.message_id:
        bundle["identifier"] = {"system": MESSAGE_ID_SYSTEM, "value": message.message_id}
    bundle["entry"] = builder.entries
    for warning in builder.warnings:
        log.warning("%s %s: %s", message.transaction, message.message_id, warning)
    return Conversion(bundle, message.version, message.transaction, tuple(builder.warnings))


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _ref(resource: Resource) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def _codeable(item: Coded | None) -> Resource | None:
    """A CodeableConcept: coded when the qualifier names a system we can cite, else the text alone."""
    if item is None:
        return None
    system = _CODE_QUALIFIER_SYSTEMS.get(item.qualifier.upper())
    if system is None and item.code[:1] == "C" and item.code[1:].isdigit():
        system = NCI_SYSTEM
    concept: Resource = {}
    if system and item.code:
        coding: Resource = {"system": system, "code": item.code}
        if item.text:
            coding["display"] = item.text
        concept["coding"] = [coding]
    label = item.text or ("" if system else item.code)
    if label:
        concept["text"] = label
    return concept or None


def _address(address: Address | None) -> list[Resource]:
    if address is None:
        return []
    result: Resource = {}
    if address.lines:
        result["line"] = list(address.lines)
    for key, value in (("city", address.city), ("state", address.state), ("postalCode", address.postal_code),
                       ("country", address.country)):
        if value:
            result[key] = value
    return [result]


def _human_name(party: Party) -> list[Resource]:
    name: Resource = {}
    if party.family:
        name["family"] = party.family
    if party.given:
        name["given"] = list(party.given)
    if party.suffix:
        name["suffix"] = [party.suffix]
    return [name] if name else []


def _contact(resource: Resource, party: Party) -> None:
    if party.phone:
        resource["telecom"] = [{"system": "phone", "value": party.phone}]
    address = _address(party.address)
    if address:
        resource["address"] = address


class _Builder:
    """Collects the entries of one Bundle; each resource is PUT once under its business-key id."""

    def __init__(self, message: ScriptMessage) -> None:
        self.message = message
        self.body = message.body
        self.where = message.body_path
        self.entries: list[Resource] = []
        self.warnings: list[str] = list(message.warnings)
        self._ids: set[str] = set()
        # The prescriber's system assigns Patient/Identification numbers (MRN). Its best stable name in
        # every message type is the prescriber's NPI; else the prescriber side's routing id (From on what
        # the prescriber sends, To on what the pharmacy sends).
        prescriber = node_at(message.body, "Prescriber/NonVeterinarian") or node_at(message.body,
                                                                                   "Prescriber/Veterinarian")
        side = "From" if message.transaction in PRESCRIBER_SENT else "To"
        self.mrn_assigner = (text(prescriber, "Identification/NPI") or message.header_text(side)
                             or "unknown")

    def put(self, resource: Resource) -> str:
        reference = _ref(resource)
        if reference not in self._ids:
            self._ids.add(reference)
            self.entries.append({
                "fullUrl": f"urn:uuid:{resource['id']}",
                "resource": resource,
                "request": {"method": "PUT", "url": reference},
            })
        return reference

    # Keys ------------------------------------------------------------------------------------------------

    def rx_key(self, *, own_message: bool) -> tuple[str, str]:
        """The prescription's key: Header/PrescriberOrderNumber, else the NewRx's MessageID.

        ``own_message`` says the message itself is the NewRx (its MessageID keys it); other messages
        reach the NewRx through Header/RelatesToMessageID.
        """
        order = self.message.header_text("PrescriberOrderNumber")
        if order:
            return ("order", order)
        message_id = self.message.message_id if own_message else self.message.relates_to
        if message_id:
            return ("message", message_id)
        needed = "MessageID" if own_message else "RelatesToMessageID"
        raise MissingElementError(
            f"neither PrescriberOrderNumber nor {needed} identifies the prescription", path="Message/Header"
        )

    def medication_request_id(self, key: tuple[str, str]) -> str:
        return business_id("MedicationRequest", *key)

    # Parties ---------------------------------------------------------------------------------------------

    def patient(self, scope: tuple[str, ...]) -> Resource:
        """subject: Patient keyed by MRN (sender-scoped), MBI or another id; else by ``scope`` (the Rx)."""
        party = find_party(self.body, self.where, "Patient/HumanPatient", "Patient")
        if party is None:
            self.warnings.append(f"{self.where}/Patient missing: subject carries a display only")
            return {"display": UNIDENTIFIED_PATIENT}
        identifiers: list[Resource] = []
        key: tuple[str, ...] = ()
        for element, value in party.identifiers:
            if element == "SocialSecurity":
                identifiers.append({"system": "http://hl7.org/fhir/sid/us-ssn", "value": value})
                continue
            system = (US_MBI if element == "MedicareNumber"
                      else identifier_system(f"script-{element.lower()}", self.mrn_assigner))
            identifier: Resource = {"system": system, "value": value}
            if element == "MedicalRecordIdentificationNumberEHR":
                identifier["type"] = {"coding": [{"system": V2_0203_SYSTEM, "code": "MR"}]}
            identifiers.append(identifier)
            if not key and element in PATIENT_KEY_ELEMENTS:
                key = (system, value)
        resource: Resource = {
            "resourceType": "Patient",
            "id": business_id("Patient", *(key or ("prescription", *scope))),
        }
        if identifiers:
            resource["identifier"] = identifiers
        name = _human_name(party)
        if name:
            resource["name"] = name
        if party.gender:
            gender = _GENDER.get(party.gender.upper())
            if gender is None:
                raise InvalidValueError(f"{party.gender!r} is not M, F, U or X", path=f"{party.path}/Gender")
            resource["gender"] = gender
        if party.birth_date:
            resource["birthDate"] = party.birth_date
        _contact(resource, party)
        return {"reference": self.put(resource)}

    def prescriber(self, scope: tuple[str, ...]) -> Resource | None:
        """Prescriber/NonVeterinarian → Practitioner keyed by NPI, else DEA, else by ``scope``."""
        party = find_party(self.body, self.where, "Prescriber/NonVeterinarian", "Prescriber/Veterinarian")
        if party is None:
            return None
        npi, dea = party.identifier("NPI"), party.identifier("DEANumber")
        identifiers: list[Resource] = []
        if npi:
            identifiers.append({"system": NPI_SYSTEM, "value": npi})
        if dea:
            identifiers.append({"type": {"coding": [{"system": V2_0203_SYSTEM, "code": "DEA"}]},
                                "value": dea})
        if npi:
            key: tuple[str, ...] = (NPI_SYSTEM, npi)
        elif dea:
            key = ("DEA", dea)
        else:
            key = ("prescription", *scope)
        resource: Resource = {"resourceType": "Practitioner", "id": business_id("Practitioner", *key)}
        if identifiers:
            resource["identifier"] = identifiers
        name = _human_name(party)
        if name:
            resource["name"] = name
        _contact(resource, party)
        return {"reference": self.put(resource)}

    def pharmacy(self) -> tuple[Resource | None, str]:
        """Pharmacy → Organization keyed by NCPDPID, else NPI; also the key value ("" when unidentified)."""
        party = find_party(self.body, self.where, "Pharmacy")
        if party is None:
            return None, ""
        ncpdp, npi = party.identifier("NCPDPID"), party.identifier("NPI")
        identifiers: list[Resource] = []
        if ncpdp:
            identifiers.append({"system": NCPDP_PROVIDER_ID, "value": ncpdp})
        if npi:
            identifiers.append({"system": NPI_SYSTEM, "value": npi})
        if not identifiers:
            if party.business_name:
                self.warnings.append(f"{party.path} has no NCPDPID or NPI: not linked")
            return None, ""
        key = (NCPDP_PROVIDER_ID, ncpdp) if ncpdp else (NPI_SYSTEM, npi)
        resource: Resource = {
            "resourceType": "Organization",
            "id": business_id("Organization", *key),
            "identifier": identifiers,
            "active": True,
        }
        if party.business_name:
            resource["name"] = party.business_name
        _contact(resource, party)
        return {"reference": self.put(resource)}, key[1]

    # Drug ------------------------------------------------------------------------------------------------

    def drug(self, path: str) -> Drug:
        """The drug at ``path``, which must be present."""
        found = self.optional_drug(path)
        if found is None:
            raise MissingElementError("missing", path=f"{self.where}/{path}")
        return found

    def optional_drug(self, path: str) -> Drug | None:
        node = node_at(self.body, path)
        return None if node is None else read_drug(node, f"{self.where}/{path}")

    def medication(self, drug: Drug, scope: tuple[str, ...]) -> Resource:
        """Medication keyed by NDC (11-digit) or RxNorm code, else by ``scope``; DrugDescription is text."""
        codings: list[Resource] = []
        key: tuple[str, ...] = ()
        product = drug.product_code
        if product is not None and product.code:
            if product.qualifier.upper() in ("ND", "NDC", ""):
                # normalize_ndc accepts any Unicode digit; an NDC is ASCII.
                ndc = normalize_ndc(product.code) if product.code.isascii() else None
                if ndc is None:
                    raise InvalidValueError(f"{product.code!r} is not an NDC (11 digits, or hyphenated 10)",
                                            path=f"{drug.path}/DrugCoded/ProductCode")
                codings.append({"system": NDC_SYSTEM, "code": ndc})
                key = (NDC_SYSTEM, ndc)
            else:
                self.warnings.append(f"{drug.path}/DrugCoded/ProductCode qualifier {product.qualifier!r} "
                                     "has no FHIR system: kept as text")
        db = drug.db_code
        if db is not None and db.code:
            qualifier = db.qualifier.upper()
            if qualifier in RXNORM_QUALIFIERS:
                codings.append({"system": RXNORM_SYSTEM, "code": db.code})
                key = key or (RXNORM_SYSTEM, db.code)
            elif qualifier in ("SCT", "SNOMED"):
                codings.append({"system": SNOMED_SYSTEM, "code": db.code})
                key = key or (SNOMED_SYSTEM, db.code)
        resource: Resource = {
            "resourceType": "Medication",
            "id": business_id("Medication", *(key or ("prescription", *scope))),
        }
        code: Resource = {}
        if codings:
            code["coding"] = codings
        if drug.description:
            code["text"] = drug.description
        if code:
            resource["code"] = code
        form = _codeable(drug.strength_form)
        if form:
            resource["form"] = form
        return {"reference": self.put(resource)}

    def dosage(self, drug: Drug) -> list[Resource]:
        """Sig/SigText → Dosage.text; each Sig/Instruction → structured fields, kept verbatim, never merged."""
        if not drug.instructions:
            return [{"text": drug.sig_text}] if drug.sig_text else []
        dosages = [_structured(item, index + 1) for index, item in enumerate(drug.instructions)]
        if drug.sig_text:
            dosages[0]["text"] = drug.sig_text
        return dosages

    def quantity(self, drug: Drug) -> Resource | None:
        if drug.quantity is None:
            return None
        unit = drug.quantity_unit
        return quantity(_number(drug.quantity), unit.code if unit else "", unit.text if unit else "")

    # Resources -------------------------------------------------------------------------------------------

    def medication_request(self, drug: Drug, key: tuple[str, str], status: str) -> Resource:
        """NewRx/MedicationPrescribed → MedicationRequest (ncpdp.md §2.6, not R4's shifted 10.6 table)."""
        resource: Resource = {
            "resourceType": "MedicationRequest",
            "id": self.medication_request_id(key),
            "status": status,
            "intent": "order",
        }
        if key[0] == "order":
            resource["identifier"] = [{
                "type": {"coding": [{"system": V2_0203_SYSTEM, "code": "PLAC"}]},
                "system": ORDER_NUMBER_SYSTEM,
                "value": key[1],
            }]
        resource["medicationReference"] = self.medication(drug, key)
        resource["subject"] = self.patient(key)
        if drug.written_date:
            resource["authoredOn"] = drug.written_date
        requester = self.prescriber(key)
        if requester:
            resource["requester"] = requester
        reasons = [c for c in (_codeable(d) for d in drug.diagnoses) if c]
        if reasons:
            resource["reasonCode"] = reasons
        if drug.note:
            resource["note"] = [{"text": drug.note}]
        dosage = self.dosage(drug)
        if dosage:
            resource["dosageInstruction"] = dosage
        dispense = self.dispense_request(drug)
        if dispense:
            resource["dispenseRequest"] = dispense
        allowed = _substitution_allowed(drug)
        if allowed is not None:
            resource["substitution"] = {"allowedBoolean": allowed}
        return resource

    def dispense_request(self, drug: Drug) -> Resource:
        dispense: Resource = {}
        period = {k: v for k, v in (("start", drug.effective_date), ("end", drug.expiration_date)) if v}
        if period:
            dispense["validityPeriod"] = period
        if drug.refills is not None:
            dispense["numberOfRepeatsAllowed"] = drug.refills
        amount = self.quantity(drug)
        if amount:
            dispense["quantity"] = amount
        if drug.days_supply is not None:
            dispense["expectedSupplyDuration"] = _days(drug.days_supply)
        performer, _ = self.pharmacy()
        if performer:
            dispense["performer"] = performer
        return dispense

    def task(self, task_key: str, status: str) -> Resource:
        """The Task tracking one request/response exchange, keyed by the request's MessageID."""
        if not task_key:
            raise MissingElementError("MessageID missing: the exchange has no key", path="Message/Header/MessageID")
        task: Resource = {
            "resourceType": "Task",
            "id": business_id("Task", MESSAGE_ID_SYSTEM, task_key),
            "identifier": [{"system": MESSAGE_ID_SYSTEM, "value": task_key}],
            "status": status,
            "intent": "order",
            "code": {"coding": [{"system": TASK_CODE, "code": TASK_CODES[self.message.transaction]}],
                     "text": self.message.transaction},
        }
        sent = zoned_datetime(self.message.sent_time)
        if sent:
            task["authoredOn"] = sent
        return task


def _days(days: int) -> Resource:
    return {"value": days, "unit": "days", "system": UCUM_SYSTEM, "code": "d"}


def _substitution_allowed(drug: Drug) -> bool | None:
    """Substitutions 0 → substitution allowed, 1 → not allowed (dispense as written)."""
    if not drug.substitutions:
        return None
    if drug.substitutions not in ("0", "1"):
        raise InvalidValueError(f"{drug.substitutions!r} is not 0 or 1", path=f"{drug.path}/Substitutions")
    return drug.substitutions == "0"


def _structured(item: SigInstruction, sequence: int) -> Resource:
    dosage: Resource = {"sequence": sequence}
    if item.timing_text:
        dosage["timing"] = {"code": {"text": item.timing_text}}
    extra = [{"text": t} for t in (item.duration_text, item.indication_text) if t]
    if extra:
        dosage["additionalInstruction"] = extra
    for key, value in (("site", item.site), ("route", item.route), ("method", item.method)):
        concept = _codeable(value)
        if concept:
            dosage[key] = concept
    if item.dose_quantity is not None:
        unit = item.dose_unit
        dose = quantity(_number(item.dose_quantity), unit.code if unit else "", unit.text if unit else "")
        dosage["doseAndRate"] = [{"doseQuantity": dose}]
    return dosage


# Transactions ----------------------------------------------------------------------------------------------


def _new_rx(b: _Builder) -> None:
    """NewRx → MedicationRequest (active) + Patient, Practitioner, pharmacy Organization, Medication."""
    drug = b.drug("MedicationPrescribed")
    b.put(b.medication_request(drug, b.rx_key(own_message=True), "active"))


def _cancel_rx(b: _Builder) -> None:
    """CancelRx → the NewRx's MedicationRequest (same key) with status cancelled, and a Task (abort)."""
    key = b.rx_key(own_message=False)
    drug = b.drug("MedicationPrescribed")
    request = b.medication_request(drug, key, "cancelled")
    request["statusReason"] = {"text": "Cancelled by the prescriber (NCPDP SCRIPT CancelRx)"}
    reference = b.put(request)
    task = b.task(b.message.message_id or key[1], "requested")
    task["focus"] = {"reference": reference}
    task["for"] = request["subject"]
    if "requester" in request:
        task["requester"] = request["requester"]
    b.put(task)


def _rx_fill(b: _Builder) -> None:
    """RxFill → MedicationDispense linked to the NewRx's MedicationRequest by authorizingPrescription."""
    choices = elements(node_at(b.body, "FillStatus") or {})
    if not choices:
        raise MissingElementError("FillStatus (Dispensed, PartiallyDispensed, NotDispensed or Transferred) missing",
                                  path=f"{b.where}/FillStatus")
    if len(choices) > 1:
        raise AmbiguousMessageError(f"FillStatus holds {len(choices)} choices", path=f"{b.where}/FillStatus")
    fill_status, value = choices[0]
    choice = value if isinstance(value, dict) else {}
    if fill_status not in FILL_STATUS:
        raise InvalidValueError(f"{fill_status!r} is not a FillStatus choice", path=f"{b.where}/FillStatus")
    key = b.rx_key(own_message=False)
    prescribed = b.optional_drug("MedicationPrescribed")
    dispensed = b.optional_drug("MedicationDispensed") or prescribed
    if dispensed is None:
        raise MissingElementError("MedicationDispensed missing", path=f"{b.where}/MedicationDispensed")
    performer, pharmacy_key = b.pharmacy()
    rx_number = b.message.header_text("RxReferenceNumber")
    fill_number = dispensed.fill_number
    if rx_number and fill_number is not None:
        dispense_key: tuple[str, ...] = (pharmacy_key, rx_number, "fill", str(fill_number))
    elif rx_number and dispensed.last_fill_date:
        dispense_key = (pharmacy_key, rx_number, "date", dispensed.last_fill_date)
    else:
        dispense_key = ("message", b.message.message_id or key[1])
    dispense: Resource = {
        "resourceType": "MedicationDispense",
        "id": business_id("MedicationDispense", *(part or "unidentified" for part in dispense_key)),
    }
    if fill_number is not None:
        dispense["extension"] = [{"url": FILL_NUMBER_URL, "valueUnsignedInt": fill_number}]
    if rx_number:
        assigner = pharmacy_key or b.message.header_text("From") or "unknown"
        dispense["identifier"] = [{"system": identifier_system("rx-number", assigner), "value": rx_number}]
    dispense["status"] = FILL_STATUS[fill_status]
    reason = text(choice, "ReasonCode")
    note = text(choice, "Note")
    if fill_status == "NotDispensed" and (reason or note):
        dispense["statusReasonCodeableConcept"] = {"text": " ".join(v for v in (reason, note) if v)}
    if fill_status == "PartiallyDispensed":
        first = fill_number in (None, 0)
        dispense["type"] = {"coding": [{"system": V3_ACT_CODE_SYSTEM, "code": "FFP" if first else "RFP",
                                        "display": "First Fill - Part Fill" if first else "Refill - Part Fill"}]}
    dispense["medicationReference"] = b.medication(dispensed, ("dispense", *dispense_key))
    dispense["subject"] = b.patient(key)
    if performer:
        dispense["performer"] = [{"actor": performer}]
    dispense["authorizingPrescription"] = [{"reference": f"MedicationRequest/{b.medication_request_id(key)}"}]
    amount = b.quantity(dispensed)
    if amount:
        dispense["quantity"] = amount
    if dispensed.days_supply is not None:
        dispense["daysSupply"] = _days(dispensed.days_supply)
    if dispensed.last_fill_date and fill_status in ("Dispensed", "PartiallyDispensed"):
        dispense["whenHandedOver"] = dispensed.last_fill_date
    notes = [n for n in (note if fill_status != "NotDispensed" else "", dispensed.note) if n]
    if fill_status == "Transferred":
        notes.insert(0, "Transferred to another pharmacy (NCPDP SCRIPT RxFill FillStatus/Transferred)")
    if notes:
        dispense["note"] = [{"text": n} for n in notes]
    dosage = b.dosage(dispensed)
    if dosage:
        dispense["dosageInstruction"] = dosage
    if prescribed is not None and dispensed is not prescribed:
        was = _substituted(prescribed, dispensed)
        if was is not None:
            dispense["substitution"] = {"wasSubstituted": was}
    b.put(dispense)


def _substituted(prescribed: Drug, dispensed: Drug) -> bool | None:
    """wasSubstituted: the dispensed NDC differs from the prescribed one (unknown unless both are coded)."""
    first, second = prescribed.product_code, dispensed.product_code
    if first is None or second is None or not first.code or not second.code:
        return None
    return normalize_ndc(first.code) != normalize_ndc(second.code)


def _request(b: _Builder) -> None:
    """RxRenewalRequest / RxChangeRequest → Task (requested) focused on the prescription when it is named."""
    task = b.task(b.message.message_id or b.message.relates_to, "requested")
    order = b.message.header_text("PrescriberOrderNumber")
    scope: tuple[str, str] = ("order", order) if order else ("message", task["identifier"][0]["value"])
    if order:
        task["focus"] = {"reference": f"MedicationRequest/{b.medication_request_id(scope)}"}
    task["for"] = b.patient(scope)
    performer, _ = b.pharmacy()
    if performer:
        task["requester"] = performer
    owner = b.prescriber(scope)
    if owner:
        task["owner"] = owner
    reason = text(b.body, "MessageRequestCode") or text(b.body, "MessageRequestSubCode")
    if reason:
        task["reasonCode"] = {"text": reason}
    inputs: list[Resource] = []
    for path in ("MedicationPrescribed", "MedicationRequested", "MedicationDispensed"):
        drug = b.optional_drug(path)
        if drug is None:
            continue
        inputs.append({"type": {"text": path}, "valueReference": b.medication(drug, (*scope, path))})
        amount = b.quantity(drug)
        if amount:
            inputs.append({"type": {"text": f"{path}/Quantity"}, "valueQuantity": amount})
        if drug.days_supply is not None:
            inputs.append({"type": {"text": f"{path}/DaysSupply"}, "valueQuantity": _days(drug.days_supply)})
        if drug.refills is not None:
            inputs.append({"type": {"text": f"{path}/NumberOfRefills"}, "valueUnsignedInt": drug.refills})
        if drug.last_fill_date:
            inputs.append({"type": {"text": f"{path}/LastFillDate"}, "valueDate": drug.last_fill_date})
    if inputs:
        task["input"] = inputs
    b.put(task)


def _response_choice(b: _Builder) -> tuple[str, Node]:
    response = node_at(b.body, "Response")
    if response is None:
        raise MissingElementError("Response missing", path=f"{b.where}/Response")
    choices = [(tag, value) for tag, value in elements(response) if tag in RESPONSE_STATUS]
    if not choices:
        raise MissingElementError(
            f"Response carries no outcome (one of {', '.join(RESPONSE_STATUS)})", path=f"{b.where}/Response"
        )
    if len(choices) > 1:
        names = ", ".join(tag for tag, _ in choices)
        raise AmbiguousMessageError(f"Response carries {len(choices)} outcomes ({names}); SCRIPT allows one",
                                    path=f"{b.where}/Response")
    tag, value = choices[0]
    return tag, value if isinstance(value, dict) else {}


def _response(b: _Builder) -> None:
    """CancelRxResponse / RxRenewalResponse / RxChangeResponse → the request's Task, completed or rejected.

    An approved renewal or change (Approved, ApprovedWithChanges, Replace) with a MedicationPrescribed
    (nested in the choice or beside Response) is also a new MedicationRequest, the Task's output.
    """
    outcome, choice = _response_choice(b)
    if not b.message.relates_to:
        raise MissingElementError("RelatesToMessageID missing: the response names no request",
                                  path="Message/Header/RelatesToMessageID")
    task = b.task(b.message.relates_to, RESPONSE_STATUS[outcome])
    task["businessStatus"] = {"text": outcome}
    reason = " ".join(v for v in (text(choice, "ReasonCode"), text(choice, "DenialReason")) if v)
    if reason:
        task["statusReason"] = {"text": reason}
    note = text(choice, "Note")
    if note:
        task["note"] = [{"text": note}]
    order = b.message.header_text("PrescriberOrderNumber")
    renews = b.message.transaction != "CancelRxResponse" and RESPONSE_STATUS[outcome] == "completed"
    if order and not renews:
        # A cancel answer or a denial names the prescription it is about; an approval's order number is
        # the new prescription's (Task.output below).
        task["focus"] = {"reference": f"MedicationRequest/{b.medication_request_id(('order', order))}"}
    if renews:
        path = f"Response/{outcome}/MedicationPrescribed"
        drug = b.optional_drug(path) or b.optional_drug("MedicationPrescribed")
        if drug is not None:
            request = b.medication_request(drug, b.rx_key(own_message=True), "active")
            task["for"] = request["subject"]
            task["output"] = [{"type": {"text": f"{outcome} prescription"},
                               "valueReference": {"reference": b.put(request)}}]
    b.put(task)


def _acknowledgement(b: _Builder) -> None:
    """Status / Verify / Error → a Communication about the message it answers (RelatesToMessageID)."""
    if not (b.message.message_id or b.message.relates_to):
        raise MissingElementError("MessageID missing", path="Message/Header/MessageID")
    code, description = text(b.body, "Code"), text(b.body, "Description")
    detail = text(b.body, "DescriptionCode")
    communication: Resource = {
        "resourceType": "Communication",
        "id": business_id("Communication", MESSAGE_ID_SYSTEM, b.message.message_id or b.message.relates_to),
        "status": "completed",
        "category": [{"text": f"NCPDP SCRIPT {b.message.transaction}"}],
    }
    if b.message.message_id:
        communication["identifier"] = [{"system": MESSAGE_ID_SYSTEM, "value": b.message.message_id}]
    if b.message.relates_to:
        communication["about"] = [{"identifier": {"system": MESSAGE_ID_SYSTEM, "value": b.message.relates_to}}]
    sent = zoned_datetime(b.message.sent_time)
    if sent:
        communication["sent"] = sent
    parts = [p for p in (f"Code {code}" if code else "", f"DescriptionCode {detail}" if detail else "",
                         description) if p]
    if parts:
        communication["payload"] = [{"contentString": "; ".join(parts)}]
    b.put(communication)


_MAPPERS = {
    "NewRx": _new_rx,
    "RxFill": _rx_fill,
    "CancelRx": _cancel_rx,
    "CancelRxResponse": _response,
    "RxRenewalRequest": _request,
    "RxRenewalResponse": _response,
    "RxChangeRequest": _request,
    "RxChangeResponse": _response,
    "Status": _acknowledgement,
    "Verify": _acknowledgement,
    "Error": _acknowledgement,
}
