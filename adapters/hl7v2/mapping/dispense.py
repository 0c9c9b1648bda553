"""RXD (RDS^O13, RDS^O01, and RDE^O01 feeds that carry one) → MedicationDispense.

RXD-2 drug, RXD-3 handed over, RXD-4/5 quantity, RXD-7 Rx number → authorizingPrescription (a reference to
the MedicationRequest id), RXD-8 refills remaining, RXD-33 (or fill counts) → type FF/RF, ORC-5/ORC-1 → status,
days supply by the DOMAIN.md rules with the rule recorded.
"""

from __future__ import annotations

from adapters.hl7v2.er7 import Segment
from adapters.hl7v2.mapping import days_supply, organization, practitioner
from adapters.hl7v2.mapping.bundle import DATA_TYPE_ERROR, JSON, Context, MappingError, guarded
from adapters.hl7v2.mapping.datatypes import (
    DataTypeError,
    fhir_datetime,
    hl7_date,
    identifier_system,
    number,
    quantity,
)
from adapters.hl7v2.mapping.medication import drug, medication
from adapters.hl7v2.mapping.order import OrderGroup, group_key, request_id, rx_number
from adapters.hl7v2.mapping.request import DAYS_SUPPLY_SOURCE, REFILLS_REMAINING, count, schedule
from interop.fhir.ids import business_id
from interop.fhir.systems import CodeSystem

V3_ACT_CODE = CodeSystem.V3_ACT_CODE.value
V2_0484 = "http://terminology.hl7.org/CodeSystem/v2-0484"
_FILL_DISPLAY = {"FF": "First Fill", "RF": "Refill", "FFP": "First Fill - Part Fill", "RFP": "Refill - Part Fill",
                 "TF": "Trial Fill", "TB": "Trial Balance"}
# RXD-11 substitution status (table 0167) → was a substitute dispensed, and its v3 code.
_SUBSTITUTED = {"G": ("G", "generic composition"), "T": ("TE", "therapeutic alternative")}
_NOT_SUBSTITUTED = frozenset(("N", "0", "1", "7"))


def status(ctx: Context, orc: Segment | None) -> str:
    """ORC-5 (table 0038), then ORC-1 (table 0119); an RXD with neither reports a dispense done: completed."""
    if orc is None:
        return "completed"
    t = ctx.tables
    return t.dispense_status_orc5.get(orc.get(5).upper()) or t.dispense_status_orc1.get(orc.get(1).upper()) or "completed"


def fill_type(ctx: Context, group: OrderGroup, rxd: Segment, fill: int | None) -> JSON | None:
    """RXD-33 through the dispense_type table; else first fill vs refill from RXD-1, RXE-17 or RXE-12 vs RXD-8."""
    v2 = rxd.get(33).upper()
    codings: list[JSON] = []
    act: str | None = None
    if v2:
        act = ctx.tables.dispense_type.get(v2)
        codings.append({"system": V2_0484, "code": v2})
    else:
        rxe = group.rxe
        dispensed = count(rxe, 17) if rxe is not None else None
        total = count(rxe, 12) if rxe is not None else None
        remaining = count(rxd, 8)
        if fill is not None:
            act = "FF" if fill <= 1 else "RF"
        elif dispensed is not None:
            act = "FF" if dispensed == 0 else "RF"
        elif total is not None and remaining is not None:
            act = "FF" if remaining >= total else "RF"
    if act:
        codings.insert(0, {"system": V3_ACT_CODE, "code": act, "display": _FILL_DISPLAY.get(act, act)})
    return {"coding": codings} if codings else None


def medication_dispense(ctx: Context, group: OrderGroup, patient_ref: str) -> str:
    """Map the ORDER group's RXD and add the MedicationDispense; returns its reference.

    The per-fill fields (RXD-1 fill number, RXD-3 date, RXD-8 refills left, RXD-33 type, RXE-16/17) and the
    prescription it fills are set here; the rest is a template remembered per ORDER group with the per-fill and
    per-order fields blanked (``group_key``).
    """
    rxd = group.rxd
    assert rxd is not None
    rx_number(group)  # a group without a prescription number fails here, before its fill key is read
    fill, key = fill_key(rxd)
    resource = dispense_base(ctx, group, patient_ref)
    dispense_fill(ctx, group, fill, key, resource)
    return ctx.builder.put(resource)


def fill_key(rxd: Segment) -> tuple[int | None, tuple[str, str]]:
    """The fill number (RXD-1 when a positive count) and the dispense's key: fill number, else the RXD-1 text,
    else the RXD-3 date."""
    counter = rxd.get(1)
    fill = int(counter) if counter.isascii() and counter.isdigit() and int(counter) >= 1 else None
    if fill is not None:
        return fill, ("fill", str(fill))
    if counter:
        return None, ("dispense", counter)
    handed = rxd.get(3)
    if not handed:
        raise MappingError.at(rxd, 3, "neither RXD-1 fill number nor RXD-3 dispense date: no key for the dispense")
    return None, ("date", guarded(rxd, 3, handed, hl7_date))


def dispense_base(ctx: Context, group: OrderGroup, patient_ref: str) -> JSON:
    """The MedicationDispense without its per-fill fields (id, identifier, type, whenHandedOver, RXD-8), not
    yet in the Bundle: it depends on the group's segments with ``PER_FILL_FIELDS`` blanked, the sender and
    ``patient_ref`` only."""
    rxd = group.rxd
    assert rxd is not None
    rx, rx_seg, rx_field = rx_number(group)
    msh = ctx.message.msh
    keep = ctx.tables.days_supply_field
    template_key = ("MD", rx_seg.name, rx_field, msh.field(3), msh.field(4), *group_key(group, True, keep))
    resource = ctx.template(template_key, lambda: _dispense(ctx, group, rxd))
    resource["subject"] = {"reference": patient_ref}
    resource["authorizingPrescription"] = [
        {
            "reference": "MedicationRequest/" + request_id(ctx, rx),
            "identifier": {"system": identifier_system("rx-number", ctx.sender), "value": rx},
        }
    ]
    return resource


def dispense_fill(ctx: Context, group: OrderGroup, fill: int | None, key: tuple[str, str], resource: JSON) -> None:
    """Complete ``dispense_base`` with the per-fill fields; ``fill`` and ``key`` are from ``fill_key``."""
    rxd = group.rxd
    assert rxd is not None
    rx = rx_number(group)[0]
    sender = ctx.sender
    # Not ``key_id``: a fill's key is new with every message, so remembering it only fills the memo.
    resource["id"] = business_id("MedicationDispense", sender, rx, *key)
    resource["identifier"] = [{"system": identifier_system("rx-fill", sender), "value": f"{rx}-{key[0]}-{key[1]}"}]
    kind = fill_type(ctx, group, rxd, fill)
    if kind is not None:
        resource["type"] = kind
    handed = rxd.get(3)
    if handed:
        try:
            handed_over = fhir_datetime(handed, ctx.tables)
        except DataTypeError as exc:
            raise MappingError.at(rxd, 3, str(exc), DATA_TYPE_ERROR) from exc
        if handed_over:
            resource["whenHandedOver"] = handed_over
    remaining = count(rxd, 8)
    if remaining is not None:
        resource.setdefault("extension", []).append({"url": REFILLS_REMAINING, "valueUnsignedInt": remaining})


def _dispense(ctx: Context, group: OrderGroup, rxd: Segment) -> JSON:
    """The MedicationDispense template, with placeholders where ``medication_dispense`` puts the per-fill and
    per-order fields (id, identifier, subject, authorizingPrescription)."""
    concept = drug(ctx, rxd, 2)
    medication(ctx, concept, rxd, 2, 6)
    resource: JSON = {
        "resourceType": "MedicationDispense",
        "id": "",
        "identifier": [],
        "status": status(ctx, group.orc),
        "medicationCodeableConcept": concept,
        "subject": {"reference": ""},
        "authorizingPrescription": [],
    }
    qty_value = guarded(rxd, 4, rxd.get(4), number)
    qty = quantity(qty_value, rxd.composite(5), ctx.tables)
    if qty is not None:
        resource["quantity"] = qty
    order = group.rxe
    supply = days_supply.derive(
        schedule(ctx, group),
        guarded(order, 3, order.get(3), number) if order is not None else None,
        order.composite(5) if order is not None else None,
        qty_value,
        rxd.composite(5),
        ctx.tables,
        group.segments,
    )
    if supply is not None:
        days, rule = supply
        resource["daysSupply"] = {"value": days, "unit": "day", "system": "http://unitsofmeasure.org", "code": "d"}
        resource["extension"] = [{"url": DAYS_SUPPLY_SOURCE, "valueCode": rule}]
    performer = practitioner.practitioner(ctx, rxd.composite(10))
    if performer is None or "reference" not in performer:
        performer = {"reference": organization.sending_facility(ctx)}
    resource["performer"] = [{"actor": performer}]
    place = organization.location(ctx, rxd.composite(13))
    if place is not None:
        resource["location"] = {"reference": place}
    sub = rxd.get(11).upper()
    if sub in _SUBSTITUTED:
        code, display = _SUBSTITUTED[sub]
        resource["substitution"] = {
            "wasSubstituted": True,
            "type": {"coding": [{"system": V3_ACT_CODE, "code": code, "display": display}]},
        }
    elif sub in _NOT_SUBSTITUTED:
        resource["substitution"] = {"wasSubstituted": False}
    note = rxd.get(9, 2) or rxd.get(9, 1)
    if note:
        resource["note"] = [{"text": note}]
    return resource
