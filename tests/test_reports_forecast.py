"""Demand forecast on hand-built Tasks and dispenses: today 2026-11-26, 7 days (to 12-02), prep lead 3 days."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from interop.fhir.systems import CodeSystem
from interop.reports.forecast import demand_forecast, drug_key, forecast_csv, forecast_report
from tests.fhirschema import assert_valid

TODAY = date(2026, 11, 26)
SYNC_TASK = "https://medsync-interop.org/fhir/CodeSystem/sync-task"
ATORVASTATIN, LISINOPRIL, METFORMIN = "00093505801", "68180051301", "00378018101"


def request(rid: str, ndc: str) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": rid, "status": "active",
            "medicationCodeableConcept": {"coding": [{"system": str(CodeSystem.NDC), "code": ndc}], "text": rid}}


def task(tid: str, rx: str, patient: str, day: str, qty: float, status: str = "requested",
         prep: str | None = None) -> dict[str, Any]:
    inputs: list[dict[str, Any]] = [{"type": {"coding": [{"system": SYNC_TASK, "code": "quantity"}]},
                                     "valueQuantity": {"value": qty, "unit": "TAB"}}]
    if prep:
        inputs.append({"type": {"coding": [{"system": SYNC_TASK, "code": "prep-date"}]}, "valueDate": prep})
    return {"resourceType": "Task", "id": tid, "status": status, "intent": "plan",
            "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
            "focus": {"reference": f"MedicationRequest/{rx}"}, "for": {"reference": f"Patient/{patient}"},
            "executionPeriod": {"start": day}, "input": inputs}


def dispense(rx: str, patient: str, day: str, qty: float, days: int, ndc: str) -> dict[str, Any]:
    return {"resourceType": "MedicationDispense", "id": f"{rx}-{day}", "status": "completed",
            "subject": {"reference": f"Patient/{patient}"},
            "medicationCodeableConcept": {"coding": [{"system": str(CodeSystem.NDC), "code": ndc}], "text": rx},
            "authorizingPrescription": [{"reference": f"MedicationRequest/{rx}"}],
            "quantity": {"value": qty, "unit": "TAB"}, "daysSupply": {"value": days}, "whenHandedOver": day}


def forecast() -> Any:
    requests = [request("a1", ATORVASTATIN), request("a2", LISINOPRIL),
                {**request("g1", METFORMIN), "status": "stopped"}]
    tasks = [
        task("t1", "a1", "a", "2026-11-28", 30, prep="2026-11-25"),   # prep passed: due today
        task("t2", "a2", "a", "2026-11-28", 90),                      # prep = fill - 3 = 11-25: today
        task("t3", "a1", "a", "2026-11-27", 30, status="completed"),  # done: not demand
        task("t4", "a1", "a", "2026-12-05", 30),                      # fill after the window, prep 12-02 in it
    ]
    dispenses = [
        dispense("e1", "e", "2026-10-01", 60, 30, METFORMIN),  # older fill of e1: superseded
        dispense("e1", "e", "2026-10-31", 60, 30, METFORMIN),  # next refill 11-30, prep 11-27
        dispense("a1", "a", "2026-10-29", 30, 30, ATORVASTATIN),  # planned by a Task: not counted again
        dispense("f1", "f", "2026-09-01", 30, 30, METFORMIN),  # refill was due 10-01: overdue, left out
        dispense("g1", "g", "2026-11-01", 30, 30, METFORMIN),  # prescription stopped: no refill expected
    ]
    return demand_forecast(tasks, requests, dispenses, TODAY, 7, 3)


def test_quantities_per_drug_and_day() -> None:
    by_drug = {key: days for (key, _, _), days in forecast().by_drug().items()}
    assert by_drug == {
        f"ndc|{ATORVASTATIN}": {date(2026, 11, 28): (30.0, 1)},
        f"ndc|{LISINOPRIL}": {date(2026, 11, 28): (90.0, 1)},
        f"ndc|{METFORMIN}": {date(2026, 11, 30): (60.0, 1)},
    }


def test_planned_and_expected_are_told_apart() -> None:
    sources = sorted((d.drug, d.day.isoformat(), d.source) for d in forecast().demands)
    assert sources == [
        (f"ndc|{ATORVASTATIN}", "2026-11-28", "planned"),
        (f"ndc|{ATORVASTATIN}", "2026-12-05", "planned"),
        (f"ndc|{METFORMIN}", "2026-10-01", "expected-refill"),  # overdue: kept, outside the window
        (f"ndc|{METFORMIN}", "2026-11-30", "expected-refill"),
        (f"ndc|{LISINOPRIL}", "2026-11-28", "planned"),
    ]


def test_prep_workload() -> None:
    load = forecast().workload()
    assert len(load) == 7
    assert load[date(2026, 11, 26)] == (2, 1)
    assert load[date(2026, 11, 27)] == (1, 1)
    assert load[date(2026, 12, 2)] == (1, 1)
    assert sum(n for n, _ in load.values()) == 4


def test_report_and_csv() -> None:
    report = forecast_report(forecast())
    assert_valid(report)
    codes = [g["code"].get("coding", [{}])[0].get("code") for g in report["group"]]
    assert codes == [ATORVASTATIN, METFORMIN, LISINOPRIL, None]  # sorted by drug key
    assert report["group"][2]["measureScore"]["value"] == 90
    lines = forecast_csv(forecast()).splitlines()
    assert lines[0] == "day,drug,name,quantity,unit,fills,prep_fills"
    assert f"2026-11-28,ndc|{LISINOPRIL},a2,90,TAB,1," in lines
    assert "2026-11-26,*,preparation workload,,,,2" in lines


def test_drug_key_prefers_ndc_then_rxnorm_then_text() -> None:
    rx = {"system": str(CodeSystem.RXNORM), "code": "617310"}
    assert drug_key({"coding": [rx], "text": "atorvastatin"}) == ("rxnorm|617310", "atorvastatin")
    assert drug_key({"text": "compounded cream"}) == ("text|compounded cream", "compounded cream")
    assert drug_key({"coding": [rx, {"system": str(CodeSystem.NDC), "code": "0093-5058-01"}]})[0] == f"ndc|{ATORVASTATIN}"


def test_days_must_be_positive() -> None:
    with pytest.raises(ValueError, match="days must be at least 1"):
        demand_forecast([], [], [], TODAY, 0, 3)


def test_unusable_resources_are_named() -> None:
    broken = task("t9", "a1", "a", "2026-11-28", 30)
    broken["input"] = []
    undated = task("t8", "a1", "a", "2026-11-28", 30)
    del undated["executionPeriod"]
    no_supply = dispense("e2", "e", "2026-11-20", 60, 30, METFORMIN)
    del no_supply["daysSupply"]
    found = demand_forecast([broken, undated], [request("a1", ATORVASTATIN)], [no_supply], TODAY, 7, 3)
    assert found.demands == []
    assert found.problems == [
        "Task/t9: input.where(type = 'quantity').valueQuantity.value missing",
        "Task/t8: executionPeriod.start missing or not a date",
        "MedicationDispense/e2-2026-11-20: daysSupply.value or quantity.value missing",
    ]
    assert forecast().problems == []
