"""``interop serve``: the FHIR API under uvicorn on a SQLite file (default) or PostgreSQL.

With ``--demo`` an empty store first gets the demo pharmacy (``interop.demo``), so a fresh machine has
something to look at; the FHIR base URL and the docs URL are printed before the server starts.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click
import uvicorn
from sqlalchemy.engine import make_url

from interop.api.app import BASE_PATH, create_app
from interop.config import get_settings
from interop.demo import demo_bundle
from interop.store.base import Repository, StoreError


def is_empty(repo: Repository) -> bool:
    """Whether the store holds no resource version at all (a fresh database)."""
    return not repo.history(None, None, count=1).entries


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
def serve(host: str, port: int, db_url: str | None, demo: bool) -> None:
    """Serve the FHIR R4 REST API (base /fhir) and its OpenAPI docs (/docs)."""
    from interop.store import open_repository

    settings = get_settings()
    url = db_url or settings.database_url
    settings = settings.model_copy(update={"database_url": url})
    try:
        repo = open_repository(url)
    except StoreError as exc:
        shown_url = make_url(url).render_as_string(hide_password=True)
        raise click.ClickException(f"cannot open the store at {shown_url}: {exc.message}") from exc
    if demo and is_empty(repo):
        bundle = demo_bundle(datetime.now(UTC).date())
        repo.process_bundle(bundle)
        click.echo(f"Loaded the demo pharmacy: {len(bundle['entry'])} resources.")
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host, host)
    click.echo(f"FHIR base URL: http://{shown}:{port}{BASE_PATH}")
    click.echo(f"API docs:      http://{shown}:{port}/docs")
    app = create_app(repo, settings)
    try:
        uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower(), access_log=False)
    finally:
        repo.close()
