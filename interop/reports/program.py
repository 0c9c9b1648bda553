"""Med sync program measures in the spirit of PQA's medication synchronization indicators, from stored resources.

Enrollment comes from the sync CarePlans (``sync-cycle`` extension: created = enrolled, period.start = anchor),
pickups from the booked Appointments and the fill Tasks they carry, what happened from MedicationDispense
(whenHandedOver, 405-D5 daysSupply, 420-DK in the ``submission-clarification-code`` extension) and Claim.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from interop.fhir.ids import business_id
from interop.fhir.references import bare, day_of, reference_of
from interop.fhir.systems import OUR_BASE, CodeSystem, extension_url
from interop.reports.classes import ClassTable
from interop.reports.history import extract_histories
from interop.reports.measure_report import IMPROVEMENT_NOTATION, MEASURE_POPULATION
from interop.reports.pdc import Status, population_pdc

Resource = Mapping[str, Any]

PROGRAM_MEASURE = f"{OUR_BASE}/Measure/medsync-program"
PROGRAM_CODES = f"{OUR_BASE}/CodeSystem/medsync-program-indicator"
CYCLE_EXTENSION = extension_url("sync-cycle")
SCC_EXTENSION = extension_url("submission-clarification-code")
EXCLUSION_CODES = f"{OUR_BASE}/CodeSystem/sync-exclusion-reason"
SHORT_FILL_CODES = frozenset({"47", "61"})
"""NCPDP 420-DK submission clarification codes of a shortened (47) or synchronization (61) fill."""
CHRONIC_LEFT_OUT = frozenset({"controlled-schedule-not-allowed-in-state", "sync-limit-reached", "no-refills-no-renewal"})
"""Exclusion reasons that leave a chronic drug out of the plan (prn, acute and not-active drugs are not chronic)."""
ENROLLED_STATUSES = frozenset({"active", "on-hold", "revoked", "completed"})
"""Sync CarePlan statuses that show the patient was enrolled (draft is a preview, entered-in-error never was)."""
PICKUP_STATUSES = frozenset({"booked", "arrived", "fulfilled", "noshow", "checked-in"})
PICKUP_GRACE_DAYS = 3
"""A pickup is on time when each of its fills is handed over at most this many days before or after the day."""
ACTIVE_WINDOW_DAYS = 90
"""Continuation: the patient is still enrolled and picked up a fill in the 90 days before the checkpoint."""
YEAR_DAYS = 365


def add_months(day: date, months: int) -> date:
    """``day`` plus whole calendar months, clamped to the last day of a shorter month."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise ValueError(f"no day {day.day} in {year}-{month:02d}")


def is_sync_careplan(careplan: Resource) -> bool:
    return any(e.get("url") == CYCLE_EXTENSION for e in careplan.get("extension", ()))


@dataclass
class Enrollment:
    """One patient's enrollment: the first sync plan's creation, its anchor and cycle, the synced
    prescriptions of the first plan, whether a plan is still active (or when the last one ended)."""

    patient: str
    enrolled: date
    anchor: date | None
    cycle: int
    synced: frozenset[str]
    active: bool
    ended: date | None
    complete: bool


def _cycle(careplan: Resource) -> int:
    for ext in careplan.get("extension", ()):
        if ext.get("url") == CYCLE_EXTENSION:
            value = (ext.get("valueDuration") or {}).get("value")
            if isinstance(value, int | float) and value > 0:
                return int(value)
    return 30


def enrollments(
    careplans: Iterable[Resource], tasks: Iterable[Resource], problems: list[str] | None = None
) -> dict[str, Enrollment]:
    """Enrollment per Patient reference from the sync CarePlans (any version kept: active, revoked…) and the
    fill Tasks (code fulfill, ``basedOn`` the CarePlan, ``focus`` the MedicationRequest). A sync CarePlan
    without ``created`` or ``subject`` is named in ``problems`` and left out."""
    plans: dict[str, list[Resource]] = {}
    for cp in careplans:
        if not is_sync_careplan(cp) or cp.get("status") not in ENROLLED_STATUSES:
            continue
        if day_of(cp.get("created")) is None or not reference_of(cp.get("subject")):
            if problems is not None:
                problems.append(f"CarePlan/{cp.get('id')}: created or subject.reference missing")
            continue
        plans.setdefault(reference_of(cp.get("subject")), []).append(cp)
    focus_by_plan: dict[str, set[str]] = {}
    for task in tasks:
        if _task_code(task) != "fulfill":
            continue
        for based in task.get("basedOn", ()):
            focus_by_plan.setdefault(bare(reference_of(based)), set()).add(bare(reference_of(task.get("focus"))))
    out: dict[str, Enrollment] = {}
    for patient, cps in plans.items():
        cps.sort(key=lambda c: (str(c.get("created")), str(c.get("id"))))
        first = cps[0]
        active = any(c.get("status") in ("active", "on-hold") for c in cps)
        ended = None
        if not active:
            ends = [day_of((c.get("period") or {}).get("end")) or day_of((c.get("meta") or {}).get("lastUpdated"))
                    for c in cps]
            ended = max((d for d in ends if d), default=None)
        left_out = any(
            coding.get("system") == EXCLUSION_CODES and coding.get("code") in CHRONIC_LEFT_OUT
            for act in first.get("activity", ())
            for coding in ((act.get("detail") or {}).get("statusReason") or {}).get("coding", ())
        )
        created = day_of(first.get("created"))
        assert created is not None
        out[patient] = Enrollment(
            patient,
            created,
            day_of((first.get("period") or {}).get("start")),
            _cycle(first),
            frozenset(focus_by_plan.get(f"CarePlan/{first.get('id')}", ())),
            active,
            ended,
            not left_out,
        )
    return out


def _task_code(task: Resource) -> str | None:
    for coding in (task.get("code") or {}).get("coding", ()):
        code = coding.get("code")
        if isinstance(code, str):
            return code
    return None


@dataclass(frozen=True)
class Fill:
    """A completed dispense: patient, prescription (``MedicationRequest/id``), handed-over day, 420-DK code."""

    patient: str
    prescription: str
    day: date
    scc: str | None


def completed_fills(dispenses: Iterable[Resource], problems: list[str] | None = None) -> list[Fill]:
    """Completed MedicationDispenses as Fills (whenHandedOver, else whenPrepared); one without either is
    named in ``problems`` and left out."""
    out: list[Fill] = []
    for disp in dispenses:
        if disp.get("status") != "completed":
            continue
        day = day_of(disp.get("whenHandedOver")) or day_of(disp.get("whenPrepared"))
        if day is None:
            if problems is not None:
                problems.append(f"MedicationDispense/{disp.get('id')}: whenHandedOver and whenPrepared missing")
            continue
        scc = None
        for ext in disp.get("extension", ()):
            if ext.get("url") == SCC_EXTENSION:
                code = (ext.get("valueCoding") or {}).get("code")
                scc = code if isinstance(code, str) else None
        prescriptions = disp.get("authorizingPrescription") or [{}]
        out.append(Fill(reference_of(disp.get("subject")), bare(reference_of(prescriptions[0])), day, scc))
    return out


@dataclass(frozen=True)
class Rate:
    """A proportion indicator: numerator over denominator (score None when the denominator is empty)."""

    code: str
    title: str
    numerator: int
    denominator: int

    @property
    def score(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


@dataclass
class ProgramMeasures:
    """Every program indicator for one period (see :func:`program_measures`)."""

    start: date
    end: date
    enrolled: int
    rates: list[Rate]
    short_fills: dict[str, int]
    reversals: int
    fills_per_year: dict[str, tuple[int, float]]
    """``before``/``after`` → (fills, patient-years observed)."""
    pdc: dict[str, tuple[int, int, float | None]]
    """``before``/``after`` → (eligible patient-measures, adherent ones, mean PDC)."""
    patients: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Resources that could not be used, each named with the element at fault."""


def _initial_sync(enr: Enrollment, fills_by_rx: Mapping[tuple[str, str], list[date]]) -> bool:
    """All synced prescriptions handed over together on one day within the first cycle from the anchor."""
    if enr.anchor is None or not enr.synced:
        return False
    last = enr.anchor + timedelta(days=enr.cycle - 1)
    days: set[date] | None = None
    for rx in enr.synced:
        on = {d for d in fills_by_rx.get((enr.patient, rx), ()) if enr.anchor <= d <= last}
        days = on if days is None else days & on
    return bool(days)


def _continued(enr: Enrollment, checkpoint: date, fill_days: Sequence[date]) -> bool:
    if enr.ended is not None and enr.ended < checkpoint:
        return False
    window = checkpoint - timedelta(days=ACTIVE_WINDOW_DAYS)
    return any(window < d <= checkpoint for d in fill_days)


def _on_time(
    appointments: Iterable[Resource],
    tasks: Mapping[str, Resource],
    fills_by_rx: Mapping[tuple[str, str], list[date]],
    start: date,
    last: date,
    today: date,
) -> tuple[int, int]:
    """(on-time, due) booked pickups dated in [start, last]: on time when every fill Task the Appointment
    carries (supportingInformation) has a dispense of its prescription within the grace days of the pickup;
    a pickup not yet made counts once its grace days have passed."""
    on_time = due = 0
    grace = timedelta(days=PICKUP_GRACE_DAYS)
    for appt in appointments:
        if appt.get("status") not in PICKUP_STATUSES:
            continue
        periods = appt.get("requestedPeriod") or [{}]
        day = day_of(appt.get("start")) or day_of(periods[0].get("start"))
        if day is None or not start <= day <= last:
            continue
        patient = next((reference_of(p.get("actor")) for p in appt.get("participant", ())
                        if reference_of(p.get("actor")).startswith("Patient/")), "")
        prescriptions = [
            bare(reference_of(tasks[ref].get("focus")))
            for ref in (bare(reference_of(info)) for info in appt.get("supportingInformation", ()))
            if ref in tasks
        ]
        if not prescriptions:
            continue
        picked = all(any(day - grace <= d <= day + grace for d in fills_by_rx.get((patient, rx), ()))
                     for rx in prescriptions)
        if picked or day + grace < today:
            due += 1
            on_time += picked
    return on_time, due


def program_measures(
    careplans: Iterable[Resource],
    tasks: Iterable[Resource],
    appointments: Iterable[Resource],
    dispenses: Sequence[Resource],
    claims: Iterable[Resource],
    table: ClassTable,
    start: date,
    end: date,
    today: date,
) -> ProgramMeasures:
    """The program indicators over [start, end] (observations stop at ``today`` when it is earlier):

    enrolled (a first sync plan created on or before the end), initial sync rate (of those whose first
    cycle has ended), continuation at 6 and 12 months (of those enrolled that long), completeness (no chronic
    drug left out of the first plan), on-time pickups, short fills (420-DK 47/61) per month, reversed
    Claims, fills per patient-year and PQA PDC in the year before and after enrollment.
    """
    last = min(end, today)
    task_list = list(tasks)
    problems: list[str] = []
    enr = {p: e for p, e in enrollments(careplans, task_list, problems).items() if e.enrolled <= last}
    fills = completed_fills(dispenses, problems)
    fills_by_rx: dict[tuple[str, str], list[date]] = {}
    fills_by_patient: dict[str, list[date]] = {}
    for fill in fills:
        fills_by_rx.setdefault((fill.patient, fill.prescription), []).append(fill.day)
        fills_by_patient.setdefault(fill.patient, []).append(fill.day)

    synced_due = [e for e in enr.values() if e.anchor and e.anchor + timedelta(days=e.cycle - 1) <= last]
    rates = [
        Rate("initial-sync", "Initial synchronization rate",
             sum(_initial_sync(e, fills_by_rx) for e in synced_due), len(synced_due)),
    ]
    for months in (6, 12):
        due = [e for e in enr.values() if add_months(e.enrolled, months) <= last]
        kept = sum(_continued(e, add_months(e.enrolled, months), fills_by_patient.get(e.patient, ())) for e in due)
        rates.append(Rate(f"continuation-{months}m", f"Continuation at {months} months", kept, len(due)))
    rates.append(Rate("completeness", "Completeness (every chronic drug in the plan)",
                      sum(e.complete for e in enr.values()), len(enr)))
    task_by_ref = {f"Task/{t.get('id')}": t for t in task_list}
    on_time, due_pickups = _on_time(appointments, task_by_ref, fills_by_rx, start, last, today)
    rates.append(Rate("on-time-pickup", "On-time pickups", on_time, due_pickups))

    short: dict[str, int] = {}
    for fill in fills:
        if fill.scc in SHORT_FILL_CODES and start <= fill.day <= last:
            month = fill.day.strftime("%Y-%m")
            short[month] = short.get(month, 0) + 1
    reversals = sum(
        1 for c in claims
        if c.get("status") == "cancelled" and (d := day_of(c.get("created"))) is not None and start <= d <= last
    )
    per_year = {"before": (0, 0.0), "after": (0, 0.0)}
    for e in enr.values():
        days = fills_by_patient.get(e.patient, ())
        before_from = e.enrolled - timedelta(days=YEAR_DAYS)
        after_to = min(e.enrolled + timedelta(days=YEAR_DAYS - 1), today)
        spans = {
            "before": (before_from, e.enrolled - timedelta(days=1)),
            "after": (e.enrolled, after_to),
        }
        for key, (lo, hi) in spans.items():
            if hi < lo:
                continue
            count, years = per_year[key]
            per_year[key] = (count + sum(lo <= d <= hi for d in days), years + ((hi - lo).days + 1) / YEAR_DAYS)
    return ProgramMeasures(
        start, end, len(enr), rates, dict(sorted(short.items())), reversals, per_year,
        _pdc_around(enr.values(), dispenses, table, today, problems), sorted(enr), problems,
    )


def _pdc_around(
    enrolled: Iterable[Enrollment], dispenses: Sequence[Resource], table: ClassTable, today: date,
    problems: list[str],
) -> dict[str, tuple[int, int, float | None]]:
    """PQA PDC (class level, eligible patients) in the year before enrollment and from enrollment on."""
    extraction = extract_histories(dispenses, table)
    problems.extend(extraction.problems)
    histories = extraction.histories
    out: dict[str, tuple[int, int, float | None]] = {}
    for key in ("before", "after"):
        eligible = adherent = 0
        total = 0.0
        for e in enrolled:
            history = histories.get(e.patient)
            if history is None:
                continue
            if key == "before":
                lo, hi = e.enrolled - timedelta(days=YEAR_DAYS), e.enrolled - timedelta(days=1)
            else:
                lo, hi = e.enrolled, min(e.enrolled + timedelta(days=YEAR_DAYS - 1), today)
            if hi < lo:
                continue
            for result in population_pdc([history], table, lo, hi):
                if result.ingredient is None and result.status == Status.ELIGIBLE and result.coverage:
                    eligible += 1
                    adherent += result.coverage.adherent
                    total += result.coverage.pdc
        out[key] = (eligible, adherent, total / eligible if eligible else None)
    return out


def _concept(code: str, title: str) -> dict[str, Any]:
    return {"coding": [{"system": PROGRAM_CODES, "code": code, "display": title}], "text": title}


def _pop(code: str, count: int) -> dict[str, Any]:
    return {"code": {"coding": [{"system": MEASURE_POPULATION, "code": code}]}, "count": count}


def _proportion(value: float) -> dict[str, Any]:
    return {"value": round(value, 4), "unit": "1", "system": str(CodeSystem.UCUM), "code": "1"}


def _per_year(value: float) -> dict[str, Any]:
    return {"value": round(value, 2), "unit": "per year", "system": str(CodeSystem.UCUM), "code": "/a"}


def program_report(measures: ProgramMeasures) -> dict[str, Any]:
    """The indicators as one summary MeasureReport: one group per indicator (code from PROGRAM_CODES), its
    populations and score; short fills stratified by month, fills and PDC stratified before/after."""
    groups: list[dict[str, Any]] = [
        {"code": _concept("enrolled", "Enrolled patients"), "population": [_pop("initial-population", measures.enrolled)]}
    ]
    for rate in measures.rates:
        group: dict[str, Any] = {
            "code": _concept(rate.code, rate.title),
            "population": [_pop("denominator", rate.denominator), _pop("numerator", rate.numerator)],
        }
        if rate.score is not None:
            group["measureScore"] = _proportion(rate.score)
        groups.append(group)
    short_group: dict[str, Any] = {
        "code": _concept("short-fills", "Short fills (420-DK 47/61)"),
        "population": [_pop("initial-population", sum(measures.short_fills.values()))],
    }
    if measures.short_fills:
        short_group["stratifier"] = [{
            "code": [{"text": "month"}],
            "stratum": [{"value": {"text": m}, "population": [_pop("initial-population", n)]}
                        for m, n in measures.short_fills.items()],
        }]
    groups.append(short_group)
    groups.append({
        "code": _concept("reversals", "Reversed claims"),
        "population": [_pop("initial-population", measures.reversals)],
    })
    strata = []
    for key, (count, years) in measures.fills_per_year.items():
        stratum: dict[str, Any] = {"value": {"text": f"{key} enrollment"}, "population": [_pop("initial-population", count)]}
        if years:
            stratum["measureScore"] = _per_year(count / years)
        strata.append(stratum)
    groups.append({
        "code": _concept("fills-per-year", "Fills per patient-year, before and after enrollment"),
        "stratifier": [{"code": [{"text": "enrollment"}], "stratum": strata}],
    })
    pdc_strata = []
    for key, (eligible, adherent, mean) in measures.pdc.items():
        stratum = {
            "value": {"text": f"{key} enrollment"},
            "population": [_pop("denominator", eligible), _pop("numerator", adherent)],
        }
        if mean is not None:
            stratum["measureScore"] = _proportion(mean)
        pdc_strata.append(stratum)
    groups.append({
        "code": _concept("pdc", "Mean PQA PDC (eligible patient-measures), before and after enrollment"),
        "stratifier": [{"code": [{"text": "enrollment"}], "stratum": pdc_strata}],
    })
    start, end = measures.start.isoformat(), measures.end.isoformat()
    return {
        "resourceType": "MeasureReport",
        "id": business_id("MeasureReport", "medsync-program", start, end),
        "status": "complete",
        "type": "summary",
        "measure": PROGRAM_MEASURE,
        "period": {"start": start, "end": end},
        "improvementNotation": {"coding": [{"system": IMPROVEMENT_NOTATION, "code": "increase"}]},
        "group": groups,
    }


PROGRAM_CSV_COLUMNS = ("indicator", "stratum", "numerator", "denominator", "value")


def program_rows(measures: ProgramMeasures) -> list[tuple[str, str, str, str, str]]:
    """The indicators as table rows (indicator, stratum, numerator, denominator, value)."""
    rows = [("enrolled", "", str(measures.enrolled), "", "")]
    for rate in measures.rates:
        score = "" if rate.score is None else f"{rate.score:.4f}"
        rows.append((rate.code, "", str(rate.numerator), str(rate.denominator), score))
    for month, count in measures.short_fills.items():
        rows.append(("short-fills", month, str(count), "", ""))
    rows.append(("reversals", "", str(measures.reversals), "", ""))
    for key, (count, years) in measures.fills_per_year.items():
        rows.append(("fills-per-year", key, str(count), f"{years:.2f}", f"{count / years:.2f}" if years else ""))
    for key, (eligible, adherent, mean) in measures.pdc.items():
        rows.append(("pdc", key, str(adherent), str(eligible), "" if mean is None else f"{mean:.4f}"))
    return rows


def program_csv(measures: ProgramMeasures) -> str:
    """The indicators as CSV text (header PROGRAM_CSV_COLUMNS)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PROGRAM_CSV_COLUMNS)
    writer.writerows(program_rows(measures))
    return out.getvalue()
