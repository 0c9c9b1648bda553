"""``interop report pdc|program|forecast``: the reports over the store as tables, and as CSV with ``--csv``."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from interop.config import get_settings
from interop.reports.classes import load_class_table
from interop.reports.forecast import FORECAST_CSV_COLUMNS, forecast_csv, forecast_rows
from interop.reports.measure_report import CSV_COLUMNS, results_csv
from interop.reports.program import PROGRAM_CSV_COLUMNS, program_csv, program_rows
from interop.reports.service import (
    PeriodError,
    forecast_of,
    last_year,
    parse_period,
    population_results,
    program_of,
    snapshot,
)
from interop.services import open_store
from interop.sync import load_settings

_DB_HELP = "Store URL (INTEROP_DATABASE_URL; default sqlite:///./medsync.db)."


def _today(value: str | None) -> date:
    if value is None:
        return datetime.now(ZoneInfo(get_settings().pharmacy_time_zone)).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint="--today") from None


def _period(value: str | None, default: tuple[date, date]) -> tuple[date, date]:
    if value is None:
        return default
    try:
        return parse_period(value)
    except PeriodError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from None


def table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Rows as an aligned plain-text table under a header."""
    cells = [[str(c) for c in columns], *[[str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _write(csv_path: Path | None, text: str) -> None:
    if csv_path is not None:
        csv_path.write_text(text, encoding="utf-8")
        click.echo(f"CSV written to {csv_path}")


@click.group("report")
def report() -> None:
    """Reports over the store: PQA PDC, med sync program indicators, demand forecast."""


@report.command("pdc")
@click.option("--db", "db_url", default=None, help=_DB_HELP)
@click.option("--period", default=None, help="A year (2026) or start/end dates; default the 365 days ending today.")
@click.option("--today", default=None, help="Reporting date (YYYY-MM-DD; default today).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write CSV here.")
def pdc_command(db_url: str | None, period: str | None, today: str | None, csv_path: Path | None) -> None:
    """PQA PDC per patient and Star class (and ingredient)."""
    day = _today(today)
    start, end = _period(period, last_year(day))
    repo = open_store(db_url)
    try:
        results = population_results(snapshot(repo, ("MedicationDispense", "Encounter", "Condition")), start, end)
    finally:
        repo.close()
    text = results_csv(results, load_class_table())
    rows = list(csv.reader(io.StringIO(text)))[1:]
    shown = ("patient", "measure", "ingredient_name", "status", "fills", "covered_days", "denominator_days", "pdc")
    index = [CSV_COLUMNS.index(c) for c in shown]
    click.echo(f"PQA PDC {start} to {end}")
    click.echo(table(shown, [[row[i] for i in index] for row in rows]))
    _write(csv_path, text)


@report.command("program")
@click.option("--db", "db_url", default=None, help=_DB_HELP)
@click.option("--period", default=None, help="A year (2026) or start/end dates; default the current year.")
@click.option("--today", default=None, help="Reporting date (YYYY-MM-DD; default today).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write CSV here.")
def program_command(db_url: str | None, period: str | None, today: str | None, csv_path: Path | None) -> None:
    """Med sync program indicators (enrollment, sync, continuation, pickups, short fills, PDC)."""
    day = _today(today)
    start, end = _period(period, (date(day.year, 1, 1), date(day.year, 12, 31)))
    repo = open_store(db_url)
    try:
        measures = program_of(snapshot(repo, ("CarePlan", "Task", "Appointment", "MedicationDispense", "Claim")),
                              start, end, day)
    finally:
        repo.close()
    click.echo(f"Med sync program {start} to {end} (observed to {min(end, day)})")
    click.echo(table(PROGRAM_CSV_COLUMNS, program_rows(measures)))
    for problem in measures.problems:
        click.echo(f"not counted: {problem}", err=True)
    _write(csv_path, program_csv(measures))


@report.command("forecast")
@click.option("--db", "db_url", default=None, help=_DB_HELP)
@click.option("--days", default=14, show_default=True, type=click.IntRange(1, 366), help="Days to forecast.")
@click.option("--today", default=None, help="First forecast day (YYYY-MM-DD; default today).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write CSV here.")
def forecast_command(db_url: str | None, days: int, today: str | None, csv_path: Path | None) -> None:
    """Quantity needed per drug per day and fills to prepare per day."""
    day = _today(today)
    repo = open_store(db_url)
    try:
        forecast = forecast_of(snapshot(repo, ("Task", "MedicationRequest", "MedicationDispense")), day, days,
                               load_settings().prep_lead_days)
    finally:
        repo.close()
    click.echo(f"Demand forecast {forecast.today} to {forecast.last}")
    click.echo(table(FORECAST_CSV_COLUMNS, forecast_rows(forecast)))
    for problem in forecast.problems:
        click.echo(f"not counted: {problem}", err=True)
    _write(csv_path, forecast_csv(forecast))
