"""The whole FHIR REST surface on one screen: method + path → interaction (FHIR R4 §3.1.0 summary table).

Order matters: literal segments (``metadata``, ``_history``, ``_search``, ``$op``) come before the
``{type}``/``{id}`` patterns they would otherwise match. Paths are relative to the base ``/fhir``.
"""

from __future__ import annotations

from dataclasses import dataclass

from interop.api import interactions as i
from interop.api.interactions import Interaction


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    interaction: Interaction
    summary: str
    body: bool = False
    """Whether the request carries a body (read under the size limit)."""


ROUTES: tuple[Route, ...] = (
    Route("GET", "/metadata", i.capabilities, "capabilities: the CapabilityStatement"),
    Route("GET", "/_history", i.history_system, "history of all resources"),
    Route("GET", "/${operation}", i.operation_system, "system-level operation (side-effect free ones)"),
    Route("POST", "/${operation}", i.operation_system, "system-level operation", body=True),
    Route("GET", "", i.search_system, "search across all types"),
    Route("POST", "", i.bundle, "batch or transaction Bundle", body=True),
    Route("POST", "/{type}/_search", i.search_post, "search by POST (form parameters)", body=True),
    Route("GET", "/{type}/_history", i.history_type, "history of a type"),
    Route("GET", "/{type}/${operation}", i.operation_type, "type-level operation (side-effect free ones)"),
    Route("POST", "/{type}/${operation}", i.operation_type, "type-level operation", body=True),
    Route("GET", "/{type}", i.search_type, "search a type"),
    Route("POST", "/{type}", i.create, "create (conditional with If-None-Exist)", body=True),
    Route("PUT", "/{type}", i.conditional_update, "conditional update (criteria in the query)", body=True),
    Route("DELETE", "/{type}", i.conditional_delete, "conditional delete (criteria in the query)"),
    Route("GET", "/{type}/{id}/_history/{vid}", i.vread, "vread: one version"),
    Route("GET", "/{type}/{id}/_history", i.history_instance, "history of one resource"),
    Route(
        "GET",
        "/{type}/{id}/${operation}",
        i.operation_instance,
        "instance-level operation (side-effect free ones)",
    ),
    Route("POST", "/{type}/{id}/${operation}", i.operation_instance, "instance-level operation", body=True),
    Route("GET", "/{type}/{id}", i.read, "read"),
    Route(
        "PUT",
        "/{type}/{id}",
        i.update,
        "update (or create with this id); If-Match for optimistic locking",
        body=True,
    ),
    Route("DELETE", "/{type}/{id}", i.delete, "delete (later reads answer 410)"),
)
