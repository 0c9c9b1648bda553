"""ORC + RXE (RDE, RDS) or ORC + RXO (OMP, ORM) → MedicationRequest, with the med-sync fields first-class.

RXE-12 → dispenseRequest.numberOfRepeatsAllowed; RXE-16 → refills-remaining extension; RXE-10/11 →
dispenseRequest.quantity; days supply (DOMAIN.md rules) → expectedSupplyDuration; ORC-5/ORC-1 → status.
"""

from __future__ import annotations

from adapters.hl7v2.er7 import Segment
from adapters.hl7v2.mapping import days_supply, organization, practitioner, timing
from adapters.hl7v2.mapping.bundle import DATA_TYPE_ERROR, JSON, Context, MappingError, guarded
from adapters.hl7v2.mapping.datatypes import (
    fhir_datetime,
    fhir_number,
    identifier_system,
    number,
    quantity,
    v2_code,
)
from adapters.hl7v2.mapping.medication import drug, medication
from adapters.hl7v2.mapping.order import OrderGroup, group_key, request_id, rx_number
from interop.fhir.systems import extension_url

REFILLS_REMAINING = extension_url("refills-remaining")
DAYS_SUPPLY_SOURCE = extension_url("days-supply-source")
V2_0162 = "http://terminology.hl7.org/CodeSystem/v2-0162"

# RXE-9 substitution status (table 0167) and RXO-9 allow substitutions (table 0161) → substitution.allowed.
_RXE9_ALLOWED = {"1": False, "7": False, "2": True, "3": True, "4": True, "5": True, "G": True, "T": True}
_RXO9_ALLOWED = {"N": False, "G": True, "T": True}
MAX_COUNT = 2_147_483_647
"""Largest FHIR integer (unsignedInt, positiveInt)."""


def status(ctx: Context, orc: Segment | None) -> str:
    """ORC-5 order status (table 0038) wins, then ORC-1 order control (table 0119), else active."""
    if orc is None:
        return "active"
    t = ctx.tables
    return t.order_status_orc5.get(orc.get(5).upper()) or t.order_status_orc1.get(orc.get(1).upper()) or "active"


def schedule(ctx: Context, group: OrderGroup) -> timing.Schedule:
    """Timing of the order: TQ1 after RXE, else TQ1 after ORC, else legacy RXE-1, else legacy ORC-7."""
    if group.schedule is None:
        tq1s = group.tq1_give or group.tq1_order
        if tq1s:
            group.schedule = timing.from_tq1(ctx, tq1s[0])
        elif group.rxe is not None and group.rxe.get(1, 2):
            group.schedule = timing.from_legacy(ctx, group.rxe, 1)
        elif group.orc is not None:
            group.schedule = timing.from_legacy(ctx, group.orc, 7)
        else:
            group.schedule = timing.Schedule()
    return group.schedule


def count(seg: Segment, n: int) -> int | None:
    """A non-negative whole number (refills) in ``seg``-``n``, None when empty.

    Plain ASCII digits are read with ``int`` directly (0.45 µs instead of 1.0 µs; three counts per RDS message)."""
    text = seg.get(n)
    if len(text) < 10 and text.isdigit() and text.isascii():
        return int(text)
    value = guarded(seg, n, text, number)
    if value is None:
        return None
    if value < 0 or not value.is_integer() or value > MAX_COUNT:
        raise MappingError.at(seg, n, f"{value} is not a whole, non-negative count", DATA_TYPE_ERROR)
    return int(value)


def identifiers(ctx: Context, group: OrderGroup, rx: str, rx_seg: Segment) -> list[JSON]:
    """The Rx number (per-pharmacy system) and the ORC-2 placer / ORC-3 filler order numbers."""
    out: list[JSON] = []
    if rx_seg.name != "ORC":
        out.append({"use": "official", "system": identifier_system("rx-number", ctx.sender), "value": rx})
    orc = group.orc
    if orc is not None:
        for n, code, kind in ((2, "PLAC", "placer-order"), (3, "FILL", "filler-order")):
            value = orc.get(n)
            if value:
                out.append(
                    {
                        "type": v2_code(code, "0203"),
                        "system": identifier_system(kind, orc.get(n, 2) or ctx.sender),
                        "value": value,
                    }
                )
    return out


def requester(ctx: Context, group: OrderGroup) -> JSON | None:
    """ORC-12 ordering provider (else RXE-13 / RXO-14), as a PractitionerRole when ORC-21 names the facility."""
    candidates = []
    if group.orc is not None:
        candidates.append(group.orc.composite(12))
    if group.rxe is not None:
        candidates.append(group.rxe.composite(13))
    if group.rxo is not None:
        candidates.append(group.rxo.composite(14))
    for xcn in candidates:
        ref = practitioner.practitioner(ctx, xcn)
        if ref is None:
            continue
        if "reference" in ref and group.orc is not None:
            org = organization.organization(ctx, group.orc.composite(21))
            if org is not None:
                return practitioner.practitioner_role(ctx, ref, org)
        return ref
    return None


def dosage(ctx: Context, group: OrderGroup, sched: timing.Schedule, order: Segment) -> JSON | None:
    """Dosage: text (RXE-7 / RXO-7 / TQ1-11), timing, PRN, route (RXR-1), dose (TQ1-2, else RXE-3..5 / RXO-2..4)."""
    out: JSON = {}
    rxe = order.name == "RXE"
    text = order.get(7, 2) or (order.get(7, 1) if rxe else order.get(6, 2))
    if text:
        out["text"] = text
    if sched.notes:
        out["additionalInstruction"] = [{"text": n} for n in sched.notes]
    if sched.timing:
        out["timing"] = sched.timing
    if sched.as_needed:
        out["asNeededBoolean"] = True
    if group.rxr:
        rxr = group.rxr[0]
        route = rxr.get(1)
        if route:
            coding: JSON = {"system": V2_0162, "code": route}
            if rxr.get(1, 2):
                coding["display"] = rxr.get(1, 2)
            out["route"] = {"coding": [coding]}
    low_n, high_n, unit_n = (3, 4, 5) if rxe else (2, 3, 4)
    unit = order.composite(unit_n)
    low = guarded(order, low_n, order.get(low_n), number)
    high = guarded(order, high_n, order.get(high_n), number)
    dose: JSON | None = None
    if sched.dose is not None and sched.dose_unit is not None:
        dose = {"doseQuantity": quantity(sched.dose, sched.dose_unit, ctx.tables)}
    elif low is not None and high is not None and high != low:
        dose = {"doseRange": {"low": quantity(low, unit, ctx.tables), "high": quantity(high, unit, ctx.tables)}}
    elif low is not None:
        dose = {"doseQuantity": quantity(low, unit, ctx.tables)}
    if dose is not None:
        out["doseAndRate"] = [dose]
    return out or None


def authored_on(ctx: Context, group: OrderGroup, order: Segment) -> str | None:
    """RXE-32 original order date, else ORC-9 transaction date, else ORC-15 order effective date."""
    for seg, n in ((order, 32 if order.name == "RXE" else 0), (group.orc, 9), (group.orc, 15)):
        if seg is not None and n and seg.get(n):
            return guarded(seg, n, seg.get(n), fhir_datetime, ctx.tables)
    return None


def medication_request(ctx: Context, group: OrderGroup, patient_ref: str) -> str:
    """Map one ORDER group holding RXE or RXO and add the MedicationRequest; returns its reference.

    Everything but the id, identifiers, authoredOn (``PER_ORDER_FIELDS``), the subject and RXE-16 is a template
    remembered per ORDER group with those fields blanked (every order of a drug, sig and prescriber shares it).
    """
    resource = request_base(ctx, group, patient_ref)
    request_fill(group, resource)
    return ctx.builder.put(resource)


def request_base(ctx: Context, group: OrderGroup, patient_ref: str, remember_order: bool = True) -> JSON:
    """The MedicationRequest without its per-fill field (RXE-16), not yet in the Bundle: it depends on the
    group's segments with ``PER_FILL_FIELDS`` blanked, the sender and ``patient_ref`` only.

    ``remember_order=False`` maps the per-order fields without the memo, for a caller that remembers the
    whole result itself (``refill``)."""
    order = group.rxe or group.rxo
    assert order is not None
    rx, rx_seg, rx_field = rx_number(group)
    key = ("MR", rx_seg.name, rx_field, *group_key(group, False, ctx.tables.days_supply_field))
    resource = ctx.template(key, lambda: _request(ctx, group, order))
    if remember_order:
        orc = group.orc
        order_key = (
            "MRO", order.delimiters, rx, rx_seg.name, order.field(32) if order.name == "RXE" else "",
            *((orc.field(2), orc.field(3), orc.field(9), orc.field(15)) if orc is not None else ()),
        )
        found = ctx.memo(order_key, lambda: _per_order(ctx, group, order, rx, rx_seg))
        assert found is not None
        per_order = found
    else:
        per_order = _per_order(ctx, group, order, rx, rx_seg)
    resource["id"] = per_order["id"]
    resource["identifier"] = per_order["identifier"]
    resource["subject"] = {"reference": patient_ref}
    if "authoredOn" in per_order:
        resource["authoredOn"] = per_order["authoredOn"]
    else:
        del resource["authoredOn"]
    return resource


def request_fill(group: OrderGroup, resource: JSON) -> None:
    """Complete ``request_base`` with the per-fill field: RXE-16 refills remaining."""
    rxe = group.rxe
    if rxe is not None:
        remaining = count(rxe, 16)
        if remaining is not None:
            resource.setdefault("extension", []).append({"url": REFILLS_REMAINING, "valueUnsignedInt": remaining})


def _per_order(ctx: Context, group: OrderGroup, order: Segment, rx: str, rx_seg: Segment) -> JSON:
    """The id, identifiers and authoredOn of one prescription (remembered per Rx: its refills repeat them)."""
    out: JSON = {"id": request_id(ctx, rx), "identifier": identifiers(ctx, group, rx, rx_seg)}
    authored = authored_on(ctx, group, order)
    if authored:
        out["authoredOn"] = authored
    return out


def _request(ctx: Context, group: OrderGroup, order: Segment) -> JSON:
    """The MedicationRequest template, with placeholders where ``medication_request`` puts the per-order fields;
    authoredOn is still read here so that a bad ORC-9 is reported before errors in later fields, as it always was."""
    rxe = order.name == "RXE"
    concept = drug(ctx, order, 2 if rxe else 1)
    medication(ctx, concept, order, 2 if rxe else 1, 6 if rxe else 5)
    resource: JSON = {
        "resourceType": "MedicationRequest",
        "id": "",
        "identifier": [],
        "status": status(ctx, group.orc),
        "intent": "order" if rxe else "original-order",
        "medicationCodeableConcept": concept,
        "subject": {"reference": ""},
    }
    extensions: list[JSON] = []
    authored_on(ctx, group, order)
    resource["authoredOn"] = ""
    who = requester(ctx, group)
    if who is not None:
        resource["requester"] = who
    sched = schedule(ctx, group)
    dose = dosage(ctx, group, sched, order)
    if dose is not None:
        resource["dosageInstruction"] = [dose]
    qty_n, unit_n, refills_n = (10, 11, 12) if rxe else (11, 12, 13)
    qty_value = guarded(order, qty_n, order.get(qty_n), number)
    dispense: JSON = {}
    qty = quantity(qty_value, order.composite(unit_n), ctx.tables)
    if qty is not None:
        dispense["quantity"] = qty
    refills = count(order, refills_n)
    if refills is not None:
        dispense["numberOfRepeatsAllowed"] = refills
    give_n, give_unit_n = (3, 5) if rxe else (2, 4)
    supply = days_supply.derive(
        sched,
        guarded(order, give_n, order.get(give_n), number),
        order.composite(give_unit_n),
        qty_value,
        order.composite(unit_n),
        ctx.tables,
        group.order_segments,
    )
    if supply is not None:
        days, rule = supply
        dispense["expectedSupplyDuration"] = {
            "value": fhir_number(float(days)), "unit": "day", "system": "http://unitsofmeasure.org", "code": "d"
        }
        extensions.append({"url": DAYS_SUPPLY_SOURCE, "valueCode": rule})
    if dispense:
        resource["dispenseRequest"] = dispense
    allowed = (_RXE9_ALLOWED if rxe else _RXO9_ALLOWED).get(order.get(9).upper())
    if allowed is not None:
        resource["substitution"] = {"allowedBoolean": allowed}
    if extensions:
        resource["extension"] = extensions
    return resource
