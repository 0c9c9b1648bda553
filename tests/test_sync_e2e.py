"""End to end: a synthetic pharmacy's HL7 v2 feed (``interop synth``) ingested through the observed store,
patients enrolled through the API, then a new prescription (RDE^O11) and a late pickup (RDS^O13) arriving
through the feed re-plan the enrolled patient in the store, each with a Provenance."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from interop.api.app import create_app
from interop.cli import main
from interop.ingest.pipeline import Ingestor
from interop.store import SqlRepository
from interop.sync import load_settings
from interop.sync.events import ObservedRepository, observe
from interop.sync.replanning import replan_listener
from tests.api_support import RecordingClient
from tests.fhirschema import assert_valid
from tests.script_messages import cancel_rx, new_rx
from tests.sync_store import current, open_store, provenances, sync_plans

CUT = date(2025, 6, 1)
"""The feed is delivered up to this day; the patients are enrolled on it."""


class Clock:
    def __init__(self, day: date) -> None:
        self.day = day

    def __call__(self) -> date:
        return self.day


def _messages(folder: Path) -> dict[str, list[bytes]]:
    """Each patient file's messages (one ER7 message per MSH), by file stem."""
    out = {}
    for path in sorted(folder.glob("*.hl7")):
        raw = path.read_bytes()
        out[path.stem] = [m for m in re.split(rb"(?=MSH\|)", raw) if m.strip()]
    return out


def _fields(message: bytes, segment: bytes) -> list[bytes]:
    line = next(s for s in message.split(b"\r") if s.startswith(segment + b"|"))
    return line.split(b"|")


def _when(message: bytes) -> date:
    stamp = _fields(message, b"MSH")[6]
    return date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:8]))


def _kind(message: bytes) -> bytes:
    return _fields(message, b"MSH")[8].split(b"^")[0]


def _replace_field(message: bytes, segment: bytes, index: int, value: bytes) -> bytes:
    lines = message.split(b"\r")
    for i, line in enumerate(lines):
        if line.startswith(segment + b"|"):
            parts = line.split(b"|")
            parts[index] = value
            lines[i] = b"|".join(parts)
            break
    return b"\r".join(lines)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[SqlRepository]:
    repo = open_store(request, sqlite_url)
    try:
        yield repo
    finally:
        repo.close()


def _stamp(day: date) -> bytes:
    return day.strftime("%Y%m%d").encode() + b"100000-0500"


def _drugs(messages: list[bytes]) -> set[bytes]:
    """The NDCs (RXE-2.1) a patient's orders name."""
    return {_fields(m, b"RXE")[2].split(b"^")[0] for m in messages if _kind(m) == b"RDE"}


def _new_prescription(feed: dict[str, list[bytes]], patient_file: str) -> bytes:
    """An RDE^O11 for ``patient_file``'s patient of a drug they do not take, from another patient's order."""
    mine = feed[patient_file]
    pid = next(s for s in mine[1].split(b"\r") if s.startswith(b"PID|"))
    taken = _drugs(mine)
    template = next(
        m for stem, msgs in feed.items() if stem != patient_file for m in msgs
        if _kind(m) == b"RDE" and _fields(m, b"RXE")[2].split(b"^")[0] not in taken
        and b"PRN" not in b"|".join(_fields(m, b"RXE")) and _fields(m, b"RXE")[5] == b"TAB"
    )
    stamp = _fields(template, b"MSH")[6]
    order = _fields(template, b"ORC")[3].split(b"^")[0]
    lines = [pid if s.startswith(b"PID|") else s for s in template.split(b"\r")]
    message = b"\r".join(lines).replace(stamp, _stamp(CUT)).replace(order, b"9999990001")
    return _replace_field(message, b"MSH", 9, b"E2E-NEW-RX")


def _late_pickup(feed: dict[str, list[bytes]], patient_file: str, rx_number: bytes, day: date) -> bytes:
    """An RDS^O13 of prescription ``rx_number`` handed over on ``day``, from that order's last dispense."""
    template = [
        m for m in feed[patient_file]
        if _kind(m) == b"RDS" and _fields(m, b"ORC")[3].split(b"^")[0] == rx_number and _when(m) < CUT
    ][-1]
    message = _replace_field(template, b"RXD", 1, b"77")
    message = _replace_field(message, b"RXD", 3, _stamp(day))
    message = _replace_field(message, b"MSH", 7, _stamp(day))
    return _replace_field(message, b"MSH", 9, b"E2E-LATE-PICKUP")


def _rx_number(request: dict[str, Any]) -> bytes:
    return str(next(i["value"] for i in request["identifier"] if "/sid/rx-number/" in i["system"])).encode()


def test_feed_enroll_then_new_prescription_and_late_pickup_replan(tmp_path: Path, store: SqlRepository) -> None:
    result = CliRunner().invoke(main, ["synth", "--patients", "3", "--out", str(tmp_path / "feed")])
    assert result.exit_code == 0, result.output
    feed = _messages(tmp_path / "feed")
    clock = Clock(CUT)
    repo: ObservedRepository = observe(store, [replan_listener(load_settings(), clock)])
    ingestor = Ingestor(repo)
    for messages in feed.values():
        for message in messages:
            if _when(message) < CUT:
                outcome = ingestor.ingest(message, source="e2e")
                assert outcome.code == "AA", outcome.reason

    patients = {s.id for s in store.iter_all("Patient")}
    assert len(patients) == 3
    params = {"resourceType": "Parameters", "parameter": [{"name": "today", "valueDate": CUT.isoformat()}]}
    with RecordingClient(create_app(repo)) as client:
        for pid in sorted(patients):
            response = client.post(f"/fhir/Patient/{pid}/$sync-enroll", json=params)
            assert response.status_code == 200, response.text
    assert len(sync_plans(store, "active")) == 3 and provenances(store) == []

    first_file = min(feed, key=lambda stem: len(_drugs(feed[stem])))
    mrn = _fields(feed[first_file][0], b"PID")[3].split(b"^")[0].decode()
    (patient,) = [p for p in current(store, "Patient") if p["identifier"][0]["value"] == mrn]
    ref = f"Patient/{patient['id']}"
    (before,) = [p for p in sync_plans(store, "active") if p["subject"]["reference"] == ref]

    outcome = ingestor.ingest(_new_prescription(feed, first_file), source="e2e")
    assert outcome.code == "AA", outcome.reason
    (prov,) = provenances(store)
    assert [c["code"] for r in prov["reason"] for c in r["coding"]] == ["new-prescription"]
    new_request = prov["entity"][0]["what"]["reference"].split("/_history/")[0]
    (after,) = [p for p in sync_plans(store, "active") if p["subject"]["reference"] == ref]
    assert prov["target"] == [{"reference": f"CarePlan/{after['id']}"}]
    activity = [a["detail"]["extension"][0]["valueReference"]["reference"] for a in after["activity"] if "detail" in a]
    planned = {t["focus"]["reference"] for t in current(store, "Task") if t["status"] in ("requested", "draft")
               and t["basedOn"][0]["reference"] == f"CarePlan/{after['id']}"}
    assert new_request in planned | set(activity)
    assert store.read("CarePlan", before["id"]).version_id >= 2

    fills = sorted(
        (t for t in current(store, "Task")
         if t["basedOn"][0]["reference"] == f"CarePlan/{after['id']}" and t["status"] == "requested"
         and t["code"]["coding"][0]["code"] == "fulfill"),
        key=lambda t: t["executionPeriod"]["start"],
    )
    requests = {f"MedicationRequest/{r['id']}": r for r in current(store, "MedicationRequest")}
    target = next(t for t in fills if t["focus"]["reference"] != new_request)
    planned_day = date.fromisoformat(target["executionPeriod"]["start"])
    late_day = planned_day + timedelta(days=5)
    clock.day = late_day
    late = _late_pickup(feed, first_file, _rx_number(requests[target["focus"]["reference"]]), late_day)
    outcome = ingestor.ingest(late, source="e2e")
    assert outcome.code == "AA", outcome.reason
    latest = max(provenances(store), key=lambda p: p["recorded"])
    assert "dispense-differs" in [c["code"] for r in latest["reason"] for c in r["coding"]]
    assert any("5 days late" in r["text"] for r in latest["reason"])
    (now,) = [p for p in sync_plans(store, "active") if p["subject"]["reference"] == ref]
    assert now["created"] == late_day.isoformat()
    for resource in [now, *provenances(store), *current(store, "Appointment")[:5], *current(store, "Task")[:20]]:
        assert_valid(resource)
    others = [p for p in sync_plans(store, "active") if p["subject"]["reference"] != ref]
    assert len(others) == 2 and all(p["created"] == CUT.isoformat() for p in others)


def test_script_cancelrx_replans_the_enrolled_patient(store: SqlRepository) -> None:
    """NCPDP SCRIPT: a NewRx (its Medication stored apart) is planned; the CancelRx re-plans without it."""
    repo = observe(store, [replan_listener(load_settings(), lambda: date(2026, 10, 5))])
    ingestor = Ingestor(repo)
    assert ingestor.ingest(new_rx(), source="e2e").code == "AA"
    (patient,) = [s.id for s in store.iter_all("Patient")]
    (rx,) = [s.id for s in store.iter_all("MedicationRequest")]
    params = {"resourceType": "Parameters", "parameter": [{"name": "today", "valueDate": "2026-10-05"}]}
    with RecordingClient(create_app(repo)) as client:
        assert client.post(f"/fhir/Patient/{patient}/$sync-enroll", json=params).status_code == 200
    fills = [t for t in current(store, "Task") if t["focus"]["reference"] == f"MedicationRequest/{rx}"]
    assert fills and {t["status"] for t in fills} == {"requested"}
    outcome = ingestor.ingest(cancel_rx(), source="e2e")
    assert outcome.code == "AA", outcome.reason
    (prov,) = provenances(store)
    assert prov["reason"][0]["coding"][0]["code"] == "prescription-stopped"
    assert prov["entity"] == [{"role": "source", "what": {"reference": f"MedicationRequest/{rx}/_history/2"}}]
    assert {store.read("Task", t["id"]).resource()["status"] for t in fills} == {"cancelled"}
    (careplan,) = sync_plans(store, "active")
    (detail,) = [a["detail"] for a in careplan["activity"] if "detail" in a]
    assert detail["statusReason"]["coding"][0]["code"] == "not-active"
    assert detail["productCodeableConcept"]["text"] == "Lisinopril 10 MG Oral Tablet"
    assert_valid(careplan)
    assert_valid(prov)
