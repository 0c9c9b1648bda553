"""Sync operations: ``Patient/{id}/$sync-plan``, ``Patient/{id}/$sync-enroll`` and ``$sync-candidates``.

$sync-plan returns the plan Bundle (collection) without storing it; $sync-enroll stores it in one transaction,
replacing the patient's earlier plan (conformance/sync-plan.md); $sync-candidates ranks patients not yet
enrolled by expected benefit. Inputs are Parameters (anchorDate, cycleDays, today; count), or the query string.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from interop.api.exchange import FhirRequest, FhirResponse
from interop.api.operations import operation
from interop.api.outcome import rejected
from interop.store.base import Repository, Resource
from interop.sync import PlanError, SyncSettings, load_settings, plan_bundle
from interop.sync.enrollment import enroll, find_candidates, preview

_WHERE = "Parameters.parameter.where(name = '{}')"
SYNC_READS = ("Patient.rs", "MedicationRequest.rs", "MedicationDispense.rs", "Coverage.rs", "CarePlan.rs", "Appointment.rs", "Task.rs")
"""SMART grants the planner needs (it reads the regimen, fills, coverage and the current plan)."""
SYNC_WRITES = (*SYNC_READS, "Slot.rs", "CarePlan.cu", "Task.cu", "Appointment.cu", "Slot.cu", "Provenance.c")
"""And enrollment stores the plan, its Tasks, Appointments (in the counter's Slots, issue 7) and Provenance."""
_PATH = re.compile(r"^([A-Z][A-Za-z]+)(?:/[A-Za-z0-9\-]+)?((?:\.[A-Za-z0-9\[\]]+)+):")
"""The element path a planner message starts with: ``MedicationRequest/rx-1.dispenseRequest.quantity:``."""


def _values(req: FhirRequest) -> dict[str, Any]:
    """Parameters from the body (a Parameters resource, may be empty) and the query string."""
    values: dict[str, Any] = dict(req.params)
    if not req.body or not req.body.strip():
        return values
    body = req.json()
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise rejected(400, "invalid", "the body must be a Parameters resource", ["Parameters"])
    for i, param in enumerate(body.get("parameter", [])):
        if not isinstance(param, dict) or not isinstance(param.get("name"), str):
            raise rejected(400, "invalid", "each parameter needs a name", [f"Parameters.parameter[{i}].name"])
        values[param["name"]] = next((v for k, v in param.items() if k.startswith("value")), None)
    return values


def _date(values: dict[str, Any], name: str) -> date | None:
    raw = values.get(name)
    if raw is None:
        return None
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        raise rejected(400, "invalid", f"{name} {raw!r} is not a date (YYYY-MM-DD)", [_WHERE.format(name)]) from None


def _int(values: dict[str, Any], name: str) -> int | None:
    raw = values.get(name)
    if raw is None:
        return None
    try:
        return int(str(raw))
    except ValueError:
        raise rejected(400, "invalid", f"{name} {raw!r} is not an integer", [_WHERE.format(name)]) from None


def _today(req: FhirRequest, values: dict[str, Any]) -> date:
    return _date(values, "today") or datetime.now(ZoneInfo(req.settings.pharmacy_time_zone)).date()


def _settings() -> SyncSettings:
    return load_settings()


def _unplannable(exc: PlanError) -> Exception:
    """A PlanError as 422, its expression the element path the message starts with (or the parameter)."""
    message = str(exc)
    if message.startswith("cycleDays"):
        expression = [_WHERE.format("cycleDays")]
    else:
        found = _PATH.match(message)
        expression = [found.group(1) + found.group(2)] if found else []
    return rejected(422, "processing", message, expression)


def _plan_inputs(req: FhirRequest) -> tuple[str, date, date | None, int | None]:
    values = _values(req)
    assert req.id is not None
    return req.id, _today(req, values), _date(values, "anchorDate"), _int(values, "cycleDays")


@operation("sync-plan", types=("Patient",), instance=True, affects_state=False, scopes=SYNC_READS)
def sync_plan(req: FhirRequest, repo: Repository) -> FhirResponse:
    """Plan the patient's medication synchronization without storing it: a Bundle of type collection."""
    patient_id, today, anchor, cycle = _plan_inputs(req)
    settings = _settings()
    try:
        plan = preview(repo, patient_id, settings, today, anchor=anchor, cycle_days=cycle)
    except PlanError as exc:
        raise _unplannable(exc) from exc
    return FhirResponse(200, plan_bundle(plan, base=req.base, prep_lead_days=settings.prep_lead_days))


@operation("sync-enroll", types=("Patient",), instance=True, scopes=SYNC_WRITES)
def sync_enroll(req: FhirRequest, repo: Repository) -> FhirResponse:
    """Store the patient's plan (CarePlan active, Tasks, Appointments booked) in one transaction, replacing
    the earlier plan; returns the transaction-response Bundle."""
    patient_id, today, anchor, cycle = _plan_inputs(req)
    try:
        done = enroll(repo, patient_id, _settings(), today, anchor=anchor, cycle_days=cycle, base_url=req.base)
    except PlanError as exc:
        raise _unplannable(exc) from exc
    return FhirResponse(200, done.response, {"Location": f"{req.base}/CarePlan/{done.careplan_id}"})


@operation("sync-candidates", system=True, affects_state=False, scopes=SYNC_READS)
def sync_candidates(req: FhirRequest, repo: Repository) -> FhirResponse:
    """Patients not yet enrolled, ranked by the expected benefit of med sync, with the reasons (Parameters)."""
    values = _values(req)
    count = _int(values, "count") or 50
    if count < 1:
        raise rejected(400, "invalid", "count must be at least 1", [_WHERE.format("count")])
    found = find_candidates(repo, _settings(), _today(req, values), count)
    params: list[Resource] = []
    for rank, cand in enumerate(found, 1):
        parts: list[Resource] = [
            {"name": "patient", "valueReference": {"reference": cand.patient}},
            {"name": "rank", "valueInteger": rank},
            {"name": "score", "valueDecimal": cand.score},
            {"name": "maintenanceDrugs", "valueInteger": cand.maintenance},
            {"name": "dueDays", "valueInteger": cand.trips},
            {"name": "spreadDays", "valueInteger": cand.spread_days},
        ]
        if cand.pdc is not None:
            parts.append({"name": "pdc", "valueDecimal": round(cand.pdc, 3)})
        parts += [{"name": "reason", "valueString": text} for text in cand.reasons]
        params.append({"name": "candidate", "part": parts})
    body: Resource = {"resourceType": "Parameters"}
    if params:
        body["parameter"] = params
    return FhirResponse(200, body)
