"""Moved pickups move the plan, and pre-pickup reviews are followed up, through the API on SQLite.

The app is built over the store observed by ``interop.services.service_listeners`` (what every service
process attaches), with auth, audit and rate limiting off and injected clocks.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from interop.api.app import create_app
from interop.config import Settings
from interop.outreach.capacity import slot_id
from interop.outreach.dispatcher import OutreachDispatcher, policy_settings
from interop.outreach.gateway import Channel, Gateway
from interop.outreach.outbox import schedule_pickups
from interop.outreach.review import QUESTIONNAIRE
from interop.outreach.schedule import request_id
from interop.outreach.templates import load_templates
from interop.outreach.vocabulary import TASK_SYSTEM
from interop.outreach.worker import schedule_settings
from interop.services import service_listeners
from interop.store import SqlRepository, open_repository
from interop.sync.events import observe
from tests.fhirschema import assert_valid
from tests.outreach_support import GatewayServer, consent
from tests.sync_store import TODAY, current, seed, worked_patient

NOW = datetime(2026, 6, 25, 14, 0, tzinfo=UTC)
SECRET = "inbound-secret"
PHONE = "+15550000001"
SETTINGS = Settings(
    auth_enabled=False, audit_enabled=False, rate_limit=0, inbound_secret=SECRET, pharmacy_name="Elm Street Pharmacy"
)
Json = dict[str, Any]


@dataclass
class World:
    client: TestClient
    store: SqlRepository


@pytest.fixture
def world(sqlite_url: str) -> Iterator[World]:
    store = open_repository(sqlite_url)
    resources = worked_patient("pat-1")
    resources[0]["telecom"] = [{"system": "phone", "value": PHONE, "use": "mobile"}]
    seed(store, [*resources, consent("pat-1", "sms", PHONE, datetime(2026, 5, 1, tzinfo=UTC))])
    repo = observe(store, service_listeners(SETTINGS, today=lambda: TODAY, now=lambda: NOW))
    with TestClient(create_app(repo, SETTINGS)) as client:
        answer = client.post("/fhir/Patient/pat-1/$sync-enroll", json={
            "resourceType": "Parameters", "parameter": [{"name": "today", "valueDate": TODAY.isoformat()}]})
        assert answer.status_code == 200, answer.text
        schedule_pickups(store, NOW, schedule_settings(SETTINGS), load_templates())
        yield World(client, store)
    store.close()


def _active_plan(store: SqlRepository) -> Json:
    (plan,) = [c for c in current(store, "CarePlan") if c["status"] == "active"]
    return plan


def _booked(store: SqlRepository) -> dict[str, Json]:
    """Booked pickups of pat-1 by booked day."""
    return {a["start"][:10]: a for a in current(store, "Appointment") if a["status"] == "booked"}


def _requests(store: SqlRepository, appointment_id: str) -> list[Json]:
    found = []
    for kind in ("reminder", "review"):
        try:
            found.append(store.read("CommunicationRequest", request_id(appointment_id, kind)).resource())
        except Exception:
            continue
    return found


def _all_valid(store: SqlRepository) -> None:
    for rtype in ("CarePlan", "Appointment", "Task", "Provenance", "CommunicationRequest", "Slot", "Schedule",
                  "QuestionnaireResponse", "Communication"):
        for resource in current(store, rtype):
            assert_valid(resource)


def _assert_moved_to(store: SqlRepository, day: date, before: dict[str, Json], source: str) -> None:
    """The plan is re-anchored on ``day`` with a pickup-moved Provenance naming ``source``, and reminders moved."""
    plan = _active_plan(store)
    assert plan["period"]["start"] == day.isoformat()
    (prov,) = [p for p in current(store, "Provenance") if p["reason"][0]["coding"][0]["code"] == "pickup-moved"]
    assert prov["target"] == [{"reference": f"CarePlan/{plan['id']}"}]
    assert prov["entity"] == [{"role": "source", "what": {"reference": source}}]
    booked = _booked(store)
    assert day.isoformat() in booked
    assert booked[day.isoformat()]["slot"] == [{"reference": f"Slot/{slot_id(day)}"}]
    for old in before.values():
        assert store.read("Appointment", old["id"]).resource()["status"] == "cancelled"
        requests = _requests(store, old["id"])
        assert requests and all(r["status"] == "revoked" for r in requests)
    for appointment in booked.values():
        requests = _requests(store, appointment["id"])
        assert [r["status"] for r in requests] == ["active", "active"]
    reminder = store.read("CommunicationRequest", request_id(booked[day.isoformat()]["id"], "reminder")).resource()
    assert reminder["occurrenceDateTime"] == f"{day - timedelta(days=7)}T10:00:00-04:00"
    _all_valid(store)


def test_staff_moving_a_pickup_re_anchors_the_plan_and_moves_the_reminders(world: World) -> None:
    before = _booked(world.store)
    assert sorted(before) == ["2026-07-01", "2026-07-10", "2026-07-20"]
    anchor = before["2026-07-20"]
    moved = {k: v for k, v in anchor.items() if k != "meta"}
    moved["start"], moved["end"] = "2026-07-22T00:00:00-04:00", "2026-07-23T00:00:00-04:00"
    answer = world.client.put(f"/fhir/Appointment/{anchor['id']}", json=moved)
    assert answer.status_code == 200, answer.text
    _assert_moved_to(world.store, date(2026, 7, 22), before, f"Appointment/{anchor['id']}/_history/2")


def test_the_planner_placing_a_pickup_is_not_a_staff_move(world: World) -> None:
    others = [
        {"resourceType": "Appointment", "id": f"other-{i}", "status": "booked",
         "start": "2026-07-20T00:00:00-04:00", "end": "2026-07-21T00:00:00-04:00",
         "slot": [{"reference": f"Slot/{slot_id(date(2026, 7, 20))}"}],
         "participant": [{"actor": {"reference": f"Patient/other-{i}"}, "status": "accepted"}]}
        for i in range(40)
    ]
    seed(world.store, others)
    answer = world.client.post("/fhir/Patient/pat-1/$sync-enroll", json={
        "resourceType": "Parameters", "parameter": [{"name": "today", "valueDate": TODAY.isoformat()}]})
    assert answer.status_code == 200, answer.text
    assert _active_plan(world.store)["period"]["start"] == "2026-07-20"
    assert "2026-07-18" in _booked(world.store)
    assert not [p for p in current(world.store, "Provenance") if p["reason"][0]["coding"][0]["code"] == "pickup-moved"]


def _signed(body: Json) -> dict[str, Any]:
    raw = orjson.dumps(body)
    sig = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return {"content": raw, "headers": {"X-Signature": sig, "Content-Type": "application/json"}}


def test_an_accepted_patient_reschedule_re_anchors_the_plan(world: World) -> None:
    before = _booked(world.store)
    reply = {"from": PHONE, "to": "+15559990000", "text": "Could I come 7/24 instead?",
             "received_at": NOW.isoformat(), "message_id": "r1"}
    result = world.client.post("/inbound/sms", **_signed(reply)).json()
    assert result["action"] == "reschedule"
    task = world.store.read("Task", result["task"]).resource()
    assert _active_plan(world.store)["period"]["start"] == "2026-07-20", "a proposal alone moves nothing"
    task.pop("meta")
    task["status"] = "completed"
    task["output"] = [{"type": {"coding": [{"system": TASK_SYSTEM, "code": "proposed-date"}], "text": "Accepted date"},
                       "valueDate": "2026-07-24"}]
    answer = world.client.put(f"/fhir/Task/{task['id']}", json=task)
    assert answer.status_code == 200, answer.text
    _assert_moved_to(world.store, date(2026, 7, 24), before, f"Task/{task['id']}/_history/2")


def _review(**answers: object) -> Json:
    items = [
        {"linkId": link, "answer": [{"valueBoolean" if isinstance(v, bool) else "valueString": v}]}
        for link, v in answers.items()
    ]
    return {"resourceType": "QuestionnaireResponse", "questionnaire": QUESTIONNAIRE, "status": "completed",
            "subject": {"reference": "Patient/pat-1"}, "authored": NOW.isoformat(), "item": items}


NOTHING = {"doses-taken": True, "hospital-visit": False, "drug-changes": False, "dose-changes": False,
           "side-effects": False}


def test_a_review_signalling_a_change_makes_a_staff_task_and_re_plans(world: World) -> None:
    quiet = world.client.post("/fhir/QuestionnaireResponse", json=_review(**NOTHING))
    assert quiet.status_code == 201, quiet.text
    assert not [t for t in current(world.store, "Task") if t["code"]["coding"][0]["system"] == TASK_SYSTEM]
    answer = world.client.post("/fhir/QuestionnaireResponse", json=_review(**{**NOTHING, "hospital-visit": True}))
    assert answer.status_code == 201, answer.text
    qr_id = answer.json()["id"]
    ours = {t["code"]["coding"][0]["code"]: t for t in current(world.store, "Task")
            if t["code"]["coding"][0]["system"] == TASK_SYSTEM}
    assert set(ours) == {"replan", "review-followup"}
    staff, marker = ours["review-followup"], ours["replan"]
    assert staff["status"] == "requested" and "hospital or emergency visit" in staff["description"]
    assert staff["focus"] == {"reference": f"QuestionnaireResponse/{qr_id}"}
    plan = _active_plan(world.store)
    assert marker["status"] == "completed"
    assert marker["output"][0]["valueReference"] == {"reference": f"CarePlan/{plan['id']}"}
    (prov,) = [p for p in current(world.store, "Provenance")
               if p["reason"][0]["coding"][0]["code"] == "review-reported-change"]
    assert prov["entity"] == [{"role": "source", "what": {"reference": f"QuestionnaireResponse/{qr_id}/_history/1"}}]
    assert prov["target"] == [{"reference": f"CarePlan/{plan['id']}"}]
    # The same response stored again (an edit of its text) is not followed up twice.
    again = {k: v for k, v in answer.json().items() if k != "meta"}
    assert world.client.put(f"/fhir/QuestionnaireResponse/{qr_id}", json=again).status_code == 200
    assert len([p for p in current(world.store, "Provenance")
                if p["reason"][0]["coding"][0]["code"] == "review-reported-change"]) == 1
    _all_valid(world.store)


def test_a_reminder_about_a_pickup_cancelled_elsewhere_is_withdrawn_not_sent(world: World) -> None:
    """A re-plan that bypasses the listeners (or staff cancelling) leaves requests behind; the dispatcher checks."""
    first = _booked(world.store)["2026-07-01"]
    world.store.update({**{k: v for k, v in first.items() if k != "meta"}, "status": "cancelled"})
    due = world.store.read("CommunicationRequest", request_id(first["id"], "reminder")).resource()
    assert due["status"] == "active"
    with GatewayServer() as server:
        gateway = Gateway({"sms": Channel(server.url + "/sms", "secret-token")}, retries=1, backoff=0.01)
        report = OutreachDispatcher(world.store, gateway, policy_settings(SETTINGS), "w1").run_once(NOW)
        gateway.close()
    assert report.rules == {"pickup-cancelled": 1} and report.sent == 0 and server.state.calls == []
    withdrawn = world.store.read("CommunicationRequest", due["id"]).resource()
    assert withdrawn["status"] == "revoked"
    (record,) = [c for c in current(world.store, "Communication")]
    assert record["status"] == "not-done" and record["statusReason"]["coding"][0]["code"] == "pickup-cancelled"
    _all_valid(world.store)
