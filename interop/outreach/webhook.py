"""``POST /inbound/sms``: a patient's reply, provider-neutral, HMAC-signed, recorded and acted on.

Body ``{"from", "to", "text", "received_at", "message_id"}``; header ``X-Signature`` is the hex
HMAC-SHA256 of the raw body under INTEROP_INBOUND_SECRET (``sha256=`` prefix optional). Every reply becomes a
Communication; YES/C books the pickup, a date makes a reschedule Task, a STOP word revokes the Consent at
once (47 CFR 64.1200(a)(10); one confirmation follows), anything else a staff Task. A redelivered
``message_id`` is answered without acting twice.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from interop.config import Settings
from interop.fhir.audit import DCM, agent, audit_event, entity
from interop.fhir.ids import business_id
from interop.outreach.inbound import classify, confirmed_appointment, reply_communication, staff_task
from interop.outreach.policy import consent_id, consent_resource, patient_zone, read_consent, revoked
from interop.outreach.schedule import PICKUP_STATUSES, message_request, pickup_day
from interop.outreach.templates import load_templates, render
from interop.outreach.vocabulary import CHANNELS, Resource
from interop.store.base import Gone, NotFound, Repository, Session

SIGNATURE_HEADER = "X-Signature"
FIELDS = ("from", "to", "text", "received_at", "message_id")

router = APIRouter(tags=["Outreach"])


class InboundError(ValueError):
    """The request body is not a valid inbound message; ``field`` names the offending member."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def signature(secret: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``body`` under ``secret`` (what the provider puts in X-Signature)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time check of the signature header; always False without a configured secret."""
    if not secret or not header:
        return False
    return hmac.compare_digest(signature(secret, body), header.strip().removeprefix("sha256="))


def parse_message(body: bytes) -> dict[str, Any]:
    """The inbound JSON, checked: every field a non-empty string, ``received_at`` an ISO instant."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InboundError("body", f"not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise InboundError("body", "a JSON object is expected")
    for name in FIELDS:
        if not isinstance(data.get(name), str) or (name != "text" and not data[name].strip()):
            raise InboundError(name, "a non-empty string is required" if name != "text" else "a string is required")
    try:
        stamp = datetime.fromisoformat(data["received_at"].replace("Z", "+00:00"))
    except ValueError as exc:
        raise InboundError("received_at", f"not an ISO 8601 instant ({data['received_at']!r})") from exc
    if stamp.tzinfo is None:
        raise InboundError("received_at", "the instant needs a time zone offset")
    return {**data, "received_at": stamp}


def _read(s: Session, rtype: str, rid: str) -> Resource | None:
    try:
        return s.read(rtype, rid).resource()
    except (NotFound, Gone):
        return None


def _next_pickup(s: Session, patient_ref: str, today: date) -> Resource | None:
    found = [r.resource() for r in s.search("Appointment", [("patient", patient_ref), ("_count", "100")]).matches]
    upcoming = [
        (day, a) for a in found if a.get("status") in PICKUP_STATUSES and (day := pickup_day(a)) and day >= today
    ]
    return min(upcoming, key=lambda pair: pair[0])[1] if upcoming else None


def handle_reply(
    repo: Repository, message: dict[str, Any], now: datetime, settings: Settings, address: str = ""
) -> dict[str, Any]:
    """Record ``message`` (from :func:`parse_message`) and act on it in one transaction; what was done.

    With INTEROP_AUDIT_ENABLED the AuditEvent of the writes commits in that same transaction.
    """
    with repo.session() as s:
        result = _act(s, message, now, settings)
        if settings.audit_enabled and result["action"] != "duplicate":
            s.create(reply_audit(result, address, now))
        return result


def reply_audit(result: dict[str, Any], address: str, now: datetime) -> Resource:
    """The AuditEvent of one inbound reply: the gateway (by address) wrote the resources in ``result``."""
    refs = [f"Communication/{result['communication']}"]
    refs += [f"Task/{result['task']}"] if "task" in result else []
    refs += [f"Appointment/{result['appointment']}"] if "appointment" in result else []
    refs += [f"Consent/{c}" for c in result.get("consents", [])]
    return audit_event(
        event_type={"system": DCM, "code": "110107", "display": "Import"},
        action="C",
        outcome="0",
        agents=[agent({"display": "SMS gateway (POST /inbound/sms)"}, address)],
        observer="medsync-interop inbound SMS webhook",
        entities=[entity(ref) for ref in refs],
        recorded=now,
    )


def _act(s: Session, message: dict[str, Any], now: datetime, settings: Settings) -> dict[str, Any]:
    """Record the reply and act on it in session ``s``."""
    channel = "sms"
    sender: str = message["from"].strip()
    received: datetime = message["received_at"]
    patients = s.search("Patient", [("phone", sender), ("_count", "2")]).matches
    patient = patients[0].resource() if len(patients) == 1 else None
    patient_ref = f"Patient/{patient['id']}" if patient else None
    zone = patient_zone(patient, settings.pharmacy_time_zone)
    today = received.astimezone(zone).date()
    reply = classify(message["text"], today)
    pickup = _next_pickup(s, patient_ref, today) if patient_ref else None
    about = f"Appointment/{pickup['id']}" if pickup else None
    comm = reply_communication(message["message_id"], message["text"], received, channel, patient_ref, about)
    if _read(s, "Communication", comm["id"]) is not None:
        return {"communication": comm["id"], "action": "duplicate"}
    s.update(comm)
    result: dict[str, Any] = {"communication": comm["id"], "action": reply.kind}
    key = comm["id"]
    if patient is None or patient_ref is None:
        why = "no patient has this number" if not patients else "several patients share this number"
        task = staff_task("reply-review", "Review a reply", f"Reply from {sender}: {why}", key=key,
                          patient_ref=None, focus=f"Communication/{key}", now=now)
        s.update(task)
        return {**result, "action": "other", "task": task["id"]}
    if reply.kind == "stop":
        result["consents"] = _opt_out(s, patient["id"], patient_ref, sender, reply.all_channels, key, now, settings)
    elif reply.kind == "confirm" and pickup is not None:
        day = pickup_day(pickup)
        assert day is not None
        start = datetime.combine(day, time(0), zone)
        s.update(confirmed_appointment(pickup, patient_ref, start, start + timedelta(days=1)))
        text = render(load_templates(settings.outreach_templates)["confirmation"], pharmacy=settings.pharmacy_name, day=day).text
        rid = business_id("CommunicationRequest", key, "confirmation")
        s.update(message_request(rid, "confirmation", patient_ref, channel, text, now, now, about))
        result["appointment"] = pickup["id"]
    elif reply.kind == "reschedule" and pickup is not None and reply.proposed is not None:
        task = staff_task("reschedule", "Reschedule a pickup", f"The patient proposes {reply.proposed.isoformat()} for the pickup",
                          key=key, patient_ref=patient_ref, focus=about, now=now, proposed=reply.proposed)
        s.update(task)
        result["task"] = task["id"]
    else:
        task = staff_task("reply-review", "Review a reply", "A reply the system could not act on: read and answer it",
                          key=key, patient_ref=patient_ref, focus=f"Communication/{key}", now=now)
        s.update(task)
        result.update(action="other", task=task["id"])
    return result


def _opt_out(
    s: Session, pid: str, patient_ref: str, sender: str, every: bool, key: str, now: datetime, settings: Settings
) -> list[str]:
    """Deny the SMS Consent (every channel's for STOP ALL) and queue the one opt-out confirmation."""
    changed = []
    for channel in CHANNELS if every else ("sms",):
        current = _read(s, "Consent", consent_id(pid, channel))
        view = read_consent(current)
        if current is None:
            if channel != "sms":
                continue
            updated = consent_resource(pid, "sms", sender, permit=False, at=now)
        elif view is not None and view.permitted:
            updated = revoked(current, now)
        else:
            continue
        s.update(updated)
        changed.append(updated["id"])
        if channel == "sms" or (view is not None and view.contact):
            text = render(load_templates(settings.outreach_templates)["opt-out-confirmation"], pharmacy=settings.pharmacy_name, day=now.date()).text
            rid = business_id("CommunicationRequest", key, channel, "opt-out-confirmation")
            s.update(message_request(rid, "opt-out-confirmation", patient_ref, channel, text, now, now, None))
    return changed


async def _capped_body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it (declared or streamed) exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


@router.post(
    "/inbound/sms",
    summary="Receive a patient's SMS reply (HMAC-SHA256 signed)",
    responses={
        400: {"description": "malformed message"},
        401: {"description": "missing or bad signature"},
        413: {"description": "body too large"},
        429: {"description": "too many requests"},
    },
)
async def inbound_sms(request: Request) -> Response:
    """Verify, record and act on one inbound SMS (see the module docstring for the body and header)."""
    ctx = request.app.state.fhir
    settings: Settings = ctx.settings
    body = await _capped_body(request, settings.inbound_max_bytes)
    if body is None:
        return JSONResponse({"error": f"body larger than {settings.inbound_max_bytes} bytes"}, status_code=413)
    if not verify(settings.inbound_secret, body, request.headers.get(SIGNATURE_HEADER)):
        return JSONResponse({"error": "missing or bad signature"}, status_code=401)
    try:
        message = parse_message(body)
    except InboundError as exc:
        return JSONResponse({"error": str(exc), "field": exc.field}, status_code=400)
    address = request.client.host if request.client else ""
    result = await run_in_threadpool(handle_reply, ctx.repo, message, datetime.now(UTC), settings, address)
    return JSONResponse(result, status_code=200)
