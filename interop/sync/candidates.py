"""Who gains most from med sync: a score per patient from their (unstored) plan and dispensing history.

Pure (the plan, the dispenses and ``today`` in). The score adds three documented terms, each with its reason:
pickup trips saved per cycle (distinct due days of the maintenance drugs, minus the one anchor trip), how
scattered those due days are (their spread over the cycle, 0 to 1), and low adherence (10 x the shortfall of
the proportion of days covered over the last 180 days below 80%, the PQA threshold; medsync.md §1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any, NamedTuple

from interop.sync.eligibility import Reason
from interop.sync.plan import SyncPlan

ADHERENCE_WINDOW_DAYS = 180
ADHERENT_PDC = 0.8
ADHERENCE_WEIGHT = 10.0
MIN_MAINTENANCE = 2


class Candidate(NamedTuple):
    """One patient's expected benefit and its parts, with a sentence per part for staff."""

    patient: str
    score: float
    maintenance: int
    trips: int
    spread_days: int
    pdc: float | None
    reasons: tuple[str, ...]


def _maintenance(plan: SyncPlan) -> list[str]:
    """Request ids of the drugs the plan can fill on a schedule: synced, co-scheduled or on their own cycle."""
    floating = {e.request_id for e in plan.exclusions if e.reason in (Reason.CO_SCHEDULED, Reason.OWN_CYCLE)}
    return [*plan.synced, *sorted(floating - set(plan.synced))]


def _fill(dispense: Mapping[str, Any]) -> tuple[int, int] | None:
    """(day ordinal, days supply) of a completed dispense (MedicationDispense.whenHandedOver, daysSupply)."""
    if dispense.get("status", "completed") != "completed":
        return None
    when = str(dispense.get("whenHandedOver") or dispense.get("whenPrepared") or "")[:10]
    days = (dispense.get("daysSupply") or {}).get("value")
    if len(when) != 10 or not isinstance(days, int | float) or days <= 0:
        return None
    try:
        return date.fromisoformat(when).toordinal(), int(days)
    except ValueError:
        return None


def covered_share(fills: Iterable[tuple[int, int]], start: int, end: int) -> float | None:
    """Share of days in [start, end) covered by fills, early refills shifted forward (PQA PDC style); None
    when no fill touches the window."""
    cursor = start
    covered = 0
    touched = False
    for day, days in sorted(fills):
        if day + days <= start or day >= end:
            continue
        touched = True
        begin = max(day, cursor)
        stop = min(begin + days, end)
        if stop > begin:
            covered += stop - begin
            cursor = stop
    return covered / (end - start) if touched else None


def candidate(plan: SyncPlan, dispenses: Sequence[Mapping[str, Any]]) -> Candidate | None:
    """The patient's benefit (see the module docstring); None with fewer than two maintenance drugs."""
    ids = _maintenance(plan)
    if len(ids) < MIN_MAINTENANCE:
        return None
    cycle = plan.cycle_days
    dues = sorted({plan.regimens[rid].next_due for rid in ids})
    trips = len({d % cycle for d in dues})
    spread = min(dues[-1] - dues[0], cycle)
    end = plan.today.toordinal()
    start = end - ADHERENCE_WINDOW_DAYS
    wanted = {f"MedicationRequest/{rid}" for rid in ids}
    shares = []
    by_request: dict[str, list[tuple[int, int]]] = {}
    for disp in dispenses:
        fill = _fill(disp)
        if fill is None:
            continue
        for auth in disp.get("authorizingPrescription", ()):
            ref = auth.get("reference")
            if ref in wanted:
                by_request.setdefault(ref, []).append(fill)
    for fills in by_request.values():
        share = covered_share(fills, start, end)
        if share is not None:
            shares.append(share)
    pdc = sum(shares) / len(shares) if shares else None
    reasons = [f"{len(ids)} maintenance drugs"]
    score = float(trips - 1)
    reasons.append(f"due on {trips} different days per {cycle}-day cycle: {trips - 1} pickup trip(s) saved")
    score += spread / cycle
    reasons.append(f"next due dates spread over {spread} days")
    if pdc is not None:
        gap = max(0.0, ADHERENT_PDC - pdc)
        score += ADHERENCE_WEIGHT * gap
        below = " (below 80%)" if gap > 0 else ""
        reasons.append(f"proportion of days covered {pdc:.0%} over the last {ADHERENCE_WINDOW_DAYS} days{below}")
    return Candidate(plan.patient, round(score, 3), len(ids), trips, spread, pdc, tuple(reasons))


def ranked(candidates: Iterable[Candidate | None]) -> list[Candidate]:
    """Candidates best first (score, then more maintenance drugs, then patient reference for a stable order)."""
    return sorted((c for c in candidates if c is not None), key=lambda c: (-c.score, -c.maintenance, c.patient))
