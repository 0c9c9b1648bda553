"""Shared helpers of the sync service tests: a store on SQLite or PostgreSQL, a patient of the worked example
(medsync.md §2.2) written through a transaction, and queries over what the service stored."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import text

from interop.store import SqlRepository, open_repository
from interop.store.base import Repository
from tests.sync_builders import coverage, dispense, request

TODAY = date(2026, 6, 25)
TABLES = ("resource", "resource_version", "idx_token", "idx_string", "idx_reference", "idx_date", "idx_quantity")

Json = dict[str, Any]


def open_store(request_: pytest.FixtureRequest, sqlite_url: str) -> SqlRepository:
    """The store of one test: a fresh SQLite file, or the run's PostgreSQL database emptied."""
    if request_.param == "sqlite":
        return open_repository(sqlite_url)
    repo = open_repository(request_.getfixturevalue("pg_url"))
    with repo.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    return repo


def patient(pid: str, state: str = "NY") -> Json:
    return {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"family": "Synthetic", "given": [pid]}],
        "address": [{"use": "home", "city": "Albany", "state": state}],
    }


def put(resource: Json) -> Json:
    return {"resource": resource, "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}}


def worked_patient(
    pid: str = "pat-1", *, june: tuple[int, int, int] = (1, 10, 20), extra: list[Json] | None = None
) -> list[Json]:
    """Patient ``pid`` with lisinopril, atorvastatin and metformin last filled on the days ``june`` of June
    2026 (Jun 1, 10, 20 as in medsync.md §2.2), each resource id prefixed with ``pid``."""
    ref = f"Patient/{pid}"
    lis, ator, met = f"{pid}-lis", f"{pid}-ator", f"{pid}-met"
    out = [
        patient(pid),
        request(lis, "lisinopril 10 mg tablet", rxnorm="314076", patient=ref),
        request(ator, "atorvastatin 20 mg tablet", rxnorm="617310", patient=ref),
        request(met, "metformin 500 mg tablet", quantity=60, rxnorm="861007", patient=ref),
        dispense(f"{pid}-d-lis", lis, date(2026, 6, june[0]), patient=ref),
        dispense(f"{pid}-d-ator", ator, date(2026, 6, june[1]), patient=ref),
        dispense(f"{pid}-d-met", met, date(2026, 6, june[2]), quantity=60, patient=ref),
        {**coverage(patient=ref), "id": f"{pid}-cov"},
    ]
    return out + (extra or [])


def seed(repo: Repository, resources: list[Json]) -> None:
    repo.process_bundle({"resourceType": "Bundle", "type": "transaction", "entry": [put(r) for r in resources]})


def current(repo: Repository, resource_type: str) -> list[Json]:
    return [s.resource() for s in repo.iter_all(resource_type)]


def sync_plans(repo: Repository, status: str | None = None) -> list[Json]:
    return [r for r in current(repo, "CarePlan") if status is None or r["status"] == status]


def provenances(repo: Repository) -> list[Json]:
    return current(repo, "Provenance")
