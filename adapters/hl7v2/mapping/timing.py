"""Dose timing: TQ1 (v2.5+) or the legacy TQ of RXE-1 / ORC-7 (v2.3/2.4) → Dosage.timing and doses per day.

TQ1-2 quantity, TQ1-3 repeat pattern (table 0335 through mappings/hl7v2/frequencies.json), TQ1-6 service
duration, TQ1-7/-8 start/end, TQ1-9 priority (PRN), TQ1-10 condition, TQ1-11 text, TQ1-14 occurrences.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from adapters.hl7v2.er7 import Composite, Delimiters, Segment
from adapters.hl7v2.mapping.bundle import JSON, Context, guarded
from adapters.hl7v2.mapping.datatypes import fhir_datetime, fhir_number, number, unit_code
from adapters.hl7v2.mapping.tables import unit_days

V2_0335 = "http://terminology.hl7.org/CodeSystem/v2-0335"


@dataclass(slots=True)
class Schedule:
    """What one order says about when doses are taken; every part optional."""

    timing: JSON | None = None
    as_needed: bool = False
    per_day: float | None = None
    """Administrations per day from the repeat pattern (None when PRN or unknown)."""
    dose: float | None = None
    dose_unit: Composite | None = None
    duration_days: float | None = None
    """TQ1-6 service duration in days."""
    start: str = ""
    end: str = ""
    """TQ1-7 / TQ1-8 raw timestamps."""
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> JSON:
        """A JSON form (memo); the dose unit kept as its raw sub-component text."""
        return {
            "timing": self.timing, "as_needed": self.as_needed, "per_day": self.per_day, "dose": self.dose,
            "dose_unit": self.dose_unit.raw if self.dose_unit is not None else None,
            "duration_days": self.duration_days, "start": self.start, "end": self.end, "notes": self.notes,
        }

    @classmethod
    def from_json(cls, data: JSON, delimiters: Delimiters) -> Schedule:
        unit = data["dose_unit"]
        return cls(
            timing=data["timing"], as_needed=data["as_needed"], per_day=data["per_day"], dose=data["dose"],
            dose_unit=None if unit is None else Composite(unit, delimiters.demoted()),
            duration_days=data["duration_days"], start=data["start"], end=data["end"], notes=data["notes"],
        )


def _repeat(ctx: Context, code: str) -> tuple[JSON, float | None, bool]:
    timing: JSON = {"code": {"coding": [{"system": V2_0335, "code": code}], "text": code}}
    upper = code.upper()
    if upper in ("PRN", "ONCE") or upper.endswith("PRN"):
        return timing, None, upper != "ONCE"
    freq = ctx.tables.frequency(upper)
    if freq is None:
        return timing, None, False
    timing["repeat"] = {"frequency": freq.frequency, "period": fhir_number(freq.period), "periodUnit": freq.period_unit}
    return timing, freq.per_day, False


def from_tq1(ctx: Context, tq1: Segment) -> Schedule:
    """One TQ1 segment → Schedule (remembered per identical TQ1 text: feeds repeat the same few sigs)."""
    d = tq1.delimiters
    data = ctx.memo(("TQ1", d.component, d.subcomponent, "|".join(tq1.fields)), lambda: _from_tq1(ctx, tq1).to_json())
    assert data is not None
    return Schedule.from_json(data, d)


def _from_tq1(ctx: Context, tq1: Segment) -> Schedule:
    s = Schedule()
    qty = tq1.composite(2)
    s.dose = guarded(tq1, 2, qty.get(1), number)
    s.dose_unit = qty.part(2) if s.dose is not None else None
    code = tq1.get(3, 1, 1)
    repeat: JSON = {}
    if code:
        s.timing, s.per_day, s.as_needed = _repeat(ctx, code)
        repeat = s.timing.setdefault("repeat", {})
    duration = tq1.composite(6)
    value = guarded(tq1, 6, duration.get(1), number)
    if value is not None and value > 0:
        ucum = unit_code(duration.part(2), ctx.tables)
        days = unit_days(ucum[0]) if ucum else None
        if days is not None and ucum is not None:
            s.duration_days = value * days
            repeat["boundsDuration"] = {
                "value": fhir_number(value), "unit": ucum[1], "system": "http://unitsofmeasure.org", "code": ucum[0]
            }
    s.start, s.end = tq1.get(7), tq1.get(8)
    start = guarded(tq1, 7, s.start, fhir_datetime, ctx.tables)
    end = guarded(tq1, 8, s.end, fhir_datetime, ctx.tables)
    if start or end:
        repeat.pop("boundsDuration", None)
        repeat["boundsPeriod"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    count = guarded(tq1, 14, tq1.get(14), number)
    if count is not None and 1 <= count <= 2_147_483_647:
        repeat["count"] = int(count)
    if tq1.get(9).upper() == "PRN":
        s.as_needed, s.per_day = True, None
    if repeat:
        s.timing = s.timing or {}
        s.timing["repeat"] = repeat
    for n in (10, 11):
        text = tq1.get(n)
        if text:
            s.notes.append(text)
    return s


def from_legacy(ctx: Context, seg: Segment, field_no: int) -> Schedule:
    """Legacy TQ (RXE-1, ORC-7): TQ.1 quantity, TQ.2 interval (repeat pattern), TQ.6 priority; TQ.4/TQ.5 are the
    order's validity, not a supply, so they never feed days supply."""
    s = Schedule()
    tq = seg.composite(field_no)
    if not tq:
        return s
    qty = tq.part(1)
    s.dose = guarded(seg, field_no, qty.get(1), number)
    s.dose_unit = qty.part(2) if s.dose is not None else None
    code = tq.get(2, 1)
    if code:
        s.timing, s.per_day, s.as_needed = _repeat(ctx, code)
    if tq.get(6).upper() == "PRN":
        s.as_needed, s.per_day = True, None
    return s
