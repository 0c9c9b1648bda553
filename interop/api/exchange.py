"""The request an interaction sees and the response it returns: plain values, no web framework.

Interactions (``interop.api.interactions``) take a :class:`FhirRequest` and a repository and return a
:class:`FhirResponse`; ``interop.api.app`` is the only place that knows Starlette/FastAPI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import orjson

from interop.config import Settings, get_settings
from interop.store.base import InvalidRequest, Resource, Stored

if TYPE_CHECKING:
    from interop.api.operations import OperationRegistry

FHIR_JSON = "application/fhir+json; charset=utf-8"

PRESENTATION_PARAMS = frozenset({"_format", "_pretty"})
"""Parameters about the response's form, never passed to the store."""


@dataclass(slots=True)
class FhirRequest:
    """One FHIR interaction request, parsed from HTTP (RESTful API, FHIR R4 §3.1.0)."""

    method: str
    base: str
    """The service base URL, e.g. ``http://127.0.0.1:8080/fhir`` (used in fullUrl, Location, links)."""
    type: str | None = None
    id: str | None = None
    vid: str | None = None
    operation: str | None = None
    params: list[tuple[str, str]] = field(default_factory=list)
    """Query (and for ``_search``, form) parameters in order, presentation parameters removed."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Request headers, names lower-case."""
    body: bytes = b""
    prefer_return: str = "representation"
    """``Prefer: return=`` (minimal, representation or OperationOutcome)."""
    settings: Settings = field(default_factory=get_settings)
    operations: OperationRegistry | None = None
    """The operations this server serves (``$name`` routes and /metadata)."""
    parsed: object = field(default=None, repr=False, compare=False)
    """The body as :meth:`json` parsed it, kept so the access gate and the handler parse it once (a Bundle
    of 500 resources costs about 2 ms to parse, and the first copy's garbage kept the collector busy)."""

    def json(self) -> object:
        """The body parsed as JSON (once per request: callers read it, the first to change it owns it);
        a malformed body is a 400 naming the byte offset."""
        if self.parsed is not None:
            return self.parsed
        if not self.body:
            raise InvalidRequest("the request body is empty; a FHIR JSON resource is required")
        try:
            self.parsed = orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"malformed JSON body at byte {exc.pos}: {exc.msg}") from exc
        return self.parsed

    def criteria(self) -> str:
        """The search parameters as a query string, for conditional create, update and delete."""
        return urlencode(self.params)


@dataclass(slots=True)
class FhirResponse:
    """Status, headers and a JSON body (bytes, or a resource to serialize); ``None`` for no body."""

    status: int
    body: bytes | Resource | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def body_bytes(self) -> bytes | None:
        if self.body is None or isinstance(self.body, bytes):
            return self.body
        return orjson.dumps(self.body)


@lru_cache(maxsize=4096)
def http_date(instant: str) -> str:
    """A FHIR instant as an RFC 1123 HTTP date for ``Last-Modified``."""
    return format_datetime(datetime.fromisoformat(instant.replace("Z", "+00:00")), usegmt=True)


def version_headers(stored: Stored) -> dict[str, str]:
    """``ETag`` and ``Last-Modified`` of one stored version (FHIR R4 §3.1.0.3.1, §3.1.0.4)."""
    return {"ETag": stored.etag, "Last-Modified": http_date(stored.last_updated)}


def version_location(base: str, stored: Stored) -> str:
    return f"{base}/{stored.resource_type}/{stored.id}/_history/{stored.version_id}"
