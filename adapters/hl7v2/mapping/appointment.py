"""SIU^S12-S17/S26: SCH (+TQ1, NTE, PID, RGS/AIS/AIG/AIL/AIP) → Appointment.

Keyed by SCH-2 filler appointment id (it survives reschedules), else SCH-1 placer id. Status: the trigger
(S15/S16 cancel, S17 delete, S26 no-show), else SCH-25 filler status (table 0278), else booked.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from adapters.hl7v2.er7 import Segment
from adapters.hl7v2.mapping import organization, practitioner
from adapters.hl7v2.mapping.bundle import DATA_TYPE_ERROR, JSON, Context, MappingError, guarded, key_id
from adapters.hl7v2.mapping.datatypes import (
    codeable,
    fhir_datetime,
    identifier_system,
    number,
    unit_code,
    v2_code,
)
from adapters.hl7v2.mapping.tables import unit_days

_MAX_MINUTES = 366 * 1440


def status(ctx: Context, sch: Segment, trigger: str) -> str:
    """Trigger event override, else SCH-25 (code, then text), else booked."""
    t = ctx.tables
    fixed = t.appointment_trigger.get(trigger)
    if fixed:
        return fixed
    for text in (sch.get(25, 1), sch.get(25, 2)):
        found = t.appointment_sch25.get(text.upper().replace(" ", "").replace("-", ""))
        if found:
            return found
    return "booked"


def _minutes(ctx: Context, sch: Segment) -> int | None:
    """SCH-9 duration in SCH-10 units (default minutes) → whole minutes."""
    value = guarded(sch, 9, sch.get(9), number)
    if value is None or value <= 0:
        return None
    unit = sch.composite(10)
    mapped = unit_code(unit, ctx.tables) if unit else ("min", "minute")
    days = unit_days(mapped[0]) if mapped else None
    if days is None:
        return None
    minutes = value * days * 1440
    if minutes > _MAX_MINUTES:
        raise MappingError.at(sch, 9, f"appointment duration {sch.get(9)} {sch.get(10)} is over a year", DATA_TYPE_ERROR)
    return max(1, round(minutes))


def _start_end(ctx: Context, sch: Segment, tq1: Segment | None, resources: list[Segment]) -> tuple[str | None, str | None]:
    """TQ1-7/-8, else SCH-11.4/.5, else the first AIS-4 / AIL-6 / AIP-6 start; as FHIR instants."""
    if tq1 is not None and tq1.get(7):
        return (
            guarded(tq1, 7, tq1.get(7), fhir_datetime, ctx.tables, instant=True),
            guarded(tq1, 8, tq1.get(8), fhir_datetime, ctx.tables, instant=True),
        )
    start = guarded(sch, 11, sch.get(11, 4), fhir_datetime, ctx.tables, instant=True)
    end = guarded(sch, 11, sch.get(11, 5), fhir_datetime, ctx.tables, instant=True)
    if start:
        return start, end
    for seg in resources:
        n = 4 if seg.name == "AIS" else 8 if seg.name == "AIG" else 6
        when = guarded(seg, n, seg.get(n), fhir_datetime, ctx.tables, instant=True)
        if when:
            return when, None
    return None, None


def appointment(ctx: Context, patient_ref: str | None) -> str:
    """Map the SCH and its resources and add the Appointment; returns its reference."""
    msg = ctx.message
    sch = msg.first("SCH")
    if sch is None:
        raise MappingError("SIU message without SCH segment", segment="SCH", code="100")
    filler, placer = sch.get(2), sch.get(1)
    if filler:
        aid = key_id("Appointment", ctx.sender, "filler", filler)
    elif placer:
        aid = key_id("Appointment", ctx.sender, "placer", placer)
    else:
        raise MappingError.at(sch, 2, "SCH-2 filler and SCH-1 placer appointment ids are both empty")
    trigger = msg.message_type[1]
    resource: JSON = {"resourceType": "Appointment", "id": aid, "identifier": []}
    for value, n, code, kind in ((placer, 1, "PLAC", "placer-appointment"), (filler, 2, "FILL", "filler-appointment")):
        if value:
            resource["identifier"].append(
                {"type": v2_code(code, "0203"), "system": identifier_system(kind, sch.get(n, 2) or ctx.sender),
                 "value": value}
            )
    resource["status"] = status(ctx, sch, trigger)
    appointment_type = codeable(sch.composite(8), ctx.tables, ctx.sender)
    if appointment_type is not None:
        resource["appointmentType"] = appointment_type
    reason = codeable(sch.composite(7), ctx.tables, ctx.sender)
    if reason is not None:
        resource["reasonCode"] = [reason]
    resources = [s for s in msg.segments if s.name in ("AIS", "AIG", "AIL", "AIP")]
    tq1 = msg.first("TQ1")
    start, end = _start_end(ctx, sch, tq1, resources)
    minutes = _minutes(ctx, sch)
    if start and not end and minutes:
        end = (datetime.fromisoformat(start) + timedelta(minutes=minutes)).isoformat()
    if start:
        resource["start"] = start
    if end:
        resource["end"] = end
    if minutes:
        resource["minutesDuration"] = minutes
    services = [c for c in (codeable(s.composite(3), ctx.tables, ctx.sender) for s in msg["AIS"]) if c]
    if services:
        resource["serviceType"] = services
    notes = [n.get(3) for n in msg["NTE"] if n.get(3)]
    if notes:
        resource["comment"] = " ".join(notes)
    who = "needs-action" if resource["status"] in ("proposed", "pending", "waitlist") else "accepted"
    participants: list[JSON] = []
    if patient_ref is not None:
        participants.append({"actor": {"reference": patient_ref}, "status": who})
    for aip in msg["AIP"]:
        ref = practitioner.practitioner(ctx, aip.composite(3))
        if ref is not None:
            participants.append({"actor": ref, "status": who})
    for ail in msg["AIL"]:
        loc = organization.location(ctx, ail.composite(3))
        if loc is not None:
            participants.append({"actor": {"reference": loc}, "status": who})
    if not participants:
        raise MappingError.at(sch, 2, "no participant: neither PID nor AIP-3 nor AIL-3 is valued")
    resource["participant"] = participants
    if not resource["identifier"]:
        del resource["identifier"]
    return ctx.builder.put(resource)

