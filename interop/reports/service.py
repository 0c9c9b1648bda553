"""The service half of the reports: read what the measures need from the repository, then call the pure
functions (PDC, program measures, demand forecast). Used by the API operations, the CLI and the staff page."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from interop.reports.classes import load_class_table
from interop.reports.forecast import Forecast, demand_forecast
from interop.reports.history import extract_histories
from interop.reports.measure_report import individual_reports
from interop.reports.pdc import PdcResult, population_pdc
from interop.reports.program import ProgramMeasures, program_measures
from interop.store.base import InvalidRequest, Repository, Resource, Session
from interop.sync.enrollment import search_all

SNAPSHOT_TYPES = (
    "Patient",
    "CarePlan",
    "Task",
    "Appointment",
    "MedicationRequest",
    "MedicationDispense",
    "Claim",
    "Encounter",
    "Condition",
)


class PeriodError(ValueError):
    """A period parameter that is neither a year (``2026``) nor ``start/end`` dates."""


def parse_period(text: str) -> tuple[date, date]:
    """``2026`` → Jan 1 to Dec 31 of that year; ``2026-01-01/2026-06-30`` → those dates (inclusive)."""
    raw = text.strip()
    if raw.isdigit() and len(raw) == 4:
        year = int(raw)
        return date(year, 1, 1), date(year, 12, 31)
    first, sep, second = raw.partition("/")
    try:
        start, end = date.fromisoformat(first.strip()), date.fromisoformat(second.strip())
    except ValueError:
        raise PeriodError(f"period {text!r} is neither a year (YYYY) nor start/end dates (YYYY-MM-DD/YYYY-MM-DD)") from None
    if not sep:
        raise PeriodError(f"period {text!r} needs start/end")
    if end < start:
        raise PeriodError(f"period {text!r} ends before it starts")
    return start, end


def last_year(today: date) -> tuple[date, date]:
    """The default adherence period: the 365 days ending today."""
    return today - timedelta(days=364), today


@dataclass
class Snapshot:
    """Every current resource of the types the reports and the staff page read, by type."""

    resources: dict[str, list[Resource]] = field(default_factory=dict)

    def of(self, resource_type: str) -> list[Resource]:
        return self.resources.get(resource_type, [])


def snapshot(repo: Repository, types: Iterable[str] = SNAPSHOT_TYPES) -> Snapshot:
    """Stream every current resource of ``types`` (``Repository.iter_all``)."""
    return Snapshot({t: [s.resource() for s in repo.iter_all(t)] for t in types})


@dataclass
class Adherence:
    """One patient's PDC results and MeasureReports for a period, with the fills behind them."""

    start: date
    end: date
    results: list[PdcResult]
    reports: list[Resource]
    fills: dict[str, list[tuple[int, int]]]
    problems: list[str]


def adherence_of(dispenses: list[Resource], encounters: list[Resource], conditions: list[Resource],
                 patient_ref: str, start: date, end: date) -> Adherence:
    """PQA PDC per Star class and ingredient of one patient's resources over [start, end]."""
    table = load_class_table()
    extraction = extract_histories(dispenses, table, encounters=encounters, conditions=conditions, open_until=end)
    history = extraction.histories.get(patient_ref)
    results = population_pdc([history], table, start, end) if history else []
    fills = {cui: list(f) for cui, f in history.fills.items()} if history else {}
    return Adherence(start, end, results, individual_reports(results, table, start, end), fills, extraction.problems)


def _optional(session: Session, resource_type: str, patient_ref: str) -> list[Resource]:
    """The patient's resources of a type the store may not serve (then none: no stays, no exclusions known)."""
    try:
        return search_all(session, resource_type, [("subject", patient_ref)])
    except InvalidRequest:
        return []


def patient_adherence(repo: Repository, patient_id: str, start: date, end: date) -> Adherence:
    """Read the patient (NotFound/Gone when absent), their dispenses, encounters and conditions, and score."""
    ref = f"Patient/{patient_id}"
    with repo.session() as session:
        session.read("Patient", patient_id)
        dispenses = search_all(session, "MedicationDispense", [("subject", ref)])
        encounters = _optional(session, "Encounter", ref)
        conditions = _optional(session, "Condition", ref)
    return adherence_of(dispenses, encounters, conditions, ref, start, end)


def program_of(snap: Snapshot, start: date, end: date, today: date) -> ProgramMeasures:
    return program_measures(
        snap.of("CarePlan"), snap.of("Task"), snap.of("Appointment"), snap.of("MedicationDispense"),
        snap.of("Claim"), load_class_table(), start, end, today,
    )


def forecast_of(snap: Snapshot, today: date, days: int, prep_lead_days: int) -> Forecast:
    return demand_forecast(
        snap.of("Task"), snap.of("MedicationRequest"), snap.of("MedicationDispense"), today, days, prep_lead_days
    )


def population_results(snap: Snapshot, start: date, end: date) -> list[PdcResult]:
    """PDC of every patient with a tracked fill, over [start, end]."""
    table = load_class_table()
    extraction = extract_histories(
        snap.of("MedicationDispense"), table, encounters=snap.of("Encounter"),
        conditions=snap.of("Condition"), open_until=end,
    )
    return population_pdc(extraction.histories.values(), table, start, end)
