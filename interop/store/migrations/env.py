"""Alembic environment: migrate the connection the repository hands over, or the URL of the Config.

The repository calls ``command.upgrade`` with ``config.attributes["connection"]`` set, so the upgrade runs in
its own engine's connection (same pragmas, same pool); the ``sqlalchemy.url`` path serves the alembic CLI.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from interop.store.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    given = context.config.attributes.get("connection")
    if isinstance(given, Connection):
        _run(given)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url (or pass a connection in config.attributes) to migrate")
    engine = create_engine(url)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


_main()
