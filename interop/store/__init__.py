"""The FHIR store: ``open_repository(url)`` gives the repository every service layer talks to.

The contract (``Repository``, ``Session``, ``Stored``, the error family) is in :mod:`interop.store.base`; the
one implementation, on SQLAlchemy Core for SQLite and PostgreSQL, is in :mod:`interop.store.sql`::

    repo = open_repository(settings.database_url)     # migrates the schema; Unavailable if unreachable
    stored = repo.read("Patient", "123")               # Stored: .content bytes, .etag, .last_updated
    result = repo.update(resource, if_match=2)         # WriteResult: .stored, .created (201 vs 200)
    with repo.session() as s:                          # several interactions, one transaction
        s.process_bundle(bundle, base_url=base)        # transaction-response / batch-response Bundle
"""

from __future__ import annotations

from interop.store.base import (
    Conflict,
    Gone,
    HistoryPage,
    InvalidRequest,
    InvalidResource,
    MultipleMatches,
    NotFound,
    Repository,
    Resource,
    SearchParams,
    SearchResult,
    Session,
    Stored,
    StoreError,
    Unavailable,
    VersionConflict,
    WriteResult,
)
from interop.store.sql import SqlRepository, SqlSession


def open_repository(url: str) -> SqlRepository:
    """The store at SQLAlchemy ``url`` (``sqlite:///file.db`` or ``postgresql+psycopg://...``), its schema
    migrated to the newest revision. Raises Unavailable when the database cannot be reached."""
    return SqlRepository(url)


__all__ = [
    "Conflict",
    "Gone",
    "HistoryPage",
    "InvalidRequest",
    "InvalidResource",
    "MultipleMatches",
    "NotFound",
    "Repository",
    "Resource",
    "SearchParams",
    "SearchResult",
    "Session",
    "SqlRepository",
    "SqlSession",
    "StoreError",
    "Stored",
    "Unavailable",
    "VersionConflict",
    "WriteResult",
    "open_repository",
]
