"""Writes the outreach CommunicationRequests of the stored pickup Appointments (service layer).

Channel and wording follow the patient's Consents: SMS when permitted, else e-mail, and drug names only
with the clinical-detail opt-in. A request the dispatcher has touched (claimed, deferred, sent or blocked) is never rewritten, so
re-planning cannot make a message go out twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from interop.outreach.policy import consent_id, read_consent
from interop.outreach.schedule import (
    PICKUP_STATUSES,
    ScheduleSettings,
    appointment_patient,
    pickup_day,
    pickup_requests,
)
from interop.outreach.templates import Template
from interop.outreach.vocabulary import CHANNELS, Resource, patient_id
from interop.store.base import Gone, NotFound, Repository, VersionConflict


def _read(repo: Repository, rtype: str, rid: str) -> Resource | None:
    try:
        return repo.read(rtype, rid).resource()
    except (NotFound, Gone):
        return None


def _drug_names(repo: Repository, patient_ref: str) -> list[str]:
    names = []
    for stored in repo.search("MedicationRequest", [("patient", patient_ref), ("status", "active"), ("_count", "50")]).matches:
        text = stored.resource().get("medicationCodeableConcept", {}).get("text")
        if text:
            names.append(str(text))
    return names


def _same(old: Resource, new: Resource, now: datetime) -> bool:
    """Same wording and time (two times both already due count as the same: nothing to move)."""
    before, after = (datetime.fromisoformat(r["occurrenceDateTime"]) for r in (old, new))
    return old.get("payload") == new["payload"] and (before == after or (before <= now and after <= now))


def schedule_pickups(
    repo: Repository,
    now: datetime,
    settings: ScheduleSettings,
    templates: dict[str, Template],
    appointments: Iterable[Resource] | None = None,
) -> int:
    """Create or refresh the reminder and review requests of ``appointments`` (default: every stored one).

    Returns how many requests were written.
    """
    written = 0
    source = appointments if appointments is not None else (s.resource() for s in repo.iter_all("Appointment"))
    for appointment in source:
        patient_ref = appointment_patient(appointment)
        day = pickup_day(appointment)
        if patient_ref is None or day is None or day < now.date() or appointment.get("status") not in PICKUP_STATUSES:
            continue
        pid = patient_id(patient_ref)
        views = {ch: read_consent(_read(repo, "Consent", consent_id(pid, ch))) for ch in CHANNELS}
        channel = next((ch for ch in CHANNELS if (v := views[ch]) is not None and v.permitted), "sms")
        view = views[channel]
        detail = bool(view and view.detail)
        drugs = _drug_names(repo, patient_ref) if detail else []
        patient = _read(repo, "Patient", pid)
        for request in pickup_requests(
            appointment, patient, now, settings, templates, channel=channel, drugs=drugs, detail=detail
        ):
            try:
                current = repo.read("CommunicationRequest", request["id"])
            except (NotFound, Gone):
                repo.update(request)
                written += 1
                continue
            old = current.resource()
            if old.get("status") != "active" or "extension" in old or _same(old, request, now):
                continue
            try:
                repo.update(request, if_match=current.version_id)
                written += 1
            except VersionConflict:
                continue
    return written
