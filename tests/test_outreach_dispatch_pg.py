"""Two dispatcher processes against one PostgreSQL database and one local gateway: each reminder sent once."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text

from interop.outreach.outbox import schedule_pickups
from interop.outreach.schedule import ScheduleSettings
from interop.outreach.templates import load_templates
from interop.store import SqlRepository, open_repository
from tests.fhirschema import assert_valid
from tests.outreach_support import PHARMACY, GatewayServer, consent, dispatch_worker, patient, pickup

TABLES = ("resource", "resource_version", "idx_token", "idx_string", "idx_reference", "idx_date", "idx_quantity")
PATIENTS = 60
T0 = datetime(2027, 1, 5, 15, 0, tzinfo=UTC)  # 10:00 in New York: every reminder due


def _seed(pg_url: str, pickups: tuple[date, ...]) -> SqlRepository:
    repo = open_repository(pg_url)
    with repo.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    entries = []
    for i in range(PATIENTS):
        pid, phone = f"pg{i}", f"+1555100{i:04d}"
        resources = [patient(pid, phone, "America/New_York"), consent(pid, "sms", phone, T0 - timedelta(days=60))]
        resources += [pickup(pid, day) for day in pickups]
        entries += [{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]
    repo.process_bundle({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    return repo


def _run_two_workers(pg_url: str, server: GatewayServer) -> list[tuple[str, int, int, int]]:
    ctx = multiprocessing.get_context("spawn")
    go, results = ctx.Barrier(2), ctx.Queue()  # both processes start their passes together
    now = (T0 + timedelta(minutes=1)).isoformat()
    workers = [
        ctx.Process(target=dispatch_worker, args=(pg_url, server.url, name, now, go, results, name == "worker-b"))
        for name in ("worker-a", "worker-b")
    ]
    for w in workers:
        w.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(30)
        assert w.exitcode == 0
    return outcomes


def test_two_processes_send_each_reminder_exactly_once(pg_url: str) -> None:
    repo = _seed(pg_url, (date(2027, 1, 12),))
    written = schedule_pickups(repo, T0 - timedelta(days=20), ScheduleSettings(PHARMACY), load_templates())
    assert written == 2 * PATIENTS  # a reminder (due now) and a review (due in two days) each
    with GatewayServer() as server:
        outcomes = _run_two_workers(pg_url, server)
    assert sum(o[1] for o in outcomes) == PATIENTS and sum(o[2] for o in outcomes) == 0
    assert len(server.state.calls) == len(set(server.state.calls)) == PATIENTS  # no call twice, none lost
    assert sorted(d.to for d in server.state.order) == sorted(f"+1555100{i:04d}" for i in range(PATIENTS))
    sent = [s.resource() for s in repo.iter_all("Communication")]
    assert len(sent) == PATIENTS and all(c["status"] == "completed" for c in sent)
    assert len({c["basedOn"][0]["reference"] for c in sent}) == PATIENTS
    statuses = sorted(s.resource()["status"] for s in repo.iter_all("CommunicationRequest"))
    assert statuses == ["active"] * PATIENTS + ["completed"] * PATIENTS  # the reviews are not due yet
    for resource in sent[:5]:
        assert_valid(resource)
    repo.close()


def test_two_processes_never_overrun_the_daily_cap(pg_url: str) -> None:
    # Per patient three requests due at once (two reminders and a review): the cap allows one a day.
    repo = _seed(pg_url, (date(2027, 1, 10), date(2027, 1, 12)))
    schedule_pickups(repo, T0 - timedelta(days=20), ScheduleSettings(PHARMACY), load_templates())
    with GatewayServer() as server:
        server.state.latency = 0.03
        outcomes = _run_two_workers(pg_url, server)
    assert sum(o[1] for o in outcomes) == PATIENTS and sum(o[2] for o in outcomes) == 2 * PATIENTS
    assert Counter(d.to for d in server.state.order) == {f"+1555100{i:04d}": 1 for i in range(PATIENTS)}
    assert len(server.state.calls) == PATIENTS
    comms = [s.resource() for s in repo.iter_all("Communication")]
    reasons = Counter(c["statusReason"]["coding"][0]["code"] for c in comms if c["status"] == "not-done")
    assert reasons == {"cap-day": 2 * PATIENTS}
    repo.close()
