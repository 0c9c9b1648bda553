"""A deliberately plain day-by-day PDC: the oracle the tests compare ``pdc.patient_pdc`` with, and the
baseline of bench/bench_pdc.py. Same inputs and results; walks every supply day one at a time."""

from __future__ import annotations

from datetime import date

from interop.reports.classes import MEASURES, ClassTable
from interop.reports.history import PatientHistory
from interop.reports.pdc import MIN_FILL_DATES, MIN_TREATMENT_DAYS, Coverage, PdcResult, Status


def _covered_days(fills: list[tuple[int, int]], hospital: set[int]) -> set[int]:
    """Each fill starts on its day or the day after the same drug's previous supply ran out; a supply day
    is used only on a day out of hospital (held supply resumes after discharge)."""
    covered: set[int] = set()
    next_free = None
    for day, supply in sorted(fills):
        current = day if next_free is None or day > next_free else next_free
        left = supply
        while left > 0:
            if current not in hospital:
                covered.add(current)
                left -= 1
            current += 1
        next_free = current
    return covered


def _one(
    patient: str,
    measure: str,
    ingredient: str | None,
    fills: list[tuple[int, int]],
    covered: set[int],
    last: int,
    hospital: set[int],
    reason: str | None,
) -> PdcResult:
    dates = {day for day, _ in fills}
    if len(dates) < MIN_FILL_DATES:
        return PdcResult(patient, measure, ingredient, Status.SINGLE_FILL, len(fills), None)
    index = min(dates)
    if last - index + 1 < MIN_TREATMENT_DAYS:
        return PdcResult(patient, measure, ingredient, Status.LATE_INDEX, len(fills), None)
    days = 0
    hit = 0
    stay = 0
    for day in range(index, last + 1):
        if day in hospital:
            stay += 1
            continue
        days += 1
        if day in covered:
            hit += 1
    status = Status.EXCLUDED if reason else Status.ELIGIBLE
    return PdcResult(
        patient, measure, ingredient, status, len(fills), Coverage(index, last, days, hit, stay), reason
    )


def reference_patient_pdc(
    history: PatientHistory, table: ClassTable, start: date, end: date
) -> list[PdcResult]:
    """The same results as ``pdc.patient_pdc`` (class first, then each ingredient), computed day by day."""
    first, last = start.toordinal(), end.toordinal()
    hospital: set[int] = set()
    for stay_first, stay_last in history.stays:
        hospital.update(range(max(stay_first, first), min(stay_last, last) + 1))
    kept = {
        cui: [f for f in fills if first <= f[0] <= last]
        for cui, fills in history.fills.items()
        if any(first <= f[0] <= last for f in fills)
    }
    results: list[PdcResult] = []
    for measure in MEASURES:
        members = [cui for cui in kept if table.members.get(cui) == measure.code]
        if not members:
            continue
        reason = min(history.flags) if history.flags else None
        if reason is None:
            users = [cui for cui in kept if measure.code in table.exclusions.get(cui, ())]
            reason = f"{table.name(users[0])} use" if users else None
        per_drug = {cui: _covered_days(kept[cui], hospital) for cui in members}
        union: set[int] = set().union(*per_drug.values())
        all_fills = [f for cui in members for f in kept[cui]]
        results.append(_one(history.patient, measure.code, None, all_fills, union, last, hospital, reason))
        for cui in members:
            results.append(
                _one(history.patient, measure.code, cui, kept[cui], per_drug[cui], last, hospital, reason)
            )
    return results
