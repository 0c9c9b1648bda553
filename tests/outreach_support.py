"""Test helpers of the outreach tests: a real local gateway server and a small synthetic pharmacy.

The server is a ThreadingHTTPServer on 127.0.0.1 that dedupes by Idempotency-Key, as a real SMS provider
does, and counts every call, so a test can tell "called twice" from "delivered twice".
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from interop.fhir.ids import business_id
from interop.outreach.dispatcher import OutreachDispatcher
from interop.outreach.policy import consent_resource
from interop.outreach.vocabulary import TZ_EXTENSION
from interop.store.base import Stored

PHARMACY = "Elm Street Pharmacy"


@dataclass
class Delivery:
    key: str
    to: str
    text: str
    subject: str | None
    path: str
    message_id: str


@dataclass
class GatewayState:
    calls: list[str] = field(default_factory=list)
    delivered: dict[str, Delivery] = field(default_factory=dict)
    order: list[Delivery] = field(default_factory=list)
    down: bool = False
    fail_next: int = 0
    latency: float = 0.0
    """Seconds each call takes, as a real provider's does (widens the window between send and record)."""
    lock: threading.Lock = field(default_factory=threading.Lock)


class GatewayServer:
    """``/sms`` and ``/email`` endpoints; 503 while ``down`` or for the next ``fail_next`` calls."""

    def __init__(self, token: str = "secret-token") -> None:
        state = self.state = GatewayState()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                key = self.headers.get("Idempotency-Key", "")
                time.sleep(state.latency)
                with state.lock:
                    state.calls.append(key)
                    if self.headers.get("Authorization") != f"Bearer {token}" or not key:
                        status, answer = 401, {"error": "unauthorized"}
                    elif state.down or state.fail_next > 0:
                        state.fail_next = max(0, state.fail_next - 1)
                        status, answer = 503, {"error": "unavailable"}
                    elif key in state.delivered:
                        status, answer = 200, {"id": state.delivered[key].message_id, "duplicate": True}
                    else:
                        item = Delivery(key, body["to"], body["text"], body.get("subject"), self.path,
                                        f"msg-{len(state.delivered) + 1}")
                        state.delivered[key] = item
                        state.order.append(item)
                        status, answer = 200, {"id": item.message_id}
                raw = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> GatewayServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def patient(pid: str, phone: str, zone: str | None = None, email: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"family": f"Test{pid}", "given": ["Pat"]}],
        "telecom": [{"system": "phone", "value": phone, "use": "mobile"}],
    }
    if email:
        resource["telecom"].append({"system": "email", "value": email})
    if zone:
        resource["extension"] = [{"url": TZ_EXTENSION, "valueCode": zone}]
    return resource


def pickup(pid: str, day: date) -> dict[str, Any]:
    """A pickup Appointment in the sync planner's shape (interop.sync.fhir_out)."""
    return {
        "resourceType": "Appointment",
        "id": business_id("Appointment", f"Patient/{pid}", "anchor", day.isoformat(), "pickup"),
        "status": "proposed",
        "serviceType": [{"text": "Prescription pickup"}],
        "description": "Pickup of 2 prescription fill(s)",
        "requestedPeriod": [{"start": day.isoformat(), "end": day.isoformat()}],
        "participant": [{"actor": {"reference": f"Patient/{pid}"}, "required": "required", "status": "needs-action"}],
    }


def medication_request(pid: str, name: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": business_id("MedicationRequest", pid, name),
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": name},
        "subject": {"reference": f"Patient/{pid}"},
    }


def consent(pid: str, channel: str, contact: str, at: datetime, *, permit: bool = True, detail: bool = False) -> dict[str, Any]:
    return consent_resource(pid, channel, contact, permit=permit, detail=detail, at=at)


class _Reversed(OutreachDispatcher):
    """Takes due work newest first, so two workers meet on the same patient instead of the same request."""

    def due(self, now: datetime) -> list[Stored]:
        return super().due(now)[::-1]


def dispatch_worker(db_url: str, gateway_url: str, name: str, now_iso: str, go: Any, results: Any, reverse: bool) -> None:
    """A dispatcher process (multiprocessing target): waits at barrier ``go``, runs passes until nothing is due."""
    from interop.outreach.gateway import Channel, Gateway
    from interop.outreach.policy import PolicySettings
    from interop.store import open_repository

    repo = open_repository(db_url)
    gateway = Gateway({"sms": Channel(gateway_url + "/sms", "secret-token")}, retries=2, backoff=0.05)
    dispatcher = (_Reversed if reverse else OutreachDispatcher)(repo, gateway, PolicySettings(PHARMACY), name, batch=500)
    now = datetime.fromisoformat(now_iso)
    go.wait(30)
    sent = blocked = passes = 0
    while dispatcher.due(now):
        report = dispatcher.run_once(now)
        sent, blocked, passes = sent + report.sent, blocked + report.blocked, passes + 1
    results.put((name, sent, blocked, passes))
    gateway.close()
    repo.close()
