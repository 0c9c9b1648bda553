"""XCN (ORC-12, RXD-10, AIP-3) → Practitioner, and Practitioner at an ordering facility → PractitionerRole.

Keyed by NPI when the XCN says so (XCN.13 = NPI or XCN.9 = the NPI OID), else by XCN.9 assigning authority
(or the sender) + XCN.1; a name with no id gives a display-only reference, never an id made from the name.
"""

from __future__ import annotations

from adapters.hl7v2.er7 import Composite
from adapters.hl7v2.mapping.bundle import JSON, Context, key_id
from adapters.hl7v2.mapping.datatypes import NPI_OID, authority, human_name, identifier_system
from interop.fhir.systems import CodeSystem


def _is_npi(xcn: Composite) -> bool:
    return (
        xcn.get(13).upper() == "NPI"
        or xcn.get(9, 1).upper() == "NPI"
        or xcn.get(9, 2) == NPI_OID
    )


def practitioner(ctx: Context, xcn: Composite) -> JSON | None:
    """Add the Practitioner named by ``xcn`` and return a Reference to it (display-only without XCN.1)."""
    if not xcn:
        return None
    found = ctx.memo(("XCN", xcn.delimiters.component, xcn.raw), lambda: _practitioner(ctx, xcn))
    if found is None:
        return None
    if "resource" in found:
        ctx.builder.put(found["resource"])
    ref: JSON = found["ref"]
    return ref


def _practitioner(ctx: Context, xcn: Composite) -> JSON | None:
    ident = xcn.get(1)
    name = human_name(xcn, offset=1)
    display = " ".join(p for p in (xcn.get(3), xcn.get(2, 1)) if p)
    if not ident:
        return {"ref": {"display": display}} if display else None
    if _is_npi(xcn):
        system = CodeSystem.NPI.value
        pid = key_id("Practitioner", system, ident)
    else:
        assigner = authority(xcn, 9) or ctx.sender
        system = identifier_system("practitioner", assigner)
        pid = key_id("Practitioner", assigner, ident)
    resource: JSON = {
        "resourceType": "Practitioner",
        "id": pid,
        "identifier": [{"system": system, "value": ident}],
    }
    if name is not None:
        resource["name"] = [name]
    ref: JSON = {"reference": f"Practitioner/{pid}"}
    if display:
        ref["display"] = display
    return {"ref": ref, "resource": resource}


def practitioner_role(ctx: Context, practitioner_ref: JSON, organization_ref: str) -> JSON:
    """A PractitionerRole: this practitioner acting for this organization (ORC-12 at ORC-21)."""
    prac = practitioner_ref["reference"]
    resource: JSON = {
        "resourceType": "PractitionerRole",
        "id": key_id("PractitionerRole", prac, organization_ref),
        "practitioner": {"reference": prac},
        "organization": {"reference": organization_ref},
    }
    return {"reference": ctx.builder.put(resource)}
