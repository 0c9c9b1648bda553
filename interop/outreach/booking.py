"""Books a plan's pickup Appointments within the counter's capacity (service layer: reads the store).

Each planned pickup goes to the open day with room nearest its planned day (``capacity.place``), never before
the earliest payable refill of its fills; the Appointment references that day's Slot (Appointment.slot) and
says why it moved (Appointment.comment), and its fill Tasks move with it. The Slots of every day the plan
touches (new pickups, and the days of the patient's earlier ones it retires) are recounted.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from interop.config import Settings, get_settings
from interop.outreach.capacity import (
    Capacity,
    CapacityError,
    place,
    recorded_count,
    schedule_resource,
    slot_id,
    slot_resource,
)
from interop.outreach.vocabulary import Resource
from interop.store.base import Gone, NotFound, Repository, Session, StoreError
from interop.sync.events import Written
from interop.sync.plan import PlanError, SyncPlan

log = logging.getLogger(__name__)

NOT_HELD = frozenset({"cancelled", "noshow", "entered-in-error"})
HELD = "proposed,pending,booked,arrived,fulfilled,checked-in,waitlist"
"""Appointment.status values that take a place at the counter (all but NOT_HELD)."""


def capacity_from(settings: Settings) -> Capacity:
    """The counter's capacity from INTEROP_PICKUP_CAPACITY, INTEROP_OPENING_HOURS and the pharmacy's zone."""
    return Capacity.from_text(
        settings.pickup_capacity, settings.opening_hours, settings.pharmacy_time_zone, settings.pharmacy_name
    )


def ensure_schedule(repo: Repository, capacity: Capacity | None = None) -> bool:
    """Store the counter's Schedule when it is missing or the settings changed (every service process does
    at start, ``interop.services``); whether it was written. A concurrent writer winning is not an error."""
    wanted = schedule_resource(capacity or capacity_from(get_settings()))
    try:
        if _current(repo, "Schedule", wanted["id"]) == wanted:
            return False
        repo.update(wanted)
    except StoreError as exc:
        log.warning("the pickup counter's Schedule was not written: %s", exc)
        return False
    return True


def _put(resource: Resource) -> Resource:
    url = f"{resource['resourceType']}/{resource['id']}"
    return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource, "request": {"method": "PUT", "url": url}}


def _current(session: Session | Repository, rtype: str, rid: str) -> Resource | None:
    try:
        found = session.read(rtype, rid).resource()
    except (NotFound, Gone):
        return None
    found.pop("meta", None)
    return found


class PickupCounter:
    """Pickups held per day across one transaction, other than ``ours`` (the stored versions of the Appointments
    being re-planned), plus the ones placed through this counter (``own``).

    The stored ones are ``Appointment?slot=&status=`` (counted in SQL), or what the day's stored Slot
    records less ours there when that is more (``ledger``): a session limited to one patient's compartment (a ``patient/``
    token) sees only that patient's Appointments, while the Slot (kept exact by :class:`SlotKeeper` and every
    enrollment) is shared.
    """

    def __init__(self, session: Session, ours: Mapping[str, Resource], *, ledger: bool = True) -> None:
        self.session = session
        self.ledger = ledger
        held = [
            res for res in ours.values()
            if res.get("resourceType") == "Appointment" and "id" in res and res.get("status") not in NOT_HELD
        ]
        self.ours_in: Counter[str] = Counter(
            ref["reference"] for res in held for ref in res.get("slot", ()) if isinstance(ref.get("reference"), str)
        )
        self.others: dict[date, int] = {}
        self.own: Counter[date] = Counter()

    def __call__(self, day: date) -> int:
        others = self.others.get(day)
        if others is None:
            ref = f"Slot/{slot_id(day)}"
            # Counted in SQL (``_summary=count``): ``ours`` are the stored versions, so the held ones of them on
            # this Slot are ``ours_in[ref]``. Fetching the day's Appointments to count them made ``plan --all``
            # slow down as days filled (bench_plan_all: 296 patients/s at 2,000 patients, 103/s at 10,000).
            found = self.session.search("Appointment", [("slot", ref), ("status", HELD), ("_summary", "count")])
            counted = max((found.total or 0) - self.ours_in[ref], 0)
            if self.ledger:
                counted = max(counted, recorded_count(_current(self.session, "Slot", slot_id(day))) - self.ours_in[ref])
            others = self.others[day] = counted
        return others + self.own.get(day, 0)


def _move_tasks(appointment: Resource, tasks: Mapping[str, Resource], shift: int) -> None:
    """Move the fill Tasks of a moved pickup (executionPeriod.start and the prep-date input) by ``shift`` days."""
    for info in appointment.get("supportingInformation", ()):
        task = tasks.get(info.get("reference", ""))
        if task is None:
            continue
        start = date.fromisoformat(task["executionPeriod"]["start"])
        task["executionPeriod"] = {**task["executionPeriod"], "start": (start + timedelta(days=shift)).isoformat()}
        for item in task.get("input", ()):
            if any(c.get("code") == "prep-date" for c in item["type"].get("coding", ())):
                item["valueDate"] = (date.fromisoformat(item["valueDate"]) + timedelta(days=shift)).isoformat()


def place_pickups(new: list[Resource], plan: SyncPlan, counter: PickupCounter, capacity: Capacity) -> None:
    """Book each Appointment of ``new`` (the plan's resources, changed in place) on its day (see the module
    docstring), counting it in ``counter``. PlanError when no open day with room is in reach."""
    zone = ZoneInfo(capacity.zone)
    today = plan.today.toordinal()
    earliest: dict[str, int] = {}
    for fill in plan.fills:
        key = date.fromordinal(fill.day).isoformat()
        earliest[key] = max(earliest.get(key, today), fill.earliest_payable)
    tasks = {f"Task/{r['id']}": r for r in new if r["resourceType"] == "Task"}
    appointments = sorted(
        (r for r in new if r["resourceType"] == "Appointment"), key=lambda a: str(a["requestedPeriod"][0]["start"])
    )
    for appointment in appointments:
        planned = str(appointment["requestedPeriod"][0]["start"])
        wanted = date.fromisoformat(planned)
        try:
            placed = place(wanted, date.fromordinal(earliest.get(planned, today)), counter, capacity)
        except CapacityError as exc:
            raise PlanError(f"Appointment.start: {exc}") from exc
        counter.own[placed.day] += 1
        start = datetime.combine(placed.day, time(0), zone)
        appointment["start"], appointment["end"] = start.isoformat(), (start + timedelta(days=1)).isoformat()
        appointment["slot"] = [{"reference": f"Slot/{slot_id(placed.day)}"}]
        if placed.note:
            appointment["comment"] = placed.note
            _move_tasks(appointment, tasks, (placed.day - wanted).days)


def slot_entries(
    session: Session, counter: PickupCounter, existing: Mapping[str, Resource], capacity: Capacity
) -> list[Resource]:
    """Transaction entries of the Slots of every day touched (the days placed through ``counter`` and those of
    the earlier Appointments in ``existing``), recounted, where they changed. The Schedule is not written here:
    it is in the patient compartment, which a patient-context token may not write outside (see
    :func:`ensure_schedule`)."""
    earlier = [
        ref["reference"].removeprefix("Slot/")
        for res in existing.values() if res.get("resourceType") == "Appointment"
        for ref in res.get("slot", ()) if isinstance(ref.get("reference"), str)
    ]
    days = set(counter.own)
    if earlier:
        found = session.search("Slot", [("_id", ",".join(sorted(set(earlier)))), ("_count", "1000")])
        days |= {datetime.fromisoformat(s.resource()["start"]).date() for s in found.matches}
    wanted = [slot_resource(day, counter(day), capacity) for day in sorted(days) if capacity.is_open(day)]
    return [_put(resource) for resource in wanted if _current(session, resource["resourceType"], resource["id"]) != resource]


def book_pickups(
    session: Session,
    new: list[Resource],
    plan: SyncPlan,
    existing: Mapping[str, Resource],
    capacity: Capacity | None = None,
) -> list[Resource]:
    """Place the Appointments of one patient's ``new`` plan resources (changed in place) and return the
    Schedule and Slot entries for the same transaction. ``existing`` holds the stored versions of the patient's
    earlier plan's resources; ``capacity`` defaults to the configured one. PlanError when no day has room."""
    capacity = capacity or capacity_from(get_settings())
    counter = PickupCounter(session, existing)
    place_pickups(new, plan, counter, capacity)
    return slot_entries(session, counter, existing, capacity)


def _slot_refs(appointment: Resource | None) -> set[str]:
    return {
        ref["reference"].removeprefix("Slot/") for ref in (appointment or {}).get("slot", ())
        if isinstance(ref.get("reference"), str) and ref["reference"].startswith("Slot/")
    }


@dataclass(slots=True)
class SlotKeeper:
    """The listener that keeps Slot counts exact: after any Appointment write through the observed store (a
    staff PUT, a webhook confirmation, a patient-context enrollment), the Slots its current and previous
    versions reference are recounted from the Appointments, with full visibility (the inner repository)."""

    capacity: Capacity | None = None
    types: frozenset[str] = field(default=frozenset({"Appointment"}))

    def __call__(self, repo: Repository, written: Sequence[Written]) -> None:
        """Recount the Slots the written Appointments were or are in; a failure is logged, never raised."""
        ids: set[str] = set()
        try:
            for item in written:
                ids |= _slot_refs(item.resource)
                if item.version_id > 1:
                    ids |= _slot_refs(repo.vread("Appointment", item.id, item.version_id - 1).resource())
            if not ids:
                return
            capacity = self.capacity or capacity_from(get_settings())
            with repo.session() as session:
                found = session.search("Slot", [("_id", ",".join(sorted(ids))), ("_count", "1000")])
                days = {datetime.fromisoformat(s.resource()["start"]).date() for s in found.matches}
                counter = PickupCounter(session, {}, ledger=False)
                for day in sorted(days):
                    slot = slot_resource(day, counter(day), capacity)
                    if capacity.is_open(day) and _current(session, "Slot", slot["id"]) != slot:
                        session.update(slot)
        except StoreError as exc:
            log.warning("pickup Slots of %s not recounted: %s", ", ".join(w.reference for w in written), exc)
