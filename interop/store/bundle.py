"""Batch and transaction Bundles (FHIR R4 http.html#transaction, Bundle.entry.request/response).

A transaction runs its entries in the order the standard prescribes (DELETE, POST, PUT, GET), assigns ids
to ``urn:uuid:`` fullUrls, rewrites every ``reference`` to them, and writes all resources with one statement
per table; any failing entry raises with ``Bundle.entry[i]`` and leaves nothing written (a savepoint, so
this holds inside a wider session too). A batch runs each entry on its own savepoint and reports failures
in the entry's ``response.outcome``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson

from interop.config import get_settings
from interop.store.base import (
    InvalidRequest,
    InvalidResource,
    MultipleMatches,
    Resource,
    Stored,
    StoreError,
)
from interop.store.sql import Change, check_id, check_if_match, check_type, normalize_instant

if TYPE_CHECKING:
    from interop.store.sql import SqlSession

_METHODS = ("DELETE", "POST", "PUT", "GET")
"""FHIR R4 http.html#trules: the order a transaction's entries are processed in."""


@dataclass(slots=True)
class Entry:
    """One Bundle.entry, its request parsed: ``criteria`` is the query of a conditional PUT/DELETE or of a
    search GET; ``version`` is set for a vread GET."""

    index: int
    method: str
    rtype: str
    id: str | None
    version: int | None
    criteria: str | None
    resource: Resource | None
    full_url: str | None
    if_match: int | None
    if_none_exist: str | None
    if_none_match: int | None
    if_modified_since: str | None

    @property
    def path(self) -> str:
        return f"Bundle.entry[{self.index}]"


def process_bundle(session: SqlSession, bundle: Resource, *, base_url: str = "") -> Resource:
    """A batch or transaction Bundle in, its ``batch-response``/``transaction-response`` Bundle out."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidResource("a batch or transaction must be a Bundle", expression=["resourceType"])
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise InvalidResource("Bundle.entry must be an array", expression=["Bundle.entry"])
    limit = get_settings().max_bundle_entries
    if len(entries) > limit:
        raise InvalidRequest(f"the Bundle has {len(entries)} entries; at most {limit} are accepted")
    kind = bundle.get("type")
    base = base_url.rstrip("/")
    if kind == "transaction":
        return _transaction(session, entries, base)
    if kind == "batch":
        return _batch(session, entries, base)
    raise InvalidRequest(f"Bundle.type {kind!r}: only batch and transaction are processed", expression=["Bundle.type"])


def _transaction(session: SqlSession, raw: list[Any], base: str) -> Resource:
    entries = [_parse(i, e, base) for i, e in enumerate(raw)]
    with session.conn.begin_nested():
        responses = _run(session, entries, {}, base)
    return {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [responses[e.index] for e in entries],
    }


def _batch(session: SqlSession, raw: list[Any], base: str) -> Resource:
    ids: dict[str, str] = {}
    out: list[Resource] = []
    for i, item in enumerate(raw):
        added: str | None = None
        try:
            entry = _parse(i, item, base)
            if entry.full_url and entry.full_url not in ids:
                added = entry.full_url
            with session.conn.begin_nested():
                out.append(_run(session, [entry], ids, base)[i])
        except StoreError as exc:
            if added is not None:  # a failed entry's fullUrl must not resolve for the entries after it
                ids.pop(added, None)
            out.append({"response": {"status": _status(exc.status), "outcome": outcome(exc)}})
    return {"resourceType": "Bundle", "type": "batch-response", "entry": out}


def outcome(exc: StoreError) -> Resource:
    """The OperationOutcome for a failed entry (FHIR R4 Bundle.entry.response.outcome)."""
    issue: dict[str, Any] = {"severity": "error", "code": exc.code, "diagnostics": exc.message}
    if exc.expression:
        issue["expression"] = exc.expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}


@cache
def _status(code: int) -> str:
    return f"{code} {HTTPStatus(code).phrase}"


def _at(entry: Entry, exc: StoreError) -> StoreError:
    """``exc`` again, naming the entry it came from (its message and first ``expression``)."""
    return type(exc)(f"{entry.path}: {exc.message}", expression=[entry.path, *exc.expression])


# ----------------------------------------------------------------------------------------- parsing
def _parse(index: int, raw: Any, base: str) -> Entry:
    path = f"Bundle.entry[{index}]"
    try:
        return _parse_entry(index, raw, base)
    except StoreError as exc:
        raise type(exc)(f"{path}: {exc.message}", expression=[path, *exc.expression]) from None


def _parse_entry(index: int, raw: Any, base: str) -> Entry:
    if not isinstance(raw, dict):
        raise InvalidRequest("the entry must be an object")
    request = raw.get("request")
    if not isinstance(request, dict):
        raise InvalidRequest("the entry has no request", expression=["request"])
    method = request.get("method")
    url = request.get("url")
    if not isinstance(url, str) or not url:
        raise InvalidRequest("request.url is missing", expression=["request.url"])
    if method == "PATCH":
        raise InvalidRequest("PATCH is not supported in a Bundle", expression=["request.method"])
    if method not in _METHODS:
        raise InvalidRequest(f"request.method {method!r} is not supported", expression=["request.method"])
    if url.startswith(("http://", "https://")):
        if not base or not url.startswith(base + "/"):
            raise InvalidRequest(f"request.url {url!r} is not on this server", expression=["request.url"])
        url = url[len(base) + 1 :]
    target, _, query = url.lstrip("/").partition("?")
    segments = target.split("/")
    if any(s.startswith("$") for s in segments):
        raise InvalidRequest(f"operation {target!r} is not supported in a Bundle", expression=["request.url"])
    rtype = check_type(segments[0])
    id = check_id(segments[1]) if len(segments) > 1 else None
    version = None
    if len(segments) == 4 and segments[2] == "_history" and method == "GET":
        version = _version(segments[3], "request.url")
    elif len(segments) > 2:
        raise InvalidRequest(f"request.url {url!r} is not a resource or type URL", expression=["request.url"])
    resource = raw.get("resource")
    if method in ("POST", "PUT"):
        resource = _body(resource, rtype)
        if method == "POST" and id is not None:
            raise InvalidRequest(f"POST to {target!r}: a create names only the type", expression=["request.url"])
        if method == "PUT" and id is None and not query:
            raise InvalidRequest("PUT needs Type/id or Type?criteria", expression=["request.url"])
        if method == "PUT" and id is not None and resource.get("id", id) != id:
            raise InvalidRequest(f"the resource's id {resource.get('id')!r} is not {id!r}", expression=["resource.id"])
    elif method == "DELETE" and id is None and not query:
        raise InvalidRequest("DELETE needs Type/id or Type?criteria", expression=["request.url"])
    full_url = raw.get("fullUrl")
    return Entry(
        index=index,
        method=method,
        rtype=rtype,
        id=id,
        version=version,
        criteria=query if (query and id is None) else None,
        resource=resource,
        full_url=full_url if isinstance(full_url, str) else None,
        if_match=_etag(request.get("ifMatch"), "request.ifMatch"),
        if_none_exist=_text(request.get("ifNoneExist"), "request.ifNoneExist"),
        if_none_match=_etag(request.get("ifNoneMatch"), "request.ifNoneMatch"),
        if_modified_since=_text(request.get("ifModifiedSince"), "request.ifModifiedSince"),
    )


def _body(resource: Any, rtype: str) -> Resource:
    if not isinstance(resource, dict):
        raise InvalidResource("the entry has no resource", expression=["resource"])
    if resource.get("resourceType") != rtype:
        raise InvalidResource(
            f"the resource is a {resource.get('resourceType')!r}, request.url names {rtype}",
            expression=["resource.resourceType"],
        )
    return resource


def _version(text: str, where: str) -> int:
    if not text.isdigit():
        raise InvalidRequest(f"{text!r} is not a version id", expression=[where])
    return int(text)


def _etag(value: Any, where: str) -> int | None:
    """A version from an ETag as FHIR writes it (``W/"3"``), also accepting ``"3"`` and ``3``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{value!r} is not an ETag", expression=[where])
    text = value.strip()
    text = text.removeprefix("W/").strip('"')
    return _version(text, where)


def _text(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InvalidRequest(f"{where} must be a string", expression=[where])


# -------------------------------------------------------------------------------------- processing
def _run(session: SqlSession, entries: list[Entry], ids: dict[str, str], base: str) -> dict[int, Resource]:
    """Process ``entries`` in transaction order; ``ids`` maps fullUrls to ``Type/id`` and grows."""
    responses: dict[int, Resource] = {}
    by_method: dict[str, list[Entry]] = {m: [] for m in _METHODS}
    for entry in entries:
        by_method[entry.method].append(entry)

    for entry in by_method["DELETE"]:
        try:
            if entry.id is not None:
                session.delete(entry.rtype, entry.id)
            else:
                assert entry.criteria is not None
                session.conditional_delete(entry.rtype, entry.criteria)
        except StoreError as exc:
            raise _at(entry, exc) from None
        responses[entry.index] = {"response": {"status": _status(204)}}

    writes: list[tuple[Entry, str]] = []  # (entry, id) to write, POSTs first
    for entry in by_method["POST"]:
        try:
            matched = _matched(session, entry, entry.if_none_exist)
        except StoreError as exc:
            raise _at(entry, exc) from None
        if matched is not None:
            _remember(ids, entry, matched.id)
            responses[entry.index] = _written(matched, None, 200, base)
        else:
            new_id = str(uuid.uuid4())
            _remember(ids, entry, new_id)
            writes.append((entry, new_id))
    for entry in by_method["PUT"]:
        if entry.criteria is not None:
            try:
                matched = _matched(session, entry, entry.criteria)
            except StoreError as exc:
                raise _at(entry, exc) from None
            assert entry.resource is not None
            given = entry.resource.get("id")
            if matched is not None and given is not None and given != matched.id:
                raise InvalidResource(
                    f"{entry.path}: {entry.rtype}?{entry.criteria} matches {entry.rtype}/{matched.id}, "
                    f"the resource has id {given!r}",
                    expression=[entry.path],
                )
            target = matched.id if matched is not None else (given or str(uuid.uuid4()))
            try:
                check_id(target)
            except StoreError as exc:
                raise _at(entry, exc) from None
        else:
            assert entry.id is not None
            target = entry.id
        _remember(ids, entry, target)
        writes.append((entry, target))

    if writes:
        _write(session, writes, ids, responses, base)

    for entry in by_method["GET"]:
        try:
            responses[entry.index] = _get(session, entry, base)
        except StoreError as exc:
            raise _at(entry, exc) from None
    return responses


def _matched(session: SqlSession, entry: Entry, criteria: str | None) -> Stored | None:
    """The one resource a conditional entry's ``criteria`` match, None for none (FHIR R4 conditional ops)."""
    if criteria is None:
        return None
    rids = session.match(entry.rtype, criteria)
    if len(rids) > 1:
        raise MultipleMatches(f"{entry.rtype}?{criteria} matches {len(rids)} resources")
    return session.read_rid(rids[0]) if rids else None


def _remember(ids: dict[str, str], entry: Entry, id: str) -> None:
    if entry.full_url:
        ids[entry.full_url] = f"{entry.rtype}/{id}"


def _write(
    session: SqlSession,
    writes: list[tuple[Entry, str]],
    ids: dict[str, str],
    responses: dict[int, Resource],
    base: str,
) -> None:
    """Resolve references, check If-Match and write every POST/PUT resource in one batch."""
    seen: dict[tuple[str, str], Entry] = {}
    for entry, id in writes:
        key = (entry.rtype, id)
        if key in seen:
            raise InvalidRequest(
                f"{entry.path}: {entry.rtype}/{id} is also written by {seen[key].path}", expression=[entry.path]
            )
        seen[key] = entry
    current = session.lookup([(e.rtype, id) for e, id in writes if e.method == "PUT"])
    # Walking every resource for references costs more than serializing them all once to look for any.
    scan = any(not key.startswith("urn:") for key in ids) or b'"reference":"urn:' in orjson.dumps(
        [entry.resource for entry, _ in writes]
    )
    changes: list[Change] = []
    for entry, id in writes:
        assert entry.resource is not None
        missing: list[str] = []
        body = _rewrite(entry.resource, ids, missing) if scan else entry.resource
        if missing:
            raise InvalidRequest(
                f"{entry.path}: reference {missing[0]!r} resolves to no entry of the Bundle",
                expression=[entry.path],
            )
        assert isinstance(body, dict)
        row = current.get((entry.rtype, id)) if entry.method == "PUT" else None
        try:
            check_if_match(entry.rtype, id, row, entry.if_match)
        except StoreError as exc:
            raise _at(entry, exc) from None
        changes.append(Change(entry.rtype, id, body, entry.method, row))
    try:
        written = session.apply(changes)
    except StoreError as exc:
        raise type(exc)(f"Bundle.entry: {exc.message}", expression=["Bundle.entry"]) from None
    for (entry, _), change, result in zip(writes, changes, written, strict=True):
        created = change.current is None or change.current.deleted
        responses[entry.index] = _written(result.stored, result.document, 201 if created else 200, base)


def _rewrite(node: Any, ids: dict[str, str], missing: list[str]) -> Any:
    """``node`` with every ``reference`` to a Bundle fullUrl replaced by ``Type/id``; copies only what
    changes. ``urn:uuid:``/``urn:oid:`` references that match no entry are collected in ``missing``."""
    if isinstance(node, dict):
        out: dict[str, Any] | None = None
        for key, value in node.items():
            if key == "reference" and type(value) is str:
                new = ids.get(value)
                if new is None:
                    if value.startswith(("urn:uuid:", "urn:oid:")):
                        missing.append(value)
                    continue
            elif isinstance(value, dict | list):
                new = _rewrite(value, ids, missing)
            else:
                continue
            if new is not value:
                if out is None:
                    out = dict(node)
                out[key] = new
        return node if out is None else out
    if isinstance(node, list):
        items: list[Any] | None = None
        for i, value in enumerate(node):
            if isinstance(value, dict | list):
                new = _rewrite(value, ids, missing)
                if new is not value:
                    if items is None:
                        items = list(node)
                    items[i] = new
        return node if items is None else items
    return node


def _written(stored: Stored, document: Resource | None, status: int, base: str, *, read: bool = False) -> Resource:
    """A response entry for a resource written, matched or read (``read``: no location): location, etag,
    lastModified and the resource."""
    reference = f"{stored.resource_type}/{stored.id}"
    entry: Resource = {}
    if base:
        entry["fullUrl"] = f"{base}/{reference}"
    entry["resource"] = document if document is not None else stored.resource()
    response: Resource = {"status": _status(status)}
    if not read:
        response["location"] = f"{reference}/_history/{stored.version_id}"
    response["etag"] = stored.etag
    response["lastModified"] = stored.last_updated
    entry["response"] = response
    return entry


def _get(session: SqlSession, entry: Entry, base: str) -> Resource:
    if entry.id is None:
        params = parse_qsl(entry.criteria or "", keep_blank_values=True)
        result = session.search(entry.rtype, params)
        bundle = _searchset(result.matches, result.includes, result.total, base)
        return {"resource": bundle, "response": {"status": _status(200)}}
    stored = (
        session.vread(entry.rtype, entry.id, entry.version)
        if entry.version is not None
        else session.read(entry.rtype, entry.id)
    )
    not_modified = entry.if_none_match == stored.version_id or (
        entry.if_modified_since is not None and stored.last_updated <= normalize_instant(entry.if_modified_since)
    )
    if not_modified:
        return {"response": {"status": _status(304), "etag": stored.etag, "lastModified": stored.last_updated}}
    return _written(stored, None, 200, base, read=True)


def _searchset(matches: Iterable[Stored], includes: Iterable[Stored], total: int | None, base: str) -> Resource:
    entries: list[Resource] = []
    for mode, stored_list in (("match", matches), ("include", includes)):
        for stored in stored_list:
            item: Resource = {}
            if base:
                item["fullUrl"] = f"{base}/{stored.resource_type}/{stored.id}"
            item["resource"] = orjson.loads(stored.content)
            item["search"] = {"mode": mode}
            entries.append(item)
    bundle: Resource = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    bundle["entry"] = entries
    return bundle
