"""Code systems, extensions and shared values of outreach (conformance/CodeSystem-outreach-*.json).

Channels are ContactPoint.system codes (sms, email); message kinds, policy rule ids and staff Task codes
are ours; the tz-code extension is HL7's (IANA zone on the Patient).
"""

from __future__ import annotations

from typing import Any

from interop.fhir.systems import OUR_BASE, extension_url

Resource = dict[str, Any]

CHANNEL_SYSTEM = f"{OUR_BASE}/CodeSystem/outreach-channel"
KIND_SYSTEM = f"{OUR_BASE}/CodeSystem/outreach-kind"
RULE_SYSTEM = f"{OUR_BASE}/CodeSystem/outreach-rule"
TASK_SYSTEM = f"{OUR_BASE}/CodeSystem/outreach-task"
CONTENT_SYSTEM = f"{OUR_BASE}/CodeSystem/outreach-content"
COMM_CATEGORY = "http://terminology.hl7.org/CodeSystem/communication-category"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
LOINC = "http://loinc.org"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
TZ_EXTENSION = "http://hl7.org/fhir/StructureDefinition/tz-code"
CONTACT_EXTENSION = extension_url("outreach-contact")
CLAIM_EXTENSION = extension_url("outreach-claim")

CHANNELS = ("sms", "email")
KINDS = ("reminder", "review", "confirmation", "opt-out-confirmation", "reply")
CLINICAL_DETAIL = "clinical-detail"
"""Consent.provision.provision.code: the patient opted in to drug names and conditions in messages."""

KIND_CATEGORY = {
    "reminder": "reminder",
    "review": "reminder",
    "confirmation": "notification",
    "opt-out-confirmation": "notification",
    "reply": "notification",
}


def channel_concept(channel: str) -> Resource:
    """CommunicationRequest.medium / Communication.medium for ``channel``."""
    return {"coding": [{"system": CHANNEL_SYSTEM, "code": channel}], "text": channel.upper() if channel == "sms" else "E-mail"}


def kind_category(kind: str) -> Resource:
    """Category: HL7 communication-category plus our message kind (what the dispatcher renders)."""
    return {
        "coding": [
            {"system": COMM_CATEGORY, "code": KIND_CATEGORY[kind]},
            {"system": KIND_SYSTEM, "code": kind},
        ]
    }


def coded(concepts: list[Resource] | None, system: str) -> str | None:
    """The first code of ``system`` in a list of CodeableConcepts."""
    for concept in concepts or ():
        for coding in concept.get("coding", ()):
            if coding.get("system") == system and coding.get("code"):
                return str(coding["code"])
    return None


def patient_id(reference: str) -> str:
    """``Patient/123`` → ``123``; ValueError for any other reference."""
    rtype, sep, rid = reference.partition("/")
    if rtype != "Patient" or not sep or not rid:
        raise ValueError(f"not a Patient reference: {reference!r}")
    return rid
