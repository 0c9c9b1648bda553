"""CommunicationRequests for each pickup Appointment: the reminder and the pre-pickup review request.

The reminder is due ``reminder_days`` (default 7) before the pickup, the review ``review_days`` (3 to 7)
before, both at a local hour in the patient's zone. Ids are ``business_id("CommunicationRequest",
appointment id, kind)``, so re-planning the same pickup updates the same requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from interop.fhir.ids import business_id
from interop.outreach.policy import patient_zone
from interop.outreach.templates import Template, render
from interop.outreach.vocabulary import Resource, channel_concept, kind_category

PICKUP_STATUSES = frozenset({"proposed", "pending", "booked"})


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    pharmacy_name: str
    default_zone: str = "America/New_York"
    hour: int = 10
    reminder_days: int = 7
    review_days: int = 5

    def __post_init__(self) -> None:
        if not 3 <= self.review_days <= 7:
            raise ValueError(f"review_days must be 3 to 7 days before the pickup, not {self.review_days}")
        if not 0 <= self.hour <= 23:
            raise ValueError(f"hour must be 0 to 23, not {self.hour}")


def pickup_day(appointment: Resource) -> date | None:
    """The pickup date: ``Appointment.start`` (booked) or ``requestedPeriod[0].start`` (proposed)."""
    start = appointment.get("start")
    if isinstance(start, str) and start:
        return datetime.fromisoformat(start).date()
    periods = appointment.get("requestedPeriod") or ()
    value = periods[0].get("start") if periods else None
    return date.fromisoformat(value[:10]) if isinstance(value, str) and value else None


def appointment_patient(appointment: Resource) -> str | None:
    """The ``Patient/id`` reference among the Appointment's participants."""
    for participant in appointment.get("participant", ()):
        ref = participant.get("actor", {}).get("reference", "")
        if isinstance(ref, str) and ref.startswith("Patient/"):
            return ref
    return None


def request_id(appointment_id: str, kind: str) -> str:
    return business_id("CommunicationRequest", appointment_id, kind)


def message_request(
    rid: str, kind: str, patient_ref: str, channel: str, text: str, due: datetime, now: datetime, about: str | None
) -> Resource:
    """One outreach CommunicationRequest (status active) due at ``due``; ``about`` is what it concerns."""
    resource: Resource = {
        "resourceType": "CommunicationRequest",
        "id": rid,
        "status": "active",
        "category": [kind_category(kind)],
        "priority": "routine",
        "medium": [channel_concept(channel)],
        "subject": {"reference": patient_ref},
        "payload": [{"contentString": text}],
        "occurrenceDateTime": due.isoformat(),
        "authoredOn": now.isoformat(),
        "recipient": [{"reference": patient_ref}],
    }
    if about:
        resource["about"] = [{"reference": about}]
    return resource


def pickup_requests(
    appointment: Resource,
    patient: Resource | None,
    now: datetime,
    settings: ScheduleSettings,
    templates: dict[str, Template],
    *,
    channel: str = "sms",
    drugs: Sequence[str] = (),
    detail: bool = False,
) -> list[Resource]:
    """The reminder and review CommunicationRequests of one pickup Appointment still worth sending at ``now``.

    A request whose planned time has passed is due at once if its window is still open (reminder: before
    the pickup day; review: up to 3 days before); an Appointment that is not proposed/pending/booked yields
    none.
    """
    day = pickup_day(appointment)
    patient_ref = appointment_patient(appointment)
    if day is None or patient_ref is None or appointment.get("status") not in PICKUP_STATUSES:
        return []
    zone = patient_zone(patient, settings.default_zone)
    today = now.astimezone(zone).date()
    windows = {"reminder": (settings.reminder_days, 1), "review": (settings.review_days, 3)}
    out: list[Resource] = []
    for kind, (lead, last) in windows.items():
        if today > day - timedelta(days=last):
            continue
        due = max(datetime.combine(day - timedelta(days=lead), time(settings.hour), zone), now)
        msg = render(templates[kind], pharmacy=settings.pharmacy_name, day=day, drugs=drugs, detail=detail)
        rid = request_id(appointment["id"], kind)
        out.append(message_request(rid, kind, patient_ref, channel, msg.text, due, now, f"Appointment/{appointment['id']}"))
    return out
