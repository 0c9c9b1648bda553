"""The sync service over a real store (SQLite and PostgreSQL): loading inputs, enrolling with replacement and
history, candidates, ``replan_all``, the ``observe`` wrapper and re-planning on each kind of event."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from interop.cli import main
from interop.store import SqlRepository, open_repository
from interop.store.base import Repository
from interop.sync import load_settings, plan_patient
from interop.sync.candidates import covered_share
from interop.sync.enrollment import (
    REPLAN_REASONS,
    active_plans,
    enroll,
    enrolled_patients,
    find_candidates,
    load_inputs,
    preview,
    replan_all,
)
from interop.sync.events import ObservedRepository, Written, observe
from interop.sync.replanning import replan_listener
from tests.fhirschema import assert_valid
from tests.sync_builders import dispense, request
from tests.sync_store import TODAY, current, open_store, provenances, seed, sync_plans, worked_patient

SETTINGS = load_settings()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[SqlRepository]:
    repo = open_store(request, sqlite_url)
    try:
        yield repo
    finally:
        repo.close()


@pytest.fixture
def observed(store: SqlRepository) -> ObservedRepository:
    return observe(store, [replan_listener(SETTINGS, lambda: TODAY)])


def _reasons(repo: Repository) -> list[str]:
    return sorted(c["code"] for p in provenances(repo) for r in p["reason"] for c in r["coding"])


def _tasks_of(repo: Repository, request_id: str, status: str) -> list[dict[str, Any]]:
    return [
        t for t in current(repo, "Task")
        if t["focus"]["reference"] == f"MedicationRequest/{request_id}" and t["status"] == status
    ]


# ------------------------------------------------------------------------------------------ loading
def test_load_inputs_reads_the_patients_resources_and_leaves_out_completed_orders(store: SqlRepository) -> None:
    done = request("pat-1-old", "amoxicillin 500 mg capsule", status="completed", patient="Patient/pat-1")
    seed(store, worked_patient("pat-1", extra=[done]) + worked_patient("pat-2"))
    with store.session() as session:
        inputs = load_inputs(session, "pat-1")
    assert sorted(r["id"] for r in inputs.requests) == ["pat-1-ator", "pat-1-lis", "pat-1-met"]
    assert sorted(d["id"] for d in inputs.dispenses) == ["pat-1-d-ator", "pat-1-d-lis", "pat-1-d-met"]
    assert inputs.coverage is not None and inputs.coverage["id"] == "pat-1-cov"
    assert inputs.state == "NY"


def test_preview_is_the_pure_plan_of_the_stored_inputs(store: SqlRepository) -> None:
    resources = worked_patient("pat-1")
    seed(store, resources)
    plan = preview(store, "pat-1", SETTINGS, TODAY)
    requests = [r for r in resources if r["resourceType"] == "MedicationRequest"]
    dispenses = [r for r in resources if r["resourceType"] == "MedicationDispense"]
    pure = plan_patient(requests, dispenses, resources[-1], SETTINGS, TODAY, state="NY")
    assert plan.anchor == pure.anchor and plan.fills == pure.fills
    assert store.search("CarePlan", []).matches == []


def test_preference_extension_steers_the_anchor(store: SqlRepository) -> None:
    resources = worked_patient("pat-1")
    resources[0]["extension"] = [{
        "url": "https://medsync-interop.org/fhir/StructureDefinition/sync-pickup-preference",
        "extension": [{"url": "weekday", "valueCode": "sat"}],
    }]
    assert_valid(resources[0])
    seed(store, resources)
    with store.session() as session:
        inputs = load_inputs(session, "pat-1")
    assert inputs.preference is not None and inputs.preference.weekday == 5


# ---------------------------------------------------------------------------------------- enrollment
def test_enroll_stores_the_plan_active_and_booked(store: SqlRepository) -> None:
    seed(store, worked_patient("pat-1"))
    done = enroll(store, "pat-1", SETTINGS, TODAY, anchor=date(2026, 7, 20))
    (careplan,) = sync_plans(store)
    assert careplan["id"] == done.careplan_id and careplan["status"] == "active"
    assert careplan["period"]["start"] == "2026-07-20"
    tasks, appointments = current(store, "Task"), current(store, "Appointment")
    assert len(tasks) == len(done.plan.fills) + len(done.plan.renewals)
    assert {t["status"] for t in tasks} <= {"requested", "draft"}
    assert len(appointments) == len(done.plan.pickups) and {a["status"] for a in appointments} == {"booked"}
    first = min(appointments, key=lambda a: a["start"])
    assert first["start"].startswith("2026-07-01T00:00:00") and first["end"].startswith("2026-07-02T00:00:00")
    for resource in [careplan, *tasks, *appointments]:
        assert_valid(resource)
    assert done.provenance_id is None and provenances(store) == []


def test_enroll_again_with_another_anchor_replaces_the_plan_keeping_history(store: SqlRepository) -> None:
    seed(store, worked_patient("pat-1"))
    first = enroll(store, "pat-1", SETTINGS, TODAY, anchor=date(2026, 7, 20))
    second = enroll(store, "pat-1", SETTINGS, TODAY, anchor=date(2026, 7, 10))
    assert second.careplan_id != first.careplan_id and second.replaced == (first.careplan_id,)
    old = store.read("CarePlan", first.careplan_id)
    assert old.resource()["status"] == "revoked" and old.version_id == 2
    assert store.vread("CarePlan", first.careplan_id, 1).resource()["status"] == "active"
    new = store.read("CarePlan", second.careplan_id).resource()
    assert new["status"] == "active" and new["replaces"] == [{"reference": f"CarePlan/{first.careplan_id}"}]
    with store.session() as session:
        assert [s.id for s in active_plans(session, "Patient/pat-1")] == [second.careplan_id]
    old_refs = {a["reference"]["reference"] for a in old.resource()["activity"] if "reference" in a}
    new_refs = {a["reference"]["reference"] for a in new["activity"] if "reference" in a}
    for ref in old_refs - new_refs:
        rtype, rid = ref.split("/")
        retired = store.read(rtype, rid).resource()
        assert retired["status"] == "cancelled"
        assert_valid(retired)
    for ref in new_refs:
        rtype, rid = ref.split("/")
        assert store.read(rtype, rid).resource()["status"] in ("requested", "draft", "booked")


def test_enroll_again_with_the_same_anchor_writes_only_what_changed(store: SqlRepository) -> None:
    seed(store, worked_patient("pat-1"))
    first = enroll(store, "pat-1", SETTINGS, TODAY, anchor=date(2026, 7, 20))
    again = enroll(store, "pat-1", SETTINGS, date(2026, 6, 26), anchor=date(2026, 7, 20))
    assert again.careplan_id == first.careplan_id and again.replaced == ()
    # only the CarePlan (its narrative counts days from today) is written again; Tasks and Appointments keep
    # their version and the day they were first planned
    assert [e["response"]["location"].split("/")[0] for e in again.response["entry"]] == ["CarePlan"]
    assert {s.version_id for t in ("Task", "Appointment") for s in store.iter_all(t)} == {1}
    assert {t["authoredOn"] for t in current(store, "Task")} == {TODAY.isoformat()}
    seed(store, [dispense("pat-1-d-lis-2", "pat-1-lis", date(2026, 6, 26), patient="Patient/pat-1")])
    third = enroll(store, "pat-1", SETTINGS, date(2026, 6, 26), anchor=date(2026, 7, 20))
    assert third.careplan_id == first.careplan_id
    assert store.read("CarePlan", first.careplan_id).version_id == 3
    assert len(sync_plans(store, "active")) == 1 and sync_plans(store, "revoked") == []
    assert {t["status"] for t in _tasks_of(store, "pat-1-lis", "cancelled")} == {"cancelled"}


def test_a_completed_task_is_never_overwritten(store: SqlRepository) -> None:
    seed(store, worked_patient("pat-1"))
    enroll(store, "pat-1", SETTINGS, TODAY, anchor=date(2026, 7, 20))
    (task,) = [t for t in _tasks_of(store, "pat-1-lis", "requested") if t["executionPeriod"]["start"] == "2026-07-01"]
    task.pop("meta")
    store.update({**task, "status": "completed"})
    enroll(store, "pat-1", SETTINGS, TODAY, anchor=date(2026, 7, 20))
    assert store.read("Task", task["id"]).resource()["status"] == "completed"


# ---------------------------------------------------------------------------------------- candidates
def test_covered_share_shifts_early_refills() -> None:
    assert covered_share([(10, 30), (20, 30)], 0, 100) == pytest.approx(0.6)
    assert covered_share([(0, 10)], 0, 100) == pytest.approx(0.1)
    assert covered_share([(500, 10)], 0, 100) is None


def test_candidates_rank_scattered_patients_first_and_skip_the_enrolled(store: SqlRepository) -> None:
    seed(store, worked_patient("pat-a", june=(1, 2, 3)) + worked_patient("pat-b") + worked_patient("pat-c"))
    enroll(store, "pat-c", SETTINGS, TODAY)
    found = find_candidates(store, SETTINGS, TODAY)
    assert [c.patient for c in found] == ["Patient/pat-b", "Patient/pat-a"]
    best = found[0]
    assert best.maintenance == 3 and best.trips == 3 and best.spread_days > found[1].spread_days
    assert best.score > found[1].score and any("maintenance drugs" in r for r in best.reasons)


# ------------------------------------------------------------------------------------------ plan --all
def test_replan_all_replans_every_enrolled_patient_with_provenance(store: SqlRepository) -> None:
    seed(store, worked_patient("pat-a") + worked_patient("pat-b") + worked_patient("pat-c"))
    for pid in ("pat-a", "pat-b"):
        enroll(store, pid, SETTINGS, TODAY)
    summary = replan_all(store, SETTINGS, date(2026, 7, 5), chunk=1)
    assert (summary.enrolled, summary.replanned, summary.failed) == (2, 2, [])
    assert 0 < summary.plan_seconds < summary.total_seconds
    assert _reasons(store) == ["scheduled-replan", "scheduled-replan"]
    assert {p["subject"]["reference"] for p in sync_plans(store, "active")} == {"Patient/pat-a", "Patient/pat-b"}


def test_replan_all_falls_back_per_patient_when_a_plan_changed_meanwhile(store: SqlRepository) -> None:
    seed(store, worked_patient("pat-a") + worked_patient("pat-b"))
    first = {pid: enroll(store, pid, SETTINGS, TODAY, anchor=date(2026, 7, 20)) for pid in ("pat-a", "pat-b")}
    stale = enrolled_patients(store)
    touched = store.read("CarePlan", first["pat-a"].careplan_id).resource()
    touched.pop("meta")
    store.update({**touched, "note": [{"text": "called the patient"}]})
    summary = replan_all(store, SETTINGS, date(2026, 7, 25), enrolled=stale)
    assert (summary.replanned, summary.failed) == (2, [])
    revoked = {p["id"] for p in sync_plans(store, "revoked")}
    assert revoked == {first["pat-a"].careplan_id, first["pat-b"].careplan_id}
    assert {p["period"]["start"] for p in sync_plans(store, "active")} == {"2026-08-19"}
    assert store.read("CarePlan", first["pat-a"].careplan_id).resource()["note"][0]["text"] == "called the patient"


# ---------------------------------------------------------------------------------------------- events
class _Recorder:
    types = frozenset({"MedicationRequest", "Patient"})

    def __init__(self) -> None:
        self.calls: list[list[Written]] = []

    def __call__(self, repo: Repository, written: Any) -> None:
        self.calls.append(list(written))
        repo.update({"resourceType": "Patient", "id": "written-by-listener"})


def test_observe_reports_committed_writes_once_and_not_the_listeners_own(store: SqlRepository) -> None:
    recorder = _Recorder()
    repo = observe(store, [recorder])
    repo.create({"resourceType": "Organization", "name": "not watched"})
    repo.update({"resourceType": "Patient", "id": "p1"})
    seed(repo, [request("rx-1", "lisinopril", patient="Patient/p1")])
    with repo.session() as session:
        session.update({"resourceType": "Patient", "id": "p2"})
    with pytest.raises(RuntimeError), repo.session() as session:
        session.update({"resourceType": "Patient", "id": "p3"})
        raise RuntimeError("rolled back")
    refs = [[(w.reference, w.created) for w in call] for call in recorder.calls]
    assert refs == [[("Patient/p1", True)], [("MedicationRequest/rx-1", True)], [("Patient/p2", True)]]
    assert recorder.calls[1][0].resource is not None and recorder.calls[1][0].resource["id"] == "rx-1"
    assert store.read("Patient", "written-by-listener").version_id == 3


def test_new_prescription_replans_an_enrolled_patient_only(observed: ObservedRepository) -> None:
    seed(observed, worked_patient("pat-1") + worked_patient("pat-2"))
    done = enroll(observed, "pat-1", SETTINGS, TODAY, anchor=date(2026, 7, 20))
    assert provenances(observed) == []
    observed.update(request("pat-1-amlo", "amlodipine 5 mg tablet", patient="Patient/pat-1"))
    observed.update(request("pat-2-amlo", "amlodipine 5 mg tablet", patient="Patient/pat-2"))
    (prov,) = provenances(observed)
    assert_valid(prov)
    assert prov["reason"][0]["coding"][0] == {
        "system": REPLAN_REASONS, "code": "new-prescription", "display": "New prescription"
    }
    assert prov["entity"] == [{"role": "source", "what": {"reference": "MedicationRequest/pat-1-amlo/_history/1"}}]
    assert prov["target"] == [{"reference": f"CarePlan/{done.careplan_id}"}]
    assert prov["agent"][0]["who"]["display"]
    assert _tasks_of(observed, "pat-1-amlo", "requested")
    assert sync_plans(observed, "active")[0]["subject"]["reference"] == "Patient/pat-1"
    assert len(sync_plans(observed)) == 1


def test_changed_prescription_replans_and_an_unchanged_redelivery_does_not(observed: ObservedRepository) -> None:
    seed(observed, worked_patient("pat-1"))
    enroll(observed, "pat-1", SETTINGS, TODAY, anchor=date(2026, 7, 20))
    same = request("pat-1-lis", "lisinopril 10 mg tablet", rxnorm="314076", patient="Patient/pat-1")
    observed.update(same)
    assert provenances(observed) == []
    assert not [t for t in current(observed, "Task") if t["code"]["coding"][0]["code"] == "renewal-request"]
    no_refills = request("pat-1-lis", "lisinopril 10 mg tablet", rxnorm="314076", refills=0,
                         patient="Patient/pat-1")
    observed.update(no_refills)
    assert _reasons(observed) == ["prescription-changed"]
    (prov,) = provenances(observed)
    assert "dispenseRequest" in prov["reason"][0]["text"]
    renewals = [t for t in current(observed, "Task") if t["code"]["coding"][0]["code"] == "renewal-request"]
    assert [t["focus"]["reference"] for t in renewals] == ["MedicationRequest/pat-1-lis"]


def test_cancelled_prescription_replans_and_cancels_its_fills(observed: ObservedRepository) -> None:
    seed(observed, worked_patient("pat-1"))
    enroll(observed, "pat-1", SETTINGS, TODAY, anchor=date(2026, 7, 20))
    assert _tasks_of(observed, "pat-1-ator", "requested")
    cancelled = request("pat-1-ator", "atorvastatin 20 mg tablet", rxnorm="617310", status="cancelled",
                        patient="Patient/pat-1")
    observed.update(cancelled)
    assert _reasons(observed) == ["prescription-stopped"]
    assert _tasks_of(observed, "pat-1-ator", "requested") == []
    assert _tasks_of(observed, "pat-1-ator", "cancelled")
    (careplan,) = sync_plans(observed, "active")
    excluded = [a["detail"] for a in careplan["activity"] if "detail" in a]
    assert any(d["statusReason"]["coding"][0]["code"] == "not-active" for d in excluded)


def test_late_pickup_replans_and_a_pickup_as_planned_completes_its_task(observed: ObservedRepository) -> None:
    seed(observed, worked_patient("pat-1"))
    enroll(observed, "pat-1", SETTINGS, TODAY, anchor=date(2026, 7, 20))
    observed.update(dispense("pat-1-d-lis-2", "pat-1-lis", date(2026, 7, 1), quantity=19, days=19,
                             patient="Patient/pat-1"))
    assert provenances(observed) == []
    (completed,) = _tasks_of(observed, "pat-1-lis", "completed")
    assert completed["output"][0]["valueReference"] == {"reference": "MedicationDispense/pat-1-d-lis-2"}
    assert_valid(completed)
    observed.update(dispense("pat-1-d-ator-2", "pat-1-ator", date(2026, 7, 14), quantity=10, days=10,
                             patient="Patient/pat-1"))
    (prov,) = provenances(observed)
    assert prov["reason"][0]["coding"][0]["code"] == "dispense-differs"
    assert "4 days late" in prov["reason"][0]["text"]
    assert _tasks_of(observed, "pat-1-lis", "completed")


def test_hospital_stay_replans_and_an_outpatient_visit_does_not(observed: ObservedRepository) -> None:
    seed(observed, worked_patient("pat-1"))
    enroll(observed, "pat-1", SETTINGS, TODAY, anchor=date(2026, 7, 20))
    visit = {"resourceType": "Encounter", "id": "enc-amb", "status": "finished",
             "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
             "subject": {"reference": "Patient/pat-1"}}
    observed.update(visit)
    assert provenances(observed) == []
    stay = {**visit, "id": "enc-imp", "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "period": {"start": "2026-06-26"}}
    observed.update(stay)
    (prov,) = provenances(observed)
    assert prov["reason"][0]["coding"][0]["code"] == "hospitalization"
    assert prov["entity"][0]["what"]["reference"] == "Encounter/enc-imp/_history/1"


def test_one_message_writing_several_triggers_replans_once(observed: ObservedRepository) -> None:
    seed(observed, worked_patient("pat-1"))
    enroll(observed, "pat-1", SETTINGS, TODAY, anchor=date(2026, 7, 20))
    seed(observed, [
        request("pat-1-amlo", "amlodipine 5 mg tablet", patient="Patient/pat-1"),
        request("pat-1-met", "metformin 500 mg tablet", quantity=60, rxnorm="861007", status="stopped",
                patient="Patient/pat-1"),
    ])
    (prov,) = provenances(observed)
    assert sorted(c["code"] for r in prov["reason"] for c in r["coding"]) == [
        "new-prescription", "prescription-stopped"
    ]
    assert len(prov["entity"]) == 2


# ------------------------------------------------------------------------------------------------- CLI
def test_cli_plan_prints_the_table_and_the_bundle(sqlite_url: str) -> None:
    repo = open_repository(sqlite_url)
    seed(repo, worked_patient("pat-1") + worked_patient("pat-2"))
    repo.close()
    runner = CliRunner()
    args = ["plan", "pat-1", "--today", "2026-06-25", "--anchor", "2026-07-20", "--db", sqlite_url]
    table = runner.invoke(main, args)
    assert table.exit_code == 0, table.output
    assert "lisinopril 10 mg tablet" in table.output and "2026-07-01" in table.output and " 47 " in table.output
    assert "Requested by the caller" in table.output
    as_json = runner.invoke(main, [*args, "--json"])
    bundle = orjson.loads(as_json.stdout)
    assert bundle["type"] == "collection"
    assert runner.invoke(main, ["plan", "nobody", "--db", sqlite_url]).exit_code == 1
    assert runner.invoke(main, ["plan", "--db", sqlite_url]).exit_code == 2
    repo = open_repository(sqlite_url)
    enroll(repo, "pat-1", SETTINGS, TODAY)
    repo.close()
    everyone = runner.invoke(main, ["plan", "--all", "--today", "2026-07-05", "--db", sqlite_url])
    assert everyone.exit_code == 0, everyone.output
    assert "1 of 1 enrolled patients re-planned" in everyone.output
