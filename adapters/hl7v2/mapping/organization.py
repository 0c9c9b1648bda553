"""Organizations (MSH-4 sending facility, ORC-21 ordering facility) and Locations (PL: RXD-13, AIL-3).

Keyed by their identifiers (HD namespace / universal id, PL point of care + room + bed + facility), never
by a free-text name alone.
"""

from __future__ import annotations

from adapters.hl7v2.er7 import Composite
from adapters.hl7v2.mapping.bundle import JSON, Context, key_id
from adapters.hl7v2.mapping.datatypes import identifier_system


def sending_facility(ctx: Context) -> str:
    """The sender (MSH-4, else MSH-3) as an Organization; returns its reference."""
    msh = ctx.message.msh
    resource = ctx.memo(("ORG", msh.field(3), msh.field(4)), lambda: _sending_facility(ctx))
    assert resource is not None
    return ctx.builder.put(resource)


def _sending_facility(ctx: Context) -> JSON:
    msh = ctx.message.msh
    hd = msh.composite(4) if msh.get(4) or msh.get(4, 2) else msh.composite(3)
    resource: JSON = {
        "resourceType": "Organization",
        "id": key_id("Organization", ctx.sender),
        "identifier": [{"system": identifier_system("facility", "hl7v2"), "value": ctx.sender}],
        "name": hd.get(1) or hd.get(2) or ctx.sender,
    }
    if hd.get(2) and hd.get(3).upper() == "ISO":
        resource["identifier"].append({"system": "urn:ietf:rfc:3986", "value": "urn:oid:" + hd.get(2)})
    return resource


def organization(ctx: Context, xon: Composite) -> str | None:
    """XON (ORC-21) → Organization keyed by XON.10 identifier, else XON.3 id number, else None."""
    ident = xon.get(10) or xon.get(3)
    if not ident:
        return None
    assigner = xon.get(6, 1) or ctx.sender
    resource: JSON = {
        "resourceType": "Organization",
        "id": key_id("Organization", assigner, ident),
        "identifier": [{"system": identifier_system("organization", assigner), "value": ident}],
    }
    if xon.get(1):
        resource["name"] = xon.get(1)
    return ctx.builder.put(resource)


def location(ctx: Context, pl: Composite) -> str | None:
    """PL → Location keyed by point of care (.1), room (.2), bed (.3) and facility (.4); None when empty."""
    parts = [pl.get(1), pl.get(2), pl.get(3), pl.get(4, 1) or pl.get(4, 2)]
    if not any(parts):
        return None
    key = "^".join(parts)
    resource: JSON = {
        "resourceType": "Location",
        "id": key_id("Location", ctx.sender, key),
        "identifier": [{"system": identifier_system("location", ctx.sender), "value": key}],
        "name": " ".join(p for p in (pl.get(9), *parts) if p),
        "mode": "instance",
    }
    return ctx.builder.put(resource)
