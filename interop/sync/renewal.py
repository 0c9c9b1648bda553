"""Renewal requests for prescriptions whose authorized supply cannot reach the end of the transition.

The request (NCPDP SCRIPT RxRenewalRequest) is due at the fill that needs it minus (prep lead + outreach lead
+ 2 days prescriber answer + buffer), and at least 10 days before by default (medsync.md §2.6).
"""

from __future__ import annotations

from typing import NamedTuple

from interop.sync.settings import SyncSettings


class RenewalRequest(NamedTuple):
    """Ask the prescriber of ``request_id`` for a renewal by ``due`` (day ordinal) for the fill on ``needed_by``.

    ``late`` is true when the ideal due day is already past: the request goes out today and may not be
    answered before the fill.
    """

    request_id: str
    drug_name: str
    due: int
    needed_by: int
    shortfall_units: float
    late: bool


def renewal_due(needed_by: int, today: int, settings: SyncSettings) -> tuple[int, bool]:
    """(due day, late?) for a renewal needed for the fill on ``needed_by``."""
    ideal = needed_by - settings.renewal_lead_days
    return (ideal, False) if ideal >= today else (today, True)


def renewal_for(
    request_id: str, drug_name: str, needed_by: int, shortfall_units: float, today: int, settings: SyncSettings
) -> RenewalRequest:
    """The renewal request for the first planned fill (``needed_by``) not covered by the authorization."""
    due, late = renewal_due(needed_by, today, settings)
    return RenewalRequest(request_id, drug_name, due, needed_by, shortfall_units, late)
