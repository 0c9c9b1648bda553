"""The sync plan as FHIR: every resource valid R4, references resolvable, ids stable, codes defined in conformance/."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from interop.fhir.systems import extension_url
from interop.sync.eligibility import Reason
from interop.sync.fhir_out import CYCLE_EXTENSION, EXCLUSION_CODES, SCC_CODES, TASK_CODES, plan_bundle
from interop.sync.plan import SyncPlan, plan_patient
from interop.sync.settings import load_settings
from tests.fhirschema import assert_valid
from tests.sync_builders import PATIENT, coverage, dispense, request, worked_example

TODAY = date(2026, 6, 25)
CONFORMANCE = Path(__file__).resolve().parent.parent / "conformance"
EYE_DROPS = {
    "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "drop", "code": "[drp]"}}],
    "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
    "site": {"text": "both eyes"},
}


def _inputs() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    requests, dispenses = worked_example()
    requests += [
        request("ibu", "ibuprofen 400 mg tablet", prn=True),
        request("amlo", "amlodipine 5 mg tablet", refills=1),
        request("drops", "latanoprost ophthalmic solution", quantity=5, days=25, unit="mL", dosage=EYE_DROPS),
    ]
    dispenses += [
        dispense("d-amlo", "amlodipine", date(2026, 6, 1)) | {"authorizingPrescription": [{"reference": "MedicationRequest/amlo"}]},
        dispense("d-drops", "drops", date(2026, 6, 10), quantity=5, days=25, unit="mL"),
    ]
    return requests, dispenses


def _plan(anchor: date | None = None) -> SyncPlan:
    requests, dispenses = _inputs()
    return plan_patient(requests, dispenses, coverage("SYNTH-PBM-80", copay=12.5), load_settings(), TODAY, anchor=anchor)


@pytest.fixture(scope="module")
def plan() -> SyncPlan:
    return _plan()


def test_plan_exercises_every_resource_kind(plan: SyncPlan) -> None:
    assert plan.renewals, "amlodipine has one refill left: a renewal is needed"
    assert {e.reason for e in plan.exclusions} >= {Reason.PRN, Reason.CO_SCHEDULED}
    assert any(f.claim_code == "61" for f in plan.fills)  # SYNTH-PBM-80 sends 61 on short fills
    assert any(f.claim_code == "48" for f in plan.fills)


@pytest.mark.parametrize("base", [None, "https://pharmacy.test/fhir"])
def test_every_resource_is_valid_r4(plan: SyncPlan, base: str | None) -> None:
    bundle = plan_bundle(plan, base=base)
    assert_valid(bundle)
    for entry in bundle["entry"]:
        assert_valid(entry["resource"])


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        out = [node["reference"]] if isinstance(node.get("reference"), str) else []
        for value in node.values():
            out += _references(value)
        return out
    if isinstance(node, list):
        return [r for item in node for r in _references(item)]
    return []


@pytest.mark.parametrize("base", [None, "https://pharmacy.test/fhir"])
def test_references_resolve_in_the_bundle_or_to_the_inputs(plan: SyncPlan, base: str | None) -> None:
    bundle = plan_bundle(plan, base=base)
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    inputs = {f"MedicationRequest/{rid}" for rid in plan.regimens} | {PATIENT}
    for ref in _references(bundle):
        resolved = ref if ref.startswith("urn:uuid:") or base is None else f"{base}/{ref}"
        assert ref in inputs or resolved in full_urls, ref


def test_shape_of_careplan_tasks_and_appointments(plan: SyncPlan) -> None:
    bundle = plan_bundle(plan)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for entry in bundle["entry"]:
        by_type.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    (careplan,) = by_type["CarePlan"]
    assert (careplan["status"], careplan["intent"]) == ("draft", "plan")
    assert careplan["period"]["start"] == plan.anchor.isoformat() if plan.anchor else False
    assert careplan["extension"] == [
        {"url": extension_url("sync-cycle"), "valueDuration": {"value": 30, "unit": "days",
                                                               "system": "http://unitsofmeasure.org", "code": "d"}}
    ]
    refs = [a["reference"]["reference"] for a in careplan["activity"] if "reference" in a]
    assert len(refs) == len(by_type["Task"]) + len(by_type["Appointment"])
    details = [a["detail"] for a in careplan["activity"] if "detail" in a]
    assert {d["statusReason"]["coding"][0]["code"] for d in details} == {e.reason.value for e in plan.exclusions}
    fill_tasks = [t for t in by_type["Task"] if t["code"]["coding"][0]["code"] == "fulfill"]
    assert len(fill_tasks) == len(plan.fills)
    short = next(t for t in fill_tasks if any(i.get("valueString") == "short" for i in t["input"]))
    inputs = {i["type"]["coding"][0]["code"]: i for i in short["input"]}
    assert inputs["quantity"]["valueQuantity"]["value"] > 0
    assert inputs["days-supply"]["valueDuration"]["code"] == "d"
    assert inputs["claim-code"]["valueCoding"] == {"system": SCC_CODES, "code": "61", "display": "Synchronization fill"}
    assert short["for"] == {"reference": PATIENT} and short["focus"]["reference"].startswith("MedicationRequest/")
    assert all(a["status"] == "proposed" and a["participant"][0]["status"] == "needs-action"
               for a in by_type["Appointment"])
    assert len(by_type["Appointment"]) == len(plan.pickups)
    renewal = next(t for t in by_type["Task"] if t["code"]["coding"][0]["code"] == "renewal-request")
    assert renewal["executionPeriod"]["start"] == date.fromordinal(plan.renewals[0].due).isoformat()


def test_ids_are_stable_across_runs_and_input_order() -> None:
    first = plan_bundle(_plan())
    requests, dispenses = _inputs()
    again = plan_patient(list(reversed(requests)), list(reversed(dispenses)), coverage("SYNTH-PBM-80", copay=12.5),
                         load_settings(), TODAY)
    second = plan_bundle(again)
    assert [e["fullUrl"] for e in first["entry"]] == [e["fullUrl"] for e in second["entry"]]
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    # a record delivered twice (same id) plans once
    twice = plan_patient(requests + requests[:2], dispenses + dispenses[:2], coverage("SYNTH-PBM-80", copay=12.5),
                         load_settings(), TODAY)
    assert json.dumps(plan_bundle(twice), sort_keys=True) == json.dumps(first, sort_keys=True)
    other_anchor = plan_bundle(_plan(date(2026, 7, 10)))
    assert first["entry"][0]["resource"]["id"] != other_anchor["entry"][0]["resource"]["id"]


def _conformance(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CONFORMANCE / name).read_text())
    return data


def test_conformance_resources_are_valid_and_define_what_is_emitted(plan: SyncPlan) -> None:
    cycle = _conformance("StructureDefinition-sync-cycle.json")
    assert cycle["url"] == CYCLE_EXTENSION == extension_url("sync-cycle")
    for name in ("StructureDefinition-sync-cycle.json", "StructureDefinition-sync-prescription.json",
                 "CodeSystem-sync-task.json", "CodeSystem-sync-exclusion-reason.json",
                 "CodeSystem-ncpdp-submission-clarification-code.json", "OperationDefinition-sync-plan.json"):
        assert_valid(_conformance(name))
    task_codes = {c["code"] for c in _conformance("CodeSystem-sync-task.json")["concept"]}
    reasons = {c["code"] for c in _conformance("CodeSystem-sync-exclusion-reason.json")["concept"]}
    scc = {c["code"] for c in _conformance("CodeSystem-ncpdp-submission-clarification-code.json")["concept"]}
    assert reasons == {r.value for r in Reason}
    bundle = plan_bundle(plan)
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res["resourceType"] == "Task":
            for inp in res["input"]:
                coding = inp["type"]["coding"][0]
                assert coding["system"] == TASK_CODES and coding["code"] in task_codes
                if "valueCoding" in inp:
                    assert inp["valueCoding"]["code"] in scc
        if res["resourceType"] == "CarePlan":
            for act in res["activity"]:
                if "detail" in act:
                    assert act["detail"]["statusReason"]["coding"][0]["system"] == EXCLUSION_CODES
