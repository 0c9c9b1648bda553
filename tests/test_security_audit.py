"""The audit trail: an AuditEvent (valid R4) for every read, search, write and operation, a write's event in
the write's own transaction, failures recorded with their outcome; logs free of patient identifiers."""

from __future__ import annotations

import asyncio
import base64
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interop.api.audit import INTERACTION, SUBJECT_SYSTEM
from interop.ingest.mllp import MllpServer, ack_code, send
from interop.ingest.pipeline import Ingestor
from interop.store import open_repository
from tests.fhirschema import assert_valid
from tests.ingest_messages import dispense
from tests.security_support import ALL, audit_events, bearer, clinical_versions, secured, snapshot
from tests.test_security_auth import MRN, World, _patient, _request


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with secured(f"sqlite:///{tmp_path / 'store.db'}") as (client, repo):
        yield World(client, repo)


def _subtype(event: dict[str, Any]) -> str:
    (coding,) = event["subtype"]
    assert coding["system"] == INTERACTION
    return str(coding["code"])


def _new(world: World, before: int) -> list[dict[str, Any]]:
    return audit_events(world.repo)[before:]


def _one(world: World, method: str, url: str, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    before = len(audit_events(world.repo))
    response = world.client.request(method, url, **kwargs)
    (event,) = _new(world, before)
    assert_valid(event)
    return response, event


def test_setup_writes_are_audited_with_who_where_and_what(world: World) -> None:
    events = audit_events(world.repo)
    assert [_subtype(e) for e in events] == ["create"] * 4
    for event in events:
        assert_valid(event)
        assert event["type"]["code"] == "rest" and event["action"] == "C" and event["outcome"] == "0"
        (agent,) = event["agent"]
        assert agent["who"]["identifier"] == {"system": SUBJECT_SYSTEM, "value": "tester"}
        assert agent["network"]["address"] == "testclient"
        assert event["source"]["type"][0]["code"] == "4"
    refs = [e["entity"][0]["what"]["reference"] for e in events]
    assert refs[0] == f"Patient/{world.a}/_history/1"


@pytest.mark.parametrize(
    ("name", "subtype", "action"),
    [
        ("read", "read", "R"),
        ("vread", "vread", "R"),
        ("search", "search-type", "R"),
        ("search POST", "search-type", "R"),
        ("history", "history-instance", "R"),
        ("update", "update", "U"),
        ("delete", "delete", "D"),
        ("transaction", "transaction", "E"),
        ("operation", "operation", "E"),
    ],
)
def test_each_kind_of_request_is_audited(world: World, name: str, subtype: str, action: str) -> None:
    h = bearer(ALL)
    a = world.a
    requests: dict[str, tuple[str, str, dict[str, Any]]] = {
        "read": ("GET", f"/fhir/Patient/{a}", {}),
        "vread": ("GET", f"/fhir/Patient/{a}/_history/1", {}),
        "search": ("GET", "/fhir/MedicationRequest?subject=Patient/" + a, {}),
        "search POST": (
            "POST",
            "/fhir/MedicationRequest/_search",
            {"content": f"subject=Patient/{a}".encode(), "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        ),
        "history": ("GET", f"/fhir/Patient/{a}/_history", {}),
        "update": ("PUT", f"/fhir/Patient/{a}", {"json": {**_patient("Quillfeather", "MRN-777001"), "id": a}}),
        "delete": ("DELETE", f"/fhir/MedicationRequest/{world.mr_b}", {}),
        "transaction": (
            "POST",
            "/fhir",
            {
                "json": {
                    "resourceType": "Bundle",
                    "type": "transaction",
                    "entry": [{"resource": _request(a, "amlodipine"), "request": {"method": "POST", "url": "MedicationRequest"}}],
                }
            },
        ),
        "operation": ("GET", f"/fhir/Patient/{a}/$sync-plan", {}),
    }
    method, url, kwargs = requests[name]
    kwargs["headers"] = {**kwargs.get("headers", {}), **h}
    response, event = _one(world, method, url, **kwargs)
    assert _subtype(event) == subtype and event["action"] == action
    assert event["outcome"] == ("0" if response.status_code < 400 else "4")
    whats = [e["what"]["reference"] for e in event.get("entity", []) if "what" in e]
    if name in ("read", "vread", "history", "update", "operation"):
        assert any(w.startswith(f"Patient/{a}") for w in whats), whats
    if name.startswith("search"):
        assert f"MedicationRequest/{world.mr_a}/_history/1" in whats
        (query,) = [e for e in event["entity"] if "query" in e]
        assert base64.b64decode(query["query"]).decode() == f"MedicationRequest?subject=Patient%2F{a}"
    if name == "delete":
        assert any(w.startswith(f"MedicationRequest/{world.mr_b}") for w in whats)
    if name == "transaction":
        assert any(w.startswith("MedicationRequest/") and world.mr_a not in w for w in whats)
    if name == "operation":
        assert {"type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"}, "name": "$sync-plan"} in event["entity"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """A world on SQLite, and on PostgreSQL (shared by the run: tests on it compare before and after)."""
    url = f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))
    with secured(url) as (client, repo):
        yield World(client, repo)


_REFUSE = {
    "sqlite": [
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON resource WHEN NEW.rtype = 'AuditEvent' "
        "BEGIN SELECT RAISE(ABORT, 'audit store refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN IF NEW.rtype = 'AuditEvent' THEN "
        "RAISE EXCEPTION 'audit store refused'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON resource FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
    ],
}
_ALLOW = {
    "sqlite": ["DROP TRIGGER refuse_audit"],
    "postgresql": ["DROP TRIGGER refuse_audit ON resource", "DROP FUNCTION refuse_audit()"],
}


def test_a_write_and_its_audit_event_commit_together(any_world: World) -> None:
    """The database refuses AuditEvent rows (a trigger): the write they belong to must not stay either."""
    world = any_world
    engine = world.repo.engine  # type: ignore[attr-defined]  # the SQL repository's
    dialect = engine.dialect.name
    with engine.begin() as conn:
        for statement in _REFUSE[dialect]:
            conn.exec_driver_sql(statement)
    try:
        before = snapshot(world.repo)
        h = bearer(ALL)
        assert world.client.post("/fhir/Patient", json=_patient("Newcomer", "MRN-9"), headers=h).status_code >= 400
        changed = {**_patient("Quillfeather", "MRN-777001"), "id": world.a, "gender": "female"}
        assert world.client.put(f"/fhir/Patient/{world.a}", json=changed, headers=h).status_code >= 400
        assert world.client.delete(f"/fhir/MedicationRequest/{world.mr_b}", headers=h).status_code >= 400
        assert snapshot(world.repo) == before
    finally:
        with engine.begin() as conn:
            for statement in _ALLOW[dialect]:
                conn.exec_driver_sql(statement)
    assert world.client.post("/fhir/Patient", json=_patient("Newcomer", "MRN-9"), headers=bearer(ALL)).status_code == 201


def test_a_failed_write_leaves_no_success_event(any_world: World) -> None:
    world = any_world
    stale = {**_patient("Quillfeather", "MRN-777001"), "id": world.a}
    before = snapshot(world.repo)
    response, event = _one(
        world, "PUT", f"/fhir/Patient/{world.a}", json=stale, headers={**bearer(ALL), "If-Match": 'W/"7"'}
    )
    assert response.status_code == 412
    assert event["outcome"] == "4" and event["outcomeDesc"] == "HTTP 412" and _subtype(event) == "update"
    assert clinical_versions(world.repo) == {v for v in before["versions"] if v[0] != "AuditEvent"}

    broken = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": _request(world.a, "amlodipine"), "request": {"method": "POST", "url": "MedicationRequest"}},
            {"request": {"method": "DELETE", "url": "MedicationRequest/no-such-one"}, "resource": {"resourceType": "Basic"}},
        ],
    }
    count = len(audit_events(world.repo))
    failed = world.client.post("/fhir", json=broken, headers=bearer(ALL))
    assert failed.status_code >= 400
    assert all(e["outcome"] != "0" for e in audit_events(world.repo)[count:])
    assert len(world.client.get(f"/fhir/MedicationRequest?subject=Patient/{world.a}", headers=bearer(ALL)).json()["entry"]) == 1


def test_a_failed_read_is_audited_with_its_outcome(world: World) -> None:
    response, event = _one(world, "GET", "/fhir/Patient/no-such-patient", headers=bearer(ALL))
    assert response.status_code == 404
    assert event["outcome"] == "4" and event["entity"][0]["what"]["reference"] == "Patient/no-such-patient"


def test_refused_requests_write_nothing(world: World) -> None:
    before = snapshot(world.repo)
    assert world.client.get(f"/fhir/Patient/{world.a}").status_code == 401
    assert world.client.get(f"/fhir/Patient/{world.a}", headers=bearer("system/Organization.r")).status_code == 403
    assert snapshot(world.repo) == before


def test_audit_off_writes_no_events(tmp_path: Path) -> None:
    with secured(f"sqlite:///{tmp_path / 'store.db'}", audit_enabled=False) as (client, repo):
        assert client.post("/fhir/Patient", json=_patient("X", "MRN-1"), headers=bearer(ALL)).status_code == 201
        assert audit_events(repo) == []


PHI = ("Quillfeather", "Brightwater", "MRN-777001", "MRN-777002", "MRN4242", "DOE", "JANE", "19600101")


def test_logs_carry_no_patient_identifiers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with secured(f"sqlite:///{tmp_path / 'store.db'}") as (client, repo):
        w = World(client, repo)
        h = bearer(ALL)
        client.get(f"/fhir/Patient?name=Quillfeather&identifier={MRN}|MRN-777001", headers=h)
        client.get("/fhir/Patient?name=Quillfeather&bogus=MRN-777001", headers=h)
        client.post("/fhir/Patient", json={**_patient("Quillfeather", "MRN-777001"), "gender": "nope"}, headers=h)
        client.put(f"/fhir/Patient/{w.b}", json={**_patient("Brightwater", "MRN-777002"), "id": "x"}, headers=h)
        client.get(f"/fhir/Patient/{w.a}", headers=bearer("patient/*.rs", patient=w.b))
        client.get("/fhir/Patient?name=Quillfeather", headers={"Authorization": "Bearer MRN-777001"})
        client.post("/fhir/$convert-data", json={"resourceType": "Parameters", "parameter": [
            {"name": "inputData", "valueString": dispense(4242).decode()},
            {"name": "inputDataType", "valueString": "Hl7v2"},
        ]}, headers=h)
    store = open_repository(f"sqlite:///{tmp_path / 'mllp.db'}")
    try:
        async def ingest() -> list[bytes]:
            server = MllpServer(Ingestor(store), "127.0.0.1", 0, max_message_bytes=600)
            await server.start()
            try:
                messages = [dispense(4242), dispense(4242, fill=2) + b"Z" * 700, b"MSH|garbage DOE^JANE MRN4242\r"]
                return await asyncio.to_thread(send, "127.0.0.1", server.bound_port, messages)
            finally:
                await server.stop()

        acks = asyncio.run(ingest())
        assert [ack_code(a) for a in acks][:2] == ["AA", "AR"]
    finally:
        store.close()
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]  # the test client's
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in server_side)
    assert server_side, "nothing was logged: the check would prove nothing"
    for value in PHI:
        assert value not in logged, value


def test_logged_exceptions_keep_their_stack_but_not_their_message(capsys: pytest.CaptureFixture[str]) -> None:
    from interop.logs import ExceptionRedactor, JsonFormatter

    record = logging.LogRecord("interop.test", logging.ERROR, __file__, 1, "unexpected error", (), None)
    mrn, name = PHI[2], PHI[0]
    try:
        raise ValueError(f"PID|1||{mrn}^^^RX01^MR||{name}^ADA")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert ExceptionRedactor().filter(record)
    for formatter in (logging.Formatter(), JsonFormatter()):
        text = formatter.format(record)
        assert "ValueError" in text and "test_security_audit.py" in text
        assert "MRN-777001" not in text and "Quillfeather" not in text
