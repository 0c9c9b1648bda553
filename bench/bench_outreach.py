"""Outreach dispatcher throughput: messages per second through policy, gateway (in-process transport) and
store on a SQLite file, against the store floor measured in the same run (the claim and record writes alone).

    .venv/bin/python -m bench.bench_outreach           # 300 due reminders
    .venv/bin/python -m bench.bench_outreach --n 3000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from interop.fhir.ids import business_id
from interop.outreach.dispatcher import OutreachDispatcher
from interop.outreach.gateway import Channel, Gateway
from interop.outreach.outbox import schedule_pickups
from interop.outreach.policy import PolicySettings, consent_resource
from interop.outreach.schedule import ScheduleSettings
from interop.outreach.templates import load_templates
from interop.outreach.vocabulary import TZ_EXTENSION
from interop.store import SqlRepository, open_repository

PHARMACY = "Bench Pharmacy"
NOW = datetime(2027, 1, 5, 15, 0, tzinfo=UTC)


def _pharmacy(repo: SqlRepository, n: int) -> None:
    entries = []
    for i in range(n):
        pid, phone = f"b{i}", f"+1555{i:07d}"
        resources = [
            {"resourceType": "Patient", "id": pid, "telecom": [{"system": "phone", "value": phone}],
             "extension": [{"url": TZ_EXTENSION, "valueCode": "America/New_York"}]},
            consent_resource(pid, "sms", phone, permit=True, at=NOW - timedelta(days=90)),
            {"resourceType": "Appointment", "id": business_id("Appointment", pid, "bench"), "status": "proposed",
             "requestedPeriod": [{"start": "2027-01-12", "end": "2027-01-12"}],
             "participant": [{"actor": {"reference": f"Patient/{pid}"}, "status": "needs-action"}]},
        ]
        entries += [{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]
    repo.process_bundle({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    schedule_pickups(repo, NOW - timedelta(days=30), ScheduleSettings(PHARMACY), load_templates())


def dispatcher_rate(folder: Path, n: int) -> float:
    repo = open_repository(f"sqlite:///{folder / 'dispatch.db'}")
    _pharmacy(repo, n)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"id": request.headers["Idempotency-Key"]}))
    gateway = Gateway({"sms": Channel("http://gateway.invalid/sms")}, client=httpx.Client(transport=transport))
    worker = OutreachDispatcher(repo, gateway, PolicySettings(PHARMACY), "bench", batch=n)
    started = time.perf_counter()
    sent = worker.run_once(NOW + timedelta(minutes=1)).sent
    elapsed = time.perf_counter() - started
    repo.close()
    if sent != n:
        raise SystemExit(f"expected {n} messages sent, got {sent}")
    return n / elapsed


def floor_rate(folder: Path, n: int) -> float:
    """The same writes without reads, policy or HTTP: claim update, then Communication + completion in a session."""
    repo = open_repository(f"sqlite:///{folder / 'floor.db'}")
    requests = [{"resourceType": "CommunicationRequest", "id": f"cr{i}", "status": "active",
                 "subject": {"reference": f"Patient/b{i}"}, "payload": [{"contentString": "x" * 120}]} for i in range(n)]
    for r in requests:
        repo.update(r)
    started = time.perf_counter()
    for r in requests:
        claimed = repo.update({**r, "status": "on-hold"}, if_match=1)
        with repo.session() as s:
            s.update({"resourceType": "Communication", "id": f"c-{r['id']}", "status": "completed",
                      "subject": r["subject"], "payload": r["payload"], "sent": NOW.isoformat()})
            s.update({**r, "status": "completed"}, if_match=claimed.stored.version_id)
    elapsed = time.perf_counter() - started
    repo.close()
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=300, help="due reminders (one patient each)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        floor = floor_rate(folder, args.n)
        rate = dispatcher_rate(folder, args.n)
    print(f"outreach dispatcher: {rate:,.0f} messages/s ({args.n} due reminders, SQLite, in-process gateway)")
    print(f"store floor (claim + record writes only): {floor:,.0f} messages/s")
    print(f"ratio dispatcher/floor: {rate / floor:.2f}")


if __name__ == "__main__":
    main()
