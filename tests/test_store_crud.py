"""The store's interactions on SQLite and PostgreSQL: CRUD, versions, history, conditional ops, locking,
migrations, errors."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select, text

import interop.store.sql
from interop.store import (
    Conflict,
    Gone,
    InvalidRequest,
    InvalidResource,
    MultipleMatches,
    NotFound,
    SqlRepository,
    Unavailable,
    VersionConflict,
    open_repository,
)
from interop.store.schema import idx_token, metadata, resource, resource_version
from tests.storerepo import repo, row_counts

__all__ = ["repo"]


def patient(family: str = "Doe", mrn: str | None = None, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {"resourceType": "Patient", "name": [{"family": family}], **extra}
    if mrn is not None:
        body["identifier"] = [{"system": "urn:oid:2.16.840.1.113883.3.1", "value": mrn}]
    return body


def test_create_assigns_uuid_id_and_meta_keeping_other_meta(repo: SqlRepository) -> None:
    body = patient(id="client-chosen", meta={"profile": ["http://hl7.org/fhir/StructureDefinition/Patient"],
                                               "tag": [{"code": "t"}], "versionId": "99"})
    result = repo.create(body)
    stored = result.stored
    assert result.created
    assert stored.id != "client-chosen"
    assert str(uuid.UUID(stored.id)) == stored.id
    assert stored.version_id == 1
    assert stored.method == "POST"
    assert datetime.fromisoformat(stored.last_updated).utcoffset() is not None
    assert len(stored.last_updated) == len("2026-11-26T10:01:32.123456+00:00")
    doc = orjson.loads(stored.content)
    assert doc["id"] == stored.id
    assert doc["meta"]["versionId"] == "1"
    assert doc["meta"]["lastUpdated"] == stored.last_updated
    assert doc["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/Patient"]
    assert doc["meta"]["tag"] == [{"code": "t"}]
    assert "versionId" not in body["meta"] or body["meta"]["versionId"] == "99"  # the caller's dict is untouched
    read = repo.read("Patient", stored.id)
    assert orjson.loads(read.content) == doc
    assert read.etag == 'W/"1"'


def test_read_unknown_is_not_found(repo: SqlRepository) -> None:
    with pytest.raises(NotFound):
        repo.read("Patient", "nope")
    with pytest.raises(NotFound):
        repo.vread("Patient", "nope", 1)


def test_update_creates_versions_and_vread_returns_each(repo: SqlRepository) -> None:
    first = repo.create(patient("One")).stored
    second = repo.update({**first.resource(), "name": [{"family": "Two"}]})
    third = repo.update({**second.stored.resource(), "name": [{"family": "Three"}]})
    assert not second.created and not third.created
    assert (second.stored.version_id, third.stored.version_id) == (2, 3)
    assert third.stored.method == "PUT"
    for version, family in ((1, "One"), (2, "Two"), (3, "Three")):
        doc = repo.vread("Patient", first.id, version).resource()
        assert doc["name"] == [{"family": family}]
        assert doc["meta"]["versionId"] == str(version)
    assert repo.read("Patient", first.id).resource()["name"] == [{"family": "Three"}]
    with pytest.raises(NotFound):
        repo.vread("Patient", first.id, 4)
    counts = row_counts(repo)
    assert counts["resource"] == 1 and counts["resource_version"] == 3


def test_update_with_client_id_creates(repo: SqlRepository) -> None:
    result = repo.update(patient(id="pat-1"))
    assert result.created
    assert result.stored.id == "pat-1" and result.stored.version_id == 1
    again = repo.update(patient("Roe", id="pat-1"))
    assert not again.created and again.stored.version_id == 2


def test_update_rejects_bad_id_and_missing_id(repo: SqlRepository) -> None:
    with pytest.raises(InvalidRequest):
        repo.update(patient(id="has space"))
    with pytest.raises(InvalidResource):
        repo.update(patient())
    with pytest.raises(InvalidResource):
        repo.create({"resourceType": 7})


def test_if_match_mismatch_is_version_conflict(repo: SqlRepository) -> None:
    stored = repo.update(patient(id="p")).stored
    repo.update(patient("B", id="p"), if_match=1)
    with pytest.raises(VersionConflict):
        repo.update(patient("C", id="p"), if_match=1)
    with pytest.raises(VersionConflict):
        repo.update(patient("C", id="other"), if_match=1)
    assert repo.read("Patient", stored.id).version_id == 2


def test_delete_keeps_marker_and_read_is_gone(repo: SqlRepository) -> None:
    stored = repo.create(patient(mrn="42")).stored
    marker = repo.delete("Patient", stored.id)
    assert marker is not None and marker.deleted and marker.version_id == 2 and marker.content == b""
    with pytest.raises(Gone):
        repo.read("Patient", stored.id)
    with pytest.raises(Gone):
        repo.vread("Patient", stored.id, 2)
    assert repo.vread("Patient", stored.id, 1).resource()["identifier"][0]["value"] == "42"
    assert repo.delete("Patient", stored.id) is None
    assert repo.delete("Patient", "never-was") is None
    with repo.engine.connect() as conn:
        assert conn.execute(select(idx_token.c.rid)).all() == []  # a deleted resource is not searchable
    revived = repo.update(patient(id=stored.id))
    assert revived.created and revived.stored.version_id == 3


def test_history_instance_type_system_newest_first_with_paging_and_since(repo: SqlRepository) -> None:
    a = repo.update(patient("A", id="a")).stored
    repo.update(patient("A2", id="a"))
    repo.update({"resourceType": "Organization", "id": "o", "name": "Pharmacy"})
    cut = repo.update(patient("B", id="b")).stored.last_updated
    repo.delete("Patient", "a")

    instance = repo.history("Patient", "a")
    assert [(e.version_id, e.method, e.deleted) for e in instance.entries] == [
        (3, "DELETE", True),
        (2, "PUT", False),
        (1, "PUT", False),
    ]
    assert instance.total == 3 and instance.next_cursor is None
    assert instance.entries[2].resource() == a.resource()

    typed = repo.history("Patient")
    assert [(e.id, e.version_id) for e in typed.entries] == [("a", 3), ("b", 1), ("a", 2), ("a", 1)]

    seen: list[tuple[str, int]] = []
    cursor: str | None = None
    while True:
        page = repo.history(count=2, cursor=cursor)
        assert page.total == 5
        seen += [(e.id, e.version_id) for e in page.entries]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [("a", 3), ("b", 1), ("o", 1), ("a", 2), ("a", 1)]

    counted = repo.history("Patient", count=0)
    assert counted.entries == [] and counted.total == 4 and counted.next_cursor is None

    since = repo.history(since=cut)
    assert [(e.id, e.version_id) for e in since.entries] == [("a", 3), ("b", 1)]
    assert since.total == 2
    with pytest.raises(NotFound):
        repo.history("Patient", "zzz")
    with pytest.raises(InvalidRequest):
        repo.history(cursor="garbage!")
    with pytest.raises(InvalidRequest):
        repo.history(cursor=base64.urlsafe_b64encode(b'[{"a": 1}, 2, 3]').decode())
    with pytest.raises(InvalidRequest):
        repo.history(since="yesterday")


def test_conditional_create(repo: SqlRepository) -> None:
    first = repo.create(patient(mrn="123"), if_none_exist="identifier=urn:oid:2.16.840.1.113883.3.1|123")
    assert first.created
    again = repo.create(patient("Other", mrn="123"), if_none_exist="identifier=urn:oid:2.16.840.1.113883.3.1|123")
    assert not again.created and again.stored.id == first.stored.id and again.stored.version_id == 1
    repo.create(patient(mrn="123"))
    with pytest.raises(MultipleMatches):
        repo.create(patient(mrn="123"), if_none_exist="identifier=123")
    assert row_counts(repo)["resource"] == 2


def test_conditional_update(repo: SqlRepository) -> None:
    created = repo.conditional_update("Patient", "identifier=77", patient("A", mrn="77"))
    assert created.created
    updated = repo.conditional_update("Patient", "identifier=77", patient("B", mrn="77"))
    assert not updated.created
    assert updated.stored.id == created.stored.id and updated.stored.version_id == 2
    with pytest.raises(VersionConflict):
        repo.conditional_update("Patient", "identifier=77", patient("C", mrn="77"), if_match=1)
    with pytest.raises(InvalidRequest):
        repo.conditional_update("Patient", "identifier=77", patient("C", mrn="77", id="different"))
    with_id = repo.conditional_update("Patient", "identifier=88", patient(mrn="88", id="pat-88"))
    assert with_id.created and with_id.stored.id == "pat-88"
    repo.create(patient(mrn="77"))
    with pytest.raises(MultipleMatches):
        repo.conditional_update("Patient", "identifier=77", patient(mrn="77"))


def test_conditional_delete(repo: SqlRepository) -> None:
    assert repo.conditional_delete("Patient", "identifier=5") is None
    stored = repo.create(patient(mrn="5")).stored
    marker = repo.conditional_delete("Patient", "identifier=5")
    assert marker is not None and marker.id == stored.id
    with pytest.raises(Gone):
        repo.read("Patient", stored.id)
    repo.create(patient(mrn="6"))
    repo.create(patient(mrn="6"))
    with pytest.raises(MultipleMatches):
        repo.conditional_delete("Patient", "identifier=6")
    with pytest.raises(InvalidRequest):
        repo.conditional_delete("Patient", "")


def test_search_is_served_from_the_index(repo: SqlRepository) -> None:
    kept = repo.create(patient("Smith", mrn="1")).stored
    repo.create(patient("Jones", mrn="2"))
    result = repo.search("Patient", [("identifier", "1")])
    assert [s.id for s in result.matches] == [kept.id]
    repo.update({**kept.resource(), "identifier": [{"value": "3"}]})
    assert repo.search("Patient", [("identifier", "1")]).matches == []
    assert [s.id for s in repo.search("Patient", [("identifier", "3")]).matches] == [kept.id]


def test_session_commits_together_or_not_at_all(repo: SqlRepository) -> None:
    with repo.session() as s:
        a = s.create(patient("A")).stored
        s.update({**a.resource(), "gender": "female"})
        assert s.read("Patient", a.id).version_id == 2
    assert repo.read("Patient", a.id).version_id == 2
    before = row_counts(repo)
    with pytest.raises(VersionConflict), repo.session() as s:
        s.create(patient("B"))
        s.update(patient(id=a.id), if_match=1)
    assert row_counts(repo) == before


def test_iter_all_streams_current_resources(repo: SqlRepository) -> None:
    with repo.session() as s:
        ids = {s.create(patient(str(i))).stored.id for i in range(2500)}
        s.create({"resourceType": "Organization"})
    gone = sorted(ids)[0]
    repo.delete("Patient", gone)
    streamed = list(repo.iter_all("Patient"))
    assert {s.id for s in streamed} == ids - {gone}
    assert all(orjson.loads(s.content)["resourceType"] == "Patient" for s in streamed[:5])


def test_concurrent_if_match_update_exactly_one_wins(repo: SqlRepository) -> None:
    repo.update(patient(id="race"))
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def contender(family: str) -> None:
        barrier.wait()
        try:
            with repo.session() as s:
                s.update(patient(family, id="race"), if_match=1)
                time.sleep(0.3)  # hold the row while the other contender tries
            outcomes.append("won")
        except VersionConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=contender, args=(name,)) for name in ("A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "won"]
    assert repo.read("Patient", "race").version_id == 2
    assert len(repo.history("Patient", "race").entries) == 2


@pytest.mark.postgres
def test_concurrent_create_of_same_id_is_conflict_on_postgres(pg_url: str) -> None:
    repository = open_repository(pg_url)
    inserted = threading.Event()
    outcomes: list[str] = []
    key = f"dup-{uuid.uuid4().hex[:8]}"

    def first() -> None:
        with repository.session() as s:
            s.update(patient(id=key))
            inserted.set()
            time.sleep(0.3)
        outcomes.append("won")

    def second() -> None:
        inserted.wait()
        try:
            repository.update(patient(id=key))
            outcomes.append("won")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["conflict", "won"]
    finally:
        repository.close()


def test_unreachable_database_is_unavailable() -> None:
    with pytest.raises(Unavailable):
        open_repository("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(Unavailable):
        open_repository("sqlite:////nonexistent-folder/store.db")


def _schema_of(url: str) -> tuple[set[str], list[object], str | None]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return tables, diff, version
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_alembic_creates_schema_on_empty_database_and_is_idempotent(
    backend: str, sqlite_url: str, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = sqlite_url
    else:
        pg = request.getfixturevalue("pg_url")
        name = f"interop_mig_{uuid.uuid4().hex[:10]}"
        admin = create_engine(pg.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = pg.rsplit("/", 1)[0] + "/" + name
    try:
        first = open_repository(url)
        first.update(patient(id="kept"))
        first.close()
        tables, diff, version = _schema_of(url)
        assert tables == set(metadata.tables) | {"alembic_version"}
        assert diff == []
        assert version == "0001"
        second = open_repository(url)
        assert second.read("Patient", "kept").version_id == 1
        second.close()
        assert _schema_of(url)[2] == "0001"
    finally:
        if backend == "postgres":
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            admin.dispose()


def test_versions_table_holds_every_version(repo: SqlRepository) -> None:
    stored = repo.create(patient("A")).stored
    repo.update({**stored.resource(), "active": True})
    repo.delete("Patient", stored.id)
    with repo.engine.connect() as conn:
        rows = conn.execute(
            select(resource_version.c.version_id, resource_version.c.method)
            .where(resource_version.c.id == stored.id)
            .order_by(resource_version.c.version_id)
        ).all()
        current = conn.execute(select(resource.c.version_id, resource.c.deleted)).one()
    assert [tuple(r) for r in rows] == [(1, "POST"), (2, "PUT"), (3, "DELETE")]
    assert tuple(current) == (3, True)


def test_value_the_database_refuses_is_invalid_resource_not_a_crash(repo: SqlRepository) -> None:
    body = patient(id="nul")
    body["name"] = [{"family": "a\u0000b"}]
    if repo.dialect_name == "postgresql":
        with pytest.raises(InvalidResource):
            repo.update(body)
        assert row_counts(repo)["resource"] == 0
    else:
        assert repo.update(body).created
        assert repo.read("Patient", "nul").resource()["name"] == [{"family": "a\u0000b"}]


@pytest.mark.postgres
def test_lost_postgres_connections_answer_unavailable_once_then_recover(pg_url: str) -> None:
    repository = open_repository(pg_url)
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    name = pg_url.rsplit("/", 1)[1]

    def kill_backends() -> None:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"),
                {"n": name},
            )

    try:
        stored = repository.update(patient(id=f"svc-{uuid.uuid4().hex[:8]}")).stored
        repository.read("Patient", stored.id)
        kill_backends()
        with pytest.raises(Unavailable):
            repository.read("Patient", stored.id)
        assert repository.read("Patient", stored.id).version_id == 1
        kill_backends()
        with pytest.raises(Unavailable):
            repository.vread("Patient", stored.id, 1)
        assert repository.vread("Patient", stored.id, 1).id == stored.id
    finally:
        repository.close()
        admin.dispose()


def test_migrations_run_from_a_url_and_downgrade_to_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    config = Config()
    config.set_main_option("script_location", str(Path(interop.store.sql.__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "head")
    assert _schema_of(url)[0] == set(metadata.tables) | {"alembic_version"}
    command.downgrade(config, "base")
    assert _schema_of(url)[0] == {"alembic_version"}


def test_resource_the_extractors_cannot_index_is_invalid_and_nothing_is_written(
    repo: SqlRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    def choke(resource: dict[str, object]) -> dict[str, list[dict[str, object]]]:
        raise TypeError("object of type 'int' has no len()")

    monkeypatch.setattr(interop.store.sql, "index_tuples", choke)
    with pytest.raises(InvalidResource) as caught:
        repo.update({"resourceType": "Patient", "id": "odd", "identifier": [{"system": "urn:x", "value": 7}]})
    assert "Patient/odd" in caught.value.message
    assert row_counts(repo)["resource"] == 0


@pytest.mark.postgres
def test_plain_postgresql_url_uses_psycopg_3(pg_url: str) -> None:
    repository = open_repository(pg_url.replace("postgresql+psycopg://", "postgresql://"))
    try:
        assert repository.engine.url.drivername == "postgresql+psycopg"
        assert repository.dialect_name == "postgresql"
    finally:
        repository.close()
    with pytest.raises(ValueError, match="unsupported database URL"):
        open_repository("mysql://localhost/store")
