"""``_elements`` and ``_summary``: return part of each resource, tagged SUBSETTED (FHIR R4 §3.1.1.5.9-10).

Mandatory elements, ``id`` and ``meta`` are always kept so a subsetted resource stays valid; which elements
are mandatory or "in the summary" comes from the R4B model metadata (``element_required``,
``summary_element_property``), read once per type.
"""

from __future__ import annotations

from functools import cache

from interop.fhir.validation import model_class
from interop.store.base import InvalidRequest, Resource

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
SUMMARY_MODES = frozenset({"true", "false", "text", "data", "count"})
_ALWAYS = frozenset({"resourceType", "id", "meta"})


@cache
def _element_flags(resource_type: str) -> tuple[frozenset[str], frozenset[str]]:
    """(mandatory, summary) top-level JSON element names of a type; choice elements count as each variant."""
    cls = model_class(resource_type)
    if cls is None:
        return frozenset(), frozenset()
    mandatory, summary = set(), set()
    for name, info in cls.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        alias = info.alias or name
        if extra.get("element_required") or extra.get("one_of_many_required"):
            mandatory.add(alias)
        if extra.get("summary_element_property"):
            summary.add(alias)
    return frozenset(mandatory), frozenset(summary | mandatory)


def _tagged(resource: Resource, keep: frozenset[str] | set[str]) -> Resource:
    out = {k: v for k, v in resource.items() if k in keep or k.lstrip("_") in keep}
    meta = dict(out.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    out["meta"] = meta
    return out


def parse_elements(value: str, resource_type: str | None) -> frozenset[str]:
    """The element names of an ``_elements`` value (``name,birthDate`` or ``Patient.name``)."""
    names = set()
    for raw in value.split(","):
        name = raw.strip()
        if resource_type and name.startswith(resource_type + "."):
            name = name[len(resource_type) + 1 :]
        if name:
            names.add(name)
    return frozenset(names)


def with_elements(resource: Resource, names: frozenset[str]) -> Resource:
    """``resource`` reduced to ``names`` plus its mandatory elements, ``id`` and ``meta``."""
    mandatory, _ = _element_flags(str(resource.get("resourceType")))
    return _tagged(resource, names | mandatory | _ALWAYS)


def summarized(resource: Resource, mode: str) -> Resource:
    """``resource`` as ``_summary=mode`` asks (``true``, ``text``, ``data``; ``false`` keeps everything)."""
    if mode == "false":
        return resource
    mandatory, summary = _element_flags(str(resource.get("resourceType")))
    if mode == "true":
        return _tagged(resource, summary | _ALWAYS)
    if mode == "text":
        return _tagged(resource, mandatory | _ALWAYS | {"text"})
    if mode == "data":
        return _tagged(resource, set(resource) - {"text"})
    raise InvalidRequest(
        f"_summary={mode!r} is not one of true, false, text, data, count", expression=["_summary"]
    )
