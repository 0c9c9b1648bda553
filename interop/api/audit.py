"""AuditEvents (FHIR R4 AuditEvent, DICOM/IHE ATNA model) for every read, search, write and operation.

Who (token subject and client, ``agent``), what (``entity``: the resources or the query), when
(``recorded``), from where (``agent.network``) and the outcome (0 success, 4 client error, 8 server error,
12 unexpected failure). A write's AuditEvent commits in the same transaction as the write.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from interop.fhir.audit import (
    ENTITY_TYPE,
    EVENT_TYPE,
    INTERACTION,
    OBJECT_ROLE,
    SUBJECT_SYSTEM,
    SYSTEM_OBJECT,
    agent,
    audit_event,
    entity,
)
from interop.store.base import (
    HistoryPage,
    Repository,
    Resource,
    SearchParams,
    SearchResult,
    Session,
    Stored,
    WriteResult,
)

MAX_ENTITIES = 1000
"""Resources named in one AuditEvent; a larger read is summarized by its query."""

_ACTIONS = {
    "create": "C",
    "update": "U",
    "delete": "D",
    "transaction": "E",
    "batch": "E",
    "operation": "E",
}


def outcome_code(status: int) -> str:
    """AuditEvent.outcome of an HTTP status: 0 success, 4 minor (4xx), 8 serious (5xx), 12 major (500)."""
    if status < 400:
        return "0"
    if status < 500:
        return "4"
    return "12" if status == 500 else "8"


@dataclass(slots=True)
class AuditTrail:
    """What one request touched so far; :meth:`event` turns it into an AuditEvent."""

    subject: str
    client: str
    address: str
    subtype: str
    """restful-interaction code: read, vread, search-type, create, transaction, operation, ..."""
    query: str = ""
    operation: str = ""
    entities: list[str] = field(default_factory=list)
    written: int = 0
    """AuditEvents already committed with writes of this request."""
    dirty: bool = False
    """A write is on the trail that no AuditEvent records yet."""

    def saw(self, stored: list[Stored]) -> None:
        for s in stored:
            if len(self.entities) < MAX_ENTITIES:
                self.entities.append(f"{s.resource_type}/{s.id}/_history/{s.version_id}")

    def event(self, status: int, when: datetime | None = None) -> Resource:
        """The AuditEvent of what is on the trail, with the outcome of ``status``."""
        entities: list[Resource] = [entity(ref) for ref in dict.fromkeys(self.entities)]
        if self.query:
            entities.append(
                {
                    "type": SYSTEM_OBJECT,
                    "role": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
                    "query": base64.b64encode(self.query.encode("utf-8")).decode("ascii"),
                }
            )
        if self.operation:
            entities.append({"type": {"system": ENTITY_TYPE, "code": "2"}, "name": f"${self.operation}"})
        who = {"identifier": {"system": SUBJECT_SYSTEM, "value": self.subject}}
        return audit_event(
            event_type={"system": EVENT_TYPE, "code": "rest", "display": "RESTful Operation"},
            subtype=[{"system": INTERACTION, "code": self.subtype}],
            action=_ACTIONS.get(self.subtype, "R"),
            outcome=outcome_code(status),
            agents=[agent(who, self.address, alt_id=self.client)],
            observer="medsync-interop FHIR API",
            entities=entities,
            outcome_desc=f"HTTP {status}" if status >= 400 else "",
            recorded=when,
        )

    def commit_into(self, session: Session) -> None:
        """Store the AuditEvent of the writes on the trail in ``session`` (their transaction)."""
        session.create(self.event(200))
        self.written += 1
        self.entities.clear()
        self.dirty = False


class AuditedSession:
    """A session proxy noting what is read and written on the trail (the caller commits the event)."""

    def __init__(self, inner: Session, trail: AuditTrail) -> None:
        self.inner = inner
        self.trail = trail

    def _wrote(self, result: WriteResult) -> WriteResult:
        self.trail.saw([result.stored])
        self.trail.dirty = True
        return result

    def _gone(self, stored: Stored | None) -> Stored | None:
        if stored is not None:
            self.trail.saw([stored])
        self.trail.dirty = True
        return stored

    def read(self, resource_type: str, id: str) -> Stored:
        stored = self.inner.read(resource_type, id)
        self.trail.saw([stored])
        return stored

    def vread(self, resource_type: str, id: str, version_id: int) -> Stored:
        stored = self.inner.vread(resource_type, id, version_id)
        self.trail.saw([stored])
        return stored

    def search(self, resource_type: str | None, params: SearchParams) -> SearchResult:
        result = self.inner.search(resource_type, params)
        self.trail.saw(result.matches + result.includes)
        return result

    def history(
        self,
        resource_type: str | None = None,
        id: str | None = None,
        *,
        since: str | None = None,
        count: int = 20,
        cursor: str | None = None,
    ) -> HistoryPage:
        page = self.inner.history(resource_type, id, since=since, count=count, cursor=cursor)
        self.trail.saw(page.entries)
        return page

    def create(self, resource: Resource, *, if_none_exist: str | None = None) -> WriteResult:
        return self._wrote(self.inner.create(resource, if_none_exist=if_none_exist))

    def update(self, resource: Resource, *, if_match: int | None = None) -> WriteResult:
        return self._wrote(self.inner.update(resource, if_match=if_match))

    def conditional_update(
        self, resource_type: str, criteria: str, resource: Resource, *, if_match: int | None = None
    ) -> WriteResult:
        return self._wrote(self.inner.conditional_update(resource_type, criteria, resource, if_match=if_match))

    def delete(self, resource_type: str, id: str) -> Stored | None:
        return self._gone(self.inner.delete(resource_type, id))

    def conditional_delete(self, resource_type: str, criteria: str) -> Stored | None:
        return self._gone(self.inner.conditional_delete(resource_type, criteria))

    def process_bundle(self, bundle: Resource, *, base_url: str = "") -> Resource:
        answer = self.inner.process_bundle(bundle, base_url=base_url)
        self.trail.dirty = True
        for entry in answer.get("entry") or []:
            location = str((entry.get("response") or {}).get("location") or "")
            if location and len(self.trail.entities) < MAX_ENTITIES:
                self.trail.entities.append(location.removeprefix(base_url.rstrip("/") + "/"))
        return answer


class AuditedRepository(AuditedSession):
    """A repository proxy: each write runs in a transaction that also stores its AuditEvent."""

    def __init__(self, inner: Repository, trail: AuditTrail) -> None:
        super().__init__(inner, trail)
        self.repo = inner

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self.repo.session() as s:
            yield AuditedSession(s, self.trail)
            if self.trail.dirty:
                self.trail.commit_into(s)

    def session(self) -> AbstractContextManager[Session]:
        return self._session()

    def create(self, resource: Resource, *, if_none_exist: str | None = None) -> WriteResult:
        with self._session() as s:
            return s.create(resource, if_none_exist=if_none_exist)

    def update(self, resource: Resource, *, if_match: int | None = None) -> WriteResult:
        with self._session() as s:
            return s.update(resource, if_match=if_match)

    def conditional_update(
        self, resource_type: str, criteria: str, resource: Resource, *, if_match: int | None = None
    ) -> WriteResult:
        with self._session() as s:
            return s.conditional_update(resource_type, criteria, resource, if_match=if_match)

    def delete(self, resource_type: str, id: str) -> Stored | None:
        with self._session() as s:
            return s.delete(resource_type, id)

    def conditional_delete(self, resource_type: str, criteria: str) -> Stored | None:
        with self._session() as s:
            return s.conditional_delete(resource_type, criteria)

    def process_bundle(self, bundle: Resource, *, base_url: str = "") -> Resource:
        with self._session() as s:
            return s.process_bundle(bundle, base_url=base_url)

    def iter_all(self, resource_type: str) -> Iterator[Stored]:
        self.trail.query = self.trail.query or f"{resource_type} (all current)"
        return self.repo.iter_all(resource_type)

    def close(self) -> None:
        self.repo.close()

    def finish(self, status: int) -> None:
        """Store the AuditEvent of a request that committed no write (reads, searches, failures)."""
        if self.trail.written and status < 400 and not self.trail.entities:
            return
        self.repo.create(self.trail.event(status))
