"""The inbound SMS webhook's limits (body size, per-client rate, shared with ``/app``) and its AuditEvents."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import text

from interop.api.app import create_app
from interop.config import Settings
from interop.store import SqlRepository, open_repository
from tests.fhirschema import assert_valid
from tests.outreach_support import PHARMACY, consent, patient, pickup
from tests.security_support import audit_events

SECRET = "inbound-secret-of-the-security-tests"


@contextmanager
def webhook(url: str, **overrides: Any) -> Iterator[tuple[TestClient, SqlRepository]]:
    repo = open_repository(url)
    base: dict[str, Any] = {"database_url": url, "inbound_secret": SECRET, "pharmacy_name": PHARMACY,
                            "audit_enabled": True, "rate_limit": 0}
    now = datetime.now(UTC)
    repo.update(patient("1", "+15550000001", "America/New_York"))
    repo.update(consent("1", "sms", "+15550000001", now - timedelta(days=60)))
    repo.update(pickup("1", now.date() + timedelta(days=6)))
    try:
        with TestClient(create_app(repo, Settings(**{**base, **overrides})), raise_server_exceptions=False) as client:
            yield client, repo
    finally:
        repo.close()


def post(client: TestClient, text_: str, mid: str, *, pad: int = 0) -> Any:
    body = {"from": "+15550000001", "to": "+15559990000", "text": text_ + " " * pad,
            "received_at": datetime.now(UTC).isoformat(), "message_id": mid}
    raw = orjson.dumps(body)
    sig = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return client.post("/inbound/sms", content=raw, headers={"X-Signature": sig, "Content-Type": "application/json"})


def communications(repo: SqlRepository) -> int:
    return len(repo.search("Communication", [("_count", "100")]).matches)


def test_a_reply_is_audited_with_what_it_wrote(sqlite_url: str) -> None:
    with webhook(sqlite_url) as (client, repo):
        answer = post(client, "yes", "a1")
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert post(client, "yes", "a1").json()["action"] == "duplicate"
        [event] = audit_events(repo)
    assert_valid(event)
    assert event["outcome"] == "0" and event["action"] == "C"
    assert {e["what"]["reference"] for e in event["entity"]} == {
        f"Communication/{result['communication']}", f"Appointment/{result['appointment']}"
    }
    assert event["agent"][0]["network"]["address"] == "testclient"


def test_the_audit_event_commits_with_the_write_or_neither_does(sqlite_url: str) -> None:
    with webhook(sqlite_url) as (client, repo):
        with repo.engine.begin() as conn:
            conn.execute(text(
                "CREATE TRIGGER no_audit BEFORE INSERT ON resource WHEN NEW.rtype = 'AuditEvent' "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            ))
        assert post(client, "STOP", "a2").status_code >= 400
        assert communications(repo) == 0, "the reply was stored without its AuditEvent"
        assert repo.read("Consent", repo.search("Consent", []).matches[0].id).version_id == 1
        with repo.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER no_audit"))
        assert post(client, "STOP", "a2").status_code == 200
        assert communications(repo) == 1 and len(audit_events(repo)) == 1


def test_audit_off_writes_none(sqlite_url: str) -> None:
    with webhook(sqlite_url, audit_enabled=False) as (client, repo):
        assert post(client, "yes", "a3").status_code == 200
        assert communications(repo) == 1 and audit_events(repo) == []


def test_a_body_over_the_limit_is_refused_413_unread(sqlite_url: str) -> None:
    with webhook(sqlite_url, inbound_max_bytes=400) as (client, repo):
        assert post(client, "yes", "b1", pad=500).status_code == 413
        assert post(client, "yes", "b2").status_code == 200
        assert communications(repo) == 1


def test_app_and_webhook_share_the_per_client_rate(sqlite_url: str) -> None:
    with webhook(sqlite_url, rate_limit=0.01, rate_burst=3) as (client, repo):
        assert client.get("/app", follow_redirects=False).status_code != 429
        assert post(client, "yes", "r1").status_code == 200
        assert client.get("/app/", follow_redirects=False).status_code != 429
        refused = post(client, "yes", "r2")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert client.get("/app", follow_redirects=False).status_code == 429
        assert communications(repo) == 1
