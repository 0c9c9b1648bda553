"""How a service process opens the store: the repository with re-planning on events attached.

Every entry point that writes (``interop serve`` with its API, MLLP listener and background loops;
``interop ingest``; ``interop claims``; ``interop deadletters replay``) opens the store here, so a new
prescription, a stopped one, an off-plan dispense or a hospital stay re-plans an enrolled patient however it
arrives (issue 5: "through any path").
"""

from __future__ import annotations

import click

from interop.config import get_settings
from interop.store import open_repository
from interop.store.base import Repository, StoreError
from interop.sync import load_settings
from interop.sync.events import observe
from interop.sync.replanning import replan_listener


def open_service_repository(url: str) -> Repository:
    """The store at ``url``, observed by the re-planning listener. Raises the store's errors."""
    return observe(open_repository(url), [replan_listener(load_settings())])


def open_store(db_url: str | None) -> Repository:
    """For CLI commands: the observed store at ``db_url`` or the configured one, or a CLI error naming it."""
    url = db_url or get_settings().database_url
    try:
        return open_service_repository(url)
    except StoreError as exc:
        raise click.ClickException(f"cannot open the store at {url}: {exc.message}") from exc
