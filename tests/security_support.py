"""Shared helpers of the security tests: an app with authorization and audit on, tokens, table snapshots."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jwt
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from interop.api import create_app
from interop.api.tokens import mint
from interop.config import Settings
from interop.store import open_repository
from interop.store.base import Repository
from interop.store.schema import metadata, resource_version

SECRET = "test-secret-of-the-security-tests-0123456789"
ALL = "system/*.cruds"
AUDITOR = "system/AuditEvent.rs"


def settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "auth_enabled": True,
        "auth_secret": SECRET,
        "audit_enabled": True,
        "rate_limit": 0,
    }
    return Settings(**{**base, **overrides})


def token(scope: str, *, patient: str | None = None, ttl: int = 300, sub: str = "tester") -> str:
    return mint(settings(), scope, ttl, subject=sub, patient=patient)


def bearer(scope: str, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(scope, **kwargs)}"}


def expired(scope: str = ALL) -> dict[str, str]:
    """A token that expired ten minutes ago (beyond the leeway)."""
    now = int(time.time())
    claims = {"sub": "tester", "scope": scope, "iat": now - 1200, "exp": now - 600, "iss": "medsync-interop"}
    return {"Authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}


def forged(scope: str = ALL) -> dict[str, str]:
    """A well-formed token signed with another secret."""
    now = int(time.time())
    claims = {"sub": "tester", "scope": scope, "iat": now, "exp": now + 300}
    return {"Authorization": f"Bearer {jwt.encode(claims, 'another-secret-another-secret-0123456789', algorithm='HS256')}"}


@contextmanager
def secured(url: str, **overrides: Any) -> Iterator[tuple[TestClient, Repository]]:
    """An in-process API client (authorization and audit on) over a repository at ``url``."""
    repo = open_repository(url)
    try:
        with TestClient(create_app(repo, settings(**overrides))) as client:
            yield client, repo
    finally:
        repo.close()


def snapshot(repo: Repository) -> dict[str, Any]:
    """Row counts of every store table and the stored versions, read from the database directly."""
    engine = repo.engine  # type: ignore[attr-defined]  # the SQL repository's
    with engine.connect() as conn:
        counts = {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in metadata.sorted_tables}
        rv = resource_version.c
        versions = set(conn.execute(select(rv.rtype, rv.id, rv.version_id)).all())
    return {"counts": counts, "versions": versions}


def audit_events(repo: Repository) -> list[dict[str, Any]]:
    """Every stored AuditEvent, oldest first."""
    return sorted((s.resource() for s in repo.iter_all("AuditEvent")), key=lambda e: str(e["recorded"]))


def clinical_versions(repo: Repository) -> set[tuple[str, str, int]]:
    """The stored versions of every resource but AuditEvents (which refused requests may add)."""
    return {v for v in snapshot(repo)["versions"] if v[0] != "AuditEvent"}
