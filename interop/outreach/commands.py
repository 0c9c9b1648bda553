"""``interop worker``: the outreach dispatcher as its own process (any number may run on PostgreSQL)."""

from __future__ import annotations

import os
import signal
import socket
import threading
from datetime import UTC, datetime
from types import FrameType

import click
from sqlalchemy.engine import make_url

from interop.config import get_settings
from interop.outreach.dispatcher import OutreachDispatcher, policy_settings
from interop.outreach.gateway import Gateway
from interop.outreach.worker import planner, worker_loop
from interop.store.base import StoreError


@click.command("worker")
@click.option("--db", "db_url", default=None, help="Store URL (INTEROP_DATABASE_URL).")
@click.option("--once", is_flag=True, help="Run one dispatcher pass and exit.")
@click.option("--interval", type=float, default=None, help="Seconds between passes (INTEROP_WORKER_INTERVAL).")
@click.option("--worker-id", default=None, help="Name in claims (default host:pid).")
@click.option("--no-plan", is_flag=True, help="Only send; do not write requests for stored pickups.")
def worker_command(db_url: str | None, once: bool, interval: float | None, worker_id: str | None, no_plan: bool) -> None:
    """Write reminder and review requests for stored pickups (hourly) and send the due ones, exactly once."""
    from interop.services import open_service_repository

    settings = get_settings()
    url = db_url or settings.database_url
    try:
        repo = open_service_repository(url)
    except StoreError as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        raise click.ClickException(f"cannot open the store at {shown}: {exc.message}") from exc
    gateway = Gateway.from_settings(settings)
    name = worker_id or f"{socket.gethostname()}:{os.getpid()}"
    dispatcher = OutreachDispatcher(repo, gateway, policy_settings(settings), name)
    plan = None if no_plan else planner(repo, settings)
    try:
        if once:
            now = datetime.now(UTC)
            written = plan(now) if plan else 0
            report = dispatcher.run_once(now)
            click.echo(
                f"planned {written}, sent {report.sent}, blocked {report.blocked}, deferred {report.deferred}, "
                f"gateway unavailable {report.unavailable}"
            )
            return
        stop = threading.Event()

        def _stop(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        worker_loop(dispatcher, interval if interval is not None else settings.worker_interval, stop, plan=plan)
    finally:
        gateway.close()
        repo.close()
