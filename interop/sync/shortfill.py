"""Short fills to the anchor: g = (A − N) mod C after floor((A − N)/C) full fills, quantity = ceil(g × d).

A sync short fill is a complete fill with a shortened days supply (405-D5) and quantity (442-E7), claimed
with the payer's sync code in 420-DK (47, or 61 per payer); the first fill at the anchor after it carries
48 (ncpdp.md §3.5 steps 2-7).
"""

from __future__ import annotations

import math
from typing import NamedTuple


class Transition(NamedTuple):
    """How a drug due on ``next_due`` reaches the anchor lattice: full cycles, then a short gap."""

    full_fills: int
    gap_days: int
    joins: int


def transition(next_due: int, anchor: int, cycle: int) -> Transition:
    """Full fills and short-fill days that take a drug due on ``next_due`` onto anchor + k × cycle.

    Before the anchor: floor((A − N)/C) full fills, then (A − N) mod C days, joining at A. After it: the
    gap to the next lattice day, (A − N) mod C, joining there.
    """
    if next_due <= anchor:
        full, gap = divmod(anchor - next_due, cycle)
        return Transition(full, gap, anchor)
    gap = (anchor - next_due) % cycle
    return Transition(0, gap, next_due + gap)


def units_for(days: int, daily_dose: float) -> int:
    """Whole dispensable units for ``days`` at ``daily_dose``, rounded up so no dose is missed."""
    return max(math.ceil(days * daily_dose - 1e-9), 1)


def claimed_days(days: int, quantity: float, daily_dose: float) -> int:
    """Days supply to claim (405-D5): ``days``, or floor(quantity ÷ d) when rounding up adds a whole day."""
    covered = math.floor(quantity / daily_dose + 1e-9)
    return covered if covered > days else days
