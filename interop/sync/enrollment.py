"""The service half of issue 5: sync plans with the store (load a patient's inputs, plan, enroll, re-plan).

The planner (``interop.sync.plan``) is pure; this module reads and writes the repository. Enrolling stores
the plan (CarePlan active, Tasks as planned, Appointments booked) in one transaction that also retires the
patient's earlier plan: its CarePlan revoked, its open Tasks and Appointments cancelled (versions are kept).
Pickups are booked within the pharmacy counter's capacity, in its Slots (``interop.outreach.booking``).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from time import perf_counter
from typing import Any
from zoneinfo import ZoneInfo

from interop.config import get_settings
from interop.fhir.ids import business_id
from interop.fhir.systems import OUR_BASE, extension_url
from interop.outreach.booking import PickupCounter, book_pickups, capacity_from, place_pickups, slot_entries
from interop.store.base import NotFound, Repository, Resource, SearchParams, Session, Stored, StoreError
from interop.sync.candidates import Candidate, candidate, ranked
from interop.sync.fhir_out import CYCLE_EXTENSION, plan_bundle
from interop.sync.plan import PlanError, SyncPlan, plan_patient
from interop.sync.settings import Preference, SyncSettings

PREFERENCE_EXTENSION = extension_url("sync-pickup-preference")
REPLAN_REASONS = f"{OUR_BASE}/CodeSystem/sync-replan-reason"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
AGENT_NAME = "medsync-interop sync planner"
PAGE = 1000

REQUEST_STATUSES_LEFT_OUT = frozenset({"entered-in-error", "completed"})
"""MedicationRequests not given to the planner: recorded in error, or a course that has ended. Stopped and
cancelled ones are kept so that the plan lists them as excluded (not-active)."""
OPEN_TASK = frozenset({"draft", "requested", "received", "accepted", "ready", "on-hold"})
OPEN_APPOINTMENT = frozenset({"proposed", "pending", "booked", "waitlist"})
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ReplanReason(StrEnum):
    """Why a plan was made again (codes of conformance/CodeSystem-sync-replan-reason.json)."""

    NEW_PRESCRIPTION = "new-prescription"
    PRESCRIPTION_CHANGED = "prescription-changed"
    PRESCRIPTION_STOPPED = "prescription-stopped"
    DISPENSE_DIFFERS = "dispense-differs"
    HOSPITALIZATION = "hospitalization"
    SCHEDULED = "scheduled-replan"
    PICKUP_MOVED = "pickup-moved"
    REVIEW_CHANGE = "review-reported-change"


REASON_DISPLAY = {
    ReplanReason.NEW_PRESCRIPTION: "New prescription",
    ReplanReason.PRESCRIPTION_CHANGED: "Prescription changed",
    ReplanReason.PRESCRIPTION_STOPPED: "Prescription cancelled or stopped",
    ReplanReason.DISPENSE_DIFFERS: "Dispense differs from the plan",
    ReplanReason.HOSPITALIZATION: "Hospitalization",
    ReplanReason.SCHEDULED: "Scheduled re-plan",
    ReplanReason.PICKUP_MOVED: "Pickup moved",
    ReplanReason.REVIEW_CHANGE: "Pre-pickup review reported a change",
}


@dataclass(frozen=True, slots=True)
class Trigger:
    """What caused a re-plan: the resource (``Type/id/_history/v`` or ``Type/id``), the reason and a sentence."""

    reason: ReplanReason
    detail: str
    source: str | None = None


@dataclass(slots=True)
class PatientInputs:
    """Everything the planner needs about one patient, as stored."""

    patient: Resource
    requests: list[Resource] = field(default_factory=list)
    dispenses: list[Resource] = field(default_factory=list)
    coverages: list[Resource] = field(default_factory=list)

    @property
    def reference(self) -> str:
        return f"Patient/{self.patient['id']}"

    @property
    def coverage(self) -> Resource | None:
        """The first active Coverage (Coverage.status), else None: the planner then uses the default payer."""
        return next((c for c in self.coverages if c.get("status", "active") == "active"), None)

    @property
    def state(self) -> str | None:
        """Patient.address.state of the home address (else the first address that has one)."""
        addresses = [a for a in self.patient.get("address", ()) if isinstance(a, dict) and a.get("state")]
        home = [a for a in addresses if a.get("use") == "home"]
        chosen = home or addresses
        return str(chosen[0]["state"]) if chosen else None

    @property
    def preference(self) -> Preference | None:
        """The pickup preference from the Patient extension ``sync-pickup-preference`` (weekday, dayOfMonth)."""
        for ext in self.patient.get("extension", ()):
            if ext.get("url") != PREFERENCE_EXTENSION:
                continue
            weekday: int | None = None
            day_of_month: int | None = None
            for part in ext.get("extension", ()):
                if part.get("url") == "weekday" and part.get("valueCode") in _WEEKDAYS:
                    weekday = _WEEKDAYS.index(part["valueCode"])
                elif part.get("url") == "dayOfMonth" and isinstance(part.get("valueInteger"), int):
                    day_of_month = part["valueInteger"]
            return Preference(weekday, day_of_month)
        return None


def search_all(session: Session, resource_type: str, params: SearchParams) -> list[Resource]:
    """Every match of a search, following the store's cursor page by page (``_count`` at the store maximum)."""
    out: list[Resource] = []
    cursor: str | None = None
    while True:
        query = [*params, ("_count", str(PAGE))]
        if cursor:
            query.append(("_cursor", cursor))
        result = session.search(resource_type, query)
        out.extend(s.resource() for s in result.matches)
        if not result.next_cursor or not result.matches:
            return out
        cursor = result.next_cursor


def _medication_ref(request: Resource) -> str | None:
    ref = (request.get("medicationReference") or {}).get("reference")
    return ref if isinstance(ref, str) and ref.startswith("Medication/") else None


def with_medications(requests: Iterable[Resource], medications: Mapping[str, Resource]) -> list[Resource]:
    """``requests`` with each referenced Medication (``Medication/id``, as NCPDP SCRIPT maps them) copied in
    as a contained resource, the form the pure planner reads (drug code, name and package amount)."""
    out: list[Resource] = []
    for request in requests:
        ref = _medication_ref(request)
        medication = medications.get(ref) if ref else None
        if medication is None:
            out.append(request)
            continue
        inline = {k: v for k, v in medication.items() if k != "meta"}
        inline["id"] = "medication"
        out.append({
            **request,
            "contained": [*request.get("contained", ()), inline],
            "medicationReference": {"reference": "#medication"},
        })
    return out


def load_inputs(session: Session, patient_id: str) -> PatientInputs:
    """The patient's MedicationRequests (their Medications contained), MedicationDispenses and Coverages
    (NotFound/Gone for the Patient)."""
    patient = session.read("Patient", patient_id).resource()
    ref = f"Patient/{patient_id}"
    requests = [
        r for r in search_all(session, "MedicationRequest", [("subject", ref)])
        if r.get("status") not in REQUEST_STATUSES_LEFT_OUT
    ]
    wanted = {m for m in map(_medication_ref, requests) if m}
    if wanted:
        requests = with_medications(requests, lookup(session, wanted))
    dispenses = search_all(session, "MedicationDispense", [("subject", ref)])
    coverages = search_all(session, "Coverage", [("beneficiary", ref)])
    return PatientInputs(patient, requests, dispenses, coverages)


def load_everyone(repo: Repository, patient_ids: Iterable[str] | None = None) -> dict[str, PatientInputs]:
    """Inputs of every patient (or of ``patient_ids``), streamed with ``iter_all`` and grouped by reference."""
    wanted = None if patient_ids is None else {f"Patient/{pid}" for pid in patient_ids}
    people: dict[str, PatientInputs] = {}
    for stored in repo.iter_all("Patient"):
        ref = f"Patient/{stored.id}"
        if wanted is None or ref in wanted:
            people[ref] = PatientInputs(stored.resource())
    for stored in repo.iter_all("MedicationRequest"):
        res = stored.resource()
        who = people.get((res.get("subject") or {}).get("reference", ""))
        if who is not None and res.get("status") not in REQUEST_STATUSES_LEFT_OUT:
            who.requests.append(res)
    for stored in repo.iter_all("MedicationDispense"):
        res = stored.resource()
        who = people.get((res.get("subject") or {}).get("reference", ""))
        if who is not None:
            who.dispenses.append(res)
    for stored in repo.iter_all("Coverage"):
        res = stored.resource()
        who = people.get((res.get("beneficiary") or {}).get("reference", ""))
        if who is not None:
            who.coverages.append(res)
    wanted = {m for who in people.values() for m in map(_medication_ref, who.requests) if m}
    if wanted:
        with repo.session() as session:
            medications = lookup(session, wanted)
        for who in people.values():
            who.requests = with_medications(who.requests, medications)
    return people


def plan_inputs(
    inputs: PatientInputs,
    settings: SyncSettings,
    today: date,
    anchor: date | None = None,
    cycle_days: int | None = None,
) -> SyncPlan:
    """The pure planner over stored inputs; PlanError when they cannot be planned."""
    return plan_patient(
        inputs.requests,
        inputs.dispenses,
        inputs.coverage,
        settings,
        today,
        anchor=anchor,
        cycle_days=cycle_days,
        preference=inputs.preference,
        state=inputs.state,
    )


def is_sync_plan(careplan: Resource) -> bool:
    """A CarePlan this service wrote: it carries the ``sync-cycle`` extension."""
    return any(e.get("url") == CYCLE_EXTENSION for e in careplan.get("extension", ()))


def active_plans(session: Session, patient_ref: str) -> list[Stored]:
    """The patient's active sync CarePlans (normally one)."""
    result = session.search("CarePlan", [("subject", patient_ref), ("status", "active"), ("_count", str(PAGE))])
    return [s for s in result.matches if is_sync_plan(s.resource())]


def enrolled_patients(repo: Repository) -> dict[str, list[Stored]]:
    """Active sync CarePlans of every enrolled patient, by Patient reference."""
    out: dict[str, list[Stored]] = {}
    for stored in repo.iter_all("CarePlan"):
        res = stored.resource()
        if res.get("status") == "active" and is_sync_plan(res):
            out.setdefault((res.get("subject") or {}).get("reference", ""), []).append(stored)
    return out


def activity_refs(careplan: Resource) -> list[str]:
    """``Type/id`` of every Task and Appointment a CarePlan lists in ``activity.reference``."""
    refs = []
    for act in careplan.get("activity", ()):
        ref = (act.get("reference") or {}).get("reference")
        if isinstance(ref, str):
            refs.append(ref)
    return refs


def lookup(session: Session, refs: Iterable[str]) -> dict[str, Resource]:
    """Current resources by ``Type/id`` (missing ones left out), one ``_id`` search per type and page."""
    by_type: dict[str, list[str]] = {}
    for ref in refs:
        rtype, _, rid = ref.partition("/")
        by_type.setdefault(rtype, []).append(rid)
    out: dict[str, Resource] = {}
    for rtype, ids in by_type.items():
        for start in range(0, len(ids), PAGE):
            chunk = ids[start:start + PAGE]
            for res in search_all(session, rtype, [("_id", ",".join(chunk))]):
                out[f"{rtype}/{res['id']}"] = res
    return out


def _day_bounds(day: str, zone: ZoneInfo) -> tuple[str, str]:
    """The pickup day as an instant range in the pharmacy's time zone (a booked Appointment needs start/end)."""
    start = datetime.combine(date.fromisoformat(day), time(0), zone)
    end = start + timedelta(days=1)
    return start.isoformat(), end.isoformat()


def _is_done(resource: Resource) -> bool:
    status = resource.get("status")
    if resource.get("resourceType") == "Appointment":
        return status not in OPEN_APPOINTMENT and status != "cancelled"
    return status not in OPEN_TASK and status != "cancelled"


_CARRIED = ("authoredOn", "created")
"""Elements a re-plan keeps from the stored version when nothing else changed (the day it was first planned)."""


def _unchanged(new: Resource, current: Resource) -> bool:
    """Whether ``new`` equals the stored ``current`` apart from meta and the dates in ``_CARRIED``."""
    if len(current) - ("meta" in current) != len(new):
        return False
    return all(key in _CARRIED or current.get(key) == value for key, value in new.items())


def _put(resource: Resource, if_match: int | None = None) -> Resource:
    request: Resource = {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
    if if_match is not None:
        request["ifMatch"] = f'W/"{if_match}"'
    return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource, "request": request}


def provenance(careplan_id: str, triggers: Sequence[Trigger], recorded: str) -> Resource:
    """Provenance of a re-plan: target the new CarePlan, entity each triggering resource (role source), the
    reasons coded from ``sync-replan-reason``, activity UPDATE, agent this software (who.display)."""
    keys = [f"{t.reason.value} {t.source or ''}" for t in triggers]
    resource: Resource = {
        "resourceType": "Provenance",
        "id": business_id("Provenance", careplan_id, recorded, *keys),
        "target": [{"reference": f"CarePlan/{careplan_id}"}],
        "recorded": recorded,
        "reason": [
            {
                "coding": [{"system": REPLAN_REASONS, "code": t.reason.value, "display": REASON_DISPLAY[t.reason]}],
                "text": t.detail,
            }
            for t in triggers
        ],
        "activity": {"coding": [{"system": DATA_OPERATION, "code": "UPDATE", "display": "revise"}]},
        "agent": [
            {
                "type": {"coding": [{"system": PARTICIPANT_TYPE, "code": "assembler", "display": "Assembler"}]},
                "who": {"display": AGENT_NAME},
            }
        ],
    }
    sources = list(dict.fromkeys(t.source for t in triggers if t.source))
    if sources:
        resource["entity"] = [{"role": "source", "what": {"reference": ref}} for ref in sources]
    return resource


def plan_resources(plan: SyncPlan, settings: SyncSettings) -> list[Resource]:
    """The plan's resources as they are stored on enrollment: CarePlan active, Appointments booked on the
    pickup day (whole day in the pharmacy's zone), Tasks as planned (requested, or draft awaiting renewal)."""
    zone = ZoneInfo(get_settings().pharmacy_time_zone)
    bundle = plan_bundle(plan, base=OUR_BASE, prep_lead_days=settings.prep_lead_days)
    out: list[Resource] = []
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res["resourceType"] == "CarePlan":
            res["status"] = "active"
        elif res["resourceType"] == "Appointment":
            res["status"] = "booked"
            res["start"], res["end"] = _day_bounds(res["requestedPeriod"][0]["start"], zone)
            res["participant"][0]["status"] = "accepted"
        out.append(res)
    return out


def replacement_entries(
    new: Sequence[Resource],
    previous: Sequence[Stored],
    existing: Mapping[str, Resource],
    triggers: Sequence[Trigger],
    recorded: str,
) -> list[Resource]:
    """Transaction entries storing ``new`` (CarePlan first) and retiring the ``previous`` active plans.

    ``existing`` holds the current Tasks and Appointments of the previous plans and any stored resource with
    a new id; a completed (or otherwise closed) one is never overwritten, and one the new plan leaves as it is
    (apart from its authoredOn/created date) is not written again, so history shows only real changes.
    Previous CarePlans with another id are revoked and listed in ``replaces``; their open Tasks and
    Appointments not in the new plan are cancelled. The Provenance of ``triggers`` is written unless the only
    trigger is a scheduled re-plan that changed nothing.
    """
    careplan = new[0]
    cp_id = careplan["id"]
    new_refs = {f"{r['resourceType']}/{r['id']}" for r in new}
    entries: list[Resource] = []
    replaced: list[Resource] = []
    now = dict(existing)
    for stored in previous:
        old = stored.resource()
        if old["id"] == cp_id:
            now[f"CarePlan/{cp_id}"] = old
        else:
            old["status"] = "revoked"
            old.pop("meta", None)
            entries.append(_put(old, stored.version_id))
            replaced.append({"reference": f"CarePlan/{old['id']}"})
        for ref in activity_refs(old):
            current = existing.get(ref)
            if ref in new_refs or current is None or _is_done(current) or current.get("status") == "cancelled":
                continue
            retired = {k: v for k, v in current.items() if k != "meta"}
            retired["status"] = "cancelled"
            note = f"replaced by the sync plan CarePlan/{cp_id}"
            if retired["resourceType"] == "Task":
                retired["statusReason"] = {"text": note}
            else:
                retired["cancelationReason"] = {"text": note}
            entries.append(_put(retired))
    if replaced:
        careplan["replaces"] = replaced
    for res in new:
        current = now.get(f"{res['resourceType']}/{res['id']}")
        if current is not None and ((res is not careplan and _is_done(current)) or _unchanged(res, current)):
            continue
        entries.append(_put(res))
    if triggers and (entries or any(t.reason is not ReplanReason.SCHEDULED for t in triggers)):
        prov = provenance(cp_id, triggers, recorded)
        entries.append({"fullUrl": f"urn:uuid:{prov['id']}", "resource": prov,
                        "request": {"method": "PUT", "url": f"Provenance/{prov['id']}"}})
    return entries


def transaction(entries: list[Resource]) -> Resource:
    """A transaction Bundle of ``entries`` (FHIR R4 http.html#transaction: all or nothing)."""
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


@dataclass(frozen=True, slots=True)
class Enrollment:
    """What enrolling (or re-planning) one patient stored."""

    plan: SyncPlan
    careplan_id: str
    replaced: tuple[str, ...]
    provenance_id: str | None
    response: Resource


def pharmacy_today() -> date:
    """Today in the pharmacy's time zone (INTEROP_PHARMACY_TIME_ZONE): the default planning date."""
    return datetime.now(ZoneInfo(get_settings().pharmacy_time_zone)).date()


def now_instant() -> str:
    """The current UTC instant, for Provenance.recorded."""
    return datetime.now(UTC).isoformat()


def enroll_in(
    session: Session,
    inputs: PatientInputs,
    previous: Sequence[Stored],
    settings: SyncSettings,
    today: date,
    *,
    anchor: date | None = None,
    cycle_days: int | None = None,
    triggers: Sequence[Trigger] = (),
    base_url: str = "",
) -> Enrollment:
    """Plan ``inputs`` and store the plan in ``session``, replacing ``previous`` (see the module docstring)."""
    plan = plan_inputs(inputs, settings, today, anchor, cycle_days)
    new = plan_resources(plan, settings)
    refs = {ref for stored in previous for ref in activity_refs(stored.resource())}
    refs |= {f"{r['resourceType']}/{r['id']}" for r in new[1:]}
    existing = lookup(session, refs)
    booked = book_pickups(session, new, plan, existing)
    recorded = now_instant()
    entries = replacement_entries(new, previous, existing, triggers, recorded) + booked
    response = session.process_bundle(transaction(entries), base_url=base_url)
    cp_id = new[0]["id"]
    replaced = tuple(s.id for s in previous if s.id != cp_id)
    prov = next((e["resource"]["id"] for e in entries if e["resource"]["resourceType"] == "Provenance"), None)
    return Enrollment(plan, cp_id, replaced, prov, response)


def replan_with(
    repo: Repository,
    patient: str,
    triggers: Sequence[Trigger],
    settings: SyncSettings,
    today: date,
    anchor: date | None = None,
) -> tuple[Enrollment, list[Stored]] | None:
    """Re-plan an enrolled patient in one transaction, on ``anchor`` (else the current anchor lattice); the
    enrollment and the plans it replaced, or None when the patient has no active sync CarePlan."""
    with repo.session() as session:
        previous = active_plans(session, patient)
        if not previous:
            return None
        try:
            inputs = load_inputs(session, patient.removeprefix("Patient/"))
        except NotFound:
            return None
        kept, cycle = lattice_of(previous[0].resource(), today, settings)
        done = enroll_in(session, inputs, previous, settings, today, anchor=anchor or kept, cycle_days=cycle,
                         triggers=triggers)
    return done, previous


def enroll(
    repo: Repository,
    patient_id: str,
    settings: SyncSettings,
    today: date,
    *,
    anchor: date | None = None,
    cycle_days: int | None = None,
    triggers: Sequence[Trigger] = (),
    base_url: str = "",
) -> Enrollment:
    """Load, plan and store one patient's plan in ONE transaction (NotFound for an unknown patient,
    PlanError when the inputs cannot be planned; nothing is written then)."""
    with repo.session() as session:
        inputs = load_inputs(session, patient_id)
        previous = active_plans(session, inputs.reference)
        return enroll_in(session, inputs, previous, settings, today, anchor=anchor, cycle_days=cycle_days,
                         triggers=triggers, base_url=base_url)


def preview(
    repo: Repository,
    patient_id: str,
    settings: SyncSettings,
    today: date,
    *,
    anchor: date | None = None,
    cycle_days: int | None = None,
) -> SyncPlan:
    """Plan one patient without storing anything (NotFound for an unknown patient, PlanError)."""
    with repo.session() as session:
        inputs = load_inputs(session, patient_id)
    return plan_inputs(inputs, settings, today, anchor, cycle_days)


def next_anchor(careplan: Resource, today: date, cycle: int) -> date | None:
    """The previous plan's anchor (period.start) rolled forward by whole cycles to today or later."""
    start = (careplan.get("period") or {}).get("start")
    if not isinstance(start, str):
        return None
    anchor = date.fromisoformat(start[:10])
    if anchor < today:
        anchor += timedelta(days=-(-(today - anchor).days // cycle) * cycle)
    return anchor


def lattice_of(careplan: Resource, today: date, settings: SyncSettings) -> tuple[date | None, int]:
    """The anchor and cycle a re-plan keeps from the patient's current plan (see :func:`next_anchor`)."""
    cycle = cycle_of(careplan) or settings.cycle_days
    return next_anchor(careplan, today, cycle), cycle


def cycle_of(careplan: Resource) -> int | None:
    """The cycle length of a stored sync CarePlan (``sync-cycle`` extension, days)."""
    for ext in careplan.get("extension", ()):
        if ext.get("url") == CYCLE_EXTENSION:
            value = (ext.get("valueDuration") or {}).get("value")
            return int(value) if isinstance(value, int | float) else None
    return None


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """``items`` in slices of ``size`` (one transaction each in :func:`replan_all`)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


@dataclass(slots=True)
class ReplanSummary:
    """What ``replan_all`` did: patients re-planned, those that failed (reference, reason), and the seconds
    spent in the pure planner against the whole run."""

    enrolled: int = 0
    replanned: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    plan_seconds: float = 0.0
    total_seconds: float = 0.0


def _replan_chunk(
    repo: Repository,
    group: Sequence[tuple[PatientInputs, list[Stored]]],
    settings: SyncSettings,
    today: date,
    summary: ReplanSummary,
) -> None:
    """Re-plan a group of patients in one transaction; on a failure, one transaction per patient."""
    trigger = Trigger(ReplanReason.SCHEDULED, f"interop plan --all on {today.isoformat()}")
    recorded = now_instant()
    planned: list[tuple[PatientInputs, list[Stored], list[Resource], SyncPlan]] = []
    for inputs, previous in group:
        anchor, cycle = lattice_of(previous[0].resource(), today, settings)
        started = perf_counter()
        try:
            plan = plan_inputs(inputs, settings, today, anchor, cycle)
        except PlanError as exc:
            summary.failed.append((inputs.reference, str(exc)))
            continue
        finally:
            summary.plan_seconds += perf_counter() - started
        planned.append((inputs, previous, plan_resources(plan, settings), plan))
    try:
        with repo.session() as session:
            refs = {f"{r['resourceType']}/{r['id']}" for _, _, new, _ in planned for r in new[1:]}
            refs |= {ref for _, previous, _, _ in planned for s in previous for ref in activity_refs(s.resource())}
            existing = lookup(session, refs)
            capacity = capacity_from(get_settings())
            counter = PickupCounter(session, existing)
            for _, _, new, plan in planned:
                place_pickups(new, plan, counter, capacity)
            entries = [
                entry for _, previous, new, _ in planned
                for entry in replacement_entries(new, previous, existing, [trigger], recorded)
            ]
            entries += slot_entries(session, counter, existing, capacity) if planned else []
            if entries:
                session.process_bundle(transaction(entries))
        summary.replanned += len(planned)
    except (StoreError, PlanError):
        for inputs, _, _, _ in planned:
            try:
                with repo.session() as session:
                    previous = active_plans(session, inputs.reference)
                    if previous:
                        fresh = load_inputs(session, inputs.reference.removeprefix("Patient/"))
                        anchor, cycle = lattice_of(previous[0].resource(), today, settings)
                        enroll_in(session, fresh, previous, settings, today, anchor=anchor, cycle_days=cycle,
                                  triggers=[trigger])
                summary.replanned += 1
            except (StoreError, PlanError) as exc:
                summary.failed.append((inputs.reference, str(exc)))


def replan_all(
    repo: Repository,
    settings: SyncSettings,
    today: date,
    *,
    chunk: int = 200,
    enrolled: Mapping[str, list[Stored]] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReplanSummary:
    """Re-plan every enrolled patient (active sync CarePlan), keeping each one's anchor lattice and cycle,
    ``chunk`` patients per transaction, with a Provenance each; ``progress`` hears how many were done.
    ``enrolled`` (from :func:`enrolled_patients`) saves reading the CarePlans again when the caller has them."""
    started = perf_counter()
    summary = ReplanSummary()
    if enrolled is None:
        enrolled = enrolled_patients(repo)
    summary.enrolled = len(enrolled)
    people = load_everyone(repo, [ref.removeprefix("Patient/") for ref in enrolled])
    work = [(people[ref], plans) for ref, plans in enrolled.items() if ref in people]
    for ref in enrolled.keys() - people.keys():
        summary.failed.append((ref, "the Patient is not stored"))
    # the loaded inputs live for the whole run: keep them out of the cyclic collector's scans, which
    # otherwise grow with the population and make the run superlinear
    gc.freeze()
    try:
        for group in chunks(work, chunk):
            _replan_chunk(repo, group, settings, today, summary)
            if progress is not None:
                progress(len(group))
    finally:
        gc.unfreeze()
    summary.total_seconds = perf_counter() - started
    return summary


def find_candidates(repo: Repository, settings: SyncSettings, today: date, limit: int = 50) -> list[Candidate]:
    """Patients not yet enrolled, ranked by expected benefit (``interop.sync.candidates``), best first."""

    enrolled = enrolled_patients(repo)
    found: list[Candidate | None] = []
    for ref, inputs in load_everyone(repo).items():
        if ref in enrolled or not inputs.requests:
            continue
        try:
            plan = plan_inputs(inputs, settings, today)
        except PlanError:
            continue
        found.append(candidate(plan, inputs.dispenses))
    return ranked(found)[:limit]
