"""Properties of the sync planner over random regimens and fill histories (hypothesis, bounded)."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interop.sync.anchor import score
from interop.sync.plan import SyncPlan, plan_patient
from interop.sync.regimen import refill_payable_day
from interop.sync.settings import load_settings
from tests.sync_builders import coverage, dispense, request

TODAY = date(2026, 6, 25)
EYE_DROPS = {
    "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "drop", "code": "[drp]"}}],
    "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
    "site": {"text": "both eyes"},
}
EPS = 1e-6


@st.composite
def drug(draw: st.DrawFn, index: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rid = f"rx{index}"
    kind = draw(st.sampled_from(["tablet"] * 5 + ["drops", "pen", "cream"]))
    refills = draw(st.integers(0, 6))
    requester = draw(st.booleans() | st.just(True))
    if kind == "tablet":
        days = draw(st.sampled_from([28, 30, 30, 34, 60, 90]))
        per_day = draw(st.sampled_from([0.5, 1, 1, 1.5, 2, 3]))
        qty = float(math.ceil(days * per_day))
        req = request(rid, f"maintenance drug {index} tablet", quantity=qty, days=days, refills=refills,
                      requester=requester)
        unit = "TAB"
    elif kind == "drops":
        days, qty, unit = 25, 5.0, "mL"
        req = request(rid, f"ophthalmic drug {index} solution", quantity=qty, days=days, unit=unit,
                      refills=refills, requester=requester, dosage=EYE_DROPS)
    elif kind == "pen":
        pens = draw(st.integers(1, 3))
        days, qty, unit = 30 * pens, float(pens), "{pen}"
        req = request(rid, f"injectable drug {index} pen", quantity=qty, days=days, unit=unit, refills=refills,
                      requester=requester)
    else:
        days, qty, unit = 30, 30.0, "g"
        req = request(rid, f"topical drug {index} cream", quantity=qty, days=days, unit=unit, refills=refills,
                      requester=requester)
    fills = draw(st.integers(0, 2))
    last_ago = draw(st.integers(0, days + 10))
    history = [
        dispense(f"{rid}-d{n}", rid, TODAY - timedelta(days=last_ago + days * (fills - 1 - n)), quantity=qty,
                 days=days, unit=unit)
        for n in range(fills)
    ]
    return req, history


@st.composite
def patient(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 6))
    requests: list[dict[str, Any]] = []
    dispenses: list[dict[str, Any]] = []
    for i in range(count):
        req, hist = draw(drug(i))
        requests.append(req)
        dispenses.extend(hist)
    cycle = draw(st.sampled_from([28, 30, 30, 56, 84, 90]))
    anchor = draw(st.none() | st.integers(0, 120).map(lambda d: TODAY + timedelta(days=d)))
    payer = draw(st.sampled_from([None, "SYNTH-PART-D", "SYNTH-PBM-80", "SYNTH-PBM-90"]))
    tolerance = draw(st.integers(0, 10))
    return {"requests": requests, "dispenses": dispenses, "cycle": cycle, "anchor": anchor, "payer": payer,
            "tolerance": tolerance}


def _plan(case: dict[str, Any]) -> SyncPlan:
    sync_settings = load_settings(tolerance_days=case["tolerance"])
    return plan_patient(case["requests"], case["dispenses"], coverage(case["payer"]), sync_settings, TODAY,
                        anchor=case["anchor"], cycle_days=case["cycle"])


BOUNDED = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@BOUNDED
@given(patient())
def test_synced_drugs_end_on_the_anchor_lattice(case: dict[str, Any]) -> None:
    plan = _plan(case)
    if plan.anchor is None:
        assert not plan.synced
        return
    anchor, cycle = plan.anchor.toordinal(), plan.cycle_days
    assert plan.steady is not None
    for rid in plan.synced:
        fills = [f for f in plan.fills if f.request_id == rid]
        last = fills[-1]
        assert last.kind == "anchor" and (last.day - anchor) % cycle == 0
        assert last.day == plan.steady.toordinal()
        # next due after the transition = last fill + cycle: an anchor date
        assert (last.day + last.days - anchor) % cycle == 0
        assert all((f.day - anchor) % cycle == 0 for f in fills if f.kind == "anchor")


@BOUNDED
@given(patient())
def test_no_day_without_supply_for_an_adherent_patient(case: dict[str, Any]) -> None:
    plan = _plan(case)
    for rid, reg in plan.regimens.items():
        fills = [f for f in plan.fills if f.request_id == rid]
        supply_end = reg.next_due
        for fill in fills:
            assert fill.day <= supply_end, (rid, fill)
            covered = math.floor(fill.quantity / reg.daily_dose + EPS)
            assert covered >= fill.days or fill.packages is not None, (rid, fill)
            supply_end = max(supply_end, fill.day) + covered


@BOUNDED
@given(patient())
def test_no_fill_before_refill_too_soon_unless_claimed_as_sync(case: dict[str, Any]) -> None:
    plan = _plan(case)
    sync_settings = load_settings()
    payer = sync_settings.payer(case["payer"])
    for rid, reg in plan.regimens.items():
        fills = [f for f in plan.fills if f.request_id == rid]
        earliest = (
            refill_payable_day(reg.last_fill, reg.days_supply, payer.refill_too_soon) if reg.filled_before
            else TODAY.toordinal()
        )
        for fill in fills:
            assert fill.earliest_payable == earliest
            assert fill.day >= earliest or fill.claim_code in (payer.sync_scc, payer.anchor_scc), (rid, fill)
            earliest = refill_payable_day(fill.day, fill.days, payer.refill_too_soon)


@BOUNDED
@given(patient())
def test_never_more_than_the_authorized_supply_a_renewal_instead(case: dict[str, Any]) -> None:
    plan = _plan(case)
    renewals = {r.request_id: r for r in plan.renewals}
    lead = load_settings().renewal_lead_days
    for rid, reg in plan.regimens.items():
        fills = [f for f in plan.fills if f.request_id == rid]
        authorized = [f for f in fills if not f.needs_renewal]
        assert sum(f.quantity for f in authorized) <= reg.authorized_units + EPS
        if reg.expires is not None:
            assert all(f.day <= reg.expires for f in authorized)
        pending = [f for f in fills if f.needs_renewal]
        if pending:
            renewal = renewals[rid]
            assert reg.can_renew
            assert renewal.needed_by == pending[0].day
            assert fills.index(pending[0]) == len(authorized)  # every fill after the first uncovered one waits
            if renewal.late:
                assert renewal.due == TODAY.toordinal() and renewal.needed_by - lead < renewal.due
            else:
                assert renewal.needed_by - renewal.due == lead >= 10
        else:
            assert rid not in renewals


@BOUNDED
@given(patient())
def test_quantities_whole_units_no_split_package_no_fill_under_a_day(case: dict[str, Any]) -> None:
    plan = _plan(case)
    for rid, reg in plan.regimens.items():
        fills = [f for f in plan.fills if f.request_id == rid]
        for i, fill in enumerate(fills):
            assert fill.days >= 1
            if not reg.splittable:
                assert fill.packages is not None and fill.packages >= 1
                assert abs(fill.quantity - fill.packages * reg.package_size) < EPS
                continue
            assert fill.packages is None and fill.quantity == int(fill.quantity)
            if fill.kind == "short":
                assert fill.claim_code is not None
                gap = fills[i + 1].day - fill.day  # the short fill runs to the drug's first anchor fill
                assert gap >= 1
                assert fill.quantity == math.ceil(gap * reg.daily_dose - EPS)
            elif fill.kind in ("anchor", "full"):
                assert fill.quantity == math.ceil(plan.cycle_days * reg.daily_dose - EPS)


@BOUNDED
@given(patient())
def test_one_pass_candidate_scores_equal_the_reference_scorer(case: dict[str, Any]) -> None:
    case = {**case, "anchor": None}
    plan = _plan(case)
    if plan.choice is None:
        return
    sync_settings = load_settings(tolerance_days=case["tolerance"])
    synced = [r for r in plan.regimens.values() if r.request_id in plan.synced or _was_candidate(plan, r)]
    floaters = [r for r in plan.regimens.values() if _was_floater(plan, r)]
    on_lattice = [r for r in synced if r not in floaters]
    for cand in plan.choice.candidates:
        ref = score(cand.day, on_lattice, floaters, plan.cycle_days, TODAY.toordinal(), sync_settings, None)
        assert cand == ref
    best = min(plan.choice.candidates, key=lambda c: (c.infeasible, c.renewals, c.short_fills + c.trips,
                                                      c.extra_out_of_pocket, c.days_to_steady, c.preference, c.day))
    assert plan.anchor == best.date


@BOUNDED
@given(patient())
def test_anchor_scores_agree_with_the_plan_on_renewals(case: dict[str, Any]) -> None:
    """The scorer's renewal and too-late counts equal what the plan itself finds, drug by drug (tablets)."""
    if case["anchor"] is None:
        case = {**case, "anchor": TODAY + timedelta(days=17)}
    plan = _plan(case)
    if plan.choice is None or any(not r.splittable for r in plan.regimens.values()):
        return
    winner = plan.choice.winner()
    late = {r.request_id for r in plan.renewals if r.late}
    on_time = {r.request_id for r in plan.renewals if not r.late}
    # dropped while planning (eligibility drops only prescriptions with no fills left and no prescriber)
    dropped = {e.request_id for e in plan.exclusions
               if e.reason.value == "no-refills-no-renewal" and plan.regimens[e.request_id].fills_left > 0}
    assert winner.renewals == len(on_time)
    assert winner.infeasible == len(late) + len(dropped)


def _eligible(plan: SyncPlan, reg: Any) -> bool:
    return not any(
        e.request_id == reg.request_id and e.reason.value not in ("non-splittable-co-scheduled",
                                                                  "non-splittable-own-cycle", "no-refills-no-renewal")
        for e in plan.exclusions
    ) and not (reg.fills_left == 0 and not reg.can_renew)


def _was_floater(plan: SyncPlan, reg: Any) -> bool:
    return _eligible(plan, reg) and not reg.splittable and plan.cycle_days % reg.natural_cycle != 0


def _was_candidate(plan: SyncPlan, reg: Any) -> bool:
    return _eligible(plan, reg) and (reg.splittable or plan.cycle_days % reg.natural_cycle == 0)
