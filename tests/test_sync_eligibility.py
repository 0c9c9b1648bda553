"""Every exclusion reason of the sync planner, each with its machine-readable code, plus packages and renewals."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from interop.sync.eligibility import Reason
from interop.sync.plan import PlanError, SyncPlan, plan_patient
from interop.sync.settings import SettingsError, load_settings
from tests.sync_builders import coverage, dispense, request

TODAY = date(2026, 6, 25)
EYE_DROPS = {
    "text": "1 drop in each eye twice a day",
    "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "drop", "code": "[drp]"}}],
    "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
    "site": {"text": "both eyes"},
}
INSULIN = {
    "text": "10 units at bedtime",
    "doseAndRate": [{"doseQuantity": {"value": 10, "unit": "units", "code": "[iU]"}}],
    "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
}


def _base() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One ordinary maintenance drug, so every test has an anchor to plan against."""
    return [request("lisinopril", "lisinopril 10 mg tablet")], [dispense("d0", "lisinopril", date(2026, 6, 1))]


def _plan(extra_req: dict[str, Any], extra_disp: list[dict[str, Any]], **kw: Any) -> SyncPlan:
    reqs, disps = _base()
    settings = load_settings(**kw.pop("settings", {}))
    return plan_patient([*reqs, extra_req], [*disps, *extra_disp], kw.pop("cov", coverage()), settings, TODAY, **kw)


def _reasons(plan: SyncPlan, rid: str) -> set[Reason]:
    return {e.reason for e in plan.exclusions if e.request_id == rid}


def test_eligible_maintenance_drug_is_synced() -> None:
    plan = _plan(request("amlo", "amlodipine 5 mg tablet"), [dispense("d1", "amlo", date(2026, 6, 12))])
    assert set(plan.synced) == {"lisinopril", "amlo"}
    assert not plan.exclusions


def test_prn() -> None:
    plan = _plan(request("albu", "ibuprofen 400 mg tablet", prn=True), [dispense("d1", "albu", date(2026, 6, 5))])
    assert _reasons(plan, "albu") == {Reason.PRN}
    assert all(f.request_id != "albu" for f in plan.fills)


def test_not_active() -> None:
    plan = _plan(request("old", "amlodipine 5 mg tablet", status="stopped"), [])
    assert _reasons(plan, "old") == {Reason.NOT_ACTIVE}


@pytest.mark.parametrize(
    ("req", "detail"),
    [
        (request("c1", "prednisone 10 mg tablet", course="acute"), "courseOfTherapyType acute"),
        (request("c1", "amoxicillin 500 mg capsule", unit="CAP"), "antibiotic class"),
        (request("c1", "cyclobenzaprine 10 mg tablet", quantity=10, days=10, refills=0), "total duration 10 days"),
    ],
)
def test_acute(req: dict[str, Any], detail: str) -> None:
    plan = _plan(req, [])
    excl = [e for e in plan.exclusions if e.request_id == "c1"]
    assert [e.reason for e in excl] == [Reason.ACUTE]
    assert detail in excl[0].detail


def test_c2_is_never_synced() -> None:
    for state in ("", "TX", "CO"):
        plan = _plan(request("oxy", "oxycodone 5 mg tablet"), [], settings={"state": state})
        assert _reasons(plan, "oxy") == {Reason.CONTROLLED}, state


def test_c4_depends_on_the_state() -> None:
    alprazolam = request("alp", "alprazolam 0.5 mg tablet")
    ok = _plan(alprazolam, [], settings={"state": "OK"})
    assert _reasons(ok, "alp") == {Reason.CONTROLLED}
    assert "36 O.S. §3634.5" in next(e.detail for e in ok.exclusions if e.request_id == "alp")
    tx = _plan(alprazolam, [], settings={"state": "TX"})
    assert "alp" in tx.synced


def test_state_excluded_ingredient() -> None:
    plan = _plan(request("hyd", "hydrocodone bitartrate / acetaminophen 5/325 tablet"), [], state="NY")
    assert _reasons(plan, "hyd") == {Reason.CONTROLLED}


def test_state_sync_limit_pa_three_a_year() -> None:
    syncs = [dispense(f"s{i}", "amlo", date(2026, m, 3), quantity=10, days=10, scc="47") for i, m in
             enumerate((1, 3, 5))]
    last = dispense("d1", "amlo", date(2026, 6, 10))
    reached = _plan(request("amlo", "amlodipine 5 mg tablet"), [*syncs, last], state="PA")
    assert _reasons(reached, "amlo") == {Reason.SYNC_LIMIT}
    under = _plan(request("amlo", "amlodipine 5 mg tablet"), [*syncs[1:], last], state="PA")
    assert "amlo" in under.synced


def test_payer_sync_limit_resets_on_dose_change() -> None:
    cov = coverage("SYNTH-PBM-80")
    amlo = request("amlo", "amlodipine 5 mg tablet", rxnorm="197361")
    same_rx = [dispense("s1", "amlo", date(2026, 3, 1), scc="61"), dispense("d1", "amlo", date(2026, 6, 10))]
    plan = _plan(amlo, same_rx, cov=cov)
    assert _reasons(plan, "amlo") == {Reason.SYNC_LIMIT}
    # the earlier sync was under the old 2.5 mg prescription: a dose change resets the payer's count
    old = request("amlo-old", "amlodipine 5 mg tablet", rxnorm="197361", status="stopped")
    moved = [dispense("s1", "amlo-old", date(2026, 3, 1), scc="61"), dispense("d1", "amlo", date(2026, 6, 10))]
    reqs, disps = _base()
    plan2 = plan_patient([*reqs, old, amlo], [*disps, *moved], cov, load_settings(), TODAY)
    assert "amlo" in plan2.synced


def test_no_refills_no_renewal() -> None:
    plan = _plan(
        request("amlo", "amlodipine 5 mg tablet", refills=0, requester=False),
        [dispense("d1", "amlo", date(2026, 6, 10))],
    )
    assert _reasons(plan, "amlo") == {Reason.NO_REFILLS}


def test_short_authorization_with_prescriber_gets_a_renewal_task() -> None:
    plan = _plan(
        request("amlo", "amlodipine 5 mg tablet", refills=1),
        [dispense("d1", "amlo", date(2026, 6, 20))],
        anchor=date(2026, 7, 1),
    )
    assert "amlo" in plan.synced
    (renewal,) = plan.renewals
    settings = load_settings()
    assert settings.renewal_lead_days == 3 + 7 + 2 + 1
    assert renewal.due == renewal.needed_by - settings.renewal_lead_days
    assert renewal.needed_by - renewal.due >= 10
    uncovered = [f for f in plan.fills if f.request_id == "amlo" and f.needs_renewal]
    assert uncovered and uncovered[0].day == renewal.needed_by
    covered = sum(f.quantity for f in plan.fills if f.request_id == "amlo" and not f.needs_renewal)
    assert covered <= plan.regimens["amlo"].authorized_units


def test_eye_drop_bottle_is_never_split_and_co_scheduled() -> None:
    drops = request("drops", "latanoprost 0.005% ophthalmic solution", quantity=5, days=25, unit="mL",
                    dosage=EYE_DROPS)
    # filled Jun 30, due Jul 25: the anchor Jul 24 is 1 day early, within the 7-day window, and payable
    # from Jun 30 + ceil(25 × 0.75) = Jul 19
    plan = _plan(drops, [dispense("d1", "drops", date(2026, 6, 30), quantity=5, days=25, unit="mL")],
                 anchor=date(2026, 7, 24))
    reg = plan.regimens["drops"]
    assert not reg.splittable and reg.natural_cycle == 25  # 5 mL × 20 drops/mL ÷ 4 drops a day
    assert _reasons(plan, "drops") == {Reason.CO_SCHEDULED}
    first = next(f for f in plan.fills if f.request_id == "drops")
    assert first.date == date(2026, 7, 24) and first.kind == "co-scheduled" and first.quantity == 5
    assert first.day >= first.earliest_payable


def test_package_outside_tolerance_keeps_its_own_cycle() -> None:
    drops = request("drops", "latanoprost 0.005% ophthalmic solution", quantity=5, days=25, unit="mL",
                    dosage=EYE_DROPS)
    # due Jul 21: the anchor day before it, Jul 10, is 11 days early, outside a 3-day window
    plan = _plan(drops, [dispense("d1", "drops", date(2026, 6, 26), quantity=5, days=25, unit="mL")],
                 anchor=date(2026, 7, 10), settings={"tolerance_days": 3})
    assert _reasons(plan, "drops") == {Reason.OWN_CYCLE}
    assert next(f for f in plan.fills if f.request_id == "drops").date == date(2026, 7, 21)


def test_insulin_pen_anchors_the_plan() -> None:
    pen = request("pen", "insulin glargine U-100 3 mL pen", quantity=3, days=30, unit="mL", dosage=INSULIN)
    plan = _plan(pen, [dispense("d1", "pen", date(2026, 6, 14), quantity=3, days=30, unit="mL")])
    assert plan.regimens["pen"].natural_cycle == 30  # 300 units at 10 a day
    assert plan.anchor == date(2026, 7, 14)  # the pen's due date: a pen cannot be short-filled
    assert "pen" in plan.synced
    assert all(f.kind != "short" for f in plan.fills if f.request_id == "pen")


def test_bad_inputs_are_named() -> None:
    bad = request("x", "amlodipine 5 mg tablet")
    with pytest.raises(PlanError, match=r"MedicationDispense/d9\.whenHandedOver"):
        _plan(bad, [dispense("d9", "x", date(2026, 6, 1)) | {"whenHandedOver": "June 1"}])
    with pytest.raises(PlanError, match="cycleDays 31"):
        _plan(bad, [], cycle_days=31)
    other = request("y", "amlodipine 5 mg tablet", patient="Patient/someone-else")
    with pytest.raises(PlanError, match="one patient"):
        _plan(other, [])
    with pytest.raises(SettingsError, match="unknown sync setting"):
        load_settings(cycle_length=30)
    with pytest.raises(SettingsError, match="objective must order exactly"):
        load_settings(objective=("preference",))
    with pytest.raises(SettingsError, match="cycle_days 31"):
        load_settings(cycle_days=31)


def test_prescription_expiry_needs_a_renewal_and_a_late_one_is_flagged() -> None:
    # due Jul 20 (short fill to Jul 31), valid until Jul 25: the anchor fill on Jul 31 is past the expiry
    plan = _plan(
        request("amlo", "amlodipine 5 mg tablet", validity_end=date(2026, 7, 25)),
        [dispense("d1", "amlo", date(2026, 6, 20))],
        anchor=date(2026, 7, 31),
    )
    (renewal,) = plan.renewals
    assert renewal.needed_by == date(2026, 7, 31).toordinal() and not renewal.late
    fills = [f for f in plan.fills if f.request_id == "amlo"]
    assert [f.needs_renewal for f in fills] == [False, True]
    # due Jun 30, five days from today, with no fills left: the request cannot be answered in time
    late = _plan(
        request("amlo", "amlodipine 5 mg tablet", refills=0),
        [dispense("d1", "amlo", date(2026, 5, 31))],
        anchor=date(2026, 7, 10),
    )
    (renewal,) = late.renewals
    assert renewal.late and renewal.due == TODAY.toordinal()
    assert renewal.needed_by == date(2026, 6, 30).toordinal()
