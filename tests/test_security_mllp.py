"""The MLLP listener's credentials (allowed networks, TLS, mutual TLS) and the AuditEvents of HL7 v2 ingest."""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import text

from interop.fhir.audit import CONTROL_ID_SYSTEM, DCM, SENDER_SYSTEM
from interop.ingest.mllp import MllpServer, ack_code, allowed_networks, send, server_tls
from interop.ingest.pipeline import Ingestor
from interop.store import SqlRepository, open_repository
from tests.fhirschema import assert_valid
from tests.ingest_messages import UNPARSEABLE, dispense
from tests.security_support import audit_events
from tests.tls_support import Pki, make_pki


@contextmanager
def listening(
    repo: SqlRepository, *, allowed: str = "127.0.0.1/32", tls: ssl.SSLContext | None = None, audit: bool = False
) -> Iterator[int]:
    """An MllpServer on its own event loop thread on a free port of 127.0.0.1; yields the port."""
    loop = asyncio.new_event_loop()
    server = MllpServer(Ingestor(repo, audit=audit), "127.0.0.1", 0, allowed=allowed, tls=tls)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
        yield server.bound_port
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def store(sqlite_url: str) -> Iterator[SqlRepository]:
    repo = open_repository(sqlite_url)
    yield repo
    repo.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def dispenses(repo: SqlRepository) -> int:
    return len(repo.search("MedicationDispense", [("_count", "100")]).matches)


def test_allowed_networks_parse_addresses_and_cidrs_and_name_a_bad_entry() -> None:
    nets = allowed_networks("127.0.0.1, 10.0.0.0/8,::1/128")
    assert [str(n) for n in nets] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    with pytest.raises(ValueError, match=r"INTEROP_MLLP_ALLOWED.*10\.0\.0\.300"):
        allowed_networks("10.0.0.300/8")


def test_a_peer_outside_the_allowed_networks_is_disconnected_unanswered(
    store: SqlRepository, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="interop.ingest.mllp")
    with listening(store, allowed="10.0.0.0/8") as port:
        acks = send("127.0.0.1", port, [dispense(1)], window=1, timeout=5)
    assert acks == []
    assert dispenses(store) == 0
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused and "127.0.0.1" in refused[0]
    assert all("DOE" not in m and "MRN" not in m and "RX" not in m for m in refused), "the log carries PHI"


def test_a_peer_inside_the_allowed_networks_is_served(store: SqlRepository) -> None:
    with listening(store, allowed="10.0.0.0/8, 127.0.0.0/8") as port:
        assert [ack_code(a) for a in send("127.0.0.1", port, [dispense(1)], window=1, timeout=5)] == ["AA"]
    assert dispenses(store) == 1


def test_tls_round_trip_with_a_certificate_of_the_test_ca(store: SqlRepository, pki: Pki) -> None:
    tls = server_tls(str(pki.server_cert), str(pki.server_key))
    with listening(store, tls=tls) as port:
        acks = send("127.0.0.1", port, [dispense(n) for n in range(3)], window=3, timeout=5, tls=pki.client_context())
        assert [ack_code(a) for a in acks] == ["AA"] * 3
        assert send("127.0.0.1", port, [dispense(9)], window=1, timeout=5) == [], "plain MLLP reached a TLS listener"
        with pytest.raises(ssl.SSLCertVerificationError):
            send("127.0.0.1", port, [dispense(8)], window=1, timeout=5, tls=ssl.create_default_context())
    assert dispenses(store) == 3


def test_mutual_tls_refuses_a_client_without_a_certificate(store: SqlRepository, pki: Pki) -> None:
    tls = server_tls(str(pki.server_cert), str(pki.server_key), str(pki.ca))
    with listening(store, tls=tls) as port:
        try:
            refused = send("127.0.0.1", port, [dispense(1)], window=1, timeout=5, tls=pki.client_context())
        except ssl.SSLError:
            refused = []
        assert refused == []
        assert dispenses(store) == 0
        acks = send("127.0.0.1", port, [dispense(2)], window=1, timeout=5, tls=pki.client_context(with_certificate=True))
        assert [ack_code(a) for a in acks] == ["AA"]
    assert dispenses(store) == 1


def _by_outcome(repo: SqlRepository) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for event in audit_events(repo):
        assert_valid(event)
        found.setdefault(event["outcome"], []).append(event)
    return found


def _controls(event: dict[str, Any]) -> list[str]:
    """The control ids (MSH-10) of the messages an event names."""
    return [e["what"]["identifier"]["value"] for e in event.get("entity", []) if "identifier" in e["what"]]


def test_every_message_is_named_in_an_audit_event_committed_with_it(store: SqlRepository) -> None:
    with listening(store, audit=True) as port:
        acks = send("127.0.0.1", port, [dispense(n) for n in range(4)] + [UNPARSEABLE], window=10, timeout=10)
    assert [ack_code(a) for a in acks] == ["AA"] * 4 + ["AR"]
    events = _by_outcome(store)
    assert sorted(events) == ["0", "4"] and len(events["4"]) == 1
    # one event per group commit: however the listener grouped them, each message is named exactly once
    assert sorted(c for ev in events["0"] for c in _controls(ev)) == [f"C{n}-1" for n in range(4)]
    stored = {f"MedicationDispense/{s.id}" for s in store.search("MedicationDispense", [("_count", "100")]).matches}
    named = {e["what"]["reference"] for ev in events["0"] for e in ev["entity"] if "reference" in e["what"]}
    assert stored <= named and any(ref.startswith("Patient/") for ref in named)
    for event in events["0"]:
        assert event["type"] == {"system": DCM, "code": "110107", "display": "Import"} and event["action"] == "C"
        [agent] = event["agent"]
        assert agent["who"]["identifier"] == {"system": SENDER_SYSTEM, "value": "PHARMSYS^RX01"}
        assert agent["network"]["address"] == "127.0.0.1"
        for e in event["entity"]:
            if "identifier" in e["what"]:
                assert e["what"]["identifier"]["system"] == CONTROL_ID_SYSTEM
                assert e["what"]["identifier"]["assigner"]["identifier"]["value"] == "PHARMSYS^RX01"
    [failed] = events["4"]
    [task] = [e["what"]["reference"] for e in failed["entity"]]
    assert task.startswith("Task/") and store.read("Task", task.split("/")[1]) is not None
    assert failed["outcomeDesc"] == "ACK AR"


def test_a_group_gets_one_event_per_sender_and_peer_and_a_patient_trail_finds_its_message(
    store: SqlRepository,
) -> None:
    other = dispense(7).replace(b"|PHARMSYS|RX01|", b"|PHARMSYS|RX02|", 1)
    raws = [dispense(1), dispense(2), dispense(1, fill=2), other, dispense(3)]
    sources = ["mllp:127.0.0.1:1", "mllp:127.0.0.1:1", "mllp:127.0.0.1:2", "mllp:127.0.0.1:1", "mllp:10.0.0.5:9"]
    outcomes = Ingestor(store, audit=True).ingest_many(raws, sources=sources)
    assert [o.code for o in outcomes] == ["AA"] * 5
    events = _by_outcome(store)["0"]
    by_who = {(e["agent"][0]["who"]["identifier"]["value"], e["agent"][0]["network"]["address"]): e for e in events}
    assert sorted(by_who) == [("PHARMSYS^RX01", "10.0.0.5"), ("PHARMSYS^RX01", "127.0.0.1"), ("PHARMSYS^RX02", "127.0.0.1")]
    assert _controls(by_who["PHARMSYS^RX01", "127.0.0.1"]) == ["C1-1", "C2-1", "C1-2"]
    assert _controls(by_who["PHARMSYS^RX02", "127.0.0.1"]) == ["C7-1"]
    # the trail of patient MRN1: the events naming the patient, and in them the messages that wrote it
    [patient] = [m for m in store.search("Patient", [("identifier", "MRN1")]).matches]
    trail = store.search("AuditEvent", [("patient", f"Patient/{patient.id}")]).matches
    assert len(trail) == 1
    [named] = [e for e in trail[0].resource()["entity"] if e["what"].get("reference") == f"Patient/{patient.id}"]
    assert named["detail"] == [{"type": "MSH-10", "valueString": "C1-1"}, {"type": "MSH-10", "valueString": "C1-2"}]
    assert len(store.search("AuditEvent", [("entity", f"Patient/{patient.id}")]).matches) == 1


def test_a_message_whose_commit_fails_leaves_no_success_audit_event(store: SqlRepository) -> None:
    """A trigger in the real database aborts every MedicationDispense insert: the commits roll back, AE."""
    with store.engine.begin() as conn:
        conn.execute(text(
            "CREATE TRIGGER no_dispense BEFORE INSERT ON resource WHEN NEW.rtype = 'MedicationDispense' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        ))
    ingestor = Ingestor(store, audit=True)
    outcomes = ingestor.ingest_many([dispense(1), dispense(2)], sources=["mllp:127.0.0.1:1", "mllp:127.0.0.1:2"])
    assert [o.code for o in outcomes] == ["AE", "AE"]
    assert dispenses(store) == 0
    events = _by_outcome(store)
    assert "0" not in events, "an AuditEvent recorded a write that was rolled back"
    [failed] = events["8"]  # same sender, same peer address, same outcome: one event
    assert _controls(failed) == ["C1-1", "C2-1"]
    tasks = [e for e in failed["entity"] if "reference" in e["what"]]
    assert sorted(e["what"]["reference"] for e in tasks) == sorted(f"Task/{o.dead_letter}" for o in outcomes)
    assert sorted(d["valueString"] for e in tasks for d in e["detail"]) == ["C1-1", "C2-1"]
    with store.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER no_dispense"))
    [again] = ingestor.ingest_many([dispense(1)], source="mllp:127.0.0.1:3")
    assert again.code == "AA" and dispenses(store) == 1
    assert len(_by_outcome(store)["0"]) == 1


def test_audit_off_writes_no_audit_event(store: SqlRepository) -> None:
    Ingestor(store, audit=False).ingest(dispense(1), source="mllp:127.0.0.1:1")
    assert dispenses(store) == 1 and audit_events(store) == []
