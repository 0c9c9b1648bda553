"""Shared helpers of the API tests: a recording client, the response schema check, a live server.

Every JSON body any API test receives goes through :func:`record`; ``test_api_zz_schema.py`` (run last)
asserts that all of them validate against the official R4 JSON schema. Bundles are checked entry by entry
(the schema's ``ResourceList`` ``oneOf`` would otherwise take seconds per entry).
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from fastapi.testclient import TestClient

from interop.api import create_app
from interop.store import open_repository
from interop.store.base import Repository
from tests.fhirschema import schema_errors

ROOT = Path(__file__).resolve().parent.parent

SERVED = [
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "Medication",
    "MedicationRequest",
    "MedicationDispense",
    "Appointment",
    "Schedule",
    "Slot",
    "Encounter",
    "CarePlan",
    "Task",
    "Communication",
    "CommunicationRequest",
    "Consent",
    "Coverage",
    "Claim",
    "ClaimResponse",
    "MeasureReport",
    "Questionnaire",
    "QuestionnaireResponse",
    "AuditEvent",
    "Provenance",
    "Binary",
]
"""The 26 resource types issue 2 asks the server to serve: the tests' own list, not the server's."""

RECORDED: list[tuple[str, Any]] = []
"""(where, parsed JSON body) of every API response the tests received, in order."""


def record(where: str, content: bytes, content_type: str | None) -> None:
    """Keep one response body for the schema check (JSON bodies only; empty bodies have nothing to check;
    the OpenAPI document is not FHIR)."""
    if not content or not content_type or "json" not in content_type or "/openapi.json" in where:
        return
    RECORDED.append((where, orjson.loads(content)))


def response_errors(doc: Any) -> list[str]:
    """Schema violations of one response body; Bundle entries and their outcomes are checked by type."""
    if not isinstance(doc, dict):
        return [f"not a JSON object: {str(doc)[:80]}"]
    if doc.get("resourceType") != "Bundle":
        return schema_errors(doc)
    errors: list[str] = []
    shell = dict(doc)
    entries = []
    for entry in doc.get("entry", []):
        entry = dict(entry)
        resource = entry.pop("resource", None)
        if resource is not None:
            errors += response_errors(resource)
        response = entry.get("response")
        if isinstance(response, dict) and "outcome" in response:
            errors += schema_errors(response["outcome"])
            entry["response"] = {k: v for k, v in response.items() if k != "outcome"}
        entries.append(entry)
    if entries:
        shell["entry"] = entries
    return errors + schema_errors(shell)


class RecordingClient(TestClient):
    """A TestClient that records every JSON response body it receives."""

    def request(self, method: str, url: httpx._types.URLTypes, *args: Any, **kwargs: Any) -> httpx.Response:  # type: ignore[override]
        response = super().request(method, url, *args, **kwargs)
        record(
            f"{method} {url} -> {response.status_code}",
            response.content,
            response.headers.get("content-type"),
        )
        return response


def store_url(kind: str, tmp_path: Path, request: Any) -> str:
    """A database URL for a parametrized backend: a fresh SQLite file, or the session's PostgreSQL."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


@contextmanager
def api(url: str) -> Iterator[tuple[RecordingClient, Repository]]:
    """An in-process API client over a repository opened at ``url``."""
    repo = open_repository(url)
    try:
        with RecordingClient(create_app(repo)) as client:
            yield client, repo
    finally:
        repo.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Live:
    """A running ``interop serve``: its FHIR base URL, its MLLP port (0 when off), and what it printed
    (filled in once it stopped)."""

    base: str
    mllp_port: int = 0
    output: str = ""


@contextmanager
def live_server(
    db_url: str,
    *extra: str,
    env: dict[str, str] | None = None,
    mllp_port: int = 0,
    tls: ssl.SSLContext | None = None,
) -> Iterator[Live]:
    """``interop serve`` in a subprocess on a free 127.0.0.1 port; yields it running, stops it after.

    ``env`` adds environment variables; with ``tls`` (a client context trusting the server's CA) the API is
    reached over HTTPS, which the server must be configured for through ``env``.
    """
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "interop", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--db", db_url, "--mllp-port", str(mllp_port), *extra],
        cwd=ROOT,
        env={**os.environ, "INTEROP_LOG_LEVEL": "WARNING", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    live = Live(f"{'https' if tls else 'http'}://127.0.0.1:{port}/fhir", mllp_port)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                raise RuntimeError(f"interop serve exited with {proc.returncode}:\n{out}")
            try:
                ready = httpx.get(f"{live.base}/metadata", timeout=1, verify=tls or True)
                if ready.status_code == 200:
                    record("GET /metadata (live) -> 200", ready.content, ready.headers.get("content-type"))
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"interop serve did not answer at {live.base} within 30 s")
            time.sleep(0.1)
        yield live
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            live.output = proc.stdout.read().decode(errors="replace")
            proc.stdout.close()
