"""Which prescriptions may be synced, with a machine-readable reason for every one that may not.

Chronic maintenance drugs only: PRN (Dosage.asNeeded[x]) and acute courses (courseOfTherapyType acute, a short
total duration, antibiotics) are excluded; controlled schedules per state (no C-II anywhere), per-drug sync
limits (PA PACE ≤ 3 a year), prescriptions without refills that cannot be renewed (medsync.md §4.1, §2.6).
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from interop.sync.regimen import Regimen
from interop.sync.settings import PayerRules, StateRules, SyncLimit


class Reason(StrEnum):
    """Why a prescription is not synced (codes of the sync-exclusion-reason code system in conformance/)."""

    NOT_ACTIVE = "not-active"
    PRN = "prn"
    ACUTE = "acute"
    CONTROLLED = "controlled-schedule-not-allowed-in-state"
    SYNC_LIMIT = "sync-limit-reached"
    NO_REFILLS = "no-refills-no-renewal"
    CO_SCHEDULED = "non-splittable-co-scheduled"
    OWN_CYCLE = "non-splittable-own-cycle"


REASON_TEXT: dict[Reason, str] = {
    Reason.NOT_ACTIVE: "Prescription is not active",
    Reason.PRN: "Taken as needed (PRN)",
    Reason.ACUTE: "Acute course, not a maintenance drug",
    Reason.CONTROLLED: "Controlled-substance schedule not allowed in sync in this state",
    Reason.SYNC_LIMIT: "Per-drug sync limit reached",
    Reason.NO_REFILLS: "No refills left and no renewal possible",
    Reason.CO_SCHEDULED: "Package cannot be split: pickup co-scheduled with an anchor date",
    Reason.OWN_CYCLE: "Package cannot be split and no anchor date falls in the tolerance window",
}


_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V"}


class Exclusion(NamedTuple):
    """One prescription left out of the short-fill plan, its reason code and a human detail."""

    request_id: str
    drug_name: str
    reason: Reason
    detail: str


def _limit_reached(limit: SyncLimit | None, reg: Regimen, today: int) -> str:
    if limit is None:
        return ""
    syncs = reg.prior_syncs_this_rx if limit.reset_on_dose_change else reg.prior_syncs
    since = today - limit.window_days
    count = sum(1 for day in syncs if day > since)
    if count >= limit.max_count:
        scope = " under this prescription (resets on a dose change)" if limit.reset_on_dose_change else ""
        return f"{count} sync fill(s) in the last {limit.window_days} days{scope}; limit {limit.max_count}"
    return ""


def exclusions(reg: Regimen, state: StateRules, payer: PayerRules, today: int) -> list[Exclusion]:
    """Every reason ``reg`` cannot be synced (empty when it is eligible)."""
    out: list[Exclusion] = []
    rid, name = reg.request_id, reg.drug_name
    if not reg.active:
        out.append(Exclusion(rid, name, Reason.NOT_ACTIVE, "MedicationRequest.status is not active"))
    if reg.prn:
        out.append(Exclusion(rid, name, Reason.PRN, "dosageInstruction.asNeeded[x] is set"))
    if reg.acute:
        out.append(Exclusion(rid, name, Reason.ACUTE, reg.acute))
    if reg.schedule is not None and reg.schedule in state.excluded_schedules:
        where = f"state {state.code}" if state.code else "every state"
        label = _ROMAN.get(reg.schedule, str(reg.schedule))
        detail = f"C-{label} ({reg.controlled_ingredient}) not allowed in {where}: {state.citation}"
        out.append(Exclusion(rid, name, Reason.CONTROLLED, detail))
    else:
        low = name.lower()
        for ingredient in state.excluded_ingredients:
            if ingredient in low:
                out.append(
                    Exclusion(rid, name, Reason.CONTROLLED, f"{ingredient} excluded in state {state.code}: {state.citation}")
                )
                break
    for limit, who in ((state.sync_limit, f"state {state.code}"), (payer.sync_limit, f"payer {payer.key}")):
        detail = _limit_reached(limit, reg, today)
        if detail:
            out.append(Exclusion(rid, name, Reason.SYNC_LIMIT, f"{who}: {detail}"))
    if reg.fills_left == 0 and not reg.can_renew:
        out.append(
            Exclusion(rid, name, Reason.NO_REFILLS, "no fills left and no requester to send a renewal request to")
        )
    return out
