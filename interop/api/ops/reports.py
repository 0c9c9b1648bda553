"""Report operations: ``Patient/{id}/$adherence``, ``$program-report`` and ``$demand-forecast`` (GET or POST).

$adherence answers a Bundle (collection) of individual PQA PDC MeasureReports for ``start``/``end`` (default the
365 days ending today); $program-report a summary MeasureReport of the med sync indicators for ``period``
(a year or ``start/end``); $demand-forecast a summary MeasureReport of the need per NDC and day for ``days``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from interop.api.exchange import FhirRequest, FhirResponse
from interop.api.operations import operation
from interop.api.outcome import rejected
from interop.fhir.ids import business_id
from interop.reports.forecast import forecast_report
from interop.reports.program import program_report
from interop.reports.service import (
    SNAPSHOT_TYPES,
    PeriodError,
    forecast_of,
    last_year,
    parse_period,
    patient_adherence,
    program_of,
    snapshot,
)
from interop.store.base import Repository
from interop.sync import load_settings

_WHERE = "Parameters.parameter.where(name = '{}')"
REPORT_READS = tuple(f"{t}.rs" for t in SNAPSHOT_TYPES)
"""SMART grants the reports need: the types of the store snapshot they compute from."""
MAX_FORECAST_DAYS = 366


def _values(req: FhirRequest) -> dict[str, str]:
    """Query parameters, then a Parameters body's primitive values (POST)."""
    values = dict(req.params)
    if req.body and req.body.strip():
        body = req.json()
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise rejected(400, "invalid", "the body must be a Parameters resource", ["Parameters"])
        for param in body.get("parameter", []):
            if isinstance(param, dict) and isinstance(param.get("name"), str):
                value = next((v for k, v in param.items() if k.startswith("value")), None)
                if value is not None:
                    values[param["name"]] = str(value)
    return values


def _date(values: dict[str, str], name: str) -> date | None:
    raw = values.get(name)
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise rejected(400, "invalid", f"{name} {raw!r} is not a date (YYYY-MM-DD)", [_WHERE.format(name)]) from None


def _today(req: FhirRequest, values: dict[str, str]) -> date:
    return _date(values, "today") or datetime.now(ZoneInfo(req.settings.pharmacy_time_zone)).date()


@operation("adherence", types=("Patient",), instance=True, affects_state=False, scopes=REPORT_READS)
def adherence(req: FhirRequest, repo: Repository) -> FhirResponse:
    """The patient's PQA PDC per Star class (strata per ingredient): individual MeasureReports in a Bundle."""
    values = _values(req)
    today = _today(req, values)
    default_start, default_end = last_year(today)
    start = _date(values, "start") or default_start
    end = _date(values, "end") or default_end
    if end < start:
        raise rejected(400, "invalid", f"end {end} is before start {start}", [_WHERE.format("end")])
    assert req.id is not None
    found = patient_adherence(repo, req.id, start, end)
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": business_id("Bundle", "adherence", req.id, start, end),
        "type": "collection",
        "entry": [{"fullUrl": f"{req.base}/MeasureReport/{r['id']}", "resource": r} for r in found.reports],
    }
    return FhirResponse(200, bundle)


@operation("program-report", system=True, affects_state=False, scopes=REPORT_READS)
def program_report_op(req: FhirRequest, repo: Repository) -> FhirResponse:
    """Med sync program indicators (enrollment, initial sync, continuation, completeness, pickups, short
    fills, reversals, fills and PDC before/after enrollment) as a summary MeasureReport."""
    values = _values(req)
    today = _today(req, values)
    raw = values.get("period") or str(today.year)
    try:
        start, end = parse_period(raw)
    except PeriodError as exc:
        raise rejected(400, "invalid", str(exc), [_WHERE.format("period")]) from None
    snap = snapshot(repo, ("CarePlan", "Task", "Appointment", "MedicationDispense", "Claim"))
    return FhirResponse(200, program_report(program_of(snap, start, end, today)))


@operation("demand-forecast", system=True, affects_state=False, scopes=REPORT_READS)
def demand_forecast_op(req: FhirRequest, repo: Repository) -> FhirResponse:
    """Quantities needed per NDC per day for the next ``days`` days and the prep workload per day."""
    values = _values(req)
    today = _today(req, values)
    raw = values.get("days", "14")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_FORECAST_DAYS:
        raise rejected(400, "invalid", f"days {raw!r} must be a whole number from 1 to {MAX_FORECAST_DAYS}",
                       [_WHERE.format("days")])
    snap = snapshot(repo, ("Task", "MedicationRequest", "MedicationDispense"))
    forecast = forecast_of(snap, today, int(raw), load_settings().prep_lead_days)
    return FhirResponse(200, forecast_report(forecast))
