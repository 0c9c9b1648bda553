"""The outreach policy engine: decides, before anything is sent, whether one message may go out.

Rules (ids in conformance/CodeSystem-outreach-rule.json): Consent per patient and channel (opt-in, opt-out,
the contact the patient gave); the TCPA healthcare exemption (FCC Declaratory Ruling 10 Jul 2015: ≤ 1
message a day and ≤ 3 a week per patient, ≤ 160 characters, the provider's name, how to opt out; quiet
hours in the patient's zone); HIPAA minimum necessary (45 CFR 164.502(b): no drug names or conditions
unless the patient opted in). One opt-out confirmation is allowed after a revocation (47 CFR 64.1200(a)(10)).

The Consent shape read and written here (one Consent per patient and channel, id
``business_id("Consent", patient id, "outreach", channel)``; every change is a new version, so the store's
history is the consent log)::

    {"resourceType": "Consent", "status": "active",
     "extension": [{"url": ".../StructureDefinition/outreach-contact",
                    "valueContactPoint": {"system": "sms" | "email", "value": "+15551230001"}}],
     "scope": {"coding": [{"system": ".../consentscope", "code": "patient-privacy"}]},
     "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
     "patient": {"reference": "Patient/1"}, "dateTime": "<when it last changed>",
     "policyRule": {"coding": [{"system": ".../v3-ActCode", "code": "OPTIN" | "OPTOUT"}]},
     "provision": {"type": "permit" | "deny",
                   "provision": [{"type": "permit",            # only when detail was opted in
                                  "code": [{"coding": [{"system": ".../outreach-content",
                                                        "code": "clinical-detail"}]}]}]}}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from interop.fhir.ids import business_id
from interop.outreach.vocabulary import (
    CLINICAL_DETAIL,
    CONSENT_SCOPE,
    CONTACT_EXTENSION,
    CONTENT_SYSTEM,
    LOINC,
    TZ_EXTENSION,
    V3_ACT_CODE,
    Resource,
)

STOP_HINT = "Reply STOP to opt out"


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """The tunables of the rules; defaults are the TCPA healthcare exemption's limits."""

    pharmacy_name: str
    default_zone: str = "America/New_York"
    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)
    max_per_day: int = 1
    max_per_week: int = 3
    max_chars: int = 160


@dataclass(frozen=True, slots=True)
class Message:
    """What would be sent: ``kind`` is an outreach-kind code; ``detail`` says the text names drugs or conditions."""

    channel: str
    text: str
    kind: str = "reminder"
    detail: bool = False


@dataclass(frozen=True, slots=True)
class ConsentView:
    """A Consent read for outreach: the channel, the contact the patient gave, permit or deny, detail opt-in."""

    channel: str | None
    contact: str | None
    permitted: bool
    detail: bool
    changed: datetime | None


@dataclass(frozen=True, slots=True)
class Decision:
    """Allow, or block with the rule id (outreach-rule code) and a reason; ``retry_at`` when only time blocks."""

    allowed: bool
    rule: str | None = None
    reason: str = ""
    retry_at: datetime | None = None


ALLOW = Decision(True, None, "allowed")


def consent_id(patient: str, channel: str) -> str:
    """The id of the outreach Consent of ``patient`` (id, not reference) on ``channel``."""
    return business_id("Consent", patient, "outreach", channel)


def consent_resource(
    patient: str, channel: str, contact: str, *, permit: bool, detail: bool = False, at: datetime
) -> Resource:
    """The outreach Consent (shape in the module docstring) of ``patient`` on ``channel`` as of ``at``."""
    provision: Resource = {"type": "permit" if permit else "deny"}
    if permit and detail:
        provision["provision"] = [
            {"type": "permit", "code": [{"coding": [{"system": CONTENT_SYSTEM, "code": CLINICAL_DETAIL}]}]}
        ]
    return {
        "resourceType": "Consent",
        "id": consent_id(patient, channel),
        "extension": [{"url": CONTACT_EXTENSION, "valueContactPoint": {"system": channel, "value": contact}}],
        "status": "active",
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": LOINC, "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": {"reference": f"Patient/{patient}"},
        "dateTime": at.isoformat(),
        "policyRule": {"coding": [{"system": V3_ACT_CODE, "code": "OPTIN" if permit else "OPTOUT"}]},
        "provision": provision,
    }


def revoked(consent: Resource, at: datetime) -> Resource:
    """``consent`` turned to deny at ``at`` (a STOP reply); the contact stays so the log shows what was revoked."""
    updated = {k: v for k, v in consent.items() if k != "meta"}
    updated["dateTime"] = at.isoformat()
    updated["policyRule"] = {"coding": [{"system": V3_ACT_CODE, "code": "OPTOUT"}]}
    updated["provision"] = {"type": "deny"}
    return updated


def read_consent(consent: Resource | None) -> ConsentView | None:
    """The outreach facts of a Consent; None when absent. A non-active Consent permits nothing."""
    if consent is None:
        return None
    channel = contact = None
    for ext in consent.get("extension", ()):
        if ext.get("url") == CONTACT_EXTENSION:
            point = ext.get("valueContactPoint", {})
            channel, contact = point.get("system"), point.get("value")
    provision = consent.get("provision", {})
    permitted = consent.get("status") == "active" and provision.get("type") == "permit"
    detail = permitted and any(
        sub.get("type") == "permit"
        and any(c.get("system") == CONTENT_SYSTEM and c.get("code") == CLINICAL_DETAIL for cc in sub.get("code", ()) for c in cc.get("coding", ()))
        for sub in provision.get("provision", ())
    )
    stamp = consent.get("dateTime")
    return ConsentView(channel, contact, permitted, detail, datetime.fromisoformat(stamp) if stamp else None)


def patient_zone(patient: Resource | None, default: str) -> ZoneInfo:
    """The patient's IANA zone from the tz-code extension, else ``default`` (the pharmacy's)."""
    for ext in (patient or {}).get("extension", ()):
        if ext.get("url") == TZ_EXTENSION and ext.get("valueCode"):
            try:
                return ZoneInfo(ext["valueCode"])
            except (ZoneInfoNotFoundError, ValueError):
                break
    return ZoneInfo(default)


def is_quiet(local: datetime, settings: PolicySettings) -> bool:
    """Whether local wall-clock time ``local`` falls in quiet hours (the window may wrap midnight)."""
    t = local.time()
    start, end = settings.quiet_start, settings.quiet_end
    return (t >= start or t < end) if start > end else (start <= t < end)


def quiet_ends(now: datetime, zone: ZoneInfo, settings: PolicySettings) -> datetime:
    """The first instant at or after ``now`` outside quiet hours in ``zone``."""
    local = now.astimezone(zone)
    if not is_quiet(local, settings):
        return now
    day = local.date() if local.time() < settings.quiet_end else local.date() + timedelta(days=1)
    return datetime.combine(day, settings.quiet_end, zone)


def decide(
    message: Message,
    consent: Resource | None,
    patient: Resource | None,
    sent: Sequence[datetime],
    now: datetime,
    settings: PolicySettings,
    *,
    sensitive_terms: Sequence[str] = (),
    confirmations_since_revocation: int = 0,
) -> Decision:
    """Allow ``message`` to the patient at ``now``, or block it naming the rule.

    ``sent`` are the send times of the outreach messages already sent to this patient (opt-out
    confirmations excluded); ``sensitive_terms`` are the patient's drug names and conditions, which the
    text may carry only with a clinical-detail opt-in.
    """
    view = read_consent(consent)
    if message.kind == "opt-out-confirmation":
        return _confirmation(message, view, settings, confirmations_since_revocation)
    if view is None:
        return Decision(False, "consent-missing", f"no outreach Consent on {message.channel}")
    if view.channel != message.channel:
        return Decision(False, "consent-missing", f"the Consent covers {view.channel}, not {message.channel}")
    if not view.permitted:
        return Decision(False, "consent-opt-out", f"the patient opted out of {message.channel}")
    if not view.contact:
        return Decision(False, "contact-not-given", "the Consent names no number or address the patient gave")
    content = _content(message, settings)
    if content is not None:
        return content
    lowered = message.text.lower()
    if (message.detail or any(t and t.lower() in lowered for t in sensitive_terms)) and not view.detail:
        return Decision(False, "minimum-necessary", "the text names a drug or condition without the patient's opt-in")
    zone = patient_zone(patient, settings.default_zone)
    local = now.astimezone(zone)
    if is_quiet(local, settings):
        return Decision(
            False,
            "quiet-hours",
            f"{local:%H:%M} in {zone.key} is within quiet hours {settings.quiet_start:%H:%M}-{settings.quiet_end:%H:%M}",
            quiet_ends(now, zone, settings),
        )
    today = [s for s in sent if s.astimezone(zone).date() == local.date()]
    if len(today) >= settings.max_per_day:
        return Decision(False, "cap-day", f"{len(today)} message(s) already sent today ({local.date()})")
    week = [s for s in sent if now - timedelta(days=7) < s <= now]
    if len(week) >= settings.max_per_week:
        return Decision(False, "cap-week", f"{len(week)} message(s) already sent in the last 7 days")
    return ALLOW


def _content(message: Message, settings: PolicySettings) -> Decision | None:
    if len(message.text) > settings.max_chars:
        return Decision(False, "length", f"{len(message.text)} characters, more than {settings.max_chars}")
    if settings.pharmacy_name.lower() not in message.text.lower():
        return Decision(False, "pharmacy-name", f"the text does not name the pharmacy ({settings.pharmacy_name})")
    if message.kind != "opt-out-confirmation" and "stop" not in message.text.lower():
        return Decision(False, "stop-instructions", "the text does not say how to opt out (reply STOP)")
    return None


def _confirmation(message: Message, view: ConsentView | None, settings: PolicySettings, already: int) -> Decision:
    if view is None or view.permitted:
        return Decision(False, "consent-missing", "an opt-out confirmation needs a revoked Consent")
    if view.channel != message.channel or not view.contact:
        return Decision(False, "contact-not-given", f"no {message.channel} contact on the revoked Consent")
    if already:
        return Decision(False, "confirmation-sent", "the one opt-out confirmation was already sent")
    return _content(message, settings) or ALLOW
