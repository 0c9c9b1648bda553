"""The ``interop`` command. Each subcommand lives beside the code it drives and is registered here."""

from __future__ import annotations

import click

from interop import FHIR_VERSION, __version__
from interop.config import get_settings
from interop.logs import configure


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="interop", message=f"%(prog)s %(version)s (FHIR {FHIR_VERSION})")
@click.option("--json-logs", is_flag=True, default=None, help="Log one JSON object per line (INTEROP_LOG_JSON).")
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR (INTEROP_LOG_LEVEL).")
def main(json_logs: bool | None, log_level: str | None) -> None:
    """medsync-interop: pharmacy feeds to FHIR R4, med sync planning, claims and outreach."""
    settings = get_settings()
    configure(
        json_logs=settings.log_json if json_logs is None else json_logs,
        level=log_level or settings.log_level,
        phi=settings.log_phi,
    )


# Subcommands register below, one import each (keep the list sorted).
from interop.api.serve import serve  # noqa: E402

main.add_command(serve)
from interop.ingest.convert import convert_command  # noqa: E402

main.add_command(convert_command)
from interop.ingest.synth import synth_command  # noqa: E402

main.add_command(synth_command)
from interop.ingest.commands import deadletters, ingest_command  # noqa: E402

main.add_command(ingest_command)
main.add_command(deadletters)
from interop.claims.commands import claims  # noqa: E402

main.add_command(claims)
from interop.outreach.commands import worker_command  # noqa: E402

main.add_command(worker_command)
from interop.sync.commands import plan_command  # noqa: E402

main.add_command(plan_command)
from interop.reports.commands import report  # noqa: E402

main.add_command(report)
from interop.api.tokens import token  # noqa: E402

main.add_command(token)
