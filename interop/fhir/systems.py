"""Canonical code system and identifier system URIs, and NDC normalization.

Never an ``http://example.com/...`` placeholder: a code whose system we cannot name is emitted as text only.
"""

from __future__ import annotations

import re
from enum import StrEnum


class CodeSystem(StrEnum):
    NDC = "http://hl7.org/fhir/sid/ndc"
    RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
    UCUM = "http://unitsofmeasure.org"
    NPI = "http://hl7.org/fhir/sid/us-npi"
    SNOMED = "http://snomed.info/sct"
    NCI = "http://ncimeta.nci.nih.gov"
    V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
    V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    V3_ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
    CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
    MED_REQUEST_CATEGORY = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
    DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"


OUR_BASE = "https://medsync-interop.org/fhir"
"""Canonical base of the extensions, code systems and profiles this project defines in conformance/."""


def extension_url(name: str) -> str:
    """Canonical URL of one of our StructureDefinitions (extensions) in conformance/."""
    return f"{OUR_BASE}/StructureDefinition/{name}"


def identifier_system(kind: str, assigner: str) -> str:
    """Identifier system for a sender-local key such as an Rx number (``rx-number``) at one pharmacy."""
    safe = re.sub(r"[^A-Za-z0-9.\-]+", "-", assigner.strip()).strip("-").lower() or "unknown"
    return f"{OUR_BASE}/sid/{kind}/{safe}"


_ASCII_DIGITS = re.compile(r"[0-9]+")


def normalize_ndc(raw: str) -> str | None:
    """An NDC in its 11-digit 5-4-2 form, or None when ``raw`` is not an NDC.

    Hyphenated 10-digit forms are padded by segment (4-4-2 → 0xxxx-xxxx-xx, 5-3-2 → xxxxx-0xxx-xx,
    5-4-1 → xxxxx-xxxx-0x); an unhyphenated 10-digit code is ambiguous and returned as None.
    """
    text = raw.strip()
    if not text:
        return None
    if "-" in text:
        parts = text.split("-")
        if len(parts) != 3 or not all(_ASCII_DIGITS.fullmatch(p) for p in parts):
            return None
        widths = tuple(len(p) for p in parts)
        if widths == (5, 4, 2):
            return "".join(parts)
        if widths == (4, 4, 2):
            return "0" + "".join(parts)
        if widths == (5, 3, 2):
            return parts[0] + "0" + parts[1] + parts[2]
        if widths == (5, 4, 1):
            return parts[0] + parts[1] + "0" + parts[2]
        return None
    if len(text) == 11 and _ASCII_DIGITS.fullmatch(text):
        return text
    return None
