"""The reversal scheduler: B2s for paid fills nobody picked up by the payer's return-to-stock deadline.

``interop serve`` runs it in a daemon thread when a switch is configured (INTEROP_SWITCH_URL); each pass
reverses what :func:`interop.claims.service.pending_reversals` finds due on the day of the pass.
``interop claims reverse --due`` runs one pass by hand.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime

from interop.claims.service import ClaimsError, reverse_due
from interop.claims.switch import SwitchClient, SwitchError
from interop.config import Settings
from interop.store.base import Repository, StoreError

log = logging.getLogger(__name__)

Clock = Callable[[], date]


def reversal_pass(repo: Repository, client: SwitchClient, today: date) -> int:
    """Reverse everything due ``today``; the count reversed. A failure is logged and retried next pass."""
    try:
        done = reverse_due(repo, today, client)
    except (ClaimsError, SwitchError, StoreError) as exc:
        log.warning("reversal pass failed, retried on the next pass: %s", exc)
        return 0
    if done:
        log.info("reversed %d unclaimed fills", len(done))
    return len(done)


def start_reversal_scheduler(
    repo: Repository, settings: Settings, *, clock: Clock | None = None
) -> tuple[threading.Thread, threading.Event] | None:
    """A daemon thread running a reversal pass every ``reversal_interval`` seconds; None without a switch.
    Stop it with ``stop.set()`` and ``thread.join()``."""
    if not settings.switch_url or settings.reversal_interval <= 0:
        log.info("reversal scheduler not started: set INTEROP_SWITCH_URL")
        return None
    today = clock or (lambda: datetime.now(UTC).date())
    stop = threading.Event()

    def loop() -> None:
        with SwitchClient.from_settings(settings) as client:
            while not stop.is_set():
                reversal_pass(repo, client, today())
                stop.wait(settings.reversal_interval)

    thread = threading.Thread(target=loop, name="reversal-scheduler", daemon=True)
    thread.start()
    return thread, stop
