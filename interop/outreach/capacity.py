"""Pickup capacity of the pharmacy counter as a FHIR Schedule with one Slot per open day, and day placement.

Pure: settings and counts in, Schedule/Slot dicts and a chosen day out. A Slot spans the day's opening hours
(Slot.start/end in the pharmacy's zone) and is ``busy`` once its pickups reach the daily capacity
(Slot.status, R4 slotstatus), else ``free``. Ids are ``business_id("Slot", "pickup-counter", day)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from interop.fhir.ids import business_id
from interop.outreach.vocabulary import Resource

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SCHEDULE_ID = business_id("Schedule", "pickup-counter")
SERVICE_TYPE = {"text": "Prescription pickup"}
HORIZON_DAYS = 366
"""How far from the planned day placement looks for an open day with room before giving up."""
_PART = re.compile(r"^([a-z]{3})(?:\s*-\s*([a-z]{3}))?\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")

_BOOKED = re.compile(r"^(\d+) of \d+ pickups booked$")

Hours = Mapping[int, tuple[time, time]]
"""Opening hours by weekday (Monday 0): (opens, closes)."""


class CapacityError(ValueError):
    """Bad capacity settings (naming the setting and the part), or no open day with room in reach."""


def parse_opening_hours(text: str) -> dict[int, tuple[time, time]]:
    """``"Mon-Fri 09:00-19:00, Sat 09:00-13:00"`` → {weekday: (opens, closes)}; a day not named is closed.

    Raises CapacityError naming INTEROP_OPENING_HOURS and the part that cannot be read.
    """
    hours: dict[int, tuple[time, time]] = {}
    for index, raw in enumerate(text.split(",")):
        part = raw.strip().lower()
        found = _PART.match(part)
        where = f"INTEROP_OPENING_HOURS part {index + 1} ({raw.strip()!r})"
        if found is None:
            raise CapacityError(f"{where}: expected 'Mon-Fri 09:00-19:00' or 'Sat 09:00-13:00'")
        first, last = found[1], found[2] or found[1]
        if first not in WEEKDAYS or last not in WEEKDAYS:
            raise CapacityError(f"{where}: weekdays are {', '.join(d.title() for d in WEEKDAYS)}")
        try:
            opens = time(int(found[3]), int(found[4]))
            closes = time(int(found[5]), int(found[6]))
        except ValueError as exc:
            raise CapacityError(f"{where}: {exc}") from exc
        if closes <= opens:
            raise CapacityError(f"{where}: closing time must be after opening time")
        start, end = WEEKDAYS.index(first), WEEKDAYS.index(last)
        if end < start:
            raise CapacityError(f"{where}: day range runs backwards")
        for day in range(start, end + 1):
            hours[day] = (opens, closes)
    return hours


@dataclass(frozen=True, slots=True)
class Capacity:
    """Pickups the counter takes per open day, its opening hours, the pharmacy's zone and name."""

    per_day: int
    hours: Hours
    zone: str = "America/New_York"
    pharmacy: str = "Your pharmacy"

    def __post_init__(self) -> None:
        if self.per_day < 1:
            raise CapacityError(f"INTEROP_PICKUP_CAPACITY must be at least 1, not {self.per_day}")
        if not self.hours:
            raise CapacityError("INTEROP_OPENING_HOURS: the pharmacy must be open on at least one weekday")

    @classmethod
    def from_text(cls, per_day: int, hours: str, zone: str, pharmacy: str) -> Capacity:
        return cls(per_day, parse_opening_hours(hours), zone, pharmacy)

    def is_open(self, day: date) -> bool:
        return day.weekday() in self.hours


def slot_id(day: date) -> str:
    return business_id("Slot", "pickup-counter", day.isoformat())


def schedule_resource(capacity: Capacity) -> Resource:
    """The pickup counter's Schedule (Schedule.actor is required: the counter, named)."""
    opening = ", ".join(
        f"{WEEKDAYS[d].title()} {o.strftime('%H:%M')}-{c.strftime('%H:%M')}" for d, (o, c) in sorted(capacity.hours.items())
    )
    return {
        "resourceType": "Schedule",
        "id": SCHEDULE_ID,
        "active": True,
        "serviceType": [SERVICE_TYPE],
        "actor": [{"display": f"Pickup counter of {capacity.pharmacy}"}],
        "comment": f"{capacity.per_day} pickups per open day; opening hours {opening}",
    }


def slot_resource(day: date, booked: int, capacity: Capacity) -> Resource:
    """The Slot of one open ``day`` holding ``booked`` pickups (busy at or above capacity)."""
    opens, closes = capacity.hours[day.weekday()]
    zone = ZoneInfo(capacity.zone)
    return {
        "resourceType": "Slot",
        "id": slot_id(day),
        "schedule": {"reference": f"Schedule/{SCHEDULE_ID}"},
        "serviceType": [SERVICE_TYPE],
        "status": "busy" if booked >= capacity.per_day else "free",
        "start": datetime.combine(day, opens, zone).isoformat(),
        "end": datetime.combine(day, closes, zone).isoformat(),
        "overbooked": booked > capacity.per_day,
        "comment": f"{booked} of {capacity.per_day} pickups booked",
    }


def recorded_count(slot: Resource | None) -> int:
    """The pickups a stored Slot of :func:`slot_resource` says it holds (its comment), 0 when unknown."""
    found = _BOOKED.match(str((slot or {}).get("comment", "")))
    return int(found[1]) if found else 0


@dataclass(frozen=True, slots=True)
class Placement:
    """The day a pickup is booked on and, when it is not the planned day, why (for Appointment.comment)."""

    day: date
    note: str | None = None


def place(wanted: date, earliest: date, booked: Callable[[date], int], capacity: Capacity) -> Placement:
    """The day a pickup planned on ``wanted`` is booked on: ``wanted`` when open with room, else the nearest
    earlier open day with room not before ``earliest`` (the earliest payable refill of its fills, or today), so
    the patient never runs short; only when there is none, the nearest later one, and the note says so.

    ``booked(day)`` counts the pickups already held that day. CapacityError when nothing is free within
    HORIZON_DAYS.
    """

    hours, per_day = capacity.hours, capacity.per_day

    def has_room(day: date) -> bool:
        return day.weekday() in hours and booked(day) < per_day

    if wanted >= earliest and has_room(wanted):
        return Placement(wanted)
    why = (
        f"the pickup counter is closed on {WEEKDAYS[wanted.weekday()].title()}"
        if not capacity.is_open(wanted)
        else f"{wanted.isoformat()} is full ({capacity.per_day} pickups)"
        if wanted >= earliest
        else f"{wanted.isoformat()} is before the earliest payable refill {earliest.isoformat()}"
    )
    day = wanted - timedelta(days=1)
    while day >= earliest:
        if has_room(day):
            return Placement(day, f"Moved from {wanted.isoformat()} to {day.isoformat()}: {why}.")
        day -= timedelta(days=1)
    for distance in range(1, HORIZON_DAYS + 1):
        day = max(wanted, earliest) + timedelta(days=distance - (wanted < earliest))
        if has_room(day):
            return Placement(
                day,
                f"Moved later than planned, from {wanted.isoformat()} to {day.isoformat()}: {why}, and no open day "
                f"with room lies between the earliest payable refill {earliest.isoformat()} and the planned day.",
            )
    raise CapacityError(f"no open day with room within {HORIZON_DAYS} days of {wanted.isoformat()}")
