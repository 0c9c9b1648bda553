"""How a service process opens the store: the repository with re-planning and outreach listeners attached.

Every entry point that writes (``interop serve`` with its API, MLLP listener and background loops;
``interop ingest``; ``interop claims``; ``interop deadletters replay``) opens the store here, so a new
prescription, a stopped one, an off-plan dispense or a hospital stay re-plans an enrolled patient however it
arrives (issue 5: "through any path"), and so does a moved pickup or a pre-pickup review that reports a
change (issue 7).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

import click

from interop.config import Settings, get_settings
from interop.outreach.booking import SlotKeeper, capacity_from, ensure_schedule
from interop.outreach.capacity import CapacityError
from interop.outreach.followup import review_answers
from interop.outreach.moves import pickup_moves
from interop.store import open_repository
from interop.store.base import Repository, StoreError
from interop.sync import load_settings
from interop.sync.events import Listener, observe
from interop.sync.replanning import replan_listener


def service_listeners(
    settings: Settings | None = None,
    *,
    today: Callable[[], date] | None = None,
    now: Callable[[], datetime] | None = None,
) -> list[Listener]:
    """The listeners every service process attaches: pickup Slot counts, re-planning on medication events, on
    moved pickups and on pre-pickup reviews. ``today``/``now`` replace the clocks (tests)."""
    settings = settings or get_settings()
    sync = load_settings()
    return [
        SlotKeeper(),
        replan_listener(sync, today),
        pickup_moves(sync, settings, today, now),
        review_answers(sync, settings, today, now),
    ]


def open_service_repository(url: str) -> Repository:
    """The store at ``url``, observed by :func:`service_listeners`, with the pickup counter's Schedule stored.
    Raises the store's errors, and a CLI error naming the setting when the counter's capacity is misconfigured."""
    try:
        capacity = capacity_from(get_settings())
    except CapacityError as exc:
        raise click.ClickException(str(exc)) from exc
    repo = observe(open_repository(url), service_listeners())
    ensure_schedule(repo, capacity)
    return repo


def open_store(db_url: str | None) -> Repository:
    """For CLI commands: the observed store at ``db_url`` or the configured one, or a CLI error naming it."""
    url = db_url or get_settings().database_url
    try:
        return open_service_repository(url)
    except StoreError as exc:
        raise click.ClickException(f"cannot open the store at {url}: {exc.message}") from exc
