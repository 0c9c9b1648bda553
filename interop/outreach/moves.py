"""A moved pickup moves the plan: the listener behind ``observe`` for Appointment and reschedule Task writes.

Service layer of issue 7. Staff moving a planned pickup (an Appointment of an active sync CarePlan written
with a new ``start`` day, its Slot left as it was) or accepting a patient's reschedule (the outreach Task
``reschedule`` completed with the new date as ``output.valueDate``) re-plans the patient with that day as the
anchor, with a Provenance (reason ``pickup-moved``, entity the written version). The reminders follow: the
active, unclaimed CommunicationRequests of the pickups the re-plan cancelled are revoked and the new pickups'
ones written (``outbox.schedule_pickups``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from interop.config import Settings
from interop.outreach.capacity import slot_id
from interop.outreach.outbox import schedule_pickups
from interop.outreach.schedule import (
    PICKUP_STATUSES,
    ScheduleSettings,
    appointment_patient,
    pickup_day,
    request_id,
)
from interop.outreach.templates import Template, load_templates
from interop.outreach.vocabulary import CLAIM_EXTENSION, TASK_SYSTEM, Resource
from interop.store.base import Gone, NotFound, Repository, Stored, StoreError
from interop.sync.enrollment import (
    ReplanReason,
    Trigger,
    active_plans,
    activity_refs,
    pharmacy_today,
    replan_with,
)
from interop.sync.events import Written
from interop.sync.plan import PlanError
from interop.sync.settings import SyncSettings

log = logging.getLogger(__name__)

MESSAGE_KINDS = ("reminder", "review")
"""The CommunicationRequests written per pickup (``schedule.request_id(appointment, kind)``)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Reminders:
    """How reminders follow a re-plan: the schedule settings and templates of ``outbox.schedule_pickups``."""

    schedule: ScheduleSettings
    templates: dict[str, Template]

    @classmethod
    def from_settings(cls, settings: Settings) -> Reminders:
        schedule = ScheduleSettings(settings.pharmacy_name, settings.pharmacy_time_zone, hour=settings.outreach_hour)
        return cls(schedule, load_templates(settings.outreach_templates))

    def follow(self, repo: Repository, previous: Sequence[Stored], careplan_id: str, now: datetime) -> tuple[int, int]:
        """Revoke the requests of the pickups the re-plan cancelled, write the new pickups' requests; how many
        of each. A request already claimed, sent or blocked is left as it is (it went, or is going, out)."""
        careplan = repo.read("CarePlan", careplan_id).resource()
        keep = {ref for ref in activity_refs(careplan) if ref.startswith("Appointment/")}
        dropped = {
            ref for stored in previous for ref in activity_refs(stored.resource())
            if ref.startswith("Appointment/") and ref not in keep
        }
        revoked = 0
        for ref in sorted(dropped):
            appointment = _read(repo, ref)
            if appointment is None or appointment.get("status") != "cancelled":
                continue
            for kind in MESSAGE_KINDS:
                request = _read(repo, f"CommunicationRequest/{request_id(appointment['id'], kind)}")
                if request is None or request.get("status") != "active" or _claimed(request):
                    continue
                request["status"] = "revoked"
                request["statusReason"] = {"text": f"the pickup {ref} was cancelled by the re-plan CarePlan/{careplan_id}"}
                repo.update(request)
                revoked += 1
        booked = [a for ref in sorted(keep) if (a := _read(repo, ref)) is not None]
        written = schedule_pickups(repo, now, self.schedule, self.templates, booked)
        return revoked, written


def _read(repo: Repository, ref: str) -> Resource | None:
    rtype, _, rid = ref.partition("/")
    try:
        found = repo.read(rtype, rid).resource()
    except (NotFound, Gone):
        return None
    found.pop("meta", None)
    return found


def _claimed(request: Resource) -> bool:
    return any(e.get("url") == CLAIM_EXTENSION for e in request.get("extension", ()))


def _coded(resource: Resource, system: str, code: str) -> bool:
    return any(c.get("system") == system and c.get("code") == code for c in (resource.get("code") or {}).get("coding", ()))


def _output_date(task: Resource) -> date | None:
    for item in task.get("output", ()):
        value = item.get("valueDate") or item.get("valueDateTime")
        if isinstance(value, str) and len(value) >= 10:
            return date.fromisoformat(value[:10])
    return None


@dataclass(slots=True)
class PickupMoves:
    """The listener: give it to ``observe``. ``today`` is the planning date, ``now`` the reminders' clock."""

    settings: SyncSettings
    reminders: Reminders
    today: Callable[[], date] = pharmacy_today
    now: Callable[[], datetime] = utc_now
    types: frozenset[str] = field(default=frozenset({"Appointment", "Task"}))

    def __call__(self, repo: Repository, written: Sequence[Written]) -> None:
        """Re-plan each patient a write moves a pickup of, on the moved day, once per patient."""
        moves: dict[str, tuple[date, list[Trigger]]] = {}
        for item in written:
            try:
                found = self.move_of(repo, item)
            except (StoreError, ValueError) as exc:
                log.warning("cannot tell whether %s moves a pickup: %s", item.reference, exc)
                continue
            if found is not None:
                patient, day, trigger = found
                moves.setdefault(patient, (day, []))[1].append(trigger)
        for patient, (day, triggers) in moves.items():
            try:
                done = replan_with(repo, patient, triggers, self.settings, self.today(), day)
                if done is not None:
                    self.reminders.follow(repo, done[1], done[0].careplan_id, self.now())
            except (PlanError, StoreError) as exc:
                log.warning("re-plan of %s on the moved pickup %s failed: %s", patient, day, exc)

    def move_of(self, repo: Repository, item: Written) -> tuple[str, date, Trigger] | None:
        """The patient, the new pickup day and the trigger a written Appointment or Task carries, if any."""
        resource = item.resource
        if resource is None:
            return None
        source = f"{item.reference}/_history/{item.version_id}"
        if item.resource_type == "Appointment":
            return self._staff_move(repo, item, resource, source)
        if not _coded(resource, TASK_SYSTEM, "reschedule") or resource.get("status") != "completed":
            return None
        if not item.created and item.version_id > 1:
            before = repo.vread("Task", item.id, item.version_id - 1).resource()
            if before.get("status") == "completed":
                return None
        day = _output_date(resource)
        patient = (resource.get("for") or {}).get("reference")
        if day is None or not isinstance(patient, str) or not patient.startswith("Patient/"):
            return None
        detail = f"the patient's reschedule of the pickup to {day.isoformat()} was accepted"
        return patient, day, Trigger(ReplanReason.PICKUP_MOVED, detail, source)

    def _staff_move(self, repo: Repository, item: Written, resource: Resource, source: str) -> tuple[str, date, Trigger] | None:
        if item.created or item.version_id <= 1 or resource.get("status") not in PICKUP_STATUSES:
            return None
        day = pickup_day(resource)
        before = pickup_day(repo.vread("Appointment", item.id, item.version_id - 1).resource())
        if day is None or before is None or day == before:
            return None
        if any(ref.get("reference") == f"Slot/{slot_id(day)}" for ref in resource.get("slot", ())):
            return None  # booked there by the planner (capacity placement), not moved by staff
        patient = appointment_patient(resource)
        if patient is None or not any(item.reference in activity_refs(p.resource()) for p in active_plans(repo, patient)):
            return None
        detail = f"staff moved the pickup from {before.isoformat()} to {day.isoformat()}"
        return patient, day, Trigger(ReplanReason.PICKUP_MOVED, detail, source)


def pickup_moves(
    settings: SyncSettings,
    outreach: Settings,
    today: Callable[[], date] | None = None,
    now: Callable[[], datetime] | None = None,
) -> PickupMoves:
    """The pickup-move listener for ``observe(repo, [...])``."""
    return PickupMoves(settings, Reminders.from_settings(outreach), today or pharmacy_today, now or utc_now)
