"""The FHIR repository contract: what every layer above the store may call.

The API, ingest and the domain services talk to a :class:`Repository`; none of them sees SQL. Errors are
the :class:`StoreError` family below; the API turns each into an OperationOutcome with its HTTP status in
one place.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

Resource = dict[str, Any]
SearchParams = Sequence[tuple[str, str]]
"""Query parameters in request order, repeats kept: ``[("status", "completed"), ("_count", "10")]``."""


# --------------------------------------------------------------------------------------------- errors
class StoreError(Exception):
    """Base of every error the repository raises on purpose. ``status`` is the HTTP status it maps to."""

    status = 400
    code = "processing"  # OperationOutcome.issue.code

    def __init__(self, message: str, *, expression: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.expression = list(expression)


class NotFound(StoreError):
    status = 404
    code = "not-found"


class Gone(StoreError):
    """The resource existed and was deleted (read answers 410)."""

    status = 410
    code = "deleted"


class VersionConflict(StoreError):
    """``If-Match`` named a version that is not the current one."""

    status = 412
    code = "conflict"


class Conflict(StoreError):
    status = 409
    code = "conflict"


class MultipleMatches(StoreError):
    """A conditional create, update or delete matched more than one resource."""

    status = 412
    code = "multiple-matches"


class InvalidResource(StoreError):
    status = 422
    code = "invalid"


class InvalidRequest(StoreError):
    """Bad search parameter, bad id, malformed Bundle entry."""

    status = 400
    code = "invalid"


class Unavailable(StoreError):
    """The database cannot be reached; callers answer 503 (HTTP) or AE (MLLP) and retry later."""

    status = 503
    code = "transient"


# ----------------------------------------------------------------------------------------- values
@dataclass(frozen=True, slots=True)
class Stored:
    """One version of one resource as the store keeps it.

    ``content`` is the resource's JSON bytes with ``id`` and ``meta.versionId``/``meta.lastUpdated`` already
    set by the store, so a read can be returned to the client without re-serializing. Empty for a
    deletion marker in history.
    """

    resource_type: str
    id: str
    version_id: int
    last_updated: str  # FHIR instant, UTC, e.g. "2026-11-26T10:01:32.123456+00:00"
    content: bytes
    deleted: bool = False
    method: str = "PUT"  # how this version came to be: POST, PUT or DELETE (history entries)

    def resource(self) -> Resource:
        return dict(orjson.loads(self.content))

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'


@dataclass(frozen=True, slots=True)
class WriteResult:
    stored: Stored
    created: bool  # True for 201 Created, False for 200 OK (update, or conditional create that matched)


@dataclass(slots=True)
class SearchResult:
    """One page of a search. ``next_cursor`` is opaque; pass it back as ``_cursor`` for the next page."""

    matches: list[Stored]
    includes: list[Stored] = field(default_factory=list)
    total: int | None = None
    next_cursor: str | None = None
    applied: list[tuple[str, str]] = field(default_factory=list)
    """The parameters actually applied, for ``Bundle.link[self]`` (FHIR: self shows what was used)."""


@dataclass(slots=True)
class HistoryPage:
    entries: list[Stored]
    total: int | None = None
    next_cursor: str | None = None


# ------------------------------------------------------------------------------------- interface
class Session(Protocol):
    """Interactions inside one database transaction: all of them commit together or none does."""

    def create(self, resource: Resource, *, if_none_exist: str | None = None) -> WriteResult: ...

    def read(self, resource_type: str, id: str) -> Stored: ...

    def vread(self, resource_type: str, id: str, version_id: int) -> Stored: ...

    def update(self, resource: Resource, *, if_match: int | None = None) -> WriteResult:
        """Update (or create, with a client-chosen id) ``resource``; its ``resourceType`` and ``id`` say where."""
        ...

    def conditional_update(
        self, resource_type: str, criteria: str, resource: Resource, *, if_match: int | None = None
    ) -> WriteResult: ...

    def delete(self, resource_type: str, id: str) -> Stored | None:
        """Mark deleted (later reads answer 410); None when there was nothing to delete."""
        ...

    def conditional_delete(self, resource_type: str, criteria: str) -> Stored | None: ...

    def search(self, resource_type: str | None, params: SearchParams) -> SearchResult:
        """Search one type (or all, with ``None``). Raises InvalidRequest for an unknown parameter."""
        ...

    def history(
        self,
        resource_type: str | None = None,
        id: str | None = None,
        *,
        since: str | None = None,
        count: int = 20,
        cursor: str | None = None,
    ) -> HistoryPage: ...

    def process_bundle(self, bundle: Resource, *, base_url: str = "") -> Resource:
        """A batch or transaction Bundle in, its ``-response`` Bundle out. A transaction is all-or-nothing:
        any failing entry raises (StoreError with the entry's index in ``expression``) and nothing is kept."""
        ...


class Repository(Session, Protocol):
    """The store. Each method on it runs in its own transaction; ``session()`` groups several."""

    def session(self) -> AbstractContextManager[Session]:
        """``with repo.session() as s: ...`` commits on exit, rolls back on an exception."""
        ...

    def iter_all(self, resource_type: str) -> Iterator[Stored]:
        """Every current (not deleted) resource of a type, streamed; for planners and reports."""
        ...

    def close(self) -> None: ...
