"""The ``repo`` fixture of the store tests: one repository per test, on SQLite and on PostgreSQL.

PostgreSQL shares the session's database (``pg_url``) and is emptied with TRUNCATE before each test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, text

from interop.store import SqlRepository, open_repository
from interop.store.schema import metadata

TABLES = ("resource", "resource_version", "idx_token", "idx_string", "idx_reference", "idx_date", "idx_quantity")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def repo(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[SqlRepository]:
    if request.param == "sqlite":
        repository = open_repository(sqlite_url)
    else:
        repository = open_repository(request.getfixturevalue("pg_url"))
        with repository.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    try:
        yield repository
    finally:
        repository.close()


def row_counts(repo: SqlRepository) -> dict[str, int]:
    """Rows in each store table, read straight from the database."""
    with repo.engine.connect() as conn:
        return {name: conn.execute(select(func.count()).select_from(metadata.tables[name])).scalar_one() for name in TABLES}
