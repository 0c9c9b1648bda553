"""The RDS (or RDE) message of one fill, ORDER group with RXE and RXD, mapped from a remembered Bundle.

Every refill of a prescription repeats its message but for the per-fill fields (``PER_FILL_FIELDS``: RXD-1,
RXD-3, RXD-8, RXD-33, RXE-16, RXE-17) and the MSH header. So the Bundle of the first fill, taken before those
fields were applied (Patient, Medication, Practitioner, MedicationRequest, Organization, MedicationDispense...),
is kept as JSON bytes, keyed by everything else the mapping reads: MSH-1 to MSH-4 (delimiters and sender, whose
tables hold the cache), the PID and the group's segments with the per-fill fields blanked. A later fill loads it
in one ``orjson.loads`` and applies its per-fill fields with the same functions as the first
(``request_fill``, ``fill_key``, ``dispense_fill``), so the Bundle is the one the full mapping gives, errors
included (tests/test_hl7v2_golden.py, tests/test_hl7v2_templates.py).

On the synthetic RDS feed 15,999 of 20,000 messages take this path from a cold start: parse + map + serialize
of such a message costs 490,000 instructions (callgrind) against 586,000 through the templates and memos, and
the feed averages 547,000 per message against 626,000 before this module (the other 4,001 first fills pay
about 70,000 more to remember their Bundle). What is left is mostly copying: the ``orjson.loads`` of the 5.5 KB
Bundle is 142,000 instructions, parsing 99,000, the final ``orjson.dumps`` 59,000.
"""

from __future__ import annotations

import orjson

from adapters.hl7v2.er7 import Segment
from adapters.hl7v2.mapping import patient
from adapters.hl7v2.mapping.bundle import JSON, Context
from adapters.hl7v2.mapping.dispense import dispense_base, dispense_fill, fill_key
from adapters.hl7v2.mapping.order import OrderGroup, rx_number
from adapters.hl7v2.mapping.request import request_base, request_fill
from adapters.hl7v2.mapping.tables import PER_FILL_FIELDS

_PER_FILL = {name: tuple(sorted(n for seg, n in PER_FILL_FIELDS if seg == name)) for name, _ in PER_FILL_FIELDS}
FILLS_LIMIT = 8192
"""Bundles remembered per sender (about 7 KB each with their key): one per prescription being refilled."""


def one_fill(group: OrderGroup) -> bool:
    """Whether ``convert_fill`` maps this (only) ORDER group: it has an RXE and an RXD."""
    return group.rxe is not None and group.rxd is not None


def _key(ctx: Context, pid: Segment, group: OrderGroup) -> tuple[str, ...]:
    """MSH-1 to MSH-4, the PID, and the group's segments as received, but for RXE and RXD whose per-fill fields
    are blanked (the segment name starts each line, so the two forms cannot be confused)."""
    msh = ctx.message.msh
    fields = msh.fields
    sep = fields[1]
    key = ["FILL", sep, fields[2], msh.field(3), msh.field(4), pid.text]
    for seg in group.segments:
        blank = _PER_FILL.get(seg.name)
        if blank is None:
            key.append(seg.text)
            continue
        line = list(seg.fields)
        size = len(line)
        for n in blank:
            if n < size:
                line[n] = ""
        key.append(sep.join(line))
    return tuple(key)


def convert_fill(ctx: Context, pid: Segment, group: OrderGroup) -> None:
    """Map a message whose only ORDER group has RXE and RXD (``one_fill``), with ``pid`` its first PID: the
    same Bundle, built in the same order and failing on the same field, as ``pharmacy`` gives."""
    rxd = group.rxd
    assert rxd is not None
    key = _key(ctx, pid, group)
    fills = ctx.tables.fills
    found = fills.get(key)
    if found is not None:
        raw, request_at, dispense_at = found
        resources: list[JSON] = orjson.loads(raw)
        request_fill(group, resources[request_at])
        fill, dispense_key = fill_key(rxd)
        dispense_fill(ctx, group, fill, dispense_key, resources[dispense_at])
        ctx.builder.put_all(resources)
        return
    # The order of ``pharmacy``: Patient, MedicationRequest, then the MedicationDispense's key, base and fill.
    builder = ctx.builder
    subject = patient.patient(ctx, pid)
    request = request_base(ctx, group, subject, remember_order=False)
    request_before = orjson.Fragment(orjson.dumps(request))
    request_fill(group, request)
    builder.put(request)
    rx_number(group)
    fill, dispense_key = fill_key(rxd)
    dispense = dispense_base(ctx, group, subject)
    dispense_before = orjson.Fragment(orjson.dumps(dispense))
    dispense_fill(ctx, group, fill, dispense_key, dispense)
    builder.put(dispense)
    # Remember the Bundle only when each of the two is in it once, as itself (not an earlier same-id entry).
    entries = builder.resources()
    requests = [i for i, r in enumerate(entries) if r is request]
    dispenses = [i for i, r in enumerate(entries) if r is dispense]
    if len(requests) != 1 or len(dispenses) != 1:
        return
    before: list[JSON | orjson.Fragment] = list(entries)
    before[requests[0]] = request_before
    before[dispenses[0]] = dispense_before
    if len(fills) >= FILLS_LIMIT:
        fills.clear()
    fills[key] = (orjson.dumps(before), requests[0], dispenses[0])
