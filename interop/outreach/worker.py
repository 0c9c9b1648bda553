"""The outreach background loop: write the pickups' requests (hourly) and send what is due (every pass).

``interop worker`` runs it in its own process; :func:`start_dispatcher` runs it in a daemon thread of
``interop serve``. Several loops may run against one PostgreSQL store: claims keep each message single.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from interop.config import Settings
from interop.outreach.dispatcher import OutreachDispatcher, policy_settings
from interop.outreach.gateway import Gateway
from interop.outreach.outbox import schedule_pickups
from interop.outreach.schedule import ScheduleSettings
from interop.outreach.templates import load_templates
from interop.store.base import Repository

log = logging.getLogger(__name__)

PLAN_EVERY = 3600.0
"""Seconds between two runs of the planner that writes reminder and review requests for stored pickups."""

Planner = Callable[[datetime], int]


def schedule_settings(settings: Settings) -> ScheduleSettings:
    """The schedule's tunables from the process settings (pharmacy name and zone, reminder hour)."""
    return ScheduleSettings(settings.pharmacy_name, settings.pharmacy_time_zone, hour=settings.outreach_hour)


def planner(repo: Repository, settings: Settings) -> Planner:
    """``now`` → how many CommunicationRequests :func:`schedule_pickups` wrote for the stored Appointments."""
    templates = load_templates(settings.outreach_templates)
    sched = schedule_settings(settings)

    def plan(now: datetime) -> int:
        return schedule_pickups(repo, now, sched, templates)

    return plan


def worker_loop(
    dispatcher: OutreachDispatcher,
    interval: float,
    stop: threading.Event,
    *,
    plan: Planner | None = None,
    plan_every: float = PLAN_EVERY,
) -> None:
    """Until ``stop`` is set: ``plan`` every ``plan_every`` seconds, a dispatcher pass every ``interval``.
    A failing pass is logged and retried at the next one (its work stays due)."""
    planned: datetime | None = None
    while not stop.is_set():
        now = datetime.now(UTC)
        try:
            if plan is not None and (planned is None or (now - planned).total_seconds() >= plan_every):
                written = plan(now)
                planned = now
                if written:
                    log.info("outreach planner wrote %d request(s)", written)
            report = dispatcher.run_once(now)
            if report.sent or report.blocked or report.unavailable:
                log.info("outreach pass: %s", report)
        except Exception:
            log.exception("outreach pass failed; retrying in %.0f s", interval)
        stop.wait(interval)


def start_dispatcher(
    repo: Repository, settings: Settings, worker_id: str
) -> tuple[threading.Thread, threading.Event] | None:
    """Start the loop in a daemon thread (for ``interop serve``); None when no gateway URL is configured.
    Stop it with ``stop.set()`` and ``thread.join()``."""
    if not (settings.sms_url or settings.email_url):
        log.info("outreach dispatcher not started: set INTEROP_SMS_URL or INTEROP_EMAIL_URL")
        return None
    gateway = Gateway.from_settings(settings)
    dispatcher = OutreachDispatcher(repo, gateway, policy_settings(settings), worker_id)
    stop = threading.Event()
    thread = threading.Thread(
        target=worker_loop,
        args=(dispatcher, settings.worker_interval, stop),
        kwargs={"plan": planner(repo, settings)},
        name="outreach-dispatcher",
        daemon=True,
    )
    thread.start()
    return thread, stop
