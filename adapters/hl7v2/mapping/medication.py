"""Drug codes (RXE-2, RXO-1, RXD-2: CE code ^ text ^ system ^ alternate triplet) → CodeableConcept and Medication.

The Medication is keyed by its product code (NDC-11 first, then RxNorm, then the first coding), never by the
description, so a renamed drug keeps its id.
"""

from __future__ import annotations

from adapters.hl7v2.er7 import Composite, Segment
from adapters.hl7v2.mapping.bundle import JSON, Context, MappingError, key_id
from adapters.hl7v2.mapping.datatypes import codeable
from interop.fhir.systems import CodeSystem

_PREFERENCE = (CodeSystem.NDC.value, CodeSystem.RXNORM.value)


def drug(ctx: Context, seg: Segment, field: int) -> JSON:
    """The drug in ``seg``-``field`` as a CodeableConcept (required: an order or fill without a drug is an error)."""
    ce = seg.composite(field)
    concept = ctx.memo(("CE", ce.delimiters.component, ce.raw), lambda: codeable(ce, ctx.tables, ctx.sender))
    if concept is None:
        raise MappingError.at(seg, field, f"{seg.name}-{field} drug code is empty")
    return concept


def primary_coding(concept: JSON) -> JSON | None:
    """The coding that identifies the product: NDC, else RxNorm, else the first one."""
    codings: list[JSON] = concept.get("coding", [])
    for system in _PREFERENCE:
        for c in codings:
            if c["system"] == system:
                return c
    return codings[0] if codings else None


def medication(ctx: Context, concept: JSON, seg: Segment, code_field: int, form_field: int) -> str | None:
    """Add the Medication (product catalog entry: ``concept`` from ``code_field``, dose form) and return its
    reference."""
    form = seg.composite(form_field)
    raw = ("MED", seg.delimiters.component, seg.composite(code_field).raw, form.raw)
    resource = ctx.memo(raw, lambda: _medication(ctx, concept, form))
    return ctx.builder.put(resource) if resource is not None else None


def _medication(ctx: Context, concept: JSON, form: Composite) -> JSON | None:
    key = primary_coding(concept)
    if key is None:
        return None
    resource: JSON = {
        "resourceType": "Medication",
        "id": key_id("Medication", key["system"], key["code"]),
        "code": {"coding": [dict(c) for c in concept["coding"]]},
    }
    if "text" in concept:
        resource["code"]["text"] = concept["text"]
    form_concept = codeable(form, ctx.tables, ctx.sender)
    if form_concept is not None:
        resource["form"] = form_concept
    return resource
