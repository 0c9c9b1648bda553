"""The FHIR RESTful interactions, each a small function of a parsed request and a repository.

They know nothing of HTTP frameworks or SQL (FHIR R4 §3.1.0 RESTful API): ``interop.api.routes`` maps URLs
to them, ``interop.api.app`` turns their :class:`FhirResponse` into HTTP, and every error they raise
becomes an OperationOutcome in ``interop.api.outcome``.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from urllib.parse import parse_qsl

import orjson

from interop.api import bundles, capability, negotiation, subsetting
from interop.api.exchange import FhirRequest, FhirResponse, version_headers, version_location
from interop.api.operations import Operation, OperationRegistry
from interop.api.outcome import Rejected, information, operation_outcome, rejected
from interop.fhir.validation import Issue, validate_resource
from interop.store.base import Gone, InvalidRequest, Repository, Resource, Stored, WriteResult

Interaction = Callable[[FhirRequest, Repository], FhirResponse]

_ETAG = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')
_HISTORY_PARAMS = frozenset({"_since", "_count", "_cursor"})


# ------------------------------------------------------------------------------------------ helpers
def _type(req: FhirRequest) -> str:
    assert req.type is not None, "route without a type"
    return req.type


def _id(req: FhirRequest) -> str:
    assert req.id is not None, "route without an id"
    return req.id


def client_resource(req: FhirRequest, expected_type: str | None) -> Resource:
    """The request body as a resource of ``expected_type``, validated (400/415/422 otherwise)."""
    negotiation.check_json_body(req.headers.get("content-type"))
    data = req.json()
    issues = validate_resource(data, expected_type)
    if issues:
        raise Rejected(400 if any(i.status == 400 for i in issues) else 422, issues)
    assert isinstance(data, dict)
    return data


def _if_match(req: FhirRequest) -> int | None:
    value = req.headers.get("if-match")
    if value is None:
        return None
    match = _ETAG.match(value)
    if not match:
        raise rejected(400, "invalid", f'If-Match {value!r} is not a version ETag like W/"3"')
    return int(match.group(1))


def _body(req: FhirRequest, content: bytes, message: str) -> bytes | None:
    """What ``Prefer: return=`` asks for after a write: the resource, nothing, or an OperationOutcome."""
    if req.prefer_return == "minimal":
        return None
    if req.prefer_return == "OperationOutcome":
        return information(message)
    return content


def _written(req: FhirRequest, result: WriteResult) -> FhirResponse:
    stored = result.stored
    headers = version_headers(stored)
    headers["Location"] = version_location(req.base, stored)
    what = "created" if result.created else "updated"
    body = _body(
        req, stored.content, f"{stored.resource_type}/{stored.id} {what} (version {stored.version_id})"
    )
    return FhirResponse(201 if result.created else 200, body, headers)


def _read_response(stored: Stored) -> FhirResponse:
    if stored.deleted:
        raise Gone(f"{stored.resource_type}/{stored.id} version {stored.version_id} is a deletion")
    return FhirResponse(200, stored.content, version_headers(stored))


def _criteria(req: FhirRequest, what: str) -> str:
    if not req.params:
        raise rejected(400, "invalid", f"conditional {what} needs search criteria in the query string")
    return req.criteria()


# ------------------------------------------------------------------------------------ interactions
def capabilities(req: FhirRequest, repo: Repository) -> FhirResponse:
    """``GET [base]/metadata``: the CapabilityStatement."""
    return FhirResponse(200, _capability(req))


_CAPABILITY_CACHE: dict[tuple[tuple[Operation, ...], str], bytes] = {}


def _capability(req: FhirRequest) -> bytes:
    """The statement's bytes, built once per set of operations and base URL."""
    ops = tuple(req.operations) if req.operations is not None else ()
    cached = _CAPABILITY_CACHE.get((ops, req.base))
    if cached is None:
        registry = OperationRegistry()
        for op in ops:
            registry.register(op)
        cached = orjson.dumps(capability.capability_statement(registry, req.base))
        _CAPABILITY_CACHE[(ops, req.base)] = cached
    return cached


def read(req: FhirRequest, repo: Repository) -> FhirResponse:
    """``GET [base]/Type/id``: 200, 404 unknown, 410 deleted; 304 when ``If-None-Match`` names the current
    version (conditional read, FHIR R4 §3.1.0.2)."""
    stored = repo.read(_type(req), _id(req))
    known = req.headers.get("if-none-match")
    if known is not None and not stored.deleted:
        match = _ETAG.match(known)
        if match and int(match.group(1)) == stored.version_id:
            return FhirResponse(304, None, version_headers(stored))
    return _read_response(stored)


def vread(req: FhirRequest, repo: Repository) -> FhirResponse:
    """``GET [base]/Type/id/_history/vid``."""
    if not req.vid or not req.vid.isdigit():
        raise rejected(400, "invalid", f"version id {req.vid!r} is not a number", ["_history"])
    return _read_response(repo.vread(_type(req), _id(req), int(req.vid)))


def create(req: FhirRequest, repo: Repository) -> FhirResponse:
    """``POST [base]/Type`` (conditional with ``If-None-Exist``): 201, or 200 when the condition matched.

    The server assigns the id, so a client id is ignored (FHIR R4 §3.1.0.8). Search criteria in the query
    string are taken as ``If-None-Exist`` too (fhirpy's ``get_or_create`` sends them so).
    """
    resource = client_resource(req, _type(req))
    resource.pop("id", None)
    condition = req.headers.get("if-none-exist") or (req.criteria() if req.params else None)
    return _written(req, repo.create(resource, if_none_exist=condition))


def update(req: FhirRequest, repo: Repository) -> FhirResponse:
    """``PUT [base]/Type/id``: 200, or 201 when it created; ``If-Match`` mismatch 412; id must match 400."""
    resource = client_resource(req, _type(req))
    body_id = resource.get("id")
    if body_id != req.id:
        message = (
            "the resource has no id" if body_id is None else f"the resource id {body_id!r} is not {req.id!r}"
        )
        raise rejected(
            400, "invalid", f"{message}: an update's body must carry the id of its URL", [f"{req.type}.id"]
        )
    return _written(req, repo.update(resource, if_match=_if_match(req)))


def conditional_update(req: FhirRequest, repo: Repository) -> FhirResponse:
    """``PUT [base]/Type?criteria``: update the one match, create when none, 412 when several."""
    criteria = _criteria(req, "update")
    resource = client_resource(req, _type(req))
    return _written(req, repo.conditional_update(_type(req), criteria, resource, if_match=_if_match(req)))


def _deleted(req: FhirRequest, stored: Stored | None, what: str) -> FhirResponse:
    if req.prefer_return == "minimal":
        return FhirResponse(204)
    message = f"{what} deleted" if stored is not None else f"{what}: nothing to delete"
    return FhirResponse(200, information(message))


def delete(req: FhirRequest, repo: Repository) -> FhirResponse:
    """``DELETE [base]/Type/id``: 200 with an OperationOutcome (204 with ``Prefer: return=minimal``)."""
    return _deleted(req, repo.delete(_type(req), _id(req)), f"{req.type}/{req.id}")


def conditional_delete(req: FhirRequest, repo: Repository) -> FhirResponse:
    """``DELETE [base]/Type?criteria``: delete the one match; 412 when several match."""
    stored = repo.conditional_delete(_type(req), _criteria(req, "delete"))
    what = f"{stored.resource_type}/{stored.id}" if stored is not None else f"{req.type}?{req.criteria()}"
    return _deleted(req, stored, what)


def _history(req: FhirRequest, repo: Repository, path: str) -> FhirResponse:
    values = {k: v for k, v in req.params if k in _HISTORY_PARAMS}
    count = _count(values.get("_count"), req)
    page = repo.history(
        req.type, req.id, since=values.get("_since"), count=count, cursor=values.get("_cursor")
    )
    applied = [(k, v) for k, v in req.params if k in ("_since", "_cursor")]
    applied.append(("_count", str(count)))
    return FhirResponse(200, bundles.history(req.base, path, page, applied))


def history_instance(req: FhirRequest, repo: Repository) -> FhirResponse:
    """``GET [base]/Type/id/_history``."""
    return _history(req, repo, f"/{req.type}/{req.id}/_history")


def history_type(req: FhirRequest, repo: Repository) -> FhirResponse:
    """``GET [base]/Type/_history``."""
    return _history(req, repo, f"/{req.type}/_history")


def history_system(req: FhirRequest, repo: Repository) -> FhirResponse:
    """``GET [base]/_history``."""
    return _history(req, repo, "/_history")


def _count(value: str | None, req: FhirRequest) -> int:
    if value is None:
        return req.settings.default_count
    if not value.isdigit():
        raise rejected(400, "invalid", f"_count={value!r} is not a non-negative integer", ["_count"])
    return min(int(value), req.settings.max_count)


def _search(req: FhirRequest, repo: Repository, params: list[tuple[str, str]]) -> FhirResponse:
    store_params: list[tuple[str, str]] = []
    shown: list[tuple[str, str]] = []
    transform: bundles.Transform | None = None
    count: int | None = None
    summary_count = False
    for key, value in params:
        if key == "_count":
            count = _count(value, req)
        elif key == "_elements":
            names = subsetting.parse_elements(value, req.type)
            transform = lambda r, names=names: subsetting.with_elements(r, names)  # noqa: E731
            shown.append((key, ",".join(sorted(names))))
        elif key == "_summary":
            mode = value.strip().lower()
            if mode not in subsetting.SUMMARY_MODES:
                raise rejected(
                    400,
                    "invalid",
                    f"_summary={value!r} is not one of true, false, text, data, count",
                    ["_summary"],
                )
            if mode == "count":
                summary_count = True
            elif mode != "false":
                transform = lambda r, mode=mode: subsetting.summarized(r, mode)  # noqa: E731
            shown.append((key, mode))
        else:
            store_params.append((key, value))
    if summary_count:
        store_params = [(k, v) for k, v in store_params if k != "_total"]
        store_params += [("_total", "accurate"), ("_count", "0")]
    else:
        store_params.append(("_count", str(count if count is not None else req.settings.default_count)))
    result = repo.search(req.type, store_params)
    if summary_count:
        result.matches, result.includes, result.next_cursor = [], [], None
    applied = [*result.applied, *shown]
    return FhirResponse(200, bundles.searchset(req.base, req.type, result, applied, transform))


def search_type(req: FhirRequest, repo: Repository) -> FhirResponse:
    """``GET [base]/Type?params``: a searchset Bundle, one page."""
    return _search(req, repo, req.params)


def search_post(req: FhirRequest, repo: Repository) -> FhirResponse:
    """``POST [base]/Type/_search`` with a form body: the same search as by GET."""
    content_type = req.headers.get("content-type")
    if req.body and not negotiation.is_form(content_type):
        raise rejected(
            415, "not-supported", "POST _search takes application/x-www-form-urlencoded parameters"
        )
    try:
        form = parse_qsl(req.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"the _search form body is not UTF-8 (byte {exc.start})") from exc
    return _search(req, repo, [*req.params, *form])


def search_system(req: FhirRequest, repo: Repository) -> FhirResponse:
    """``GET [base]?params``: search across all types."""
    return _search(req, repo, req.params)


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused (process-wide, so other threads' too), then restored as it was;
    pausing only defers collection, and pausing inside a paused section changes nothing."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def bundle(req: FhirRequest, repo: Repository) -> FhirResponse:
    """``POST [base]``: a batch or transaction Bundle; a transaction is all-or-nothing.

    The cyclic collector is paused for the whole request (:func:`collector_paused`): a Bundle of 500
    resources allocates tens of thousands of containers (its JSON, the validation models, index rows, the
    response) that live until the response is built and then die by reference counting, holding no
    cycles; the young collections run meanwhile moved them on towards the oldest generation, whose full
    collections walk the whole server heap (the app, every FHIR model class). Measured with
    ``gc.callbacks`` in the server during bench_api's import (21,000 resources, 2 cores shared with other
    work): 570 to 800 ms in the collector before (807, 74 and 4 collections of the three generations), 130
    to 180 ms with the pause (266, 25, 1); over 5 alternating runs, median server CPU 190 → 180 µs and
    median rate 2,410 → 3,010 resources/s (the machine was loaded: the rate is noisy)."""
    with collector_paused():
        return _bundle(req, repo)


def _bundle(req: FhirRequest, repo: Repository) -> FhirResponse:
    negotiation.check_json_body(req.headers.get("content-type"))
    data = req.json()
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise rejected(400, "invalid", "POST [base] takes a Bundle of type batch or transaction", ["Bundle"])
    kind = data.get("type")
    if kind not in ("batch", "transaction"):
        raise rejected(
            400, "invalid", f"Bundle.type {kind!r}: only batch and transaction are processed", ["Bundle.type"]
        )
    entries = data.get("entry", [])
    if not isinstance(entries, list):
        raise rejected(400, "structure", "Bundle.entry is not a list", ["Bundle.entry"])
    if len(entries) > req.settings.max_bundle_entries:
        raise rejected(
            413,
            "too-long",
            f"{len(entries)} entries; at most {req.settings.max_bundle_entries}",
            ["Bundle.entry"],
        )
    invalid = _entry_issues(entries)
    if not invalid:
        return FhirResponse(200, orjson.dumps(repo.process_bundle(data, base_url=req.base)))
    if kind == "transaction":
        issues = [i for found in invalid.values() for i in found]
        raise Rejected(400 if any(i.status == 400 for i in issues) else 422, issues)
    return FhirResponse(200, orjson.dumps(_batch_with_invalid(req, repo, data, entries, invalid)))


def _entry_issues(entries: list[object]) -> dict[int, list[Issue]]:
    """Entry index → the issues of its resource: invalid R4, or a type this server does not serve."""
    invalid: dict[int, list[Issue]] = {}
    served = frozenset(capability.served_types())
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or "resource" not in entry:
            continue
        root = f"Bundle.entry[{index}].resource"
        resource = entry["resource"]
        found = validate_resource(resource, None, root=root)
        if not found and resource.get("resourceType") not in served:
            message = f"{resource.get('resourceType')} is not a type this server serves"
            found = [Issue(message, [f"{root}.resourceType"], "not-supported", 400)]
        if found:
            invalid[index] = found
    return invalid


def _batch_with_invalid(
    req: FhirRequest, repo: Repository, data: Resource, entries: list[object], invalid: dict[int, list[Issue]]
) -> Resource:
    """A batch whose invalid entries are answered with their OperationOutcome, the others processed."""
    valid = [e for i, e in enumerate(entries) if i not in invalid]
    answered = (
        repo.process_bundle({**data, "entry": valid}, base_url=req.base).get("entry", []) if valid else []
    )
    responses = iter(answered)
    out = []
    for index in range(len(entries)):
        if index in invalid:
            status = 400 if any(i.status == 400 for i in invalid[index]) else 422
            outcome = operation_outcome(invalid[index])
            out.append({"response": {"status": f"{status} {HTTPStatus(status).phrase}", "outcome": outcome}})
        else:
            out.append(next(responses))
    return {"resourceType": "Bundle", "type": "batch-response", "entry": out}


def _operation(req: FhirRequest, repo: Repository) -> FhirResponse:
    name = req.operation or ""
    op = req.operations.find(name, req.type, req.id is not None) if req.operations is not None else None
    if op is None:
        where = f"{req.type}/{req.id}" if req.id else (req.type or "the system level")
        raise rejected(404, "not-supported", f"no operation ${name} on {where}")
    if req.method == "GET" and op.affects_state:
        raise rejected(405, "not-supported", f"${name} changes state: invoke it with POST")
    return op.handler(req, repo)


operation_system = _operation
operation_type = _operation
operation_instance = _operation
