"""The AuditEvent builder every service shares (FHIR R4 AuditEvent, DICOM/IHE ATNA model).

Who (``agent``), what (``entity``), when (``recorded``), from where (``agent.network``) and the outcome
(AuditEvent.outcome: 0 success, 4 minor failure, 8 serious failure, 12 major failure), as a plain dict.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from interop.fhir.systems import OUR_BASE

Resource = dict[str, Any]

EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
SUBJECT_SYSTEM = f"{OUR_BASE}/sid/oauth-subject"
SENDER_SYSTEM = f"{OUR_BASE}/sid/hl7v2-sender"
"""Identifier system of an HL7 v2 sender: value ``MSH-3^MSH-4`` (sending application and facility)."""
CONTROL_ID_SYSTEM = f"{OUR_BASE}/sid/hl7v2-control-id"
"""Identifier system of an HL7 v2 message control id (MSH-10); unique per sender, who is its ``assigner``."""
SYSTEM_OBJECT: Resource = {"system": ENTITY_TYPE, "code": "2", "display": "System Object"}


def entity(reference: str, *, control_ids: Iterable[str] = ()) -> Resource:
    """An ``entity`` naming one resource (``Patient/1`` or ``Patient/1/_history/2``).

    ``control_ids`` are the HL7 v2 messages (MSH-10) that wrote it, as ``detail`` of type ``MSH-10`` (the
    IHE ATNA convention for naming the message behind an audited object).
    """
    out: Resource = {"what": {"reference": reference}, "type": SYSTEM_OBJECT}
    details = [{"type": "MSH-10", "valueString": c} for c in control_ids]
    if details:
        out["detail"] = details
    return out


def message_entity(control_id: str, sender: str = "") -> Resource:
    """An ``entity`` naming one HL7 v2 message: its control id (MSH-10), assigned by ``sender`` (MSH-3^MSH-4)."""
    identifier: Resource = {"system": CONTROL_ID_SYSTEM, "value": control_id}
    if sender:
        identifier["assigner"] = {"identifier": {"system": SENDER_SYSTEM, "value": sender}}
    return {"what": {"identifier": identifier}, "type": SYSTEM_OBJECT}


def agent(who: Resource, address: str = "", *, alt_id: str | None = None) -> Resource:
    """The requesting ``agent``: ``who`` is a Reference; ``address`` an IP address (network type 2)."""
    out: Resource = {"who": who}
    if alt_id is not None:
        out["altId"] = alt_id
    out["requestor"] = True
    if address:
        out["network"] = {"address": address, "type": "2"}
    return out


def audit_event(
    *,
    event_type: Resource,
    action: str,
    outcome: str,
    agents: list[Resource],
    observer: str,
    entities: Iterable[Resource] = (),
    subtype: list[Resource] | None = None,
    outcome_desc: str = "",
    recorded: datetime | None = None,
) -> Resource:
    """One AuditEvent; ``observer`` names the part of the service that saw the event."""
    event: Resource = {
        "resourceType": "AuditEvent",
        "type": event_type,
    }
    if subtype:
        event["subtype"] = subtype
    event.update(
        {
            "action": action,
            "recorded": (recorded or datetime.now(UTC)).isoformat(timespec="milliseconds"),
            "outcome": outcome,
            "agent": agents,
            "source": {
                "site": "medsync-interop",
                "observer": {"display": observer},
                "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
            },
        }
    )
    if outcome_desc:
        event["outcomeDesc"] = outcome_desc
    listed = list(entities)
    if listed:
        event["entity"] = listed
    return event
