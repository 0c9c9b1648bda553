"""Change notification for the store: ``observe(repo, listeners)`` tells listeners what was written, after commit.

Service layer of issue 5 (it wraps a repository; the planner stays pure). Every call is delegated unchanged;
after a write, a committed ``session()`` or a ``process_bundle`` (transaction or batch: the response's
``location``), each listener whose ``types`` match gets the written resources, with the *inner* repository
so that what a listener writes is never observed again (no re-plan loops).

Wiring (``interop serve``, ``interop ingest``, the MLLP listener)::

    repo = observe(open_repository(url), [replan_listener(load_settings())])
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

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

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Written:
    """One resource version a committed write produced: ``resource`` is None for a deletion."""

    resource_type: str
    id: str
    version_id: int
    created: bool
    resource: Resource | None

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.id}"


class Listener(Protocol):
    """Called after commit with the inner (unobserved) repository and the writes of the types it names."""

    types: frozenset[str]

    def __call__(self, repo: Repository, written: Sequence[Written]) -> None: ...


def _from_result(result: WriteResult) -> Written:
    stored = result.stored
    return Written(stored.resource_type, stored.id, stored.version_id, result.created, stored.resource())


def _from_deleted(stored: Stored | None) -> list[Written]:
    if stored is None:
        return []
    return [Written(stored.resource_type, stored.id, stored.version_id, False, None)]


def written_by(response: Resource) -> list[Written]:
    """The writes listed in a transaction-response or batch-response Bundle (entries with a ``location``)."""
    out: list[Written] = []
    for entry in response.get("entry", ()):
        answer = entry.get("response") or {}
        location = answer.get("location")
        if not isinstance(location, str):
            continue
        parts = location.split("/")
        if len(parts) < 4 or parts[-2] != "_history":
            continue
        rtype, rid, version = parts[-4], parts[-3], parts[-1]
        status = str(answer.get("status", ""))
        resource = entry.get("resource")
        out.append(
            Written(rtype, rid, int(version) if version.isdigit() else 0, status.startswith("201"),
                    resource if isinstance(resource, dict) else None)
        )
    return out


class _RecordingSession:
    """A session that records what it writes; the observer hands the record to listeners after commit."""

    def __init__(self, inner: Session) -> None:
        self._inner = inner
        self.written: list[Written] = []

    def create(self, resource: Resource, *, if_none_exist: str | None = None) -> WriteResult:
        result = self._inner.create(resource, if_none_exist=if_none_exist)
        if result.created:
            self.written.append(_from_result(result))
        return result

    def read(self, resource_type: str, id: str) -> Stored:
        return self._inner.read(resource_type, id)

    def vread(self, resource_type: str, id: str, version_id: int) -> Stored:
        return self._inner.vread(resource_type, id, version_id)

    def update(self, resource: Resource, *, if_match: int | None = None) -> WriteResult:
        result = self._inner.update(resource, if_match=if_match)
        self.written.append(_from_result(result))
        return result

    def conditional_update(
        self, resource_type: str, criteria: str, resource: Resource, *, if_match: int | None = None
    ) -> WriteResult:
        result = self._inner.conditional_update(resource_type, criteria, resource, if_match=if_match)
        self.written.append(_from_result(result))
        return result

    def delete(self, resource_type: str, id: str) -> Stored | None:
        stored = self._inner.delete(resource_type, id)
        self.written.extend(_from_deleted(stored))
        return stored

    def conditional_delete(self, resource_type: str, criteria: str) -> Stored | None:
        stored = self._inner.conditional_delete(resource_type, criteria)
        self.written.extend(_from_deleted(stored))
        return stored

    def search(self, resource_type: str | None, params: SearchParams) -> SearchResult:
        return self._inner.search(resource_type, params)

    def history(
        self,
        resource_type: str | None = None,
        id: str | None = None,
        *,
        since: str | None = None,
        count: int = 20,
        cursor: str | None = None,
    ) -> HistoryPage:
        return self._inner.history(resource_type, id, since=since, count=count, cursor=cursor)

    def process_bundle(self, bundle: Resource, *, base_url: str = "") -> Resource:
        response = self._inner.process_bundle(bundle, base_url=base_url)
        self.written.extend(written_by(response))
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class ObservedRepository:
    """A repository that notifies listeners after each committed write (see the module docstring).

    Thread-safe as the repository it wraps: it keeps no per-call state besides a per-thread flag that stops a
    listener's own writes through this wrapper from being observed again.
    """

    def __init__(self, inner: Repository, listeners: Sequence[Listener]) -> None:
        self.inner = inner
        self.listeners = list(listeners)
        self._local = threading.local()

    def _notify(self, written: Sequence[Written]) -> None:
        if not written or getattr(self._local, "notifying", False):
            return
        self._local.notifying = True
        try:
            for listener in self.listeners:
                mine = [w for w in written if w.resource_type in listener.types]
                if mine:
                    listener(self.inner, mine)
        finally:
            self._local.notifying = False

    def create(self, resource: Resource, *, if_none_exist: str | None = None) -> WriteResult:
        result = self.inner.create(resource, if_none_exist=if_none_exist)
        if result.created:
            self._notify([_from_result(result)])
        return result

    def read(self, resource_type: str, id: str) -> Stored:
        return self.inner.read(resource_type, id)

    def vread(self, resource_type: str, id: str, version_id: int) -> Stored:
        return self.inner.vread(resource_type, id, version_id)

    def update(self, resource: Resource, *, if_match: int | None = None) -> WriteResult:
        result = self.inner.update(resource, if_match=if_match)
        self._notify([_from_result(result)])
        return result

    def conditional_update(
        self, resource_type: str, criteria: str, resource: Resource, *, if_match: int | None = None
    ) -> WriteResult:
        result = self.inner.conditional_update(resource_type, criteria, resource, if_match=if_match)
        self._notify([_from_result(result)])
        return result

    def delete(self, resource_type: str, id: str) -> Stored | None:
        stored = self.inner.delete(resource_type, id)
        self._notify(_from_deleted(stored))
        return stored

    def conditional_delete(self, resource_type: str, criteria: str) -> Stored | None:
        stored = self.inner.conditional_delete(resource_type, criteria)
        self._notify(_from_deleted(stored))
        return stored

    def search(self, resource_type: str | None, params: SearchParams) -> SearchResult:
        return self.inner.search(resource_type, params)

    def history(
        self,
        resource_type: str | None = None,
        id: str | None = None,
        *,
        since: str | None = None,
        count: int = 20,
        cursor: str | None = None,
    ) -> HistoryPage:
        return self.inner.history(resource_type, id, since=since, count=count, cursor=cursor)

    def process_bundle(self, bundle: Resource, *, base_url: str = "") -> Resource:
        response = self.inner.process_bundle(bundle, base_url=base_url)
        self._notify(written_by(response))
        return response

    def session(self) -> AbstractContextManager[Session]:
        return self._session()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self.inner.session() as inner:
            recording = _RecordingSession(inner)
            yield recording
        self._notify(recording.written)

    def iter_all(self, resource_type: str) -> Iterator[Stored]:
        return self.inner.iter_all(resource_type)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        """Anything else the wrapped repository offers (``engine``, ``dialect_name``)."""
        return getattr(self.inner, name)


def observe(repo: Repository, listeners: Sequence[Listener]) -> ObservedRepository:
    """``repo`` wrapped so that ``listeners`` hear of every committed write (see the module docstring)."""
    return ObservedRepository(repo, listeners)
