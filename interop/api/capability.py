"""The CapabilityStatement at ``GET [base]/metadata``, generated from what the server really serves.

Types and search parameters come from the store's table (``interop.store.searchparams``), operations from
the registry (``interop.api.operations``), interactions from the route table's capabilities below; nothing
is hand-listed twice (FHIR R4 CapabilityStatement, §3.1.0.4 capabilities interaction).
"""

from __future__ import annotations

from datetime import UTC, datetime

from interop import FHIR_VERSION, __version__
from interop.api.operations import OperationRegistry
from interop.store import searchparams
from interop.store.base import Resource

TYPE_INTERACTIONS = (
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
SYSTEM_INTERACTIONS = ("transaction", "batch", "search-system", "history-system")
FORMATS = ("application/fhir+json", "json")
"""Only JSON is served; a request that accepts nothing else gets 406 (see ``interop.api.negotiation``)."""


def served_types() -> list[str]:
    """Resource types served, in the order of the search parameter table."""
    return searchparams.served_types()


def _includes(resource_type: str) -> list[str]:
    return sorted(
        f"{resource_type}:{p.code}"
        for p in searchparams.params_for(resource_type).values()
        if p.type == "reference"
    )


def _revincludes(resource_type: str) -> list[str]:
    out = []
    for other in served_types():
        for p in searchparams.params_for(other).values():
            if p.type == "reference" and (not p.targets or resource_type in p.targets):
                out.append(f"{other}:{p.code}")
    return sorted(out)


def capability_statement(registry: OperationRegistry, base_url: str = "") -> Resource:
    """The CapabilityStatement (kind instance) of this server, with ``implementation.url`` = ``base_url``."""
    resources: list[Resource] = []
    for rtype in served_types():
        entry: Resource = {
            "type": rtype,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{rtype}",
            "interaction": [{"code": code} for code in TYPE_INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "not-match",
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "referencePolicy": ["literal", "local"],
        }
        includes, revincludes = _includes(rtype), _revincludes(rtype)
        if includes:
            entry["searchInclude"] = includes
        if revincludes:
            entry["searchRevInclude"] = revincludes
        params = searchparams.capability_search_params(rtype)
        if params:
            entry["searchParam"] = params
        ops = [
            {
                "name": op.name,
                "definition": op.canonical,
                **({"documentation": op.documentation} if op.documentation else {}),
            }
            for op in registry
            if rtype in op.types
        ]
        if ops:
            entry["operation"] = ops
        resources.append(entry)
    rest: Resource = {
        "mode": "server",
        "documentation": (
            "FHIR R4 REST API of medsync-interop. JSON only; search paging is keyset-based (follow the "
            "Bundle next link). Search handling is strict: an unknown parameter or modifier answers 400. "
            "Client writes are validated; invalid resources answer 422 with an OperationOutcome naming "
            "the element."
        ),
        "resource": resources,
        "interaction": [{"code": code} for code in SYSTEM_INTERACTIONS],
    }
    system_ops = [{"name": op.name, "definition": op.canonical} for op in registry if op.system]
    if system_ops:
        rest["operation"] = system_ops
    implementation: Resource = {"description": "medsync-interop FHIR R4 server"}
    if base_url:
        implementation["url"] = base_url
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "publisher": "medsync-interop",
        "kind": "instance",
        "software": {"name": "medsync-interop", "version": __version__},
        "implementation": implementation,
        "fhirVersion": FHIR_VERSION,
        "format": list(FORMATS),
        "rest": [rest],
    }
