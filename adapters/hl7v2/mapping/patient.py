"""PID → Patient, and the MRG merge of ADT^A40 → Patient.link (replaces / replaced-by).

The id is keyed by the first PID-3 identifier (type MR preferred) and its assigning authority (CX.4), never
by name or birth date, so A08/A31 updates land on the record A04/A28 created.
"""

from __future__ import annotations

from adapters.hl7v2.er7 import Composite, Segment
from adapters.hl7v2.mapping.bundle import JSON, Context, MappingError, guarded, key_id
from adapters.hl7v2.mapping.datatypes import (
    SSN_SYSTEM,
    address,
    authority,
    codeable,
    contact_point,
    fhir_date,
    fhir_datetime,
    human_name,
    identifier,
    identifier_system,
    v2_code,
)

_GENDER = {"M": "male", "F": "female", "O": "other", "A": "other", "N": "other", "U": "unknown"}


def _key_identifier(ids: list[Composite]) -> Composite | None:
    usable = [cx for cx in ids if cx.get(1)]
    for cx in usable:
        if cx.get(5).upper() == "MR":
            return cx
    return usable[0] if usable else None


def patient_id(cx: Composite, sender: str) -> str:
    """Patient id from one CX: assigning authority (CX.4, else the sender) + identifier value (CX.1)."""
    return key_id("Patient", authority(cx, 4) or sender, cx.get(1))


def patient(ctx: Context, pid: Segment) -> str:
    """Map PID and add the Patient to the Bundle; returns its reference. PID-3 (else PID-2/PID-4) is required."""
    d = pid.delimiters
    key = ("PID", d.component, d.repetition, d.escape, d.subcomponent, pid.text)
    resource = ctx.memo(key, lambda: _patient(ctx, pid))
    assert resource is not None
    return ctx.builder.put(resource)


def _patient(ctx: Context, pid: Segment) -> JSON:
    ids = pid.repetitions(3) or pid.repetitions(2) or pid.repetitions(4)
    key = _key_identifier(ids)
    if key is None:
        raise MappingError.at(pid, 3, "PID-3 patient identifier list is empty: no key for the Patient")
    sender = ctx.sender
    resource: JSON = {"resourceType": "Patient", "id": patient_id(key, sender)}
    identifiers = [i for i in (identifier(cx, sender) for cx in ids) if i is not None]
    for n in (2, 4):
        for cx in pid.repetitions(n):
            extra = identifier(cx, sender)
            if extra is not None and extra not in identifiers:
                identifiers.append(extra)
    ssn = pid.get(19)
    if ssn and not any(i["system"] == SSN_SYSTEM for i in identifiers):
        identifiers.append({"system": SSN_SYSTEM, "value": ssn, "type": v2_code("SS", "0203")})
    license_no = pid.get(20)
    if license_no:
        identifiers.append(
            {
                "system": identifier_system("driver-license", pid.get(20, 2) or "unknown"),
                "value": license_no,
                "type": v2_code("DL", "0203"),
            }
        )
    resource["identifier"] = identifiers
    names = [n for n in (human_name(x) for x in pid.repetitions(5)) if n is not None]
    if names:
        resource["name"] = names
    telecom = [t for t in (contact_point(x, "home") for x in pid.repetitions(13)) if t is not None]
    telecom += [t for t in (contact_point(x, "work") for x in pid.repetitions(14)) if t is not None]
    if telecom:
        resource["telecom"] = telecom
    gender = _GENDER.get(pid.get(8).upper())
    if gender:
        resource["gender"] = gender
    birth = guarded(pid, 7, pid.get(7), fhir_date)
    if birth:
        resource["birthDate"] = birth
    deceased_at = guarded(pid, 29, pid.get(29), fhir_datetime, ctx.tables)
    if deceased_at:
        resource["deceasedDateTime"] = deceased_at
    elif pid.get(30).upper() == "Y":
        resource["deceasedBoolean"] = True
    addresses = [a for a in (address(x) for x in pid.repetitions(11)) if a is not None]
    if addresses:
        resource["address"] = addresses
    marital = pid.get(16)
    if marital:
        concept = codeable(pid.composite(16), ctx.tables, sender)
        if concept is not None:
            resource["maritalStatus"] = concept
    return resource


def merge(ctx: Context, pid: Segment, mrg: Segment, surviving_ref: str) -> None:
    """ADT^A40: MRG-1 names the retired record; link both ways (Patient.link replaces / replaced-by)."""
    key = _key_identifier(mrg.repetitions(1))
    if key is None:
        raise MappingError.at(mrg, 1, "MRG-1 prior patient identifier list is empty")
    old_id = patient_id(key, ctx.sender)
    old_ref = "Patient/" + old_id
    if old_ref == surviving_ref:
        raise MappingError.at(mrg, 1, "MRG-1 names the surviving patient of PID-3 itself")
    resource = ctx.builder.get(surviving_ref)
    if resource is None:
        raise MappingError.at(pid, 3, "the surviving patient of an A40 merge must be mapped first")
    resource.setdefault("link", []).append({"other": {"reference": old_ref}, "type": "replaces"})
    old_ident = identifier(key, ctx.sender)
    ctx.builder.put(
        {
            "resourceType": "Patient",
            "id": old_id,
            "identifier": [old_ident] if old_ident else [],
            "active": False,
            "link": [{"other": {"reference": surviving_ref}, "type": "replaced-by"}],
        }
    )

