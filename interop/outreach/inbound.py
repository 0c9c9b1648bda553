"""Classify a patient's reply and build what it leads to: confirm, reschedule proposal, opt-out, staff Task.

Opt-out words follow the FCC consent-revocation order (FCC 24-24, 47 CFR 64.1200(a)(10)): STOP, STOP ALL,
QUIT, END, REVOKE, OPT OUT, CANCEL, UNSUBSCRIBE, case-insensitive and trimmed. YES or C confirms; a date
proposes a reschedule; anything else goes to staff.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from interop.fhir.ids import business_id
from interop.outreach.vocabulary import TASK_SYSTEM, Resource, channel_concept, kind_category

STOP_WORDS = frozenset({"STOP", "STOP ALL", "QUIT", "END", "REVOKE", "OPT OUT", "CANCEL", "UNSUBSCRIBE"})
CONFIRM_WORDS = frozenset({"YES", "C"})
_MONTH_NAMES = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)
_ISO = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_SLASH = re.compile(r"\b(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{4}|\d{2}))?\b")
_NAMED = re.compile(r"([a-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?")


@dataclass(frozen=True, slots=True)
class Reply:
    """What a reply means: ``kind`` is confirm, reschedule, stop or other; ``all_channels`` for STOP ALL."""

    kind: str
    proposed: date | None = None
    all_channels: bool = False


def _normalized(text: str) -> str:
    return " ".join(text.replace(".", " ").replace("!", " ").split()).upper()


def _year_for(month: int, day: int, today: date) -> date | None:
    for year in (today.year, today.year + 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            return None
        if candidate >= today:
            return candidate
    return None


def find_date(text: str, today: date) -> date | None:
    """A date named in ``text`` (2026-12-15, 12/15, 12/15/2026, Dec 15, December 15th); without a year, the
    next such day on or after ``today``. None when there is none or it is not a real date."""
    lowered = text.lower()
    if m := _ISO.search(lowered):
        try:
            return date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None
    if m := _SLASH.search(lowered):
        month, day = int(m[1]), int(m[2])
        if m[3]:
            year = int(m[3]) + (2000 if len(m[3]) == 2 else 0)
            try:
                return date(year, month, day)
            except ValueError:
                return None
        return _year_for(month, day, today)
    for m in _NAMED.finditer(lowered):
        named = next((i for i, name in enumerate(_MONTH_NAMES, 1) if name.startswith(m[1])), None)
        if named is None:
            continue
        if m[3]:
            try:
                return date(int(m[3]), named, int(m[2]))
            except ValueError:
                return None
        return _year_for(named, int(m[2]), today)
    return None


def classify(text: str, today: date) -> Reply:
    """The meaning of reply ``text`` received on ``today`` (the patient's local date)."""
    words = _normalized(text)
    if words in STOP_WORDS:
        return Reply("stop", all_channels=words == "STOP ALL")
    if words in CONFIRM_WORDS:
        return Reply("confirm")
    proposed = find_date(text, today)
    if proposed is not None:
        return Reply("reschedule", proposed)
    return Reply("other")


def reply_communication(
    message_id: str, text: str, received: datetime, channel: str, patient_ref: str | None, about: str | None
) -> Resource:
    """The reply as a Communication (completed, ``received``), id from the provider's message id."""
    resource: Resource = {
        "resourceType": "Communication",
        "id": business_id("Communication", "inbound", channel, message_id),
        "status": "completed",
        "category": [kind_category("reply")],
        "medium": [channel_concept(channel)],
        "received": received.isoformat(),
        "payload": [{"contentString": text}],
    }
    if patient_ref:
        resource["subject"] = {"reference": patient_ref}
        resource["sender"] = {"reference": patient_ref}
    if about:
        resource["about"] = [{"reference": about}]
    return resource


def staff_task(
    code: str, display: str, description: str, *, key: str, patient_ref: str | None, focus: str | None,
    now: datetime, proposed: date | None = None,
) -> Resource:
    """A Task for pharmacy staff (outreach-task ``code``); ``key`` makes its id (the reply or response id)."""
    task: Resource = {
        "resourceType": "Task",
        "id": business_id("Task", key, code),
        "status": "requested",
        "intent": "proposal" if code in ("reschedule", "replan") else "order",
        "priority": "routine",
        "code": {"coding": [{"system": TASK_SYSTEM, "code": code, "display": display}]},
        "description": description,
        "authoredOn": now.isoformat(),
        "lastModified": now.isoformat(),
    }
    if patient_ref:
        task["for"] = {"reference": patient_ref}
    if focus:
        task["focus"] = {"reference": focus}
    if proposed:
        task["input"] = [
            {"type": {"coding": [{"system": TASK_SYSTEM, "code": "proposed-date"}]}, "valueDate": proposed.isoformat()}
        ]
    return task


def confirmed_appointment(appointment: Resource, patient_ref: str, start: datetime, end: datetime) -> Resource:
    """``appointment`` booked by the patient's YES: status booked, the patient's participation accepted."""
    booked = {k: v for k, v in appointment.items() if k != "meta"}
    booked["status"] = "booked"
    booked["start"] = start.isoformat()
    booked["end"] = end.isoformat()
    booked["participant"] = [
        {**p, "status": "accepted"} if p.get("actor", {}).get("reference") == patient_ref else p
        for p in appointment.get("participant", ())
    ]
    return booked
