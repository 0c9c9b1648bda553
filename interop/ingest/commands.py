"""``interop ingest`` (files and folders into the store) and ``interop deadletters list|show|replay``."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import click
import orjson

from interop.ingest.convert import FORMATS
from interop.ingest.deadletter import DEAD_LETTER, TASK_CODE_SYSTEM, read_dead_letter, resolved
from interop.ingest.pipeline import Ingestor
from interop.services import open_store
from interop.store.base import NotFound, Repository

_DB_HELP = "Store URL (INTEROP_DATABASE_URL; default sqlite:///./medsync.db)."


def _files(paths: tuple[Path, ...]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")))
        else:
            out.append(path)
    return out


@click.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--from", "fmt", type=click.Choice(FORMATS), default=None, help="Input format (detected when omitted).")
@click.option("--db", "db_url", default=None, help=_DB_HELP)
def ingest_command(paths: tuple[Path, ...], fmt: str | None, db_url: str | None) -> None:
    """Store feed files (or folders of them) through the ingest pipeline, one transaction per file.

    A file that cannot be converted or stored is named on stderr with the reason, kept as a dead letter for
    `interop deadletters replay`, and makes the exit code 1; the others are still stored.
    """
    repo = open_store(db_url)
    ingestor = Ingestor(repo)
    files = _files(paths)
    counts: Counter[str] = Counter()
    failures: list[str] = []
    try:
        with click.progressbar(files, label="ingesting", show_pos=True, file=sys.stderr) as bar:
            for path in bar:
                outcome = ingestor.ingest(path.read_bytes(), source=str(path), fmt=fmt)
                counts[outcome.code] += 1
                counts["resources"] += sum(len(b.get("entry", [])) for b in outcome.bundles) if outcome.accepted else 0
                if not outcome.accepted:
                    kept = f" (kept as dead letter {outcome.dead_letter})" if outcome.dead_letter else ""
                    failures.append(f"error: {path}: {outcome.reason}{kept}")
    finally:
        repo.close()
    for line in failures:
        click.echo(line, err=True)
    click.echo(
        f"{len(files)} files: {counts['AA']} stored ({counts['resources']} resources), "
        f"{counts['AE'] + counts['AR']} failed"
    )
    if failures:
        raise SystemExit(1)


@click.group("deadletters")
def deadletters() -> None:
    """Messages that could not be ingested, kept whole with the reason: list, show, replay."""


def _dead_letter_params(status: str | None) -> list[tuple[str, str]]:
    params = [("code", f"{TASK_CODE_SYSTEM}|{DEAD_LETTER}"), ("_sort", "-_lastUpdated"), ("_count", "200")]
    if status:
        params.append(("status", status))
    return params


@deadletters.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also the ones already replayed.")
@click.option("--db", "db_url", default=None, help=_DB_HELP)
def list_command(show_all: bool, db_url: str | None) -> None:
    """One line per dead letter: id, status, format, when, source and reason."""
    repo = open_store(db_url)
    try:
        result = repo.search("Task", _dead_letter_params(None if show_all else "failed"))
        for stored in result.matches:
            letter = read_dead_letter(stored.resource())
            click.echo(f"{letter.id}  {letter.status:9}  {letter.fmt:7}  {letter.received}  {letter.source}  {letter.reason}")
        if not result.matches:
            click.echo("no dead letters")
    finally:
        repo.close()


@deadletters.command("show")
@click.argument("task_id")
@click.option("--raw", is_flag=True, help="Print only the original message bytes.")
@click.option("--db", "db_url", default=None, help=_DB_HELP)
def show_command(task_id: str, raw: bool, db_url: str | None) -> None:
    """The dead letter's facts and its original message."""
    repo = open_store(db_url)
    try:
        letter = read_dead_letter(_task(repo, task_id))
    finally:
        repo.close()
    if raw:
        sys.stdout.buffer.write(letter.data)
        return
    click.echo(f"id:       {letter.id}\nstatus:   {letter.status}\nformat:   {letter.fmt}\nreceived: {letter.received}")
    click.echo(f"source:   {letter.source}\nreason:   {letter.reason}\n")
    click.echo(letter.data.decode("utf-8", "replace").replace("\r", "\n"))


def _task(repo: Repository, task_id: str) -> dict[str, object]:
    try:
        task = repo.read("Task", task_id).resource()
    except NotFound as exc:
        raise click.ClickException(f"no dead letter {task_id}") from exc
    if TASK_CODE_SYSTEM not in orjson.dumps(task.get("code", {})).decode():
        raise click.ClickException(f"Task/{task_id} is not a dead letter")
    return task


@deadletters.command("replay")
@click.argument("task_ids", nargs=-1)
@click.option("--all", "replay_all", is_flag=True, help="Replay every failed dead letter.")
@click.option("--db", "db_url", default=None, help=_DB_HELP)
def replay_command(task_ids: tuple[str, ...], replay_all: bool, db_url: str | None) -> None:
    """Run dead letters through the pipeline again (after a mapping fix); the ones that pass are completed."""
    if not task_ids and not replay_all:
        raise click.UsageError("name dead letter ids or give --all")
    repo = open_store(db_url)
    ingestor = Ingestor(repo)
    failed = 0
    try:
        if replay_all:
            task_ids = tuple(s.id for s in repo.search("Task", _dead_letter_params("failed")).matches)
        for task_id in task_ids:
            task = _task(repo, task_id)
            letter = read_dead_letter(task)
            outcome = ingestor.ingest(letter.data, source=letter.source, fmt=letter.fmt or None)
            if outcome.accepted:
                repo.update(resolved(task))
                click.echo(f"{task_id}: stored")
            else:
                failed += 1
                click.echo(f"{task_id}: still failing: {outcome.reason}", err=True)
    finally:
        repo.close()
    if failed:
        raise SystemExit(1)
