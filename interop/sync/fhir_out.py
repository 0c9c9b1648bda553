"""A :class:`SyncPlan` as a FHIR R4 Bundle (type collection): CarePlan, fill and renewal Tasks, Appointments.

Shape (conformance/sync-plan.md): CarePlan draft/plan, period.start = anchor, cycle in the ``sync-cycle``
extension, one activity.reference per Task and Appointment, excluded drugs as activity.detail (cancelled +
doNotPerform for exclusions, not-started for co-scheduled packages) with statusReason from the
sync-exclusion-reason code system. Ids come from business keys, so the same plan always has the same ids.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from interop.fhir.ids import business_id
from interop.fhir.systems import OUR_BASE, CodeSystem, extension_url
from interop.sync.eligibility import REASON_TEXT, Reason
from interop.sync.plan import PlannedFill, SyncPlan
from interop.sync.renewal import RenewalRequest

CYCLE_EXTENSION = extension_url("sync-cycle")
PRESCRIPTION_EXTENSION = extension_url("sync-prescription")
TASK_CODES = f"{OUR_BASE}/CodeSystem/sync-task"
EXCLUSION_CODES = f"{OUR_BASE}/CodeSystem/sync-exclusion-reason"
SCC_CODES = f"{OUR_BASE}/CodeSystem/ncpdp-submission-clarification-code"
FHIR_TASK_CODES = "http://hl7.org/fhir/CodeSystem/task-code"

SCC_TEXT = {
    "47": "Shortened days supply fill",
    "48": "Fill subsequent to a shortened days supply fill",
    "61": "Synchronization fill",
}
KIND_TEXT = {
    "full": "Full-cycle fill before the anchor",
    "short": "Short fill to the anchor",
    "extended": "Extended fill to the anchor",
    "anchor": "Fill on the anchor date",
    "co-scheduled": "Package fill co-scheduled with an anchor date",
    "own-cycle": "Package fill on its own cycle",
}

Json = dict[str, Any]


def _days(value: int) -> Json:
    return {"value": value, "unit": "days", "system": CodeSystem.UCUM.value, "code": "d"}


def _input(code: str, **value: Any) -> Json:
    return {"type": {"coding": [{"system": TASK_CODES, "code": code}]}, **value}


_ISO: dict[int, str] = {}


def _iso(day: int) -> str:
    text = _ISO.get(day)
    if text is None:
        text = _ISO[day] = date.fromordinal(day).isoformat()
    return text


class _Refs:
    """Reference and fullUrl builder: urn:uuid when no server base is known, else base/Type/id."""

    def __init__(self, base: str | None) -> None:
        self.base = base.rstrip("/") if base else None

    def ref(self, rtype: str, rid: str) -> str:
        return f"{rtype}/{rid}" if self.base else f"urn:uuid:{rid}"

    def full_url(self, rtype: str, rid: str) -> str:
        return f"{self.base}/{rtype}/{rid}" if self.base else f"urn:uuid:{rid}"


def _fill_task(
    plan: SyncPlan,
    fill: PlannedFill,
    anchor_key: str,
    careplan_ref: str,
    renewal_refs: dict[str, str],
    prep_lead: int,
) -> Json:
    tid = business_id("Task", plan.patient, anchor_key, fill.request_id, _iso(fill.day), "fill")
    inputs: list[Json] = [
        _input("quantity", valueQuantity={"value": fill.quantity, "unit": fill.unit or "unit"}),
        _input("days-supply", valueDuration=_days(fill.days)),
        _input("fill-kind", valueString=fill.kind),
        _input("earliest-payable", valueDate=_iso(fill.earliest_payable)),
        _input("prep-date", valueDate=_iso(fill.day - prep_lead)),
    ]
    if fill.packages is not None:
        inputs.append(_input("packages", valueInteger=fill.packages))
    if fill.claim_code:
        coding = {"system": SCC_CODES, "code": fill.claim_code}
        if fill.claim_code in SCC_TEXT:
            coding["display"] = SCC_TEXT[fill.claim_code]
        inputs.append(_input("claim-code", valueCoding=coding))
    if fill.needs_renewal and fill.request_id in renewal_refs:
        inputs.append(_input("renewal", valueReference={"reference": renewal_refs[fill.request_id]}))
    code_note = f" (420-DK {fill.claim_code})" if fill.claim_code else ""
    return {
        "resourceType": "Task",
        "id": tid,
        "basedOn": [{"reference": careplan_ref}],
        "status": "draft" if fill.needs_renewal else "requested",
        "intent": "plan",
        "code": {"coding": [{"system": FHIR_TASK_CODES, "code": "fulfill"}], "text": "Prepare and dispense fill"},
        "description": f"{KIND_TEXT.get(fill.kind, fill.kind)}: {fill.days} days of {fill.drug_name}{code_note}",
        "focus": {"reference": f"MedicationRequest/{fill.request_id}"},
        "for": {"reference": plan.patient},
        "authoredOn": plan.today.isoformat(),
        "executionPeriod": {"start": _iso(fill.day)},
        "input": inputs,
    }


def _renewal_task(plan: SyncPlan, renewal: RenewalRequest, anchor_key: str, careplan_ref: str) -> Json:
    tid = business_id("Task", plan.patient, anchor_key, renewal.request_id, _iso(renewal.needed_by), "renewal")
    return {
        "resourceType": "Task",
        "id": tid,
        "basedOn": [{"reference": careplan_ref}],
        "status": "requested",
        "intent": "plan",
        "priority": "urgent" if renewal.late else "routine",
        "code": {
            "coding": [{"system": TASK_CODES, "code": "renewal-request"}],
            "text": "Request a prescription renewal (NCPDP SCRIPT RxRenewalRequest)",
        },
        "description": (
            f"Authorized supply of {renewal.drug_name} ends before the plan does: request a renewal by "
            f"{_iso(renewal.due)} for the fill on {_iso(renewal.needed_by)}"
            + (" (late: the ideal lead time has passed)" if renewal.late else "")
        ),
        "focus": {"reference": f"MedicationRequest/{renewal.request_id}"},
        "for": {"reference": plan.patient},
        "authoredOn": plan.today.isoformat(),
        "executionPeriod": {"start": _iso(renewal.due)},
        "restriction": {"period": {"end": _iso(renewal.needed_by)}},
        "input": [
            _input("needed-by", valueDate=_iso(renewal.needed_by)),
            _input("shortfall", valueQuantity={"value": round(renewal.shortfall_units, 3)}),
        ],
    }


def _concept(plan: SyncPlan, request_id: str) -> Json:
    reg = plan.regimens[request_id]
    system, sep, code = reg.drug_key.partition("|")
    concept: Json = {"text": reg.drug_name}
    if sep and system and code:
        concept["coding"] = [{"system": system, "code": code}]
    return concept


def plan_bundle(plan: SyncPlan, base: str | None = None, prep_lead_days: int = 3) -> Json:
    """The plan as a Bundle of type collection (see the module docstring); ``base`` is the server's FHIR base.

    ``prep_lead_days`` (settings ``prep_lead_days``) dates each fill's ``prep-date`` input: when the pharmacy
    queues it before the pickup.
    Without ``base``, entries have ``urn:uuid`` fullUrls and in-bundle references use them; with it, entries
    are ``base/Type/id`` and references are relative. References to the inputs (MedicationRequest, Patient)
    are always relative.
    """
    refs = _Refs(base)
    anchor_key = plan.anchor.isoformat() if plan.anchor else f"unanchored {plan.today.isoformat()}"
    cp_id = business_id("CarePlan", plan.patient, "sync", anchor_key, plan.cycle_days)
    cp_ref = refs.ref("CarePlan", cp_id)

    renewal_tasks = [_renewal_task(plan, r, anchor_key, cp_ref) for r in plan.renewals]
    renewal_refs = {r.request_id: refs.ref("Task", t["id"]) for r, t in zip(plan.renewals, renewal_tasks, strict=True)}
    fill_tasks = [_fill_task(plan, f, anchor_key, cp_ref, renewal_refs, prep_lead_days) for f in plan.fills]
    task_by_fill = {(f.request_id, f.day): refs.ref("Task", t["id"]) for f, t in zip(plan.fills, fill_tasks, strict=True)}

    appointments: list[Json] = []
    for pickup in plan.pickups:
        day = _iso(pickup.day)
        count = len(pickup.request_ids)
        appointments.append(
            {
                "resourceType": "Appointment",
                "id": business_id("Appointment", plan.patient, anchor_key, day, "pickup"),
                "status": "proposed",
                "serviceType": [{"text": "Prescription pickup"}],
                "description": f"Pickup of {count} prescription fill(s)"
                + (" on the anchor date" if plan.anchor and day == plan.anchor.isoformat() else ""),
                "supportingInformation": [{"reference": task_by_fill[(rid, pickup.day)]} for rid in pickup.request_ids],
                "requestedPeriod": [{"start": day, "end": day}],
                "participant": [
                    {"actor": {"reference": plan.patient}, "required": "required", "status": "needs-action"}
                ],
            }
        )

    activities: list[Json] = [{"reference": {"reference": refs.ref("Task", t["id"])}} for t in fill_tasks]
    activities += [{"reference": {"reference": refs.ref("Task", t["id"])}} for t in renewal_tasks]
    activities += [{"reference": {"reference": refs.ref("Appointment", a["id"])}} for a in appointments]
    for excl in plan.exclusions:
        planned = excl.reason in (Reason.CO_SCHEDULED, Reason.OWN_CYCLE)
        detail: Json = {
            "extension": [{"url": PRESCRIPTION_EXTENSION, "valueReference": {"reference": f"MedicationRequest/{excl.request_id}"}}],
            "kind": "MedicationRequest",
            "status": "not-started" if planned else "cancelled",
            "statusReason": {
                "coding": [{"system": EXCLUSION_CODES, "code": excl.reason.value, "display": REASON_TEXT[excl.reason]}],
                "text": excl.detail,
            },
            "doNotPerform": not planned,
            "productCodeableConcept": _concept(plan, excl.request_id),
            "description": f"{excl.drug_name}: {'not short-filled' if planned else 'not synced'} ({excl.reason.value})",
        }
        activities.append({"detail": detail})

    careplan: Json = {
        "resourceType": "CarePlan",
        "id": cp_id,
        "extension": [{"url": CYCLE_EXTENSION, "valueDuration": _days(plan.cycle_days)}],
        "status": "draft",
        "intent": "plan",
        "title": "Medication synchronization plan",
        "description": plan.choice.narrative() if plan.choice else "No prescription can be synchronized.",
        "subject": {"reference": plan.patient},
        "created": plan.today.isoformat(),
    }
    if plan.anchor:
        careplan["period"] = {"start": plan.anchor.isoformat()}
    if activities:
        careplan["activity"] = activities

    resources = [careplan, *fill_tasks, *renewal_tasks, *appointments]
    return {
        "resourceType": "Bundle",
        "id": business_id("Bundle", plan.patient, "sync-plan", anchor_key, plan.cycle_days, plan.today.isoformat()),
        "type": "collection",
        "entry": [{"fullUrl": refs.full_url(r["resourceType"], r["id"]), "resource": r} for r in resources],
    }
