"""Non-splittable packages (eye-drop bottles, insulin pens, inhalers, creams): their natural cycle and pickups.

A package is never split (ncpdp.md §3.5 step 4). Its natural cycle is how long one package lasts: a 5 mL
bottle at 20 drops/mL, 1 drop each eye twice a day = 100 ÷ 4 = 25 days; a U-100 3 mL pen = 300 units
(medsync.md §2.3). Such a drug is synced only when whole packages land on the anchor; otherwise its pickup is
co-scheduled with an anchor date that falls within the tolerance window before its due date.
"""

from __future__ import annotations

import math


def natural_cycle_days(package_amount: float, per_day: float) -> int:
    """Whole days one package lasts (at least 1): ``package_amount`` ÷ ``per_day``, rounded down."""
    if per_day <= 0:
        raise ValueError(f"daily use must be positive, got {per_day}")
    return max(math.floor(package_amount / per_day + 1e-9), 1)


def packages_for(days: int, per_day: float, package_size: float) -> int:
    """Whole packages that cover ``days`` at ``per_day`` (rounded up, at least one)."""
    return max(math.ceil(days * per_day / package_size - 1e-9), 1)


def coschedule_day(
    due: int, earliest_payable: int, anchor: int, cycle: int, tolerance: int, today: int
) -> int | None:
    """The latest anchor-lattice day in [due − tolerance, due] that the payer pays and is not in the past.

    Picking up on or before ``due`` keeps the patient supplied; picking up no earlier than
    ``earliest_payable`` (last fill + ceil(DS × p)) avoids a refill-too-soon reject (79). None when no
    anchor day qualifies, so the package keeps its own pickup.
    """
    candidate = due - (due - anchor) % cycle
    floor = max(due - tolerance, earliest_payable, today)
    return candidate if candidate >= floor else None
