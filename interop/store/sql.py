"""The FHIR repository on SQLAlchemy Core: one implementation for SQLite (default) and PostgreSQL.

Every write stamps ``id``/``meta.versionId``/``meta.lastUpdated`` (FHIR R4 Resource.meta) into the JSON,
keeps the version in ``resource_version`` and rebuilds the resource's search index rows (a resend of the
same content keeps them and moves only its ``_lastUpdated`` row); reads return the stored JSON text as
bytes without parsing it. Writes are batched (one statement per table per call) so a transaction Bundle
costs a handful of round trips, not a few per entry.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Select,
    Table,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool
from sqlalchemy.sql.elements import ColumnElement

from interop.config import get_settings
from interop.store.base import (
    Conflict,
    Gone,
    HistoryPage,
    InvalidRequest,
    InvalidResource,
    MultipleMatches,
    NotFound,
    Resource,
    SearchParams,
    SearchResult,
    Stored,
    Unavailable,
    VersionConflict,
    WriteResult,
)
from interop.store.indexing import COLUMNS, MAX_INSTANT, MIN_INSTANT, date_range, index_tuples
from interop.store.schema import INDEX_TABLES, idx_date, resource, resource_version
from interop.store.search import match_rids, run_search

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
"""FHIR R4 ``id`` datatype: 1-64 of A-Z a-z 0-9 - ."""
_TYPE = re.compile(r"[A-Z][A-Za-z]{0,63}")
_CHUNK = 500
"""Most values bound into one IN list (far below SQLite's and PostgreSQL's parameter limits)."""
_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 0x1F4D5E7  # pg_advisory_xact_lock key serializing schema upgrades


def now_instant() -> str:
    """The current UTC instant as the store writes ``meta.lastUpdated``: microseconds and ``+00:00``."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def check_type(resource_type: object) -> str:
    """``resource_type`` if it is a well-formed FHIR type name, else InvalidRequest."""
    if not isinstance(resource_type, str) or not _TYPE.fullmatch(resource_type):
        raise InvalidRequest(f"{resource_type!r} is not a FHIR resource type name")
    return resource_type


def check_id(id: object) -> str:
    """``id`` if it is a valid FHIR id (1-64 of ``[A-Za-z0-9-.]``), else InvalidRequest."""
    if not isinstance(id, str) or not _ID.fullmatch(id):
        raise InvalidRequest(f"{id!r} is not a valid FHIR id (1-64 characters of A-Z a-z 0-9 - .)")
    return id


def parse_query(query: str) -> list[tuple[str, str]]:
    """A conditional-interaction query string (``identifier=http://x|123``) as ordered search parameters."""
    params = parse_qsl(query.lstrip("?"), keep_blank_values=True)
    if not params:
        raise InvalidRequest(f"conditional criteria {query!r} name no search parameter")
    return params


def normalize_instant(value: str) -> str:
    """A client's FHIR instant or dateTime (``_since``) normalized to the stored ``last_updated`` format."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{value!r} is not a FHIR instant") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat(timespec="microseconds")


# ------------------------------------------------------------------------------------ statements
class _Prepared:
    """A SELECT compiled once per dialect and run with ``exec_driver_sql``: the hot read path skips
    SQLAlchemy's per-call statement cache lookup. Values come back as the driver returns them."""

    def __init__(self, statement: Select[Any]) -> None:
        self._statement = statement
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None]] = {}

    def bound(self, dialect: Dialect, params: dict[str, Any]) -> tuple[str, Any]:
        """The SQL text for ``dialect`` and ``params`` in the driver's parameter style."""
        entry = self._compiled.get(dialect.name)
        if entry is None:
            compiled = self._statement.compile(dialect=dialect)
            order = tuple(compiled.positiontup or ()) if compiled.positional else None
            entry = self._compiled[dialect.name] = (compiled.string, order)
        sql, order = entry
        return sql, (tuple(params[key] for key in order) if order is not None else params)

    def run(self, conn: Connection, params: dict[str, Any]) -> Any:
        sql, args = self.bound(conn.dialect, params)
        return conn.exec_driver_sql(sql, args)


class _BulkInsert:
    """An INSERT of many rows given as tuples in the table's column order. On SQLite it goes straight to
    the driver's ``executemany`` with a positional statement prepared once (values converted by the columns'
    own bind processors, only where a column has one), skipping SQLAlchemy's per-row parameter handling,
    most of the cost of index rows; elsewhere SQLAlchemy's batched multi-row VALUES is already the fast
    path."""

    def __init__(self, table: Table) -> None:
        self._table = table
        self.columns = tuple(c.name for c in table.columns)
        self._sqlite: tuple[str, list[tuple[int, Any]]] | None = None

    def run(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        if conn.dialect.name != "sqlite":
            columns = self.columns
            conn.execute(insert(self._table), [dict(zip(columns, row, strict=True)) for row in rows])
            return
        if self._sqlite is None:
            dialect = conn.dialect
            marks = ", ".join("?" for _ in self.columns)
            processors = [
                (i, p)
                for i, c in enumerate(self._table.columns)
                if (p := c.type.dialect_impl(dialect).bind_processor(dialect)) is not None
            ]
            self._sqlite = (f"INSERT INTO {self._table.name} ({', '.join(self.columns)}) VALUES ({marks})", processors)
        sql, processors = self._sqlite
        if processors:
            rows = [_processed(row, processors) for row in rows]
        conn.exec_driver_sql(sql, rows)


def _processed(row: tuple[Any, ...], processors: list[tuple[int, Any]]) -> tuple[Any, ...]:
    values = list(row)
    for i, process in processors:
        if values[i] is not None:
            values[i] = process(values[i])
    return tuple(values)


_RESOURCE_COLUMNS = ("rtype", "id", "version_id", "last_updated", "deleted", "content")
_INSERT_VERSION = _BulkInsert(resource_version)
_MOVE_LAST_UPDATED = (
    update(idx_date)
    .where(idx_date.c.rid == bindparam("b_rid"), idx_date.c.param == "_lastUpdated")
    .values(low=bindparam("b_low"), high=bindparam("b_high"))
)
_INSERT_INDEX = {kind: _BulkInsert(table) for kind, table in INDEX_TABLES.items()}
assert _INSERT_VERSION.columns == ("rid", "version_id", "rtype", "id", "last_updated", "method", "content")
assert all(_INSERT_INDEX[kind].columns == ("rid", *COLUMNS[kind]) for kind in INDEX_TABLES)

_CURRENT_COLUMNS = (
    resource.c.rid,
    resource.c.version_id,
    resource.c.last_updated,
    resource.c.deleted,
    resource.c.content,
)
_READ = _Prepared(
    select(*_CURRENT_COLUMNS).where(resource.c.rtype == bindparam("rtype"), resource.c.id == bindparam("id"))
)
_VREAD = _Prepared(
    select(resource_version.c.last_updated, resource_version.c.method, resource_version.c.content)
    .join(resource, resource.c.rid == resource_version.c.rid)
    .where(
        resource.c.rtype == bindparam("rtype"),
        resource.c.id == bindparam("id"),
        resource_version.c.version_id == bindparam("version_id"),
    )
)
_BY_RID = _Prepared(
    select(resource.c.rtype, resource.c.id, *_CURRENT_COLUMNS[1:]).where(resource.c.rid == bindparam("rid"))
)
_HISTORY_COLUMNS = (
    resource_version.c.rtype,
    resource_version.c.id,
    resource_version.c.version_id,
    resource_version.c.last_updated,
    resource_version.c.method,
    resource_version.c.content,
    resource_version.c.rid,
)


def _current(resource_type: str, id: str, row: Sequence[Any] | None) -> Stored:
    """A read's answer from its ``_READ`` row: the resource, or NotFound/Gone (FHIR R4 read: 404/410)."""
    if row is None:
        raise NotFound(f"{resource_type}/{id} is not known")
    _, version_id, last_updated, deleted, content = row
    if deleted:
        raise Gone(f"{resource_type}/{id} was deleted (version {version_id})")
    return Stored(resource_type, id, version_id, last_updated, _bytes(content))


def _bytes(content: str | bytes | None) -> bytes:
    if content is None:
        return b""
    return content if isinstance(content, bytes) else content.encode()


# ---------------------------------------------------------------------------------------- writes
@dataclass(slots=True)
class Current:
    """The row of a resource as it is before a write (``rid``, current version, whether deleted, and its
    stored JSON when :meth:`SqlSession.lookup` read it)."""

    rid: int
    version_id: int
    deleted: bool
    content: str | bytes | None = None


@dataclass(slots=True)
class Change:
    """One pending write: ``body`` None deletes; ``current`` None inserts a new resource (version 1)."""

    rtype: str
    id: str
    body: Resource | None
    method: str
    current: Current | None


@dataclass(slots=True)
class Written:
    """What a write produced: the stored version and the JSON document it holds (None for a delete)."""

    stored: Stored
    document: Resource | None


def _stamp(change: Change, version: int, now: str) -> Resource:
    """The document to store: ``resourceType``, ``id`` and ``meta`` first, other meta elements kept."""
    body = change.body
    assert body is not None
    meta = body.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise InvalidResource(f"{change.rtype}.meta must be an object", expression=[f"{change.rtype}.meta"])
    stamped: dict[str, Any] = {"versionId": str(version), "lastUpdated": now}
    if meta:
        stamped.update((k, v) for k, v in meta.items() if k not in ("versionId", "lastUpdated"))
    document: Resource = {"resourceType": change.rtype, "id": change.id, "meta": stamped}
    for key, value in body.items():
        if key not in ("resourceType", "id", "meta"):
            document[key] = value
    return document


def _cursor(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


def _uncursor(cursor: str, kinds: tuple[type, ...]) -> list[Any]:
    """The values of a cursor made by :func:`_cursor`, checked against ``kinds`` (one type per value)."""
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        values = None
    if (
        not isinstance(values, list)
        or len(values) != len(kinds)
        or not all(type(v) is kind for v, kind in zip(values, kinds, strict=True))
    ):
        raise InvalidRequest(f"history cursor {cursor!r} is not one this server issued")
    return values


class SqlSession:
    """The repository's interactions inside one open database transaction (see ``base.Session``)."""

    def __init__(self, conn: Connection, *, default_count: int, max_count: int) -> None:
        self.conn = conn
        self.dialect_name = conn.dialect.name
        self.default_count = default_count
        self.max_count = max_count

    # ------------------------------------------------------------------------------------ reads
    def read(self, resource_type: str, id: str) -> Stored:
        return _current(resource_type, id, _READ.run(self.conn, {"rtype": resource_type, "id": id}).first())

    def vread(self, resource_type: str, id: str, version_id: int) -> Stored:
        params = {"rtype": resource_type, "id": id, "version_id": version_id}
        row = _VREAD.run(self.conn, params).first()
        if row is None:
            raise NotFound(f"{resource_type}/{id} has no version {version_id}")
        last_updated, method, content = row
        if method == "DELETE":
            raise Gone(f"version {version_id} of {resource_type}/{id} is its deletion")
        return Stored(resource_type, id, version_id, last_updated, _bytes(content), method=method)

    def read_rid(self, rid: int) -> Stored:
        """The current version of the resource with surrogate key ``rid`` (as search matches return them)."""
        row = _BY_RID.run(self.conn, {"rid": rid}).first()
        if row is None:
            raise NotFound(f"no resource has rid {rid}")
        rtype, id, version_id, last_updated, deleted, content = row
        if deleted:
            raise Gone(f"{rtype}/{id} was deleted (version {version_id})")
        return Stored(rtype, id, version_id, last_updated, _bytes(content))

    def search(self, resource_type: str | None, params: SearchParams) -> SearchResult:
        if resource_type is not None:
            check_type(resource_type)
        return run_search(
            self.conn,
            self.dialect_name,
            resource_type,
            params,
            default_count=self.default_count,
            max_count=self.max_count,
        )

    def match(self, resource_type: str, criteria: str) -> list[int]:
        """The rids of current ``resource_type`` resources matching a conditional query string."""
        return match_rids(self.conn, self.dialect_name, check_type(resource_type), parse_query(criteria))

    def history(
        self,
        resource_type: str | None = None,
        id: str | None = None,
        *,
        since: str | None = None,
        count: int = 20,
        cursor: str | None = None,
    ) -> HistoryPage:
        v = resource_version.c
        where: list[ColumnElement[bool]] = []
        if resource_type is not None:
            where.append(v.rtype == check_type(resource_type))
        if id is not None:
            if resource_type is None:
                raise InvalidRequest("instance history needs the resource type")
            rid = self.conn.execute(
                select(resource.c.rid).where(resource.c.rtype == resource_type, resource.c.id == id)
            ).scalar()
            if rid is None:
                raise NotFound(f"{resource_type}/{id} is not known")
            where = [v.rid == rid]
        if since is not None:
            where.append(v.last_updated >= normalize_instant(since))
        total = self.conn.execute(select(func.count()).select_from(resource_version).where(*where)).scalar_one()
        count = max(0, min(count, self.max_count))
        if count == 0:  # _count=0: the total only
            return HistoryPage([], total=total)
        page = where.copy()
        if cursor is not None:
            last_updated, rid_, version_id = _uncursor(cursor, (str, int, int))
            page.append(tuple_(v.last_updated, v.rid, v.version_id) < tuple_(last_updated, rid_, version_id))
        rows = self.conn.execute(
            select(*_HISTORY_COLUMNS)
            .where(*page)
            .order_by(v.last_updated.desc(), v.rid.desc(), v.version_id.desc())
            .limit(count + 1)
        ).all()
        entries = [
            Stored(r[0], r[1], r[2], r[3], _bytes(r[5]), deleted=r[4] == "DELETE", method=r[4]) for r in rows[:count]
        ]
        next_cursor = None
        if len(rows) > count:
            last = rows[count - 1]
            next_cursor = _cursor([last[3], last[6], last[2]])
        return HistoryPage(entries, total=total, next_cursor=next_cursor)

    # ----------------------------------------------------------------------------------- writes
    def create(self, resource: Resource, *, if_none_exist: str | None = None) -> WriteResult:
        rtype = _resource_type(resource)
        if if_none_exist is not None:
            rids = self.match(rtype, if_none_exist)
            if len(rids) > 1:
                raise MultipleMatches(f"If-None-Exist {if_none_exist!r} matches {len(rids)} {rtype} resources")
            if rids:
                return WriteResult(self.read_rid(rids[0]), created=False)
        change = Change(rtype, str(uuid.uuid4()), resource, "POST", None)
        return WriteResult(self.apply([change])[0].stored, created=True)

    def update(self, resource: Resource, *, if_match: int | None = None) -> WriteResult:
        rtype = _resource_type(resource)
        id = resource.get("id")
        if id is None:
            raise InvalidResource(f"an update needs the {rtype}'s id", expression=[f"{rtype}.id"])
        check_id(id)
        change = self.prepare_put(rtype, id, resource, if_match)
        return WriteResult(self.apply([change])[0].stored, created=change.current is None or change.current.deleted)

    def conditional_update(
        self, resource_type: str, criteria: str, resource: Resource, *, if_match: int | None = None
    ) -> WriteResult:
        rtype = _resource_type(resource)
        if rtype != resource_type:
            raise InvalidResource(f"the body is a {rtype}, the request names {resource_type}")
        rids = self.match(rtype, criteria)
        if len(rids) > 1:
            raise MultipleMatches(f"{rtype}?{criteria} matches {len(rids)} resources")
        given = resource.get("id")
        if given is not None:
            check_id(given)
        if not rids:
            if given is not None:
                return self.update(resource, if_match=if_match)
            return self.create(resource)
        matched = self.read_rid(rids[0])
        if given is not None and given != matched.id:
            raise InvalidRequest(f"{rtype}?{criteria} matches {rtype}/{matched.id}, the body has id {given!r}")
        change = self.prepare_put(rtype, matched.id, resource, if_match)
        return WriteResult(self.apply([change])[0].stored, created=False)

    def delete(self, resource_type: str, id: str) -> Stored | None:
        check_type(resource_type)
        check_id(id)
        current = self.lookup([(resource_type, id)]).get((resource_type, id))
        if current is None or current.deleted:
            return None
        return self.apply([Change(resource_type, id, None, "DELETE", current)])[0].stored

    def conditional_delete(self, resource_type: str, criteria: str) -> Stored | None:
        rids = self.match(resource_type, criteria)
        if len(rids) > 1:
            raise MultipleMatches(f"{resource_type}?{criteria} matches {len(rids)} resources")
        if not rids:
            return None
        return self.delete(resource_type, self.read_rid(rids[0]).id)

    def process_bundle(self, bundle: Resource, *, base_url: str = "") -> Resource:
        from interop.store.bundle import process_bundle  # bundle.py builds on this module's write path

        return process_bundle(self, bundle, base_url=base_url)

    # ------------------------------------------------------------------------- batched internals
    def prepare_put(self, rtype: str, id: str, body: Resource, if_match: int | None) -> Change:
        """The change an update of ``rtype/id`` makes, after the If-Match check (locks the row on PostgreSQL)."""
        current = self.lookup([(rtype, id)]).get((rtype, id))
        check_if_match(rtype, id, current, if_match)
        return Change(rtype, id, body, "PUT", current)

    def lookup(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Current]:
        """The current rows of ``keys`` (type, id) that exist, locked FOR UPDATE on PostgreSQL."""
        if self.dialect_name == "sqlite":
            return self._lookup_sqlite(keys)
        by_type: dict[str, list[str]] = {}
        for rtype, id in keys:
            by_type.setdefault(rtype, []).append(id)
        found: dict[tuple[str, str], Current] = {}
        r = resource.c
        for rtype, ids in by_type.items():
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                condition = r.id == chunk[0] if len(chunk) == 1 else r.id.in_(chunk)
                stmt = (
                    select(r.id, r.rid, r.version_id, r.deleted, r.content)
                    .where(r.rtype == rtype, condition)
                    .order_by(r.id)
                )
                if self.dialect_name == "postgresql":
                    stmt = stmt.with_for_update()
                for id, rid, version_id, deleted, content in self.conn.execute(stmt):
                    found[(rtype, id)] = Current(rid, version_id, bool(deleted), content)
        return found

    def _lookup_sqlite(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Current]:
        """:meth:`lookup` on SQLite: one statement per 500 keys, a UNION ALL of one indexed ``rtype = ? AND
        id IN (...)`` per type, written out directly (SQLite's write lock already serializes writers). With
        the written-out DELETEs of ``_reindex`` this took a one-message MLLP transaction (6 types) from 3.3
        to 2.2 ms CPU: building 6 SELECTs and 5 DELETEs with SQLAlchemy per transaction was most of it."""
        found: dict[tuple[str, str], Current] = {}
        for start in range(0, len(keys), _CHUNK):
            by_type: dict[str, list[str]] = {}
            for rtype, id in keys[start : start + _CHUNK]:
                by_type.setdefault(rtype, []).append(id)
            parts: list[str] = []
            args: list[str] = []
            for rtype, ids in by_type.items():
                marks = ", ".join("?" * len(ids))
                parts.append(
                    f"SELECT rtype, id, rid, version_id, deleted, content FROM resource WHERE rtype = ? AND id IN ({marks})"
                )
                args.append(rtype)
                args.extend(ids)
            for rtype, id, rid, version_id, deleted, content in self.conn.exec_driver_sql(" UNION ALL ".join(parts), tuple(args)):
                found[(rtype, id)] = Current(rid, version_id, bool(deleted), content)
        return found

    def apply(self, changes: Sequence[Change]) -> list[Written]:
        """Write ``changes`` with one statement per table: rows, versions, index rows. All share one
        ``lastUpdated`` (one transaction, one instant)."""
        now = now_instant()
        written: list[Written] = []
        texts: list[str | None] = []
        resent: list[bool] = []
        for change in changes:
            version = 1 if change.current is None else change.current.version_id + 1
            if change.body is None:
                document = None
                content = b""
            else:
                document = _stamp(change, version, now)
                content = orjson.dumps(document)
            texts.append(content.decode() if document is not None else None)
            resent.append(document is not None and _resent(change.current, document))
            stored = Stored(
                change.rtype, change.id, version, now, content, deleted=document is None, method=change.method
            )
            written.append(Written(stored, document))

        try:
            rids = self._write_rows(changes, texts, now)
            _INSERT_VERSION.run(
                self.conn,
                [
                    (rid, w.stored.version_id, w.stored.resource_type, w.stored.id, now, w.stored.method, text)
                    for rid, w, text in zip(rids, written, texts, strict=True)
                ],
            )
            self._reindex(changes, rids, written, resent, now)
        except DataError as exc:  # e.g. PostgreSQL JSONB refuses "\u0000" in a string
            raise InvalidResource(f"the database refused a value of {_keys(changes, range(len(changes)))}: {exc.orig}") from exc
        return written

    def _write_rows(self, changes: Sequence[Change], texts: list[str | None], now: str) -> list[int]:
        rids: list[int | None] = [c.current.rid if c.current is not None else None for c in changes]
        fresh = [i for i, c in enumerate(changes) if c.current is None]
        if fresh:
            rows = [(changes[i].rtype, changes[i].id, 1, now, texts[i] is None, texts[i]) for i in fresh]
            try:
                inserted = self._insert_resources(rows)
            except IntegrityError as exc:
                raise Conflict(f"{_keys(changes, fresh)} was created concurrently; retry the request") from exc
            assigned = {(rtype, id): rid for rid, rtype, id in inserted}
            for i in fresh:
                rids[i] = assigned[(changes[i].rtype, changes[i].id)]
        existing = [i for i, c in enumerate(changes) if c.current is not None]
        if existing:
            r = resource.c
            statement = (
                update(resource)
                .where(r.rid == bindparam("b_rid"), r.version_id == bindparam("b_old"))
                .values(
                    version_id=bindparam("b_version"),
                    last_updated=bindparam("b_now"),
                    deleted=bindparam("b_deleted"),
                    content=bindparam("b_content"),
                )
            )
            params = []
            for i in existing:
                current = changes[i].current
                assert current is not None
                params.append(
                    {
                        "b_rid": current.rid,
                        "b_old": current.version_id,
                        "b_version": current.version_id + 1,
                        "b_now": now,
                        "b_deleted": texts[i] is None,
                        "b_content": texts[i],
                    }
                )
            result = self.conn.execute(statement, params)
            if (
                isinstance(result, CursorResult)
                and (len(params) == 1 or self.conn.dialect.supports_sane_multi_rowcount)
                and result.rowcount != len(params)
            ):
                raise VersionConflict(f"{_keys(changes, existing)} changed concurrently; read it again")
        return [rid for rid in rids if rid is not None]

    def _insert_resources(self, rows: list[tuple[Any, ...]]) -> list[tuple[int, str, str]]:
        """INSERT new ``resource`` rows (in ``_RESOURCE_COLUMNS`` order), returning (rid, rtype, id) of each.

        On SQLite a multi-row VALUES ... RETURNING written out directly, one statement per 500 rows:
        SQLAlchemy's insertmanyvalues spent about 10 µs per row on parameter handling (bench_store)."""
        if self.dialect_name != "sqlite":
            params = [dict(zip(_RESOURCE_COLUMNS, row, strict=True)) for row in rows]
            statement = insert(resource).returning(resource.c.rid, resource.c.rtype, resource.c.id)
            return [(rid, rtype, id) for rid, rtype, id in self.conn.execute(statement, params)]
        out: list[tuple[int, str, str]] = []
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            marks = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk))
            sql = f"INSERT INTO resource ({', '.join(_RESOURCE_COLUMNS)}) VALUES {marks} RETURNING rid, rtype, id"
            args = tuple(value for row in chunk for value in row)
            out.extend((rid, rtype, id) for rid, rtype, id in self.conn.exec_driver_sql(sql, args))
        return out

    def _reindex(
        self, changes: Sequence[Change], rids: list[int], written: list[Written], resent: list[bool], now: str
    ) -> None:
        """Replace the index rows of the changed resources; a resent resource (``resent``: same content as
        its current version apart from ``meta``) keeps its rows and only its ``_lastUpdated`` row moves."""
        stale = [rid for rid, c, same in zip(rids, changes, resent, strict=True) if c.current is not None and not same]
        for table in INDEX_TABLES.values():
            for start in range(0, len(stale), _CHUNK):
                chunk = stale[start : start + _CHUNK]
                if self.dialect_name == "sqlite":  # written out: no statement to build per call (as lookup)
                    marks = ", ".join("?" * len(chunk))
                    self.conn.exec_driver_sql(f"DELETE FROM {table.name} WHERE rid IN ({marks})", tuple(chunk))
                else:
                    self.conn.execute(delete(table).where(table.c.rid.in_(chunk)))
        kept = [rid for rid, same in zip(rids, resent, strict=True) if same]
        if kept:
            low, high = date_range(now) or (MIN_INSTANT, MAX_INSTANT)
            self.conn.execute(
                _MOVE_LAST_UPDATED, [{"b_rid": rid, "b_low": low, "b_high": high} for rid in kept]
            )
        rows: dict[str, list[tuple[Any, ...]]] = {kind: [] for kind in INDEX_TABLES}
        for rid, w, same in zip(rids, written, resent, strict=True):
            if w.document is None or same:
                continue
            try:
                extracted_by_kind = index_tuples(w.document)
            except (TypeError, ValueError, AttributeError) as exc:  # a value of a type its element cannot have
                raise InvalidResource(
                    f"{w.stored.resource_type}/{w.stored.id} has an element of the wrong type: {exc}"
                ) from exc
            for kind, extracted in extracted_by_kind.items():
                rows[kind].extend((rid, *row) for row in extracted)
        for kind, bucket in rows.items():
            if bucket:
                _INSERT_INDEX[kind].run(self.conn, bucket)


def _resent(current: Current | None, document: Resource) -> bool:
    """Whether ``document`` repeats the current version's content apart from ``meta`` (a resent message):
    then the index rows, which depend on nothing else, can stay. Keys are sorted on both sides so that
    PostgreSQL's JSONB rendering compares too. Measured on bench_store's 20,000 resources sent a second
    time: reindexing fell from 147 to 20 µs per resource, the whole write from 245 to 78 µs (CPU)."""
    if current is None or current.deleted or current.content is None:
        return False
    try:
        before = orjson.loads(current.content)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(before, dict):
        return False
    before.pop("meta", None)
    after = {key: value for key, value in document.items() if key != "meta"}
    return bool(orjson.dumps(before, option=orjson.OPT_SORT_KEYS) == orjson.dumps(after, option=orjson.OPT_SORT_KEYS))


def check_if_match(rtype: str, id: str, current: Current | None, if_match: int | None) -> None:
    """FHIR R4 3.1.0.5.4 (managing resource contention): If-Match must name the current version."""
    if if_match is None:
        return
    if current is None:
        raise VersionConflict(f"If-Match names version {if_match} of {rtype}/{id}, which does not exist")
    if current.version_id != if_match:
        raise VersionConflict(
            f"If-Match names version {if_match} of {rtype}/{id}; the current version is {current.version_id}"
        )


def _keys(changes: Sequence[Change], indexes: Sequence[int]) -> str:
    names = [f"{changes[i].rtype}/{changes[i].id}" for i in indexes[:3]]
    return ", ".join(names) + (" ..." if len(indexes) > 3 else "")


def _resource_type(resource: object) -> str:
    if not isinstance(resource, dict):
        raise InvalidResource("a resource must be a JSON object")
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not _TYPE.fullmatch(rtype):
        raise InvalidResource(f"resourceType {rtype!r} is not a FHIR resource type", expression=["resourceType"])
    return rtype


# ------------------------------------------------------------------------------------ repository
def _transient(exc: DBAPIError) -> bool:
    """Whether a database error means "try again later" (connection lost, lock timeout, serialization)."""
    if exc.connection_invalidated:
        return True
    state = getattr(exc.orig, "sqlstate", None)
    if isinstance(state, str):
        return state[:2] in ("08", "40", "53", "57")
    message = str(exc.orig).lower()
    return "locked" in message or "busy" in message or "unable to open" in message


def _sqlite_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    """WAL (readers never wait for the writer), NORMAL sync (durable at checkpoints, safe in WAL), foreign
    keys on, a 30 s wait for the write lock, a 64 MB page cache.

    Checkpoints every 16,384 WAL pages (64 MB) instead of SQLite's 1,000: a 500-resource transaction dirties
    more than 1,000 pages, so the default checkpointed (two fsyncs) after nearly every commit; on bench_store
    commit time fell from about 45 to 25 µs per resource."""
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (see _sqlite_begin)
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "foreign_keys=ON",
        "busy_timeout=30000",
        "cache_size=-65536",
        "temp_store=MEMORY",
        "mmap_size=268435456",
        "wal_autocheckpoint=16384",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    """Writers take SQLite's write lock up front (BEGIN IMMEDIATE): a deferred transaction that reads and
    then writes fails with SQLITE_BUSY when another writer got in between, instead of waiting."""
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("interop_write") else "BEGIN")


def _engine(url: str, pool_size: int) -> Engine:
    """An engine for a SQLite file (or ``sqlite://`` in memory) or PostgreSQL through psycopg 3, which
    ``postgresql://`` and ``postgres://`` URLs also get."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        memory = parsed.database in (None, "", ":memory:")
        connect_args = {"check_same_thread": False, "timeout": 30}
        if memory:
            engine = create_engine(parsed, connect_args=connect_args, poolclass=StaticPool)
        else:
            engine = create_engine(parsed, connect_args=connect_args, pool_size=pool_size, max_overflow=pool_size)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        return create_engine(parsed, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
    raise ValueError(f"unsupported database URL {parsed.render_as_string()!r}: use sqlite:/// or postgresql+psycopg://")


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent: nothing happens when it is current)."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise Unavailable(f"the database cannot be reached: {exc.orig}") from exc
    with conn:
        # Several processes may open a fresh database at once: one migrates, the others wait and find it done.
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        else:
            conn.execution_options(interop_write=True)
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        conn.commit()


class SqlRepository:
    """The FHIR store (``base.Repository``): each method runs in its own transaction; ``session()`` groups."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int | None = None,
        default_count: int | None = None,
        max_count: int | None = None,
    ) -> None:
        settings = get_settings()
        self.url = url
        self.engine = _engine(url, pool_size or settings.database_pool_size)
        self.dialect_name = self.engine.dialect.name
        self._driver_error: type[Exception] = self.engine.dialect.loaded_dbapi.OperationalError
        self.default_count = default_count or settings.default_count
        self.max_count = max_count or settings.max_count
        try:
            migrate(self.engine)
        except BaseException:
            self.engine.dispose()
            raise

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[SqlSession]:
        try:
            conn = self.engine.connect()
        except DBAPIError as exc:
            raise Unavailable(f"the database cannot be reached: {exc.orig}") from exc
        try:
            if write:
                conn.execution_options(interop_write=True)
            with conn.begin():
                yield SqlSession(conn, default_count=self.default_count, max_count=self.max_count)
        except IntegrityError as exc:
            raise Conflict(f"the write conflicts with another one: {exc.orig}") from exc
        except DBAPIError as exc:
            if _transient(exc):
                raise Unavailable(f"the database is unavailable: {exc.orig}") from exc
            raise
        finally:
            conn.close()

    def session(self) -> AbstractContextManager[SqlSession]:
        """``with repo.session() as s: ...``: one transaction, committed on exit, rolled back on error."""
        return self._transaction(write=True)

    def read(self, resource_type: str, id: str) -> Stored:
        """One indexed SELECT on a pooled driver connection, no SQLAlchemy Connection: the hottest path."""
        sql, args = _READ.bound(self.engine.dialect, {"rtype": resource_type, "id": id})
        try:
            raw = self.engine.raw_connection()
        except DBAPIError as exc:
            raise Unavailable(f"the database cannot be reached: {exc.orig}") from exc
        except self._driver_error as exc:  # the pool lets a failed connect's driver error through unwrapped
            raise Unavailable(f"the database cannot be reached: {exc}") from exc
        postgres = self.dialect_name == "postgresql"
        driver: Any = raw.driver_connection
        try:
            if postgres:
                # A lone SELECT needs no transaction: autocommit spares the ROLLBACK round trip on return.
                driver.autocommit = True
            try:
                cursor = raw.cursor()
                cursor.execute(sql, args)
                row = cursor.fetchone()
                cursor.close()
            finally:
                if postgres:
                    driver.autocommit = False
        except self._driver_error as exc:
            # Lost connection (server restart): drop this one and start the pool afresh, as SQLAlchemy
            # does for its own connections, so the next caller does not get another dead one.
            raw.invalidate()
            self.engine.dispose(close=False)
            raise Unavailable(f"the database is unavailable: {exc}") from exc
        finally:
            raw.close()
        return _current(resource_type, id, row)

    def vread(self, resource_type: str, id: str, version_id: int) -> Stored:
        with self._transaction(write=False) as s:
            return s.vread(resource_type, id, version_id)

    def search(self, resource_type: str | None, params: SearchParams) -> SearchResult:
        with self._transaction(write=False) as s:
            return s.search(resource_type, params)

    def history(
        self,
        resource_type: str | None = None,
        id: str | None = None,
        *,
        since: str | None = None,
        count: int = 20,
        cursor: str | None = None,
    ) -> HistoryPage:
        with self._transaction(write=False) as s:
            return s.history(resource_type, id, since=since, count=count, cursor=cursor)

    def create(self, resource: Resource, *, if_none_exist: str | None = None) -> WriteResult:
        with self._transaction(write=True) as s:
            return s.create(resource, if_none_exist=if_none_exist)

    def update(self, resource: Resource, *, if_match: int | None = None) -> WriteResult:
        with self._transaction(write=True) as s:
            return s.update(resource, if_match=if_match)

    def conditional_update(
        self, resource_type: str, criteria: str, resource: Resource, *, if_match: int | None = None
    ) -> WriteResult:
        with self._transaction(write=True) as s:
            return s.conditional_update(resource_type, criteria, resource, if_match=if_match)

    def delete(self, resource_type: str, id: str) -> Stored | None:
        with self._transaction(write=True) as s:
            return s.delete(resource_type, id)

    def conditional_delete(self, resource_type: str, criteria: str) -> Stored | None:
        with self._transaction(write=True) as s:
            return s.conditional_delete(resource_type, criteria)

    def process_bundle(self, bundle: Resource, *, base_url: str = "") -> Resource:
        with self._transaction(write=True) as s:
            return s.process_bundle(bundle, base_url=base_url)

    def iter_all(self, resource_type: str) -> Iterator[Stored]:
        check_type(resource_type)
        r = resource.c
        last = 0
        while True:
            with self._transaction(write=False) as s:
                rows = s.conn.execute(
                    select(r.rid, r.id, r.version_id, r.last_updated, r.content)
                    .where(r.rtype == resource_type, r.rid > last, r.deleted.is_(False))
                    .order_by(r.rid)
                    .limit(1000)
                ).all()
            for rid, id, version_id, last_updated, content in rows:
                yield Stored(resource_type, id, version_id, last_updated, _bytes(content))
                last = rid
            if len(rows) < 1000:
                return

    def close(self) -> None:
        self.engine.dispose()
