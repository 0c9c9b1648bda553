"""The dispatcher (service layer): sends the due CommunicationRequests, exactly once, and records the outcome.

Each due request (status active, occurrenceDateTime ≤ now) is claimed by an optimistic-locking update
(active → on-hold with the ``outreach-claim`` extension: worker, lease expiry, idempotency key; If-Match the
version read, so a VersionConflict means another worker won). The policy decides; an allowed message goes
to the gateway with ``Idempotency-Key`` = request id + the version of its first claim; then one session
writes the Communication and completes the request. A claim whose lease expired (a crash between send and
record) is re-claimed and resent under the same key, so the gateway drops the duplicate. A request whose
patient has another request claimed waits for the next pass, so concurrent workers cannot overrun the caps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from interop.config import Settings
from interop.fhir.ids import business_id
from interop.fhir.systems import identifier_system
from interop.outreach.gateway import Gateway, GatewayRejected, GatewayUnavailable
from interop.outreach.policy import Decision, Message, PolicySettings, consent_id, decide, read_consent
from interop.outreach.schedule import PICKUP_STATUSES
from interop.outreach.vocabulary import (
    CHANNEL_SYSTEM,
    CLAIM_EXTENSION,
    KIND_SYSTEM,
    KINDS,
    RULE_SYSTEM,
    Resource,
    coded,
    patient_id,
)
from interop.store.base import Gone, NotFound, Repository, Stored, VersionConflict

log = logging.getLogger(__name__)

PICKUP_KINDS = frozenset({"reminder", "review"})
"""Request kinds about a pickup Appointment: withdrawn when that pickup is cancelled before they are sent."""
OUTREACH_CATEGORIES = ",".join(f"{KIND_SYSTEM}|{kind}" for kind in KINDS if kind != "reply")
"""Only requests outreach wrote (an outreach-kind category) are sent; other CommunicationRequests are not ours."""


def policy_settings(settings: Settings) -> PolicySettings:
    """The policy's tunables from the process settings (pharmacy name and default zone)."""
    return PolicySettings(pharmacy_name=settings.pharmacy_name, default_zone=settings.pharmacy_time_zone)


@dataclass(slots=True)
class PassReport:
    """What one pass did: messages sent, blocked (recorded not-done), deferred (quiet hours), left due."""

    sent: int = 0
    blocked: int = 0
    deferred: int = 0
    unavailable: int = 0
    lost: int = 0
    rules: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Claim:
    resource: Resource
    version: int
    key: str


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def claim_of(resource: Resource) -> dict[str, str]:
    """The ``outreach-claim`` extension's parts (worker, expires, key) of a CommunicationRequest."""
    for ext in resource.get("extension", ()):
        if ext.get("url") == CLAIM_EXTENSION:
            return {
                sub["url"]: str(sub.get("valueString") or sub.get("valueInstant") or "")
                for sub in ext.get("extension", ())
            }
    return {}


def _with_claim(resource: Resource, parts: dict[str, str]) -> Resource:
    updated = {k: v for k, v in resource.items() if k != "meta"}
    others = [e for e in resource.get("extension", ()) if e.get("url") != CLAIM_EXTENSION]
    subs = [
        {"url": name, ("valueInstant" if name == "expires" else "valueString"): parts[name]}
        for name in ("worker", "expires", "key")
        if parts.get(name)
    ]
    updated["extension"] = [*others, {"url": CLAIM_EXTENSION, "extension": subs}] if subs else others
    if not updated["extension"]:
        del updated["extension"]
    return updated


class OutreachDispatcher:
    """One worker's view of the outreach queue; any number may run against the same store."""

    def __init__(
        self,
        repo: Repository,
        gateway: Gateway,
        policy: PolicySettings,
        worker_id: str,
        *,
        lease: timedelta = timedelta(minutes=5),
        batch: int = 100,
    ) -> None:
        self.repo = repo
        self.gateway = gateway
        self.policy = policy
        self.worker_id = worker_id
        self.lease = lease
        self.batch = batch

    # ------------------------------------------------------------------------------------ the queue
    def due(self, now: datetime) -> list[Stored]:
        """Outreach requests due at ``now``: active ones, and on-hold ones whose claim lease has expired."""
        found: list[Stored] = []
        for status in ("active", "on-hold"):
            params: list[tuple[str, str]] = [
                ("status", status),
                ("category", OUTREACH_CATEGORIES),
                ("occurrence", f"le{_instant(now)}"),
                ("_sort", "occurrence"),
                ("_count", str(self.batch)),
            ]
            cursor: str | None = None
            while True:
                page = self.repo.search("CommunicationRequest", [*params, ("_cursor", cursor)] if cursor else params)
                for stored in page.matches:
                    if status == "active" or self._expired(stored.resource(), now):
                        found.append(stored)
                cursor = page.next_cursor
                if not cursor or len(found) >= self.batch:
                    break
        return found[: self.batch]

    @staticmethod
    def _expired(resource: Resource, now: datetime) -> bool:
        expires = claim_of(resource).get("expires")
        return expires is not None and expires != "" and datetime.fromisoformat(expires) <= now

    def claim(self, stored: Stored, now: datetime) -> Claim | None:
        """Take ``stored`` for this worker (If-Match its version); None when another worker got there first."""
        resource = stored.resource()
        if resource.get("status") == "on-hold" and not self._expired(resource, now):
            return None
        previous = claim_of(resource)
        key = previous.get("key") or f"{stored.id}.{stored.version_id + 1}"
        claimed = _with_claim(
            resource, {"worker": self.worker_id, "expires": _instant(now + self.lease), "key": key}
        )
        claimed["status"] = "on-hold"
        try:
            written = self.repo.update(claimed, if_match=stored.version_id)
        except VersionConflict:
            return None
        return Claim(claimed, written.stored.version_id, key)

    # ------------------------------------------------------------------------------------ one pass
    def run_once(self, now: datetime) -> PassReport:
        """Claim and handle every due request once; stops early when the gateway is unavailable."""
        report = PassReport()
        for stored in self.due(now):
            claim = self.claim(stored, now)
            if claim is None:
                continue
            try:
                self._handle(claim, now, report)
            except GatewayUnavailable as exc:
                log.warning("outreach gateway unavailable, work stays due: %s", exc)
                self._release(claim, None)
                report.unavailable += 1
                break
        return report

    def _handle(self, claim: Claim, now: datetime, report: PassReport) -> None:
        cr = claim.resource
        kind = coded(cr.get("category"), KIND_SYSTEM) or "reminder"
        channel = coded(cr.get("medium"), CHANNEL_SYSTEM) or "sms"
        patient_ref = cr.get("subject", {}).get("reference", "")
        try:
            pid = patient_id(patient_ref)
        except ValueError as exc:
            self._record(claim, now, Decision(False, "consent-missing", f"no patient to ask for consent: {exc}"), None)
            report.blocked += 1
            return
        if kind in PICKUP_KINDS and (gone := self._cancelled_pickup(cr)) is not None:
            self._record(claim, now, Decision(False, "pickup-cancelled", f"{gone} is no longer a planned pickup"), None)
            report.blocked += 1
            report.rules["pickup-cancelled"] = report.rules.get("pickup-cancelled", 0) + 1
            return
        if self._busy(patient_ref, cr["id"]):
            self._release(claim, None)
            report.deferred += 1
            return
        text = "".join(p.get("contentString", "") for p in cr.get("payload", ()))
        patient = self._read("Patient", pid)
        consent = self._read("Consent", consent_id(pid, channel))
        decision = decide(
            Message(channel, text, kind),
            consent,
            patient,
            self._sent_times(patient_ref, now),
            now,
            self.policy,
            sensitive_terms=self._drug_names(patient_ref),
            confirmations_since_revocation=self._confirmations(patient_ref, consent),
        )
        if decision.retry_at is not None:
            self._release(claim, decision.retry_at)
            report.deferred += 1
            return
        if not decision.allowed:
            self._record(claim, now, decision, None)
            report.blocked += 1
            report.rules[decision.rule or ""] = report.rules.get(decision.rule or "", 0) + 1
            return
        view = read_consent(consent)
        to = view.contact if view and view.contact else ""
        subject = text.split(":", 1)[0] if channel == "email" else None
        try:
            message_id = self.gateway.send(channel, to, text, claim.key, subject)
        except GatewayRejected as exc:
            self._record(claim, now, Decision(False, "gateway-rejected", str(exc)), None)
            report.blocked += 1
            report.rules["gateway-rejected"] = report.rules.get("gateway-rejected", 0) + 1
            return
        if self._record(claim, now, decision, message_id):
            report.sent += 1
        else:
            report.lost += 1

    # ------------------------------------------------------------------------------------ store
    def _read(self, rtype: str, rid: str) -> Resource | None:
        try:
            return self.repo.read(rtype, rid).resource()
        except (NotFound, Gone):
            return None

    def _cancelled_pickup(self, cr: Resource) -> str | None:
        """The Appointment a reminder or review request is about when it is no longer a planned pickup (a re-plan
        cancelled it, or it was deleted); None while it stands, or when the request is about no Appointment."""
        for about in cr.get("about", ()):
            rtype, _, rid = str(about.get("reference", "")).partition("/")
            if rtype == "Appointment" and rid:
                appointment = self._read("Appointment", rid)
                if appointment is None or appointment.get("status") not in PICKUP_STATUSES:
                    return f"Appointment/{rid}"
        return None

    def _busy(self, patient_ref: str, own_id: str) -> bool:
        """Whether another request of this patient is claimed: its send may be under way, so the caps cannot
        be checked yet. Two workers that claim at once both commit before looking, so at least one sees the
        other and waits; one that looks after the other finished sees its Communication instead."""
        params = [("subject", patient_ref), ("status", "on-hold"), ("category", OUTREACH_CATEGORIES), ("_count", "10")]
        return any(s.id != own_id for s in self.repo.search("CommunicationRequest", params).matches)

    def _outbound(self, patient_ref: str, since: datetime) -> list[Resource]:
        params = [("patient", patient_ref), ("status", "completed"), ("sent", f"ge{_instant(since)}"), ("_count", "100")]
        return [s.resource() for s in self.repo.search("Communication", params).matches]

    def _sent_times(self, patient_ref: str, now: datetime) -> list[datetime]:
        return [
            datetime.fromisoformat(c["sent"])
            for c in self._outbound(patient_ref, now - timedelta(days=8))
            if coded(c.get("category"), KIND_SYSTEM) not in ("opt-out-confirmation", "reply")
        ]

    def _confirmations(self, patient_ref: str, consent: Resource | None) -> int:
        view = read_consent(consent)
        if view is None or view.permitted or view.changed is None:
            return 0
        return sum(
            1
            for c in self._outbound(patient_ref, view.changed)
            if coded(c.get("category"), KIND_SYSTEM) == "opt-out-confirmation"
            and coded(c.get("medium"), CHANNEL_SYSTEM) == view.channel
        )

    def _drug_names(self, patient_ref: str) -> list[str]:
        names: list[str] = []
        result = self.repo.search("MedicationRequest", [("patient", patient_ref), ("_count", "100")])
        for stored in result.matches:
            concept = stored.resource().get("medicationCodeableConcept", {})
            names += [concept.get("text", "")] + [c.get("display", "") for c in concept.get("coding", ())]
        return [n for n in names if n]

    def _release(self, claim: Claim, retry_at: datetime | None) -> None:
        """Hand the request back (status active, same idempotency key), due again at ``retry_at`` if given."""
        released = _with_claim(claim.resource, {"key": claim.key})
        released["status"] = "active"
        if retry_at is not None:
            released["occurrenceDateTime"] = retry_at.isoformat()
        try:
            self.repo.update(released, if_match=claim.version)
        except VersionConflict:
            log.info("CommunicationRequest/%s changed while claimed; leaving it", claim.resource["id"])

    def _record(self, claim: Claim, now: datetime, decision: Decision, message_id: str | None) -> bool:
        """In one session: the Communication (completed or not-done) and the request completed."""
        cr = claim.resource
        channel = coded(cr.get("medium"), CHANNEL_SYSTEM) or "sms"
        comm: Resource = {
            "resourceType": "Communication",
            "id": business_id("Communication", cr["id"]),
            "basedOn": [{"reference": f"CommunicationRequest/{cr['id']}"}],
            "status": "completed" if message_id is not None else "not-done",
            "category": cr.get("category", []),
            "medium": cr.get("medium", []),
            "subject": cr.get("subject", {"display": "unknown"}),
            "recipient": cr.get("recipient", [cr.get("subject", {"display": "unknown"})]),
            "payload": cr.get("payload", []),
        }
        if cr.get("about"):
            comm["about"] = cr["about"]
        if message_id is not None:
            comm["sent"] = _instant(now)
            comm["identifier"] = [{"system": identifier_system("gateway-message", channel), "value": message_id}]
        else:
            comm["statusReason"] = {
                "coding": [{"system": RULE_SYSTEM, "code": decision.rule or "blocked"}],
                "text": decision.reason,
            }
        done = _with_claim(cr, {"key": claim.key})
        done["status"] = "completed" if message_id is not None else "revoked"
        try:
            with self.repo.session() as s:
                s.update(comm)
                s.update(done, if_match=claim.version)
        except VersionConflict:
            log.warning("CommunicationRequest/%s was re-claimed before it was recorded", cr["id"])
            return False
        return True
