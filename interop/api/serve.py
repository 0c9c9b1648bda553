"""``interop serve``: the FHIR API under uvicorn on a SQLite file (default) or PostgreSQL.

With ``--demo`` an empty store first gets the demo pharmacy (``interop.demo``), so a fresh machine has
something to look at; the FHIR base URL and the docs URL are printed before the server starts.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, date, datetime

import click
import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from interop import heap
from interop.api.app import BASE_PATH, create_app
from interop.api.tokens import AuthConfigError, TokenVerifier
from interop.claims.scheduler import start_reversal_scheduler
from interop.config import Settings, get_settings
from interop.demo import demo_bundle
from interop.ingest.mllp import MllpServer, allowed_networks, listener_tls, server_tls
from interop.ingest.pipeline import Ingestor
from interop.outreach.worker import start_dispatcher
from interop.store.base import Repository, StoreError
from interop.sync import PlanError, load_settings
from interop.sync.enrollment import enroll

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
INSECURE_WARNING = (
    "WARNING: authorization is OFF (--insecure-dev or INTEROP_AUTH_ENABLED=false): anyone who reaches this "
    "port reads and changes all patient data. Local development only."
)


def load_demo(repo: Repository, today: date) -> str:
    """Load the demo pharmacy and enroll the patients the planner can sync, so /app has a day's work to show."""
    bundle = demo_bundle(today)
    repo.process_bundle(bundle)
    settings = load_settings()
    enrolled = 0
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] != "Patient":
            continue
        try:
            enroll(repo, resource["id"], settings, today)
            enrolled += 1
        except (PlanError, StoreError) as exc:
            click.echo(f"demo patient {resource['id']} not enrolled: {exc}", err=True)
    return f"Loaded the demo pharmacy: {len(bundle['entry'])} resources, {enrolled} patients enrolled in med sync."


def is_empty(repo: Repository) -> bool:
    """Whether the store holds no pharmacy data yet: no Patient (a service process writes its own pickup
    Schedule on first start, so "no resource at all" would never hold)."""
    return not repo.search("Patient", [("_count", "1")]).matches


def check_tls(settings: Settings) -> None:
    """Refuse to start on half a TLS configuration, unreadable certificates or a bad MLLP allow list."""
    pairs = (
        (settings.tls_cert, settings.tls_key, "INTEROP_TLS"),
        (settings.mllp_tls_cert, settings.mllp_tls_key, "INTEROP_MLLP_TLS"),
    )
    for cert, key, name in pairs:
        if bool(cert) != bool(key):
            raise click.ClickException(f"{name}_CERT and {name}_KEY go together: set both or neither")
    try:
        allowed_networks(settings.mllp_allowed)
        if settings.tls_cert:
            server_tls(settings.tls_cert, settings.tls_key)
        listener_tls(settings)
    except (ValueError, OSError) as exc:
        raise click.ClickException(f"TLS or MLLP configuration: {exc}") from exc


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8080, show_default=True, type=int, help="TCP port.")
@click.option(
    "--db",
    "db_url",
    default=None,
    help="Store URL: sqlite:///file.db or postgresql+psycopg://... (INTEROP_DATABASE_URL; default sqlite:///./medsync.db).",
)
@click.option("--demo", is_flag=True, help="Load a small demo pharmacy when the database is empty.")
@click.option(
    "--mllp-port",
    type=int,
    default=None,
    help="HL7 v2 MLLP listener port (INTEROP_MLLP_PORT; default 2575); 0 disables it.",
)
@click.option(
    "--insecure-dev",
    is_flag=True,
    help="Serve without authorization (no bearer tokens checked): local development on 127.0.0.1 only.",
)
def serve(host: str, port: int, db_url: str | None, demo: bool, mllp_port: int | None, insecure_dev: bool) -> None:
    """Serve the FHIR R4 REST API (base /fhir) and its OpenAPI docs (/docs), the HL7 v2 MLLP listener,
    the outreach dispatcher when a messaging gateway is configured, and the reversal scheduler when a
    claims switch is."""
    from interop.services import open_service_repository

    settings = get_settings()
    url = db_url or settings.database_url
    settings = settings.model_copy(update={"database_url": url, "auth_enabled": settings.auth_enabled and not insecure_dev})
    if not settings.auth_enabled:
        if host not in LOOPBACK:
            raise click.ClickException(f"authorization is off: refusing to bind {host}; use 127.0.0.1 or ::1")
        click.secho(INSECURE_WARNING, err=True, fg="red", bold=True)
    else:
        try:
            TokenVerifier(settings)
        except AuthConfigError as exc:
            raise click.ClickException(str(exc)) from exc
    check_tls(settings)
    try:
        repo = open_service_repository(url)
    except StoreError as exc:
        shown_url = make_url(url).render_as_string(hide_password=True)
        raise click.ClickException(f"cannot open the store at {shown_url}: {exc.message}") from exc
    if demo and is_empty(repo):
        click.echo(load_demo(repo, datetime.now(UTC).date()))
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host, host)
    scheme = "https" if settings.tls_cert else "http"
    click.echo(f"FHIR base URL: {scheme}://{shown}:{port}{BASE_PATH}")
    click.echo(f"API docs:      {scheme}://{shown}:{port}/docs")
    click.echo(f"Staff page:    {scheme}://{shown}:{port}/app")
    app = create_app(repo, settings)
    listen_mllp = settings.mllp_port if mllp_port is None else mllp_port
    background = [
        started
        for started in (
            start_dispatcher(repo, settings, f"serve:{os.getpid()}"),
            start_reversal_scheduler(repo, settings),
        )
        if started is not None
    ]
    heap.settle()
    try:
        asyncio.run(_run(app, repo, settings, host, port, listen_mllp))
    finally:
        for _, stop in background:
            stop.set()
        for thread, _ in background:
            thread.join(5)
        repo.close()


async def _run(app: FastAPI, repo: Repository, settings: Settings, host: str, port: int, mllp_port: int) -> None:
    """uvicorn and the MLLP listener on one event loop; the listener stops when uvicorn does.

    HTTPS when INTEROP_TLS_CERT/INTEROP_TLS_KEY are set; MLLP over TLS when INTEROP_MLLP_TLS_* are.
    """
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=settings.log_level.lower(),
            access_log=False,
            ssl_certfile=settings.tls_cert or None,
            ssl_keyfile=settings.tls_key or None,
        )
    )
    listener: MllpServer | None = None
    if mllp_port:
        listener = MllpServer(
            Ingestor(repo, audit=settings.audit_enabled),
            settings.mllp_host,
            mllp_port,
            max_message_bytes=settings.mllp_max_bytes,
            allowed=settings.mllp_allowed,
            tls=listener_tls(settings),
        )
        await listener.start()
        tls = " (TLS)" if listener.tls else ""
        click.echo(f"MLLP listener: {settings.mllp_host}:{listener.bound_port}{tls}")
    try:
        await server.serve()
    finally:
        if listener is not None:
            await listener.stop()
