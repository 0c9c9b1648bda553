"""A simulated quarter at a small synthetic pharmacy, on SQLite with an injected clock and a real local gateway.

Nine patients in five zones with monthly (and one crowded) pickups; scripted replies (YES late at night, a
new date, STOP, free text, a redelivered message). Checked: every reminder sent once on its day, none in
quiet hours, never over the caps, none without consent or after STOP, every reply handled, all valid R4.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from interop.config import Settings
from interop.fhir.ids import business_id
from interop.outreach.dispatcher import OutreachDispatcher, policy_settings
from interop.outreach.gateway import Channel, Gateway
from interop.outreach.outbox import schedule_pickups
from interop.outreach.policy import consent_id, read_consent
from interop.outreach.schedule import ScheduleSettings, message_request, pickup_day, request_id
from interop.outreach.templates import load_templates
from interop.outreach.vocabulary import KIND_SYSTEM, RULE_SYSTEM, coded
from interop.outreach.webhook import handle_reply, parse_message
from interop.store import open_repository
from tests.fhirschema import assert_valid
from tests.outreach_support import PHARMACY, GatewayServer, consent, medication_request, patient, pickup

START = datetime(2026, 12, 28, 0, 7, tzinfo=UTC)
END = datetime(2027, 3, 31, 0, 7, tzinfo=UTC)
DEFAULT_ZONE = "America/Chicago"
MONTHLY = [date(2027, 1, 10), date(2027, 2, 9), date(2027, 3, 11)]
CROWDED = [date(2027, 2, d) for d in (1, 2, 4, 7, 10, 13)]


@dataclass
class Person:
    pid: str
    zone: str | None
    channel: str | None  # None: no Consent at all
    permit: bool = True
    detail: bool = False
    pickups: tuple[date, ...] = tuple(MONTHLY)

    @property
    def phone(self) -> str:
        return f"+1555{abs(hash(self.pid)) % 10_000_000:07d}"

    @property
    def contact(self) -> str:
        return self.phone if self.channel == "sms" else f"{self.pid}@mail.test"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone or DEFAULT_ZONE)


PEOPLE = [
    Person("ny", "America/New_York", "sms"),
    Person("la", "America/Los_Angeles", "sms"),
    Person("hi", "Pacific/Honolulu", "email"),
    Person("none", "America/New_York", None),
    Person("out", "America/New_York", "sms", permit=False),
    Person("stop", None, "sms"),
    Person("detail", "America/Denver", "sms", detail=True),
    Person("busy", "America/New_York", "sms", pickups=tuple(CROWDED)),
    Person("mini", "America/New_York", "sms"),
]
BY_CONTACT = {p.contact: p for p in PEOPLE}


def _kind(text: str) -> str:
    for marker, kind in (("will be ready", "reminder"), ("before your pickup", "review"), ("confirmed", "confirmation"), ("opted out", "opt-out-confirmation")):
        if marker in text:
            return kind
    raise AssertionError(f"unknown message {text!r}")


def _build(repo: Any) -> None:
    for p in PEOPLE:
        repo.update(patient(p.pid, p.phone, p.zone))
        if p.channel:
            repo.update(consent(p.pid, p.channel, p.contact, START - timedelta(days=100), permit=p.permit, detail=p.detail))
        for day in p.pickups:
            repo.update(pickup(p.pid, day))
    repo.update(medication_request("detail", "Atorvastatin"))
    repo.update(medication_request("mini", "Lisinopril"))
    # A staff-written request naming the drug of a patient who did not opt in to clinical detail.
    due = datetime(2027, 1, 20, 15, 0, tzinfo=UTC)
    repo.update(message_request(business_id("CommunicationRequest", "mini", "manual"), "reminder", "Patient/mini", "sms",
                                f"{PHARMACY}: your Lisinopril refill is ready. Reply STOP to opt out.", due, START, None))


def test_a_quarter_of_outreach(sqlite_url: str) -> None:
    repo = open_repository(sqlite_url)
    settings = Settings(database_url=sqlite_url, pharmacy_name=PHARMACY, pharmacy_time_zone=DEFAULT_ZONE)
    templates = load_templates()
    _build(repo)
    replies: list[tuple[datetime, dict[str, Any]]] = []
    handled: list[tuple[dict[str, Any], dict[str, Any]]] = []
    stop_at: datetime | None = None
    with GatewayServer() as server:
        gateway = Gateway({"sms": Channel(server.url + "/sms", "secret-token"), "email": Channel(server.url + "/email", "secret-token")}, retries=1, backoff=0.01)
        worker = OutreachDispatcher(repo, gateway, policy_settings(settings), "sim")
        sched = ScheduleSettings(PHARMACY, DEFAULT_ZONE, hour=10)
        seen = 0
        reminders_of: Counter[str] = Counter()
        now = START
        while now < END:
            if now.hour == 0:
                schedule_pickups(repo, now, sched, templates)
            worker.run_once(now)
            for item in server.state.order[seen:]:
                person, kind = BY_CONTACT[item.to], _kind(item.text)
                reply = _script(person, kind, reminders_of, item.message_id)
                if kind == "reminder":
                    reminders_of[person.pid] += 1
                if reply is not None:
                    delay, text = reply
                    replies.append((now + delay, {"from": person.phone, "to": "+15559990000", "text": text,
                                                  "received_at": (now + delay).isoformat(), "message_id": f"in-{item.message_id}"}))
            seen = len(server.state.order)
            for due, body in [r for r in replies if r[0] <= now]:
                replies.remove((due, body))
                message = parse_message(orjson.dumps(body))
                result = handle_reply(repo, message, now, settings)
                handled.append((body, result))
                if body["text"] == "STOP" and stop_at is None:
                    stop_at = now
                if body["message_id"] == "in-msg-1":  # the provider redelivers one reply
                    assert handle_reply(repo, message, now, settings)["action"] == "duplicate"
            now += timedelta(hours=1)
        gateway.close()
    deliveries = list(server.state.order)
    assert not replies and stop_at is not None

    comms = [s.resource() for s in repo.iter_all("Communication")]
    requests = {s.id: s.resource() for s in repo.iter_all("CommunicationRequest")}
    sent = [c for c in comms if c["status"] == "completed" and "sent" in c]
    blocked = [c for c in comms if c["status"] == "not-done"]
    rules = Counter(coded([c["statusReason"]], RULE_SYSTEM) for c in blocked)
    person_of = {f"Patient/{p.pid}": p for p in PEOPLE}

    # Exactly once: one gateway delivery per sent Communication, one Communication per request at most.
    assert len(deliveries) == len(sent) == len({d.key for d in deliveries})
    assert Counter(c["basedOn"][0]["reference"] for c in comms if "basedOn" in c).most_common(1)[0][1] == 1
    assert {c["identifier"][0]["value"] for c in sent} == {d.message_id for d in deliveries}
    assert all(r["status"] in ("completed", "revoked") for r in requests.values()), Counter(r["status"] for r in requests.values())

    # Every reminder sent once, on its day (7 days before the pickup, local), for each consenting patient.
    for p in PEOPLE:
        for day in p.pickups:
            appointment = pickup(p.pid, day)
            comm = next(c for c in comms if c.get("basedOn") == [{"reference": f"CommunicationRequest/{request_id(appointment['id'], 'reminder')}"}])
            stopped = p.pid == "stop" and day > MONTHLY[1]
            if p.pid in ("ny", "la", "hi", "detail", "mini") or (p.pid == "stop" and not stopped):
                assert comm["status"] == "completed", (p.pid, day, comm.get("statusReason"))
                assert datetime.fromisoformat(comm["sent"]).astimezone(p.tz).date() == day - timedelta(days=7)
            elif p.pid in ("none", "out") or stopped:
                expected = {"none": "consent-missing", "out": "consent-opt-out"}.get(p.pid, "consent-opt-out")
                assert coded([comm["statusReason"]], RULE_SYSTEM) == expected

    # None in quiet hours; caps per patient (opt-out confirmations aside); nothing to the wrong people.
    per_patient: dict[str, list[datetime]] = defaultdict(list)
    for c in sent:
        p = person_of[c["subject"]["reference"]]
        at = datetime.fromisoformat(c["sent"])
        assert time(8) <= at.astimezone(p.tz).time() < time(21), (p.pid, at)
        if coded(c["category"], KIND_SYSTEM) != "opt-out-confirmation":
            per_patient[p.pid].append(at)
    for pid, times in per_patient.items():
        tz = person_of[f"Patient/{pid}"].tz
        days = Counter(t.astimezone(tz).date() for t in times)
        assert max(days.values()) <= 1, pid
        for t in times:
            assert sum(1 for u in times if t - timedelta(days=7) < u <= t) <= 3, (pid, t)
    assert rules["cap-week"] >= 1 and rules["cap-day"] >= 1
    assert not {BY_CONTACT[d.to].pid for d in deliveries} & {"none", "out"}
    assert rules["consent-missing"] >= 6 and rules["consent-opt-out"] >= 6
    assert rules["minimum-necessary"] == 1
    assert any("Atorvastatin" in d.text for d in deliveries if BY_CONTACT[d.to].pid == "detail")
    assert not any("Lisinopril" in d.text for d in deliveries)
    assert {d.path for d in deliveries if BY_CONTACT[d.to].pid == "hi"} == {"/email"}

    # After STOP: exactly one opt-out confirmation and nothing else.
    after = [d for c, d in _pairs(sent, deliveries) if c["subject"]["reference"] == "Patient/stop" and datetime.fromisoformat(c["sent"]) >= stop_at]
    assert [_kind(d.text) for d in after] == ["opt-out-confirmation"]
    view = read_consent(repo.read("Consent", consent_id("stop", "sms")).resource())
    assert view is not None and not view.permitted

    # Every reply handled: recorded as a Communication, and acted on.
    inbound = {c["id"]: c for c in comms if coded(c["category"], KIND_SYSTEM) == "reply"}
    assert len(inbound) == len(handled) > 10
    actions = Counter()
    for body, result in handled:
        assert result["communication"] in inbound
        assert inbound[result["communication"]]["payload"][0]["contentString"] == body["text"]
        actions[result["action"]] += 1
        if result["action"] in ("reschedule", "other"):
            assert repo.read("Task", result["task"]).resource()["status"] == "requested"
    assert actions["confirm"] == 4 and actions["reschedule"] == 3 and actions["stop"] == 2 and actions["other"] >= 3
    for day in MONTHLY:
        booked = repo.read("Appointment", pickup("ny", day)["id"]).resource()
        assert booked["status"] == "booked" and booked["participant"][0]["status"] == "accepted"
        assert pickup_day(booked) == day
    ny_confirmations = [c for c in sent if c["subject"]["reference"] == "Patient/ny" and coded(c["category"], KIND_SYSTEM) == "confirmation"]
    assert len(ny_confirmations) == 3  # deferred past quiet hours, then sent the next morning

    for rtype in ("CommunicationRequest", "Communication", "Task", "Consent", "Appointment"):
        for stored in repo.iter_all(rtype):
            assert_valid(stored.resource())
    repo.close()


def _pairs(sent: list[dict[str, Any]], deliveries: list[Any]) -> list[tuple[dict[str, Any], Any]]:
    by_id = {d.message_id: d for d in deliveries}
    return [(c, by_id[c["identifier"][0]["value"]]) for c in sent]


def _script(person: Person, kind: str, reminders: Counter[str], message_id: str) -> tuple[timedelta, str] | None:
    """How each scripted patient answers a message (delay, text), or None."""
    if person.pid == "ny" and kind == "reminder":
        return timedelta(hours=13), "Yes"  # late at night: the confirmation waits for the morning
    if person.pid == "la" and kind == "reminder":
        return timedelta(hours=1), "can I come on the 20th? 3/20/2027"
    if person.pid == "stop" and kind == "reminder" and reminders["stop"] == 1:
        return timedelta(hours=2), "STOP"
    if person.pid == "stop" and kind == "opt-out-confirmation":
        return timedelta(hours=1), "stop"
    if person.pid == "busy" and kind == "reminder" and reminders["busy"] == 0:
        return timedelta(hours=1), "C"  # the confirmation would be a second message that day
    if person.pid == "detail" and kind in ("reminder", "review"):
        return timedelta(hours=3), "what time do you open on Saturday?"
    del message_id
    return None
