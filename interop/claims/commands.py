"""``interop claims build|submit|reverse|pending``: the claims service from the command line.

build prices a MedicationDispense and stores its Claim + D.0 Binary; submit and reverse talk to the switch at
INTEROP_SWITCH_URL; pending lists the paid fills due for a B2 (return-to-stock deadline or CancelRx).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import click

from interop.claims.building import BuildError
from interop.claims.pricing import FILL_KINDS, Costs, PricingError
from interop.claims.service import (
    ClaimsError,
    build_and_store,
    pending_reversals,
    reverse,
    reverse_due,
    submit,
)
from interop.claims.switch import SwitchClient, SwitchError
from interop.config import get_settings
from interop.services import open_store
from interop.store.base import StoreError

_DB_HELP = "Store URL (INTEROP_DATABASE_URL; default sqlite:///./medsync.db)."


def _client() -> SwitchClient:
    try:
        return SwitchClient.from_settings(get_settings())
    except SwitchError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("claims")
def claims() -> None:
    """Build, submit and reverse NCPDP D.0 claims for fills; list reversals due."""


@claims.command("build")
@click.argument("dispense_id")
@click.option("--ingredient-cost", type=Decimal, required=True, help="409-D9 ingredient cost submitted.")
@click.option("--fee", type=Decimal, required=True, help="412-DC dispensing fee submitted.")
@click.option("--usual", type=Decimal, required=True, help="426-DQ usual and customary charge.")
@click.option("--copay", type=Decimal, default=None, help="The plan's copay for a month's supply.")
@click.option("--coinsurance", type=Decimal, default=None, help="The plan's coinsurance as a fraction (0.25).")
@click.option("--kind", type=click.Choice(["short", "anchor", "regular"]), default=None,
              help="Fill kind (default: from the dispense's 420-DK mark).")
@click.option("--db", "db_url", default=None, help=_DB_HELP)
def build_command(dispense_id: str, ingredient_cost: Decimal, fee: Decimal, usual: Decimal, copay: Decimal | None,
                  coinsurance: Decimal | None, kind: str | None, db_url: str | None) -> None:
    """Price the dispense, store its Claim and D.0 Binary, print the Claim id and the pricing explanation."""
    repo = open_store(db_url)
    try:
        built = build_and_store(repo, dispense_id, Costs(ingredient_cost, fee, usual, copay, coinsurance),
                                kind=FILL_KINDS[kind] if kind else None,
                                software_vendor=get_settings().switch_software_id)
    except (BuildError, PricingError, StoreError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        repo.close()
    click.echo(f"Claim/{built.claim['id']}  Binary/{built.binary['id']}")
    click.echo(built.pricing.explanation)


@claims.command("submit")
@click.argument("claim_id")
@click.option("--db", "db_url", default=None, help=_DB_HELP)
def submit_command(claim_id: str, db_url: str | None) -> None:
    """Send the Claim's B1 to the switch and store the answer; print the status and any Task raised."""
    repo = open_store(db_url)
    try:
        with _client() as client:
            done = submit(repo, claim_id, client, datetime.now(UTC).date())
    except (ClaimsError, SwitchError, StoreError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        repo.close()
    response = done.claim_response
    click.echo(f"ClaimResponse/{response['id']}  {response['disposition']}  (sent {done.result.attempts} time(s))")
    if done.task is not None:
        click.echo(f"Task/{done.task['id']}: {done.task['description']}")


@claims.command("reverse")
@click.argument("claim_id", required=False)
@click.option("--due", is_flag=True, help="Reverse every pending reversal instead of one claim.")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="With --due, the day the deadlines are checked against (default: today, UTC).")
@click.option("--db", "db_url", default=None, help=_DB_HELP)
def reverse_command(claim_id: str | None, due: bool, today: datetime | None, db_url: str | None) -> None:
    """Send the B2 reversal of a paid Claim, or with --due of every fill past its return-to-stock deadline
    or cancelled (CancelRx) before pickup."""
    if bool(claim_id) == due:
        raise click.UsageError("give a CLAIM_ID or --due (not both)")
    repo = open_store(db_url)
    try:
        with _client() as client:
            if claim_id:
                done = reverse(repo, claim_id, client)
                click.echo(f"ClaimResponse/{done.claim_response['id']}  {done.claim_response['disposition']}")
                return
            day: date = today.date() if today else datetime.now(UTC).date()
            reversed_ = reverse_due(repo, day, client)
    except (ClaimsError, SwitchError, StoreError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        repo.close()
    for pending, done in reversed_:
        click.echo(f"Claim/{pending.claim_id}  {done.claim_response['disposition']}  ({pending.reason})")
    if not reversed_:
        click.echo("no reversals due")


@claims.command("pending")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="Default: today (UTC).")
@click.option("--db", "db_url", default=None, help=_DB_HELP)
def pending_command(today: datetime | None, db_url: str | None) -> None:
    """List the paid fills due for a reversal: claim, dispense, date of service, deadline, reason."""
    day: date = today.date() if today else datetime.now(UTC).date()
    repo = open_store(db_url)
    try:
        due = pending_reversals(repo, day)
    finally:
        repo.close()
    for item in due:
        click.echo(f"Claim/{item.claim_id}  MedicationDispense/{item.dispense_id}  {item.date_of_service}  "
                   f"{item.deadline}  {item.reason}")
    if not due:
        click.echo("no reversals due")
