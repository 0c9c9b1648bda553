"""Pickup capacity: opening hours, Schedule and Slots, day placement, and $sync-enroll booking within capacity."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interop.config import get_settings
from interop.outreach.booking import SlotKeeper, capacity_from, ensure_schedule
from interop.outreach.capacity import (
    SCHEDULE_ID,
    Capacity,
    CapacityError,
    parse_opening_hours,
    place,
    schedule_resource,
    slot_id,
    slot_resource,
)
from interop.store import SqlRepository, open_repository
from interop.sync import load_settings
from interop.sync.enrollment import enroll, replan_all
from interop.sync.events import observe
from tests.fhirschema import assert_valid
from tests.sync_store import TODAY, current, seed, worked_patient

DEFAULT_HOURS = "Mon-Fri 09:00-19:00, Sat 09:00-13:00"
CAP = Capacity.from_text(2, DEFAULT_HOURS, "America/New_York", "Elm Street Pharmacy")
SUNDAY = date(2026, 7, 19)
Json = dict[str, Any]


def _counts(table: dict[date, int]) -> Any:
    return lambda day: table.get(day, 0)


# ------------------------------------------------------------------------------------------- pure parts
def test_opening_hours_name_each_open_weekday() -> None:
    hours = parse_opening_hours(DEFAULT_HOURS)
    assert sorted(hours) == [0, 1, 2, 3, 4, 5]
    assert hours[0] == (time(9), time(19)) and hours[5] == (time(9), time(13))
    assert parse_opening_hours("sun 10:00-12:00") == {6: (time(10), time(12))}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mon-Fri 9-19", "part 1 ('Mon-Fri 9-19')"),
        ("Mon-Fri 09:00-19:00, Fri-Mon 09:00-10:00", "part 2 ('Fri-Mon 09:00-10:00'): day range runs backwards"),
        ("Sat 13:00-09:00", "closing time must be after opening time"),
        ("Xyz 09:00-10:00", "weekdays are Mon"),
        ("Mon 25:00-26:00", "hour must be in 0..23"),
    ],
)
def test_bad_opening_hours_name_the_part(text: str, expected: str) -> None:
    with pytest.raises(CapacityError, match="INTEROP_OPENING_HOURS") as caught:
        parse_opening_hours(text)
    assert expected in str(caught.value)


def test_capacity_needs_room_and_an_open_day() -> None:
    with pytest.raises(CapacityError, match="INTEROP_PICKUP_CAPACITY"):
        Capacity(0, parse_opening_hours(DEFAULT_HOURS))
    with pytest.raises(CapacityError, match="at least one weekday"):
        Capacity(40, {})


def test_open_day_with_room_keeps_the_planned_day() -> None:
    assert place(date(2026, 7, 20), date(2026, 7, 13), _counts({}), CAP).note is None
    assert place(date(2026, 7, 20), date(2026, 7, 13), _counts({date(2026, 7, 20): 1}), CAP).day == date(2026, 7, 20)


def test_closed_day_moves_to_the_nearest_earlier_open_day() -> None:
    placed = place(SUNDAY, date(2026, 7, 13), _counts({}), CAP)
    assert placed.day == date(2026, 7, 18)
    assert placed.note == "Moved from 2026-07-19 to 2026-07-18: the pickup counter is closed on Sun."


def test_full_day_moves_earlier_past_full_and_closed_days() -> None:
    full = {date(2026, 7, 20): 2, date(2026, 7, 18): 2}
    placed = place(date(2026, 7, 20), date(2026, 7, 13), _counts(full), CAP)
    assert placed.day == date(2026, 7, 17)
    assert placed.note is not None and "2026-07-20 is full (2 pickups)" in placed.note


def test_never_before_the_earliest_payable_refill_so_later_and_said() -> None:
    full = {date(2026, 7, 20): 2, date(2026, 7, 18): 2}
    placed = place(date(2026, 7, 20), date(2026, 7, 18), _counts(full), CAP)
    assert placed.day == date(2026, 7, 21)
    assert placed.note is not None and placed.note.startswith("Moved later than planned")
    assert "earliest payable refill 2026-07-18" in placed.note
    early = place(date(2026, 7, 10), date(2026, 7, 12), _counts({}), CAP)
    assert early.day == date(2026, 7, 13)
    assert early.note is not None and "before the earliest payable refill 2026-07-12" in early.note


def test_nothing_free_in_reach_is_an_error() -> None:
    with pytest.raises(CapacityError, match="no open day with room"):
        place(date(2026, 7, 20), date(2026, 7, 1), lambda day: 2, CAP)


@settings(max_examples=150, deadline=None)
@given(
    offset=st.integers(0, 40),
    lead=st.integers(-5, 10),
    full=st.sets(st.integers(0, 60), max_size=40),
)
def test_placement_is_open_has_room_and_prefers_earlier(offset: int, lead: int, full: set[int]) -> None:
    base = date(2026, 7, 1)
    wanted = base + timedelta(days=offset)
    earliest = wanted - timedelta(days=lead)
    booked = {base + timedelta(days=d): 2 for d in full}
    placed = place(wanted, earliest, _counts(booked), CAP)
    assert CAP.is_open(placed.day) and booked.get(placed.day, 0) < 2 and placed.day >= earliest
    assert (placed.note is None) == (placed.day == wanted)
    if placed.day < wanted:
        skipped = [placed.day + timedelta(days=d) for d in range(1, (wanted - placed.day).days)]
        assert not [d for d in skipped if CAP.is_open(d) and booked.get(d, 0) < 2], "the nearest earlier day"
    if placed.day > wanted:
        start = min(earliest, wanted)
        between = [start + timedelta(days=d) for d in range((wanted - start).days + 1)]
        assert not [d for d in between if d >= earliest and CAP.is_open(d) and booked.get(d, 0) < 2]


def test_schedule_and_slots_are_valid_with_deterministic_ids() -> None:
    schedule = schedule_resource(CAP)
    assert schedule["id"] == SCHEDULE_ID
    assert "Mon 09:00-19:00" in schedule["comment"] and "2 pickups per open day" in schedule["comment"]
    free = slot_resource(date(2026, 7, 18), 1, CAP)
    busy = slot_resource(date(2026, 7, 20), 2, CAP)
    assert free["status"] == "free" and busy["status"] == "busy" and not busy["overbooked"]
    assert free["start"] == "2026-07-18T09:00:00-04:00" and free["end"] == "2026-07-18T13:00:00-04:00"
    assert busy["comment"] == "2 of 2 pickups booked"
    assert slot_resource(date(2026, 7, 20), 3, CAP)["overbooked"] is True
    assert free["id"] == slot_id(date(2026, 7, 18)) != busy["id"]
    for resource in (schedule, free, busy):
        assert_valid(resource)


# ----------------------------------------------------------------------------------- enrollment (SQLite)
@pytest.fixture
def store(sqlite_url: str) -> Iterator[SqlRepository]:
    repo = open_repository(sqlite_url)
    try:
        yield repo
    finally:
        repo.close()


def _others_on(day: date, count: int, start: int = 0) -> list[Json]:
    """``count`` booked pickups of other patients on ``day`` (in its Slot)."""
    begin = datetime.combine(day, time(0)).isoformat() + "-04:00"
    return [
        {
            "resourceType": "Appointment",
            "id": f"other-{day.isoformat()}-{i}",
            "status": "booked",
            "start": begin,
            "end": begin,
            "slot": [{"reference": f"Slot/{slot_id(day)}"}],
            "participant": [{"actor": {"reference": f"Patient/other-{i}"}, "status": "accepted"}],
        }
        for i in range(start, start + count)
    ]


def _pickups(repo: SqlRepository, patient: str = "Patient/pat-1") -> dict[str, Json]:
    """The patient's booked Appointments by planned day (requestedPeriod)."""
    return {
        a["requestedPeriod"][0]["start"]: a for a in current(repo, "Appointment")
        if a["status"] == "booked" and a["participant"][0]["actor"]["reference"] == patient
    }


def _slots(repo: SqlRepository) -> dict[str, Json]:
    return {s["start"][:10]: s for s in current(repo, "Slot")}


def test_enrollment_books_each_pickup_in_its_slot(store: SqlRepository) -> None:
    seed(store, worked_patient("pat-1"))
    enroll(store, "pat-1", load_settings(), TODAY)
    pickups = _pickups(store)
    assert sorted(pickups) == ["2026-07-01", "2026-07-10", "2026-07-20"]
    slots = _slots(store)
    for day, appointment in pickups.items():
        assert appointment["start"].startswith(day) and "comment" not in appointment
        assert appointment["slot"] == [{"reference": f"Slot/{slot_id(date.fromisoformat(day))}"}]
        assert slots[day]["status"] == "free" and slots[day]["comment"] == "1 of 40 pickups booked"
    assert current(store, "Schedule") == [] and ensure_schedule(store) and not ensure_schedule(store)
    (schedule,) = current(store, "Schedule")
    for resource in [schedule, *slots.values(), *pickups.values(), *current(store, "Task")]:
        assert_valid(resource)
    before = {s.id: s.version_id for s in store.iter_all("Slot")}
    enroll(store, "pat-1", load_settings(), TODAY)
    assert {s.id: s.version_id for s in store.iter_all("Slot")} == before, "a re-enrollment counts itself once"


def test_full_anchor_day_moves_the_pickup_and_its_fills_earlier(store: SqlRepository) -> None:
    anchor = date(2026, 7, 20)
    seed(store, worked_patient("pat-1") + _others_on(anchor, 40))
    enroll(store, "pat-1", load_settings(), TODAY)
    moved = _pickups(store)["2026-07-20"]
    assert moved["start"].startswith("2026-07-18")
    assert moved["slot"] == [{"reference": f"Slot/{slot_id(date(2026, 7, 18))}"}]
    assert moved["comment"] == "Moved from 2026-07-20 to 2026-07-18: 2026-07-20 is full (40 pickups)."
    tasks = {t["id"]: t for t in current(store, "Task")}
    for info in moved["supportingInformation"]:
        task = tasks[info["reference"].removeprefix("Task/")]
        assert task["executionPeriod"]["start"] == "2026-07-18"
        prep = next(i["valueDate"] for i in task["input"] if i["type"]["coding"][0]["code"] == "prep-date")
        assert prep == "2026-07-15"
    slots = _slots(store)
    assert slots["2026-07-18"]["comment"] == "1 of 40 pickups booked"
    assert_valid(moved)


def test_cancelled_pickups_free_their_place_and_the_last_place_makes_the_slot_busy(store: SqlRepository) -> None:
    anchor = date(2026, 7, 20)
    cancelled = [{**a, "status": "cancelled"} for a in _others_on(anchor, 3, start=100)]
    seed(store, worked_patient("pat-1") + _others_on(anchor, 39) + cancelled)
    enroll(store, "pat-1", load_settings(), TODAY)
    assert _pickups(store)["2026-07-20"]["start"].startswith("2026-07-20")
    slot = _slots(store)["2026-07-20"]
    assert slot["status"] == "busy" and slot["comment"] == "40 of 40 pickups booked"


def test_no_room_back_to_the_earliest_payable_refill_moves_later_and_says_so(store: SqlRepository) -> None:
    seed(store, worked_patient("pat-1") + _others_on(date(2026, 7, 20), 40) + _others_on(date(2026, 7, 18), 40))
    enroll(store, "pat-1", load_settings(), TODAY)
    moved = _pickups(store)["2026-07-20"]
    assert moved["start"].startswith("2026-07-21")
    assert moved["comment"].startswith("Moved later than planned, from 2026-07-20 to 2026-07-21")
    assert "earliest payable refill 2026-07-18" in moved["comment"]


def test_an_anchor_on_a_closed_day_books_an_open_one(store: SqlRepository) -> None:
    seed(store, worked_patient("pat-1"))
    enroll(store, "pat-1", load_settings(), TODAY, anchor=SUNDAY)
    pickup = _pickups(store)[SUNDAY.isoformat()]
    booked = date.fromisoformat(pickup["start"][:10])
    assert booked.weekday() != 6 and "closed on Sun" in pickup["comment"]
    assert pickup["slot"] == [{"reference": f"Slot/{slot_id(booked)}"}]


@pytest.fixture
def capacity_one(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("INTEROP_PICKUP_CAPACITY", "1")
    monkeypatch.setenv("INTEROP_OPENING_HOURS", "Mon-Sat 08:00-20:00")
    get_settings.cache_clear()
    try:
        yield
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


@pytest.mark.usefixtures("capacity_one")
def test_configured_capacity_spreads_two_patients_and_marks_slots_busy(store: SqlRepository) -> None:
    seed(store, worked_patient("pat-1") + worked_patient("pat-2"))
    enroll(store, "pat-1", load_settings(), TODAY)
    enroll(store, "pat-2", load_settings(), TODAY)
    first, second = _pickups(store, "Patient/pat-1"), _pickups(store, "Patient/pat-2")
    days_first = {a["start"][:10] for a in first.values()}
    days_second = {a["start"][:10] for a in second.values()}
    assert days_first == {"2026-07-01", "2026-07-10", "2026-07-20"}
    assert not days_first & days_second and len(days_second) == 3
    slots = _slots(store)
    assert all(slots[d]["status"] == "busy" and slots[d]["comment"] == "1 of 1 pickups booked" for d in days_first | days_second)
    assert slots["2026-07-01"]["start"] == "2026-07-01T08:00:00-04:00"


@pytest.mark.usefixtures("capacity_one")
def test_replanning_everyone_keeps_the_booked_days_and_counts(store: SqlRepository) -> None:
    seed(store, worked_patient("pat-1") + worked_patient("pat-2"))
    enroll(store, "pat-1", load_settings(), TODAY)
    enroll(store, "pat-2", load_settings(), TODAY)
    days = {ref: {a["start"][:10] for a in _pickups(store, ref).values()} for ref in ("Patient/pat-1", "Patient/pat-2")}
    slots = {s.id: s.version_id for s in store.iter_all("Slot")}
    summary = replan_all(store, load_settings(), TODAY)
    assert summary.replanned == 2 and not summary.failed
    assert {ref: {a["start"][:10] for a in _pickups(store, ref).values()} for ref in days} == days
    assert {s.id: s.version_id for s in store.iter_all("Slot")} == slots


def test_a_patient_token_enrollment_respects_capacity_through_the_slot(sqlite_url: str) -> None:
    """A ``patient/`` token sees only its own Appointments; the day's shared Slot still says it is full."""
    from interop.api.ops.sync import SYNC_WRITES
    from tests.security_support import bearer, secured

    anchor = date(2026, 7, 20)
    with secured(sqlite_url) as (client, repo):
        full = slot_resource(anchor, 40, capacity_from(get_settings()))
        seed(repo, [*worked_patient("pat-1"), *_others_on(anchor, 40), full])
        scopes = " ".join(f"patient/{s}" for s in SYNC_WRITES)
        body = {"resourceType": "Parameters", "parameter": [{"name": "today", "valueDate": TODAY.isoformat()}]}
        answer = client.post("/fhir/Patient/pat-1/$sync-enroll", json=body, headers=bearer(scopes, patient="pat-1"))
        assert answer.status_code == 200, answer.text
        moved = _pickups(repo)["2026-07-20"]
        assert moved["start"].startswith("2026-07-18") and "is full" in moved["comment"]
        assert _slots(repo)["2026-07-20"]["comment"] == "40 of 40 pickups booked"


def test_the_slot_keeper_recounts_after_writes_outside_enrollment(store: SqlRepository) -> None:
    repo = observe(store, [SlotKeeper()])
    seed(store, worked_patient("pat-1"))
    enroll(store, "pat-1", load_settings(), TODAY)
    seed(repo, _others_on(date(2026, 7, 20), 2))
    assert _slots(store)["2026-07-20"]["comment"] == "3 of 40 pickups booked"
    mine = _pickups(store)["2026-07-20"]
    repo.update({**{k: v for k, v in mine.items() if k != "meta"}, "status": "cancelled"})
    assert _slots(store)["2026-07-20"]["comment"] == "2 of 40 pickups booked"
    repo.delete("Appointment", "other-2026-07-20-0")
    assert _slots(store)["2026-07-20"]["comment"] == "1 of 40 pickups booked"
    for slot in current(store, "Slot"):
        assert_valid(slot)
