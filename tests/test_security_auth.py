"""Authorization of the FHIR API: every interaction refused without a valid token or scope (and nothing
returned or changed), SMART scope grammar, the patient compartment, auditor-only AuditEvents, RS256 keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from interop.api.smart import Grants, parse_scope
from interop.api.tokens import AuthConfigError, TokenVerifier
from interop.config import Settings
from interop.store.base import Repository
from tests.api_support import ROOT, live_server
from tests.security_support import (
    ALL,
    AUDITOR,
    SECRET,
    bearer,
    clinical_versions,
    expired,
    forged,
    secured,
    snapshot,
)

MRN = "https://medsync-interop.org/fhir/sid/mrn/test-pharmacy"


def _patient(family: str, mrn: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": MRN, "value": mrn}],
        "name": [{"family": family, "given": ["Ada"]}],
        "birthDate": "1950-01-02",
    }


def _request(patient_id: str, drug: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": drug},
        "subject": {"reference": f"Patient/{patient_id}"},
    }


class World:
    """Two patients with a MedicationRequest each, stored through the API with an all-access token."""

    def __init__(self, client: TestClient, repo: Repository) -> None:
        self.client, self.repo = client, repo
        h = bearer(ALL)
        self.a = client.post("/fhir/Patient", json=_patient("Quillfeather", "MRN-777001"), headers=h).json()["id"]
        self.b = client.post("/fhir/Patient", json=_patient("Brightwater", "MRN-777002"), headers=h).json()["id"]
        self.mr_a = client.post("/fhir/MedicationRequest", json=_request(self.a, "lisinopril"), headers=h).json()["id"]
        self.mr_b = client.post("/fhir/MedicationRequest", json=_request(self.b, "metformin"), headers=h).json()["id"]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with secured(f"sqlite:///{tmp_path / 'store.db'}") as (client, repo):
        yield World(client, repo)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """A world on SQLite, and on PostgreSQL (shared by the run: tests on it compare before and after)."""
    url = f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))
    with secured(url) as (client, repo):
        yield World(client, repo)


def _cases(w: World) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(name, method, url, request kwargs) of every interaction."""
    changed = {**_patient("Quillfeather", "MRN-777001"), "id": w.a, "gender": "female"}
    entry = {"resource": _patient("Newcomer", "MRN-9"), "request": {"method": "POST", "url": "Patient"}}
    fhir = {"Content-Type": "application/fhir+json"}
    return [
        ("read", "GET", f"/fhir/Patient/{w.a}", {}),
        ("vread", "GET", f"/fhir/Patient/{w.a}/_history/1", {}),
        ("create", "POST", "/fhir/Patient", {"json": _patient("Newcomer", "MRN-9")}),
        (
            "conditional create",
            "POST",
            "/fhir/Patient",
            {"json": _patient("Newcomer", "MRN-9"), "headers": {"If-None-Exist": f"identifier={MRN}|MRN-9"}},
        ),
        ("update", "PUT", f"/fhir/Patient/{w.a}", {"json": changed}),
        ("conditional update", "PUT", f"/fhir/Patient?identifier={MRN}|MRN-777001", {"json": changed}),
        ("delete", "DELETE", f"/fhir/Patient/{w.a}", {}),
        ("conditional delete", "DELETE", f"/fhir/Patient?identifier={MRN}|MRN-777001", {}),
        ("history instance", "GET", f"/fhir/Patient/{w.a}/_history", {}),
        ("history type", "GET", "/fhir/Patient/_history", {}),
        ("history system", "GET", "/fhir/_history", {}),
        ("search", "GET", "/fhir/Patient?name=Quillfeather", {}),
        (
            "search POST",
            "POST",
            "/fhir/Patient/_search",
            {"content": b"name=Quillfeather", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        ),
        ("search system", "GET", "/fhir?_type=Patient", {}),
        ("batch", "POST", "/fhir", {"content": json.dumps({"resourceType": "Bundle", "type": "batch", "entry": [entry]}), "headers": fhir}),
        (
            "transaction",
            "POST",
            "/fhir",
            {"content": json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [entry]}), "headers": fhir},
        ),
        ("operation instance", "GET", f"/fhir/Patient/{w.a}/$sync-plan", {}),
        ("operation system", "GET", "/fhir/$program-report", {}),
        ("operation write", "POST", f"/fhir/Patient/{w.a}/$sync-enroll", {"json": {"resourceType": "Parameters"}}),
    ]


CREDENTIALS = {
    "no token": (lambda: {}, 401),
    "expired token": (expired, 401),
    "wrong signature": (forged, 401),
    "insufficient scope": (lambda: bearer("system/Organization.rs user/Practitioner.r"), 403),
}


@pytest.mark.parametrize("credential", list(CREDENTIALS))
def test_every_interaction_is_refused_and_nothing_changes(any_world: World, credential: str) -> None:
    world = any_world
    headers_of, status = CREDENTIALS[credential]
    before = snapshot(world.repo)
    for name, method, url, kwargs in _cases(world):
        kwargs = dict(kwargs)
        kwargs["headers"] = {**kwargs.get("headers", {}), **headers_of()}
        response = world.client.request(method, url, **kwargs)
        assert response.status_code == status, (name, response.status_code, response.text)
        body = response.json()
        assert body["resourceType"] == "OperationOutcome", name
        assert "Quillfeather" not in response.text and "MRN-777001" not in response.text, name
        if status == 401:
            assert response.headers["WWW-Authenticate"].startswith("Bearer"), name
            assert body["issue"][0]["code"] == "login"
        else:
            assert body["issue"][0]["code"] == "forbidden"
    assert snapshot(world.repo) == before


def test_metadata_is_public(world: World) -> None:
    response = world.client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.json()["resourceType"] == "CapabilityStatement"


def test_the_right_scope_opens_each_interaction(world: World) -> None:
    """The same requests succeed with the grants they need (the refusals above are about the token)."""
    h = bearer("system/Patient.cruds system/MedicationRequest.rs")
    assert world.client.get(f"/fhir/Patient/{world.a}", headers=h).status_code == 200
    assert world.client.get("/fhir/Patient?name=Quillfeather", headers=h).json()["total"] == 1
    assert world.client.get("/fhir/Patient", headers=bearer("user/Patient.s")).status_code == 200
    assert world.client.get(f"/fhir/Patient/{world.a}", headers=bearer("user/Patient.s")).status_code == 403
    assert world.client.get(f"/fhir/Patient/{world.a}", headers=bearer("user/Patient.read")).status_code == 200
    created = world.client.post("/fhir/Patient", json=_patient("Newcomer", "MRN-9"), headers=bearer("user/Patient.write"))
    assert created.status_code == 201
    assert world.client.delete(f"/fhir/Patient/{world.b}", headers=bearer("system/Patient.r")).status_code == 403
    assert world.client.get("/fhir/_history", headers=bearer("system/Patient.rs")).status_code == 403


def test_a_bundle_needs_a_grant_for_each_entry(world: World) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": _patient("Newcomer", "MRN-9"), "request": {"method": "POST", "url": "Patient"}},
            {"resource": _request(world.a, "atorvastatin"), "request": {"method": "POST", "url": "MedicationRequest"}},
        ],
    }
    before = snapshot(world.repo)
    refused = world.client.post("/fhir", json=bundle, headers=bearer("system/Patient.c"))
    assert refused.status_code == 403
    assert "MedicationRequest" in refused.json()["issue"][0]["diagnostics"]
    assert snapshot(world.repo) == before
    done = world.client.post("/fhir", json=bundle, headers=bearer("system/Patient.c system/MedicationRequest.c"))
    assert done.status_code == 200
    for url in ("Patient?_revinclude=MedicationRequest:subject", "?_type=AuditEvent", "_history", "AuditEvent"):
        search = {"resourceType": "Bundle", "type": "batch", "entry": [{"request": {"method": "GET", "url": url}}]}
        answered = world.client.post("/fhir", json=search, headers=bearer("system/Patient.rs"))
        assert answered.status_code in (200, 403), url
        assert "metformin" not in answered.text and '"AuditEvent"' not in answered.text, url
        everything = world.client.post("/fhir", json=search, headers=bearer(ALL))
        assert '"AuditEvent"' not in everything.text, url
    revincluded = world.client.post("/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient?_revinclude=MedicationRequest:subject"}}]},
        headers=bearer("system/Patient.rs"))
    (searchset,) = [e["resource"] for e in revincluded.json()["entry"]]
    assert {e["resource"]["resourceType"] for e in searchset["entry"]} == {"Patient"}
    with_requests = world.client.post("/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient?_revinclude=MedicationRequest:subject"}}]}, headers=bearer(ALL))
    assert "MedicationRequest" in {e["resource"]["resourceType"] for e in with_requests.json()["entry"][0]["resource"]["entry"]}
    search = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient?_revinclude=MedicationRequest:subject"}},
        {"request": {"method": "GET", "url": f"MedicationRequest/{world.mr_b}"}},
    ]}
    answered = world.client.post("/fhir", json=search, headers=bearer("system/Patient.rs system/MedicationRequest.c"))
    assert answered.status_code == 403  # GET entries need r/s on their type
    answered = world.client.post("/fhir", json=search, headers=bearer("system/Patient.rs"))
    assert answered.status_code == 403


def test_patient_scopes_see_only_their_compartment(world: World) -> None:
    h = bearer("patient/*.rs", patient=world.a)
    c = world.client
    assert c.get(f"/fhir/Patient/{world.a}", headers=h).status_code == 200
    other = c.get(f"/fhir/Patient/{world.b}", headers=h)
    assert other.status_code == 403 and "Brightwater" not in other.text
    assert c.get(f"/fhir/MedicationRequest/{world.mr_b}", headers=h).status_code == 403
    assert c.get(f"/fhir/MedicationRequest/{world.mr_b}/_history", headers=h).status_code == 403
    assert c.get(f"/fhir/MedicationRequest/{world.mr_b}/_history/1", headers=h).status_code == 403

    found = c.get("/fhir/MedicationRequest", headers=h).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [world.mr_a]
    everyone = c.get("/fhir/Patient", headers=h).json()
    assert [e["resource"]["id"] for e in everyone["entry"]] == [world.a]
    asked = c.get(f"/fhir/MedicationRequest?subject=Patient/{world.b}", headers=h).json()
    assert asked.get("entry", []) == []

    included = c.get("/fhir/MedicationRequest?_include=MedicationRequest:subject", headers=h).json()
    ids = {e["resource"]["id"] for e in included["entry"]}
    assert ids == {world.mr_a, world.a}
    revincluded = c.get("/fhir/Patient?_revinclude=MedicationRequest:subject", headers=h).json()
    assert {e["resource"]["id"] for e in revincluded["entry"]} == {world.a, world.mr_a}
    assert "Brightwater" not in json.dumps(revincluded) and "metformin" not in json.dumps(revincluded)

    history = c.get("/fhir/MedicationRequest/_history", headers=h).json()
    assert {e["resource"]["id"] for e in history["entry"]} == {world.mr_a}
    assert c.get("/fhir/_history", headers=h).status_code == 403


def test_patient_scopes_write_only_into_their_compartment(world: World) -> None:
    h = bearer("patient/MedicationRequest.cruds", patient=world.a)
    before = snapshot(world.repo)
    refused = world.client.post("/fhir/MedicationRequest", json=_request(world.b, "warfarin"), headers=h)
    assert refused.status_code == 403
    moved = {**_request(world.b, "lisinopril"), "id": world.mr_a}
    assert world.client.put(f"/fhir/MedicationRequest/{world.mr_a}", json=moved, headers=h).status_code == 403
    taken = {**_request(world.a, "metformin"), "id": world.mr_b}
    assert world.client.put(f"/fhir/MedicationRequest/{world.mr_b}", json=taken, headers=h).status_code == 403
    assert world.client.delete(f"/fhir/MedicationRequest/{world.mr_b}", headers=h).status_code == 403
    assert world.client.delete(f"/fhir/MedicationRequest?subject=Patient/{world.b}", headers=h).status_code == 403
    assert clinical_versions(world.repo) == {v for v in before["versions"] if v[0] != "AuditEvent"}
    assert world.client.post("/fhir/MedicationRequest", json=_request(world.a, "amlodipine"), headers=h).status_code == 201


def test_patient_scopes_reach_operations_on_their_own_record_only(world: World) -> None:
    h = bearer("patient/*.rs", patient=world.a)
    own = world.client.get(f"/fhir/Patient/{world.a}/$sync-plan", headers=h)
    assert own.status_code != 403, own.text
    assert world.client.get(f"/fhir/Patient/{world.b}/$sync-plan", headers=h).status_code == 403
    assert world.client.get("/fhir/$program-report", headers=h).status_code == 403


def test_unknown_operations_need_full_access(world: World) -> None:
    assert world.client.get("/fhir/$no-such-op", headers=bearer("system/Patient.rs")).status_code == 403
    assert world.client.get("/fhir/$no-such-op", headers=bearer(ALL)).status_code == 404


def test_only_the_auditor_reads_audit_events(world: World) -> None:
    c = world.client
    for scope in (ALL, "system/*.*", "user/*.read", "patient/*.rs"):
        h = bearer(scope, patient=world.a)
        assert c.get("/fhir/AuditEvent", headers=h).status_code == 403, scope
        assert c.get("/fhir?_type=AuditEvent", headers=h).status_code == 403, scope
    history = c.get("/fhir/_history?_count=1000", headers=bearer(ALL)).json()
    assert all(e["resource"]["resourceType"] != "AuditEvent" for e in history.get("entry", []) if "resource" in e)
    audited = c.get("/fhir/AuditEvent", headers=bearer(AUDITOR)).json()
    assert audited["total"] >= 4 if "total" in audited else len(audited["entry"]) >= 4
    one = audited["entry"][0]["resource"]["id"]
    assert c.get(f"/fhir/AuditEvent/{one}", headers=bearer(AUDITOR)).status_code == 200
    assert c.delete(f"/fhir/AuditEvent/{one}", headers=bearer("system/AuditEvent.cruds")).status_code == 403
    forged_event = {**audited["entry"][0]["resource"], "outcome": "0"}
    assert c.put(f"/fhir/AuditEvent/{one}", json=forged_event, headers=bearer("system/AuditEvent.cruds")).status_code == 403


def test_scope_grammar() -> None:
    assert parse_scope("patient/MedicationDispense.rs") is not None
    v1 = parse_scope("user/Patient.read")
    assert v1 is not None and v1.actions == frozenset("rs")
    star = parse_scope("system/*.*")
    assert star is not None and star.actions == frozenset("cruds")
    assert parse_scope("system/Patient.sr") is None  # v2 letters in cruds order only
    assert parse_scope("openid") is None and parse_scope("launch/patient") is None
    assert parse_scope("patient/Observation.rs?category=laboratory") is None
    grants = Grants.parse(["system/*.cruds"])
    assert grants.mode("Patient", "d") == "all" and grants.mode("AuditEvent", "r") is None
    patient = Grants.parse(["patient/*.rs"], "p1")
    assert patient.mode("Patient", "r") == "patient" and patient.mode("Patient", "c") is None
    assert Grants.parse(["patient/*.rs"]).mode("Patient", "r") is None  # no patient claim: nothing


@pytest.fixture
def rsa_keys(tmp_path: Path) -> tuple[Any, Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "public.pem"
    pem.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}))
    return key, pem, jwks


def _rs256(key: Any, **claims: Any) -> str:
    now = int(time.time())
    base = {"sub": "app", "scope": "system/Patient.rs", "iat": now, "exp": now + 60}
    return jwt.encode({**base, **claims}, key, algorithm="RS256", headers={"kid": "k1"})


def test_rs256_with_a_public_key_or_jwks(rsa_keys: tuple[Any, Path, Path]) -> None:
    key, pem, jwks = rsa_keys
    for configured in ({"auth_public_key": str(pem)}, {"auth_jwks": str(jwks)}):
        verifier = TokenVerifier(Settings(auth_enabled=True, **configured))
        assert verifier.verify(f"Bearer {_rs256(key)}").subject == "app"
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with pytest.raises(Exception, match="Signature"):
            verifier.verify(f"Bearer {_rs256(other)}")
        hs = jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
        with pytest.raises(Exception, match="not accepted"):
            verifier.verify(f"Bearer {hs}")


def test_issuer_audience_and_expiry_leeway(rsa_keys: tuple[Any, Path, Path]) -> None:
    key, pem, _ = rsa_keys
    verifier = TokenVerifier(
        Settings(auth_enabled=True, auth_public_key=str(pem), auth_issuer="https://idp.test", auth_audience="medsync")
    )
    good = _rs256(key, iss="https://idp.test", aud="medsync")
    assert verifier.verify(f"Bearer {good}").grants.mode("Patient", "r") == "all"
    for bad in (_rs256(key, iss="https://evil.test", aud="medsync"), _rs256(key, iss="https://idp.test", aud="other")):
        with pytest.raises(Exception, match="invalid token"):
            verifier.verify(f"Bearer {bad}")
    just_expired = _rs256(key, iss="https://idp.test", aud="medsync", exp=int(time.time()) - 5)
    assert verifier.verify(f"Bearer {just_expired}").subject == "app"  # within the 30 s leeway
    with pytest.raises(Exception, match="expired"):
        verifier.verify(f"Bearer {_rs256(key, iss='https://idp.test', aud='medsync', exp=int(time.time()) - 120)}")


def test_no_key_configured_is_a_clear_error() -> None:
    with pytest.raises(AuthConfigError, match="INTEROP_AUTH_SECRET"):
        TokenVerifier(Settings(auth_enabled=True, auth_secret=""))
    with pytest.raises(AuthConfigError, match="at least 32 bytes"):
        TokenVerifier(Settings(auth_enabled=True, auth_secret="short"))



def _serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``interop serve`` that is expected to refuse to start (it exits at once)."""
    command = [sys.executable, "-m", "interop", "serve", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--port", "0", *args]
    return subprocess.run(
        command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.live
def test_serve_refuses_to_start_without_a_key_or_off_loopback(tmp_path: Path) -> None:
    no_key = _serve(tmp_path, INTEROP_AUTH_ENABLED="true", INTEROP_AUTH_SECRET="")
    assert no_key.returncode != 0 and "no token key is configured" in no_key.stderr
    exposed = _serve(tmp_path, "--insecure-dev", "--host", "0.0.0.0", INTEROP_AUTH_ENABLED="true")
    assert exposed.returncode != 0 and "refusing to bind 0.0.0.0" in exposed.stderr


@pytest.mark.live
def test_serve_with_tokens_and_insecure_dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTEROP_AUTH_ENABLED", "true")
    monkeypatch.setenv("INTEROP_AUTH_SECRET", SECRET)
    minted = subprocess.run(
        [sys.executable, "-m", "interop", "token", "--scope", "system/Patient.rs", "--ttl", "5m"],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()
    with live_server(f"sqlite:///{tmp_path / 'a.db'}") as server:
        assert httpx.get(f"{server.base}/Patient", timeout=10).status_code == 401
        ok = httpx.get(f"{server.base}/Patient", headers={"Authorization": f"Bearer {minted}"}, timeout=10)
        assert ok.status_code == 200
    assert "authorization is OFF" not in server.output
    with live_server(f"sqlite:///{tmp_path / 'b.db'}", "--insecure-dev") as server:
        assert httpx.get(f"{server.base}/Patient", timeout=10).status_code == 200
    assert "WARNING: authorization is OFF" in server.output


def test_a_remembered_token_still_expires() -> None:
    verifier = TokenVerifier(Settings(auth_enabled=True, auth_secret=SECRET, auth_leeway=0))
    now = int(time.time())
    short = jwt.encode({"sub": "brief", "scope": "system/*.rs", "iat": now, "exp": now + 1}, SECRET, algorithm="HS256")
    assert verifier.verify(f"Bearer {short}").subject == "brief"
    assert verifier.verify(f"Bearer {short}").subject == "brief"  # remembered
    time.sleep(max(0.0, now + 1.2 - time.time()))
    with pytest.raises(Exception, match="expired"):
        verifier.verify(f"Bearer {short}")


def _scopes(context: str, declared: tuple[str, ...]) -> str:
    return " ".join(f"{context}/{item}" for item in declared)


def test_operations_run_with_exactly_their_declared_scopes(tmp_path: Path) -> None:
    """$sync-plan and $sync-enroll on a real regimen, with the grants they declare and nothing more."""
    from interop.api.ops.sync import SYNC_READS, SYNC_WRITES
    from tests.sync_store import TODAY, seed, worked_patient

    with secured(f"sqlite:///{tmp_path / 'store.db'}") as (client, repo):
        seed(repo, worked_patient("pat-1") + worked_patient("pat-2"))
        body = {"resourceType": "Parameters", "parameter": [{"name": "today", "valueDate": TODAY.isoformat()}]}
        plan = client.post("/fhir/Patient/pat-1/$sync-plan", json=body, headers=bearer(_scopes("user", SYNC_READS)))
        assert plan.status_code == 200, plan.text
        narrower = _scopes("user", tuple(s for s in SYNC_READS if not s.startswith("MedicationDispense")))
        assert client.post("/fhir/Patient/pat-1/$sync-plan", json=body, headers=bearer(narrower)).status_code == 403
        assert client.post("/fhir/Patient/pat-1/$sync-enroll", json=body, headers=bearer(_scopes("user", SYNC_READS))).status_code == 403
        own = bearer(_scopes("patient", SYNC_WRITES), patient="pat-1")
        enrolled = client.post("/fhir/Patient/pat-1/$sync-enroll", json=body, headers=own)
        assert enrolled.status_code == 200, enrolled.text
        assert client.post("/fhir/Patient/pat-2/$sync-enroll", json=body, headers=own).status_code == 403
        plans = [s.resource() for s in repo.iter_all("CarePlan")]
        assert [p["subject"]["reference"] for p in plans] == ["Patient/pat-1"]
        assert client.post("/fhir/$sync-candidates", json={"resourceType": "Parameters"}, headers=own).status_code == 403
        candidates = client.post(
            "/fhir/$sync-candidates", json={"resourceType": "Parameters"}, headers=bearer(_scopes("system", SYNC_READS))
        )
        assert candidates.status_code == 200, candidates.text
