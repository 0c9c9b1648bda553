"""Days supply, which HL7 v2 has no field for (RXO/RXE/RXD, 2.5.1 to 2.8.2), derived by the rules of DOMAIN.md.

In order: TQ1-6 service duration; TQ1-7/-8 start and end; dispense quantity ÷ daily dose (dose × table 0335
frequency, units that agree); a sender-configured field. The rule that answered is recorded; none → empty.
"""

from __future__ import annotations

import math
from datetime import date

from adapters.hl7v2.er7 import Composite, Segment
from adapters.hl7v2.mapping.bundle import DATA_TYPE_ERROR, MappingError, guarded
from adapters.hl7v2.mapping.datatypes import DataTypeError, hl7_date, number, unit_code
from adapters.hl7v2.mapping.tables import Tables
from adapters.hl7v2.mapping.timing import Schedule

TQ1_SERVICE_DURATION = "tq1-service-duration"
TQ1_START_END = "tq1-start-end"
QUANTITY_DAILY_DOSE = "quantity-daily-dose"
SENDER_FIELD = "sender-field"
MAX_DAYS = 3650
"""A derived supply beyond ten years is a data error, not a supply: the rule is skipped."""


def _span_days(start: str, end: str) -> int | None:
    """Whole days from TQ1-7 to TQ1-8; both dates only → inclusive of the end date (1/1 to 1/30 is 30 days)."""
    try:
        a, b = hl7_date(start), hl7_date(end)
    except DataTypeError:
        return None
    days = (date(int(b[:4]), int(b[4:6]), int(b[6:8])) - date(int(a[:4]), int(a[4:6]), int(a[6:8]))).days
    if len(start) <= 8 and len(end) <= 8:
        days += 1
    return days if days > 0 else None


def _same_unit(a: Composite | None, b: Composite, tables: Tables) -> bool:
    if a is None:
        return False
    ua, ub = unit_code(a, tables), unit_code(b, tables)
    if ua is not None and ub is not None:
        return ua[0] == ub[0]
    ta, tb = (a.get(1) or a.get(2)).upper(), (b.get(1) or b.get(2)).upper()
    return bool(ta) and ta == tb


def derive(
    schedule: Schedule,
    dose: float | None,
    dose_unit: Composite | None,
    qty: float | None,
    qty_unit: Composite,
    tables: Tables,
    segments: list[Segment],
) -> tuple[int, str] | None:
    """(days, rule) for one order or fill, or None when no rule applies (never a guess).

    ``dose``/``dose_unit`` are the give amount (RXE-3/RXE-5, RXO-2/RXO-4) used when TQ1-2 is empty;
    ``segments`` are the order group's segments, searched for the sender-configured field.
    """
    if schedule.duration_days is not None and 1 <= schedule.duration_days <= MAX_DAYS:
        return round(schedule.duration_days), TQ1_SERVICE_DURATION
    if schedule.start and schedule.end:
        span = _span_days(schedule.start, schedule.end)
        if span is not None and span <= MAX_DAYS:
            return span, TQ1_START_END
    if schedule.per_day and qty:
        amount = schedule.dose or dose
        unit = schedule.dose_unit if schedule.dose and schedule.dose_unit else dose_unit
        if amount and amount > 0 and _same_unit(unit, qty_unit, tables):
            days = math.floor(qty / (amount * schedule.per_day) + 1e-9)
            if 1 <= days <= MAX_DAYS:
                return days, QUANTITY_DAILY_DOSE
    where = tables.days_supply_field
    if where is not None:
        name, field_no, comp = where
        for seg in segments:
            if seg.name == name:
                value = guarded(seg, field_no, seg.get(field_no, comp), number)
                if value is not None:
                    if not 1 <= value <= MAX_DAYS or not value.is_integer():
                        raise MappingError.at(
                            seg, field_no, f"days supply {value} is not a whole number of days", DATA_TYPE_ERROR
                        )
                    return int(value), SENDER_FIELD
    return None
