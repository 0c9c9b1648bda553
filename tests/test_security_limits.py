"""Limits, each configurable and each answered with an OperationOutcome (or an AR ACK on MLLP): body size,
Bundle entries, ``_count`` (capped, shown in the self link), MLLP message size, per-client request rate."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from interop.api.limits import RateLimiter
from interop.config import get_settings
from interop.ingest.mllp import MllpServer, ack_code, send
from interop.ingest.pipeline import Ingestor
from interop.store import open_repository
from tests.ingest_messages import dispense
from tests.security_support import ALL, bearer, clinical_versions, secured, snapshot
from tests.test_security_auth import _patient


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


def _outcome(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == code
    return str(body["issue"][0]["diagnostics"])


def test_request_body_size(db: str) -> None:
    with secured(db, max_body_bytes=2_000) as (client, repo):
        before = snapshot(repo)
        big = {**_patient("Large", "MRN-1"), "text": {"status": "generated", "div": "<div>" + "x" * 3000 + "</div>"}}
        assert "2000 bytes" in _outcome(client.post("/fhir/Patient", json=big, headers=bearer(ALL)), 413, "too-long")
        assert snapshot(repo)["counts"]["resource"] == before["counts"]["resource"]
        assert client.post("/fhir/Patient", json=_patient("Small", "MRN-2"), headers=bearer(ALL)).status_code == 201


def test_bundle_entry_count(db: str) -> None:
    with secured(db, max_bundle_entries=3) as (client, repo):
        entries = [{"resource": _patient(f"P{n}", f"MRN-{n}"), "request": {"method": "POST", "url": "Patient"}} for n in range(4)]
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        before = clinical_versions(repo)
        assert "at most 3" in _outcome(client.post("/fhir", json=bundle, headers=bearer(ALL)), 413, "too-long")
        assert clinical_versions(repo) == before
        assert client.post("/fhir", json={**bundle, "entry": entries[:3]}, headers=bearer(ALL)).status_code == 200


def test_count_is_capped_at_the_maximum(db: str) -> None:
    """``_count`` above ``max_count`` is lowered to it (FHIR lets a server return fewer); the self link says so."""
    with secured(db, max_count=2) as (client, _):
        for n in range(4):
            client.post("/fhir/Patient", json=_patient(f"P{n}", f"MRN-{n}"), headers=bearer(ALL))
        page = client.get("/fhir/Patient?_count=500", headers=bearer(ALL)).json()
        assert len(page["entry"]) == 2
        self_link = next(link["url"] for link in page["link"] if link["relation"] == "self")
        assert parse_qs(urlsplit(self_link).query)["_count"] == ["2"]
        _outcome(client.get("/fhir/Patient?_count=many", headers=bearer(ALL)), 400, "invalid")


def test_request_rate_per_client(db: str) -> None:
    with secured(db, rate_limit=0.5, rate_burst=3) as (client, _):
        h = bearer("system/Patient.rs", sub="busy-app")
        for _ in range(3):
            assert client.get("/fhir/Patient", headers=h).status_code == 200
        refused = client.get("/fhir/Patient", headers=h)
        assert "per second" in _outcome(refused, 429, "throttled")
        assert int(refused.headers["Retry-After"]) >= 1
        other = bearer("system/Patient.rs", sub="quiet-app")
        assert client.get("/fhir/Patient", headers=other).status_code == 200
        for _ in range(3):
            client.get("/fhir/Patient")  # no token: 401s count against the address
        _outcome(client.get("/fhir/metadata"), 429, "throttled")


def test_token_bucket_refills_at_the_rate() -> None:
    now = [100.0]
    limiter = RateLimiter(2.0, 2, clock=lambda: now[0])
    assert [limiter.take("a"), limiter.take("a"), limiter.take("a")] == [0, 0, 1]
    now[0] += 0.5
    assert limiter.take("a") == 0 and limiter.take("a") == 1
    assert limiter.take("b") == 0
    assert RateLimiter(0, 1).take("a") == 0  # 0 disables


@pytest.fixture
def small_mllp(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("INTEROP_MLLP_MAX_BYTES", "600")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_mllp_message_size_from_settings(small_mllp: None, db: str) -> None:
    repo = open_repository(db)

    async def exchange() -> list[bytes]:
        server = MllpServer(Ingestor(repo), "127.0.0.1", 0)
        assert server.max_message_bytes == 600
        await server.start()
        try:
            messages = [dispense(1), dispense(2) + b"NTE|1||" + b"x" * 700 + b"\r", dispense(3)]
            return await asyncio.to_thread(send, "127.0.0.1", server.bound_port, messages)
        finally:
            await server.stop()

    try:
        acks = asyncio.run(exchange())
        assert [ack_code(a) for a in acks] == ["AA", "AR", "AA"]
        assert b"600 bytes" in acks[1]
    finally:
        repo.close()
