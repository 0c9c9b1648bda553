"""Re-planning enrolled patients when their medication changes: the listener behind ``observe``.

Service half of issue 5. A stored MedicationRequest that is new, changed (dose, supply, drug) or cancelled or
stopped (CancelRx), a completed MedicationDispense that differs from its planned fill (day or quantity), or an
inpatient Encounter re-plans a patient who has an active sync CarePlan, in a new transaction with a
Provenance naming the trigger. The plan keeps the patient's anchor lattice (period.start rolled forward by
whole cycles) and cycle. A dispense that matches its planned fill completes that Task instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from interop.store.base import Repository, Resource, StoreError
from interop.sync.enrollment import (
    ReplanReason,
    Trigger,
    active_plans,
    pharmacy_today,
    replan_with,
    search_all,
)
from interop.sync.events import Written
from interop.sync.fhir_out import TASK_CODES
from interop.sync.plan import PlanError
from interop.sync.settings import SyncSettings

log = logging.getLogger(__name__)

STOPPED = frozenset({"cancelled", "stopped", "entered-in-error", "completed", "on-hold"})
"""MedicationRequest.status values that take a drug out of the plan (SCRIPT CancelRx maps to cancelled)."""
HOSPITAL_CLASSES = frozenset({"IMP", "ACUTE", "NONAC"})
"""Encounter.class codes (v3-ActCode) of a hospital stay."""
_COMPARED = ("status", "medicationCodeableConcept", "medicationReference", "dosageInstruction", "dispenseRequest")
"""MedicationRequest elements whose change re-plans (a re-delivered, unchanged order does not)."""


def _subject(resource: Resource) -> str | None:
    ref = (resource.get("subject") or {}).get("reference")
    return ref if isinstance(ref, str) and ref.startswith("Patient/") else None


def _input_value(task: Resource, code: str) -> Any:
    for item in task.get("input", ()):
        codings = (item.get("type") or {}).get("coding", ())
        if any(c.get("system") == TASK_CODES and c.get("code") == code for c in codings):
            return next((v for k, v in item.items() if k.startswith("value")), None)
    return None


@dataclass(slots=True)
class Replanner:
    """The listener: give it to ``observe``. ``today`` returns the planning date (default: today in the
    pharmacy's time zone)."""

    settings: SyncSettings
    today: Callable[[], date] = pharmacy_today
    types: frozenset[str] = frozenset({"MedicationRequest", "MedicationDispense", "Encounter"})

    def __call__(self, repo: Repository, written: Sequence[Written]) -> None:
        """Re-plan each enrolled patient the writes concern, once, with every trigger in one Provenance."""
        by_patient: dict[str, list[Trigger]] = {}
        for item in written:
            try:
                found = self.trigger_for(repo, item)
            except (PlanError, StoreError, ValueError) as exc:
                log.warning("cannot tell whether %s changes a sync plan: %s", item.reference, exc)
                continue
            if found is not None:
                by_patient.setdefault(found[0], []).append(found[1])
        for patient, triggers in by_patient.items():
            try:
                self.replan(repo, patient, triggers)
            except (PlanError, StoreError) as exc:
                log.warning("re-plan of %s after %s failed: %s", patient, triggers[0].source, exc)

    def trigger_for(self, repo: Repository, item: Written) -> tuple[str, Trigger] | None:
        """The patient and the reason to re-plan that one written resource gives, if any."""
        resource = item.resource
        if resource is None:
            if item.resource_type != "MedicationRequest":
                return None
            resource = repo.vread(item.resource_type, item.id, item.version_id - 1).resource()
            patient = _subject(resource)
            trigger = Trigger(ReplanReason.PRESCRIPTION_STOPPED, "the prescription was deleted", item.reference)
            return (patient, trigger) if patient else None
        patient = _subject(resource)
        if patient is None or item.resource_type not in self.types or not active_plans(repo, patient):
            return None  # one indexed search: most writes concern patients who are not enrolled
        source = f"{item.reference}/_history/{item.version_id}"
        found: Trigger | None
        if item.resource_type == "Encounter":
            code = (resource.get("class") or {}).get("code")
            if code not in HOSPITAL_CLASSES:
                return None
            period = resource.get("period") or {}
            detail = f"hospital stay ({code}, {resource.get('status')}) from {period.get('start', '?')}"
            if period.get("end"):
                detail += f" to {period['end']}"
            found = Trigger(ReplanReason.HOSPITALIZATION, detail, source)
        elif item.resource_type == "MedicationRequest":
            found = self._request_trigger(repo, item, resource, source)
        else:
            found = self._dispensed(repo, patient, resource, source)
        return (patient, found) if found is not None else None

    def _request_trigger(self, repo: Repository, item: Written, resource: Resource, source: str) -> Trigger | None:
        name = (
            (resource.get("medicationCodeableConcept") or {}).get("text")
            or (resource.get("medicationReference") or {}).get("display")
            or item.reference
        )
        status = resource.get("status")
        if item.created or item.version_id <= 1:
            if status in STOPPED:
                return None
            return Trigger(ReplanReason.NEW_PRESCRIPTION, f"new prescription: {name}", source)
        try:
            before = repo.vread(item.resource_type, item.id, item.version_id - 1).resource()
        except StoreError:
            before = {}
        if all(before.get(k) == resource.get(k) for k in _COMPARED):
            return None
        if status in STOPPED and before.get("status") not in STOPPED:
            return Trigger(ReplanReason.PRESCRIPTION_STOPPED, f"{name}: MedicationRequest.status {status}", source)
        changed = [k for k in _COMPARED if before.get(k) != resource.get(k)]
        return Trigger(ReplanReason.PRESCRIPTION_CHANGED, f"{name}: changed {', '.join(changed)}", source)

    def _dispensed(self, repo: Repository, patient: str, dispense: Resource, source: str) -> Trigger | None:
        """Complete the planned fill a dispense matches; re-plan when it is late, early or another quantity."""
        if dispense.get("status", "completed") != "completed":
            return None
        when = str(dispense.get("whenHandedOver") or dispense.get("whenPrepared") or "")[:10]
        requests = [
            a.get("reference", "") for a in dispense.get("authorizingPrescription", ())
            if a.get("reference", "").startswith("MedicationRequest/")
        ]
        if not when or not requests:
            return None
        with repo.session() as session:
            plans = active_plans(session, patient)
            if not plans:
                return None
            plan_ref = f"CarePlan/{plans[0].id}"
            tasks = [
                t for t in search_all(session, "Task", [("based-on", plan_ref), ("focus", requests[0])])
                if t.get("status") in ("requested", "draft")
                and (t.get("code") or {}).get("coding", [{}])[0].get("code") == "fulfill"
            ]
            if not tasks:
                return None
            tasks.sort(key=lambda t: abs((date.fromisoformat(t["executionPeriod"]["start"])
                                          - date.fromisoformat(when)).days))
            task = tasks[0]
            planned_day = task["executionPeriod"]["start"]
            planned_qty = (_input_value(task, "quantity") or {}).get("value")
            got_qty = (dispense.get("quantity") or {}).get("value")
            if planned_day == when and (planned_qty is None or got_qty == planned_qty):
                done = {k: v for k, v in task.items() if k != "meta"}
                done["status"] = "completed"
                done["output"] = [
                    {"type": {"text": "MedicationDispense"},
                     "valueReference": {"reference": source.split("/_history/")[0]}}
                ]
                session.update(done)
                return None
        shift = (date.fromisoformat(when) - date.fromisoformat(planned_day)).days
        parts = []
        if shift:
            parts.append(f"picked up {when}, planned {planned_day} ({abs(shift)} days {'late' if shift > 0 else 'early'})")
        if got_qty != planned_qty:
            parts.append(f"quantity {got_qty:g} against {planned_qty:g} planned" if isinstance(got_qty, int | float)
                         and isinstance(planned_qty, int | float) else "another quantity than planned")
        return Trigger(ReplanReason.DISPENSE_DIFFERS, "; ".join(parts), source)

    def replan(self, repo: Repository, patient: str, triggers: Sequence[Trigger]) -> str | None:
        """Re-plan an enrolled patient in one transaction; the CarePlan id, or None when not enrolled."""
        replanned = replan_with(repo, patient, triggers, self.settings, self.today())
        if replanned is None:
            return None
        done = replanned[0]
        log.info("re-planned %s after %s: CarePlan/%s", patient,
                 ", ".join(f"{t.source} ({t.reason.value})" for t in triggers), done.careplan_id)
        return done.careplan_id


def replan_listener(settings: SyncSettings, today: Callable[[], date] | None = None) -> Replanner:
    """The re-planning listener for ``observe(repo, [replan_listener(settings)])``."""
    return Replanner(settings, today or pharmacy_today)
