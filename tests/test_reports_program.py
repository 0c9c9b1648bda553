"""Program measures on a hand-built pharmacy with known enrollment dates (today 2026-11-26, period 2026).

A: enrolled 2026-03-01, anchor 03-10, both drugs picked up on the anchor, still active.
B: enrolled 2026-04-01, anchor 04-15, drugs picked up 04-15 and 04-18, plan revoked 2026-07-01, a chronic
   drug left out (sync-limit-reached). C: enrolled 2026-09-01, anchor 11-20 (first cycle not over).
D: only a draft plan (a preview): not enrolled.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from interop.fhir.systems import CodeSystem, extension_url
from interop.reports import load_class_table
from interop.reports.program import add_months, program_csv, program_measures, program_report
from tests.fhirschema import assert_valid

TODAY = date(2026, 11, 26)
START, END = date(2026, 1, 1), date(2026, 12, 31)
ATORVASTATIN = "00093505801"
LISINOPRIL = "68180051301"
SCC = extension_url("submission-clarification-code")
OUR = "https://medsync-interop.org/fhir"


def careplan(cid: str, patient: str, created: str, anchor: str, status: str = "active", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "CarePlan", "id": cid, "status": status, "intent": "plan",
        "extension": [{"url": extension_url("sync-cycle"),
                       "valueDuration": {"value": 30, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}}],
        "subject": {"reference": f"Patient/{patient}"}, "created": created, "period": {"start": anchor, **extra.pop("period", {})},
        **extra,
    }


def task(tid: str, cp: str, rx: str, patient: str, day: str, status: str = "requested") -> dict[str, Any]:
    return {
        "resourceType": "Task", "id": tid, "status": status, "intent": "plan",
        "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
        "basedOn": [{"reference": f"CarePlan/{cp}"}], "focus": {"reference": f"MedicationRequest/{rx}"},
        "for": {"reference": f"Patient/{patient}"}, "executionPeriod": {"start": day},
    }


def appointment(aid: str, patient: str, day: str, tasks: list[str], status: str = "booked") -> dict[str, Any]:
    return {
        "resourceType": "Appointment", "id": aid, "status": status,
        "requestedPeriod": [{"start": day, "end": day}],
        "supportingInformation": [{"reference": f"Task/{t}"} for t in tasks],
        "participant": [{"actor": {"reference": f"Patient/{patient}"}, "status": "accepted"}],
    }


def dispense(did: str, patient: str, rx: str, day: date, days: int = 30, ndc: str | None = None,
             scc: str | None = None) -> dict[str, Any]:
    med: dict[str, Any] = {"text": rx}
    if ndc:
        med["coding"] = [{"system": str(CodeSystem.NDC), "code": ndc}]
    res: dict[str, Any] = {
        "resourceType": "MedicationDispense", "id": did, "status": "completed",
        "subject": {"reference": f"Patient/{patient}"}, "medicationCodeableConcept": med,
        "authorizingPrescription": [{"reference": f"MedicationRequest/{rx}"}],
        "daysSupply": {"value": days}, "whenHandedOver": day.isoformat(),
    }
    if scc:
        res["extension"] = [{"url": SCC, "valueCoding": {"code": scc}}]
    return res


def every(first: date, step: int, count: int) -> list[date]:
    return [first + timedelta(days=step * i) for i in range(count)]


def pharmacy() -> dict[str, list[dict[str, Any]]]:
    left_out = {"detail": {"kind": "MedicationRequest", "status": "cancelled", "doNotPerform": True,
                           "statusReason": {"coding": [{"system": f"{OUR}/CodeSystem/sync-exclusion-reason",
                                                        "code": "sync-limit-reached"}]}}}
    careplans = [
        careplan("cp-a", "a", "2026-03-01", "2026-03-10"),
        careplan("cp-b", "b", "2026-04-01", "2026-04-15", status="revoked", period={"end": "2026-07-01"},
                 activity=[left_out]),
        careplan("cp-c", "c", "2026-09-01", "2026-11-20"),
        careplan("cp-d", "d", "2026-10-01", "2026-10-20", status="draft"),
    ]
    tasks = [
        task("t-a1", "cp-a", "a1", "a", "2026-03-10", "completed"), task("t-a2", "cp-a", "a2", "a", "2026-03-10"),
        task("t-b1", "cp-b", "b1", "b", "2026-04-15"), task("t-b2", "cp-b", "b2", "b", "2026-04-15"),
        task("t-b1m", "cp-b", "b1", "b", "2026-05-15"), task("t-c1", "cp-c", "c1", "c", "2026-11-20"),
        task("t-c1d", "cp-c", "c1", "c", "2026-12-10"),
    ]
    appointments = [
        appointment("ap-a", "a", "2026-03-10", ["t-a1", "t-a2"]),   # both handed over 03-10: on time
        appointment("ap-b", "b", "2026-04-15", ["t-b1", "t-b2"]),   # b2 on 04-18, within 3 days: on time
        appointment("ap-bm", "b", "2026-05-15", ["t-b1m"]),         # never picked up: late
        appointment("ap-c", "c", "2026-11-20", ["t-c1"]),           # picked up 11-25, 5 days late
        appointment("ap-cd", "c", "2026-12-10", ["t-c1d"]),         # after today: not yet due
        appointment("ap-x", "c", "2026-06-10", ["t-c1"], status="cancelled"),
    ]
    dispenses = [
        # A before enrollment: atorvastatin every 60 days (30-day supplies), a lisinopril short fill (47)
        *(dispense(f"a1-{d}", "a", "a1", d, ndc=ATORVASTATIN) for d in every(date(2025, 3, 5), 60, 6)),
        dispense("a2-short", "a", "a2", date(2026, 2, 25), days=7, ndc=LISINOPRIL, scc="47"),
        # A after: atorvastatin every 30 days from the anchor (9 fills), lisinopril 90 days x3
        *(dispense(f"a1-{d}", "a", "a1", d, ndc=ATORVASTATIN) for d in every(date(2026, 3, 10), 30, 9)),
        *(dispense(f"a2-{d}", "a", "a2", d, days=90, ndc=LISINOPRIL) for d in every(date(2026, 3, 10), 90, 3)),
        # B (untracked drugs): 3 fills before (one a 61 sync fill in 2025, outside the period), 2 after
        dispense("b1-0", "b", "b1", date(2025, 12, 20), scc="61"),
        dispense("b1-1", "b", "b1", date(2026, 1, 10)), dispense("b1-2", "b", "b1", date(2026, 2, 12)),
        dispense("b1-3", "b", "b1", date(2026, 4, 15)), dispense("b2-1", "b", "b2", date(2026, 4, 18)),
        # C: 1 before, 2 after (one a 47 short fill)
        dispense("c1-0", "c", "c1", date(2026, 8, 1)),
        dispense("c1-1", "c", "c1", date(2026, 9, 5), scc="47"), dispense("c1-2", "c", "c1", date(2026, 11, 25)),
        {**dispense("c1-void", "c", "c1", date(2026, 11, 1)), "status": "entered-in-error"},
    ]
    claims = [
        {"resourceType": "Claim", "id": "cl-1", "status": "cancelled", "created": "2026-05-02"},
        {"resourceType": "Claim", "id": "cl-2", "status": "active", "created": "2026-05-03"},
        {"resourceType": "Claim", "id": "cl-3", "status": "cancelled", "created": "2025-12-30"},
    ]
    return {"CarePlan": careplans, "Task": tasks, "Appointment": appointments, "MedicationDispense": dispenses,
            "Claim": claims}


def measures() -> Any:
    p = pharmacy()
    return program_measures(p["CarePlan"], p["Task"], p["Appointment"], p["MedicationDispense"], p["Claim"],
                            load_class_table(), START, END, TODAY)


def test_enrollment_sync_continuation_completeness() -> None:
    m = measures()
    assert m.enrolled == 3 and m.patients == ["Patient/a", "Patient/b", "Patient/c"]
    rates = {r.code: (r.numerator, r.denominator) for r in m.rates}
    assert rates["initial-sync"] == (1, 2)          # A together on the anchor; B 3 days apart; C not due
    assert rates["continuation-6m"] == (1, 2)       # A (fill 06-08 before 09-01); B left on 07-01 < 10-01
    assert rates["continuation-12m"] == (0, 0)      # nobody enrolled 12 months before today
    assert rates["completeness"] == (2, 3)          # B's plan left out a chronic drug
    assert rates["on-time-pickup"] == (2, 4)


def test_short_fills_reversals_and_fill_rates() -> None:
    m = measures()
    assert m.short_fills == {"2026-02": 1, "2026-09": 1}
    assert m.reversals == 1
    before_fills, before_years = m.fills_per_year["before"]
    after_fills, after_years = m.fills_per_year["after"]
    assert before_fills == 7 + 3 + 1 and before_years == pytest.approx(3.0)
    # after: A 2026-03-01..11-26 = 271 days, B 04-01.. = 240, C 09-01.. = 87
    assert after_fills == 12 + 2 + 2 and after_years == pytest.approx((271 + 240 + 87) / 365)


def test_pdc_before_and_after_enrollment() -> None:
    m = measures()
    # before: A's statin from 2025-03-05 to 2026-02-28 = 361 days, 6 x 30 covered; lisinopril single fill
    assert m.pdc["before"] == (1, 0, pytest.approx(180 / 361))
    # after: statin and RAS antagonist both covered every day from 03-10 to 11-26
    assert m.pdc["after"] == (2, 2, pytest.approx(1.0))


def test_report_validates_and_csv() -> None:
    m = measures()
    report = program_report(m)
    assert_valid(report)
    assert report["id"] == program_report(measures())["id"]
    groups = {g["code"]["coding"][0]["code"]: g for g in report["group"] if "coding" in g["code"]}
    assert groups["initial-sync"]["measureScore"]["value"] == 0.5
    assert "measureScore" not in groups["continuation-12m"]
    text = program_csv(m)
    assert text.splitlines()[0] == "indicator,stratum,numerator,denominator,value"
    assert "completeness,,2,3,0.6667" in text


def test_add_months_clamps() -> None:
    assert add_months(date(2026, 8, 31), 6) == date(2027, 2, 28)
    assert add_months(date(2026, 1, 15), 12) == date(2027, 1, 15)


def test_unusable_resources_are_named() -> None:
    p = pharmacy()
    undated = careplan("cp-e", "e", "2026-05-01", "2026-05-10")
    del undated["created"]
    lost = dispense("x-1", "a", "a1", date(2026, 5, 1), ndc=ATORVASTATIN)
    del lost["whenHandedOver"]
    m = program_measures([*p["CarePlan"], undated], p["Task"], p["Appointment"], [*p["MedicationDispense"], lost],
                         p["Claim"], load_class_table(), START, END, TODAY)
    assert m.enrolled == 3
    assert "CarePlan/cp-e: created or subject.reference missing" in m.problems
    assert "MedicationDispense/x-1: whenHandedOver and whenPrepared missing" in m.problems
    assert measures().problems == []
