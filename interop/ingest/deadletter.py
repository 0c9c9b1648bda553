"""The dead-letter store: every message that could not be mapped or stored is kept whole, with the reason.

A dead letter is a FHIR Task (status ``failed``, code ``dead-letter`` from our ``ingest-task`` code system)
whose input carries the original bytes as an Attachment, so staff and auditors see it through the same API
as everything else, and ``interop deadletters replay`` can run it again after a mapping fix. The id comes
from the message's SHA-256: a sender that resends the same bad message updates one Task, never piles up.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from interop.fhir.ids import business_id
from interop.fhir.systems import OUR_BASE

TASK_CODE_SYSTEM = f"{OUR_BASE}/CodeSystem/ingest-task"
DEAD_LETTER = "dead-letter"
ORIGINAL = "original-message"
CONTENT_TYPES = {
    "hl7v2": "x-application/hl7-v2+er7",
    "script": "application/xml",
    "telecom": "application/octet-stream",
}


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead letter as read back from its Task."""

    id: str
    status: str
    fmt: str
    source: str
    reason: str
    received: str
    data: bytes


def dead_letter_task(
    raw: bytes, *, fmt: str, source: str, reason: str, location: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The Task that keeps ``raw`` for replay, saying why it failed and where (segment/field, byte, line)."""
    digest = hashlib.sha256(raw).hexdigest()
    stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": business_id("DeadLetter", digest),
        "identifier": [{"system": f"{OUR_BASE}/sid/message-sha256", "value": digest}],
        "status": "failed",
        "statusReason": {"text": reason[:1000]},
        "businessStatus": {"text": fmt},
        "intent": "order",
        "code": {"coding": [{"system": TASK_CODE_SYSTEM, "code": DEAD_LETTER, "display": "Dead letter"}]},
        "description": f"{fmt} message from {source or 'unknown source'} could not be ingested",
        "authoredOn": stamp,
        "lastModified": stamp,
        "input": [
            {
                "type": {"coding": [{"system": TASK_CODE_SYSTEM, "code": ORIGINAL, "display": "Original message"}]},
                "valueAttachment": {
                    "contentType": CONTENT_TYPES.get(fmt, "application/octet-stream"),
                    "data": base64.b64encode(raw).decode("ascii"),
                    "size": len(raw),
                    "hash": base64.b64encode(hashlib.sha1(raw).digest()).decode("ascii"),
                    "title": source or "unknown source",
                    "creation": stamp,
                },
            }
        ],
    }
    if location:
        task["note"] = [{"text": f"at {location}"}]
    return task


def read_dead_letter(task: dict[str, Any]) -> DeadLetter:
    """The original bytes and facts of a dead-letter Task."""
    attachment = task["input"][0]["valueAttachment"]
    return DeadLetter(
        id=task["id"],
        status=task["status"],
        fmt=task.get("businessStatus", {}).get("text", ""),
        source=attachment.get("title", ""),
        reason=task.get("statusReason", {}).get("text", ""),
        received=task.get("authoredOn", ""),
        data=base64.b64decode(attachment["data"]),
    )


def resolved(task: dict[str, Any], *, now: datetime | None = None) -> dict[str, Any]:
    """The Task after a successful replay: completed, the failure reason kept as a note."""
    stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    done = dict(task)
    done["status"] = "completed"
    notes = list(task.get("note", []))
    notes.append({"text": f"replayed successfully at {stamp}; was: {task.get('statusReason', {}).get('text', '')}"})
    done["note"] = notes
    done.pop("statusReason", None)
    done["lastModified"] = stamp
    done.pop("meta", None)
    return done
