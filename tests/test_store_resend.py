"""Resent resources (same content apart from meta) on SQLite and PostgreSQL: a new version every time, the
index rows kept as they were except ``_lastUpdated``, which moves to the new version's instant."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import select

import interop.store.sql
from interop.store import SqlRepository
from interop.store.indexing import date_range
from interop.store.schema import INDEX_TABLES
from tests.storerepo import repo

__all__ = ["repo"]


def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources
        ],
    }


def _patient(family: str = "Resend", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "resend-1",
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.1", "value": "R1"}],
        "name": [{"family": family, "given": ["Ann"]}],
        "birthDate": "1960-01-01",
        **extra,
    }


def _dispense() -> dict[str, Any]:
    return {
        "resourceType": "MedicationDispense",
        "id": "resend-md",
        "status": "completed",
        "subject": {"reference": "Patient/resend-1"},
        "quantity": {"value": 30, "unit": "tablet"},
        "whenHandedOver": "2026-01-05",
    }


def _index(repo: SqlRepository) -> dict[str, set[tuple[Any, ...]]]:
    """Every index row in the database, without the ``_lastUpdated`` ones, as sets per table."""
    out: dict[str, set[tuple[Any, ...]]] = {}
    with repo.engine.connect() as conn:
        for kind, table in INDEX_TABLES.items():
            rows = conn.execute(select(table).where(table.c.param != "_lastUpdated")).all()
            out[kind] = {tuple(r) for r in rows}
    return out


def _last_updated_rows(repo: SqlRepository) -> list[tuple[float, float]]:
    table = INDEX_TABLES["date"]
    with repo.engine.connect() as conn:
        rows = conn.execute(select(table.c.low, table.c.high).where(table.c.param == "_lastUpdated")).all()
    return sorted((float(low), float(high)) for low, high in rows)


def _ids(repo: SqlRepository, rtype: str, params: list[tuple[str, str]]) -> list[str]:
    return [s.id for s in repo.search(rtype, params).matches]


def _extractions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The types of the resources the write path extracts index rows for, from now on."""
    seen: list[str] = []
    extract = interop.store.sql.index_tuples

    def counting(resource: dict[str, Any]) -> dict[str, list[tuple[Any, ...]]]:
        seen.append(resource["resourceType"])
        return extract(resource)

    monkeypatch.setattr(interop.store.sql, "index_tuples", counting)
    return seen


def test_resend_makes_new_versions_and_keeps_the_index(repo: SqlRepository, monkeypatch: pytest.MonkeyPatch) -> None:
    repo.process_bundle(_bundle(_patient(), _dispense()))
    before = _index(repo)
    extracted = _extractions(monkeypatch)
    response = repo.process_bundle(_bundle(_patient(), _dispense()))
    assert [e["response"]["status"] for e in response["entry"]] == ["200 OK", "200 OK"]
    assert [e["response"]["etag"] for e in response["entry"]] == ['W/"2"', 'W/"2"']
    assert extracted == []  # nothing was extracted again: the rows were kept
    assert _index(repo) == before
    stored = repo.read("Patient", "resend-1")
    assert stored.version_id == 2
    span = date_range(stored.last_updated)
    assert span is not None
    assert _last_updated_rows(repo) == [span, span]
    assert _ids(repo, "Patient", [("_lastUpdated", f"ge{stored.last_updated}")]) == ["resend-1"]
    assert _ids(repo, "Patient", [("identifier", "urn:oid:2.16.840.1.113883.3.1|R1")]) == ["resend-1"]
    assert _ids(repo, "MedicationDispense", [("patient", "resend-1"), ("status", "completed")]) == ["resend-md"]
    assert repo.vread("Patient", "resend-1", 1).version_id == 1


def test_resend_with_other_meta_is_still_a_resend(repo: SqlRepository, monkeypatch: pytest.MonkeyPatch) -> None:
    repo.update(_patient())
    extracted = _extractions(monkeypatch)
    result = repo.update(_patient(meta={"tag": [{"system": "urn:x", "code": "resent"}]}))
    assert extracted == []
    assert orjson.loads(result.stored.content)["meta"]["tag"] == [{"system": "urn:x", "code": "resent"}]
    assert _ids(repo, "Patient", [("family", "resend")]) == ["resend-1"]


def test_changed_content_is_indexed_again(repo: SqlRepository, monkeypatch: pytest.MonkeyPatch) -> None:
    repo.process_bundle(_bundle(_patient()))
    extracted = _extractions(monkeypatch)
    repo.process_bundle(_bundle(_patient(family="Changed")))
    assert extracted == ["Patient"]
    assert _ids(repo, "Patient", [("family", "resend")]) == []
    assert _ids(repo, "Patient", [("family", "changed")]) == ["resend-1"]
    repo.update(_patient(family="Changed", gender="female"))  # an element added is a change too
    assert _ids(repo, "Patient", [("gender", "female")]) == ["resend-1"]


def test_resend_after_delete_is_indexed_again(repo: SqlRepository) -> None:
    repo.update(_patient())
    repo.delete("Patient", "resend-1")
    assert _ids(repo, "Patient", [("family", "resend")]) == []
    result = repo.update(_patient())
    assert result.created and result.stored.version_id == 3
    assert _ids(repo, "Patient", [("family", "resend")]) == ["resend-1"]
