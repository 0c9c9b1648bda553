"""Alembic migrations of the store's schema; :func:`interop.store.sql.migrate` runs them to head on open."""
