"""Search and history Bundles, assembled from the stored JSON bytes without parsing them (FHIR R4 Bundle).

A searchset entry is ``{"fullUrl", "resource", "search": {"mode"}}`` and a history entry adds ``request``
and ``response``; ``link`` self shows the parameters applied, ``next`` carries the store's ``_cursor``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from urllib.parse import quote

import orjson

from interop.store.base import HistoryPage, Resource, SearchResult, Stored

Transform = Callable[[Resource], Resource]

_MATCH = b',"search":{"mode":"match"}}'
_INCLUDE = b',"search":{"mode":"include"}}'


_PLAIN = re.compile(r"[A-Za-z0-9\-._~:,]*")
"""Characters a query component may carry unquoted (RFC 3986 unreserved, plus ``:`` and ``,``)."""


def _component(text: str) -> str:
    return text if _PLAIN.fullmatch(text) else quote(text, safe=":,")


def _url(path: str, params: Sequence[tuple[str, str]]) -> str:
    if not params:
        return path
    return path + "?" + "&".join(f"{_component(k)}={_component(v)}" for k, v in params)


def _links(path: str, applied: Sequence[tuple[str, str]], cursor: str | None) -> bytes:
    links = [{"relation": "self", "url": _url(path, applied)}]
    if cursor:
        params = [(k, v) for k, v in applied if k != "_cursor"]
        links.append({"relation": "next", "url": _url(path, [*params, ("_cursor", cursor)])})
    return orjson.dumps(links)


def _content(stored: Stored, transform: Transform | None) -> bytes:
    if transform is None:
        return stored.content
    return orjson.dumps(transform(orjson.loads(stored.content)))


def searchset(
    base: str,
    resource_type: str | None,
    result: SearchResult,
    applied: Sequence[tuple[str, str]],
    transform: Transform | None = None,
) -> bytes:
    """The searchset Bundle of one page; ``transform`` (``_elements``/``_summary``) applies to matches."""
    path = f"{base}/{resource_type}" if resource_type else base
    parts = [b'{"resourceType":"Bundle","type":"searchset"']
    if result.total is not None:
        parts.append(b',"total":%d' % result.total)
    parts.append(b',"link":' + _links(path, applied, result.next_cursor))
    entries = [
        b'{"fullUrl":"'
        + f"{base}/{s.resource_type}/{s.id}".encode()
        + b'","resource":'
        + _content(s, transform)
        + _MATCH
        for s in result.matches
    ]
    entries.extend(
        b'{"fullUrl":"'
        + f"{base}/{s.resource_type}/{s.id}".encode()
        + b'","resource":'
        + s.content
        + _INCLUDE
        for s in result.includes
    )
    if entries:
        parts.append(b',"entry":[' + b",".join(entries) + b"]")
    parts.append(b"}")
    return b"".join(parts)


_STATUS = {"POST": "201 Created", "PUT": "200 OK", "DELETE": "200 OK"}


def _history_entry(base: str, s: Stored) -> bytes:
    full_url = f"{base}/{s.resource_type}/{s.id}"
    method = "DELETE" if s.deleted else s.method
    request: Resource = {
        "method": method,
        "url": s.resource_type if method == "POST" else f"{s.resource_type}/{s.id}",
    }
    response: Resource = {"status": _STATUS.get(method, "200 OK"), "lastModified": s.last_updated}
    if not s.deleted:
        response["etag"] = s.etag
    out = b'{"fullUrl":' + orjson.dumps(full_url)
    if not s.deleted and s.content:
        out += b',"resource":' + s.content
    return out + b',"request":' + orjson.dumps(request) + b',"response":' + orjson.dumps(response) + b"}"


def history(base: str, path: str, page: HistoryPage, applied: Sequence[tuple[str, str]]) -> bytes:
    """The history Bundle of one page, newest first as the store returns it; deletions have no resource."""
    parts = [b'{"resourceType":"Bundle","type":"history"']
    if page.total is not None:
        parts.append(b',"total":%d' % page.total)
    parts.append(b',"link":' + _links(f"{base}{path}", applied, page.next_cursor))
    if page.entries:
        parts.append(b',"entry":[' + b",".join(_history_entry(base, s) for s in page.entries) + b"]")
    parts.append(b"}")
    return b"".join(parts)
