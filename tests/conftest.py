"""Shared fixtures: the corpus in ../shared, a real PostgreSQL database per run, official FHIR assets."""

from __future__ import annotations

import os
import sysconfig
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
IN_CI = os.environ.get("CI") == "true"
PG_ADMIN_URL = os.environ.get("INTEROP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# Feature tests exercise the API without tokens, audit trail or rate limit; tests/test_security_*.py and
# tests/test_api_schemathesis.py build their apps with Settings(auth_enabled=True, ...) explicitly.
for _name, _value in (("INTEROP_AUTH_ENABLED", "false"), ("INTEROP_AUDIT_ENABLED", "false"), ("INTEROP_RATE_LIMIT", "0")):
    os.environ.setdefault(_name, _value)


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to test stale mypyc builds: in an editable install a compiled module's .so sits beside its
    .py and is imported instead of it, so a .py edited after the last install would go untested."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    stale = sorted(
        str(source.relative_to(ROOT))
        for package in ("interop", "adapters")
        for built in (ROOT / package).rglob(f"*{suffix}")
        if (source := built.with_name(built.name.removesuffix(suffix) + ".py")).exists()
        and source.stat().st_mtime > built.stat().st_mtime
    )
    if stale:
        pytest.exit(f"edited since their mypyc build, so the old compiled code would be tested: {', '.join(stale)}."
                    " Rebuild with `make test` (or `.venv/bin/pip install -e '.[test,bench]'`; "
                    "INTEROP_PURE_PYTHON=1 for no compiling).", returncode=4)


def _missing(reason: str) -> None:
    """Skip with ``reason`` on a developer machine; fail under CI=true, where nothing may be skipped."""
    if IN_CI:
        pytest.fail(reason + " (CI=true: this must run)")
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def _record_fhir_responses() -> Iterator[None]:
    """Every FHIR JSON response any TestClient in the suite receives is kept for tests/test_zz_api_schema.py."""
    from starlette.testclient import TestClient

    from tests.api_support import RecordingClient, record

    original = TestClient.request

    def request(self: TestClient, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
        response = original(self, method, url, *args, **kwargs)
        content_type = response.headers.get("content-type", "")
        if "fhir+json" in content_type and not isinstance(self, RecordingClient):
            record(f"{method} {url} -> {response.status_code}", response.content, content_type)
        return response

    TestClient.request = request  # type: ignore[method-assign]
    yield
    TestClient.request = original  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def corpus() -> Path:
    """../shared/corpus, read in place (never copied into the project)."""
    if not CORPUS.is_dir():
        _missing(f"the shared corpus is not at {CORPUS}")
    return CORPUS


def corpus_files(subdir: str, pattern: str) -> list[Path]:
    """For parametrizing: the corpus files matching ``pattern`` (empty list when the corpus is absent)."""
    folder = CORPUS / subdir
    return sorted(folder.glob(pattern)) if folder.is_dir() else []


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped afterwards."""
    try:
        from sqlalchemy import create_engine, text

        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        name = f"interop_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # the server is absent or refuses us
        _missing(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
        raise  # unreachable: _missing raises
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def fresh_pg_url(pg_url: str) -> str:
    """An empty PostgreSQL database of its own for one test (the session's ``pg_url`` is shared)."""
    from sqlalchemy import create_engine, text

    name = f"interop_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    _FRESH.append(name)
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


_FRESH: list[str] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Drop the databases ``fresh_pg_url`` made."""
    if not _FRESH:
        return
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in _FRESH:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file of its own for one test."""
    return f"sqlite:///{tmp_path / 'store.db'}"
