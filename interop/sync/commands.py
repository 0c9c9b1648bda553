"""``interop plan PATIENT_ID`` prints a patient's sync plan; ``interop plan --all`` re-plans every enrolled one.

Service layer (the CLI over ``interop.sync.enrollment``): the table lists each planned fill (drug, fill date,
days supply 405-D5, quantity 442-E7, 420-DK claim code), the drugs left out with their reasons and the anchor
explanation; ``--json`` prints the plan Bundle instead. Nothing is stored except by ``--all``.
"""

from __future__ import annotations

import sys
from datetime import date, datetime

import click
import orjson
from click._termui_impl import ProgressBar

from interop.services import open_store
from interop.store.base import Repository, StoreError
from interop.sync.enrollment import enrolled_patients, pharmacy_today, preview, replan_all
from interop.sync.fhir_out import plan_bundle
from interop.sync.plan import PlanError, SyncPlan
from interop.sync.settings import SettingsError, SyncSettings, load_settings

_DB_HELP = "Store URL (INTEROP_DATABASE_URL; default sqlite:///./medsync.db)."


def _settings() -> SyncSettings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def plan_table(plan: SyncPlan) -> str:
    """The plan for staff: the fills table, the exclusions with reasons and the anchor explanation."""
    lines = [
        f"Sync plan for {plan.patient} on {plan.today}: anchor {plan.anchor or 'none'}, "
        f"{plan.cycle_days}-day cycle, payer {plan.payer}, state {plan.state}",
    ]
    if plan.fills:
        width = max(len(f.drug_name) for f in plan.fills)
        width = min(max(width, 4), 60)
        lines.append("")
        lines.append(f"{'Drug':<{width}}  {'Fill date':<10}  {'Days':>4}  {'Quantity':>12}  {'Code':<4}  Kind")
        for fill in plan.fills:
            qty = f"{fill.quantity:g} {fill.unit}".strip()
            renewal = " (needs renewal)" if fill.needs_renewal else ""
            lines.append(
                f"{fill.drug_name[:width]:<{width}}  {fill.date.isoformat():<10}  {fill.days:>4}  {qty:>12}  "
                f"{fill.claim_code or '':<4}  {fill.kind}{renewal}"
            )
    else:
        lines.append("")
        lines.append("No fills planned.")
    if plan.renewals:
        lines.append("")
        lines.append("Renewals:")
        for ask in plan.renewals:
            late = " (late)" if ask.late else ""
            lines.append(
                f"  {ask.drug_name}: request by {date.fromordinal(ask.due)} for the fill on "
                f"{date.fromordinal(ask.needed_by)}{late}"
            )
    if plan.exclusions:
        lines.append("")
        lines.append("Not short-filled to the anchor:")
        for excl in plan.exclusions:
            lines.append(f"  {excl.drug_name}: {excl.reason.value} ({excl.detail})")
    lines.append("")
    lines.append(plan.choice.narrative() if plan.choice else "No prescription can be synchronized.")
    return "\n".join(lines)


def _today(value: datetime | None) -> date:
    return value.date() if value is not None else pharmacy_today()


@click.command("plan")
@click.argument("patient_id", required=False)
@click.option("--all", "everyone", is_flag=True, help="Re-plan every enrolled patient and store the plans.")
@click.option("--anchor", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Anchor date (default: optimized).")
@click.option("--cycle", type=int, default=None, help="Cycle length in days (28, 30, 56, 84 or 90).")
@click.option("--today", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Planning date (default: today).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan Bundle (FHIR JSON) instead of the table.")
@click.option("--db", "db_url", default=None, help=_DB_HELP)
def plan_command(patient_id: str | None, everyone: bool, anchor: datetime | None, cycle: int | None,
                 today: datetime | None, as_json: bool, db_url: str | None) -> None:
    """Print PATIENT_ID's sync plan (nothing stored), or re-plan every enrolled patient with --all."""
    if everyone == (patient_id is not None):
        raise click.UsageError("give either PATIENT_ID or --all")
    if everyone and (anchor or cycle or as_json):
        raise click.UsageError("--anchor, --cycle and --json apply to one patient, not to --all")
    settings = _settings()
    day = _today(today)
    repo = open_store(db_url)
    try:
        if everyone:
            _plan_all(repo, settings, day)
            return
        assert patient_id is not None
        try:
            plan = preview(repo, patient_id, settings, day, anchor=anchor.date() if anchor else None,
                           cycle_days=cycle)
        except (PlanError, StoreError) as exc:
            raise click.ClickException(getattr(exc, "message", str(exc))) from exc
    finally:
        repo.close()
    if as_json:
        bundle = plan_bundle(plan, prep_lead_days=settings.prep_lead_days)
        click.echo(orjson.dumps(bundle, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(plan_table(plan))


def _plan_all(repo: Repository, settings: SyncSettings, day: date) -> None:
    enrolled = enrolled_patients(repo)
    bar: ProgressBar[int] = click.progressbar(
        length=len(enrolled), label="Re-planning", file=sys.stderr
    )
    with bar:
        summary = replan_all(repo, settings, day, enrolled=enrolled, progress=bar.update)
    click.echo(
        f"{summary.replanned} of {summary.enrolled} enrolled patients re-planned in {summary.total_seconds:.1f} s "
        f"({summary.plan_seconds:.1f} s in the planner); {len(summary.failed)} failed"
    )
    for ref, reason in summary.failed:
        click.echo(f"  {ref}: {reason}", err=True)
