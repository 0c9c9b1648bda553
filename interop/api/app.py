"""The FastAPI shell around the route table: parse HTTP into a FhirRequest, run the interaction, answer.

FastAPI is the shell, not the logic (Medplum fhir-router style). Requests below ``/fhir`` are dispatched
by ``_FhirFront`` straight from ``interop.api.routes`` (FastAPI's per-request machinery halved a bare
endpoint's throughput); FastAPI serves ``/docs`` and builds the OpenAPI document from the same table.
Errors of every kind become an OperationOutcome in ``interop.api.outcome``; bodies are the stored JSON
bytes, never re-serialized through models on the way out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from interop import FHIR_VERSION, __version__
from interop.api import negotiation
from interop.api.access import Denied, Gate, document_security
from interop.api.capability import served_types
from interop.api.dispatch import Dispatcher
from interop.api.exchange import FHIR_JSON, PRESENTATION_PARAMS, FhirRequest, FhirResponse
from interop.api.limits import PathRateLimit
from interop.api.operations import OperationRegistry, load_operations
from interop.api.outcome import outcome_for, rejected
from interop.api.routes import ROUTES
from interop.api.routes import Route as FhirRoute
from interop.config import Settings, get_settings
from interop.fhir.ids import is_valid_id
from interop.outreach.webhook import router as outreach_router
from interop.store.base import NotFound, Repository
from interop.web.pages import staff_router

BASE_PATH = "/fhir"

DESCRIPTION = f"""
FHIR R4 ({FHIR_VERSION}) REST API of **medsync-interop**, the pharmacy medication-synchronization layer.
Every fact the layer knows (prescriptions, fills, sync plans, pickups, reminders, claims) is a FHIR resource
here, readable by any FHIR client.

* Base URL: `{BASE_PATH}`; the CapabilityStatement is at `{BASE_PATH}/metadata`.
* Interactions: read, vread, create (conditional with `If-None-Exist`), update (`If-Match` for optimistic
  locking; conditional with search criteria), delete (later reads answer 410), history (instance, type,
  system), search (GET, or POST `_search` with a form body), batch and transaction Bundles at `POST {BASE_PATH}`.
* Search results are `searchset` Bundles with keyset paging: follow the `next` link (`_cursor`).
  `_count`, `_sort`, `_include`, `_revinclude`, `_elements`, `_summary`, `_total` and chaining on
  references (`patient.identifier=...`) are supported; an unknown parameter answers 400 (strict handling).
* JSON only (`application/fhir+json`); `_format=xml` or an `Accept` without a JSON type answers 406.
  `_pretty=true` indents. `Prefer: return=minimal|representation|OperationOutcome` on writes.
* Errors are always an OperationOutcome: 400 malformed, 404 unknown, 405, 406, 409/412 conflicts, 410 deleted,
  413 too large, 415 not JSON, 422 invalid resource (with `issue.expression` naming the element), 503 store
  unavailable.
"""

_PARAM_DOCS = {
    "type": "Resource type",
    "id": "Logical id ([A-Za-z0-9-.]{1,64})",
    "vid": "Version id",
    "operation": "Operation name without the $",
}


@dataclass(slots=True)
class ApiContext:
    """What ``app.state.fhir`` holds, for routers that features include in the app (``repo``, ``settings``)."""

    repo: Repository
    settings: Settings
    operations: OperationRegistry
    served: frozenset[str]
    inline: bool
    bases: dict[tuple[str, str], str]
    gate: Gate


def _base(request: Request, ctx: ApiContext) -> str:
    if ctx.settings.base_url:
        return ctx.settings.base_url.rstrip("/")
    key = (request.scope.get("scheme", "http"), request.headers.get("host", ""))
    base = ctx.bases.get(key)
    if base is None:
        base = str(request.base_url).rstrip("/") + BASE_PATH
        if len(ctx.bases) < 64:
            ctx.bases[key] = base
    return base


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise rejected(400, "invalid", f"Content-Length {declared!r} is not a number")
        if int(declared) > limit:
            raise rejected(413, "too-long", f"the body ({declared} bytes) exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise rejected(413, "too-long", f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _parse(request: Request, route: FhirRoute, ctx: ApiContext) -> FhirRequest:
    query = request.query_params
    negotiation.check_format(query.get("_format"), request.headers.get("accept"))
    path = request.path_params
    rtype = path.get("type")
    if rtype is not None and rtype not in ctx.served:
        raise NotFound(f"resource type {rtype!r} is not served here")
    rid = path.get("id")
    if rid is not None and not is_valid_id(rid):
        raise rejected(400, "invalid", f"{rid!r} is not a valid FHIR id ([A-Za-z0-9-.]{{1,64}})")
    body = await _read_body(request, ctx.settings.max_body_bytes) if route.body else b""
    params = [(k, v) for k, v in query.multi_items() if k not in PRESENTATION_PARAMS] if query else []
    return FhirRequest(
        method=route.method,
        base=_base(request, ctx),
        type=rtype,
        id=rid,
        vid=path.get("vid"),
        operation=path.get("operation"),
        params=params,
        headers=request.headers,
        body=body,
        prefer_return=negotiation.prefer_return(request.headers.get("prefer")),
        settings=ctx.settings,
        operations=ctx.operations,
    )


_CONTENT_TYPE = (b"content-type", FHIR_JSON.encode())


def _render(resp: FhirResponse, pretty: bool) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, raw ASGI headers and body bytes of an answer (``_pretty`` indents the JSON)."""
    body = resp.body_bytes()
    if body is not None and pretty:
        body = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2)
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers.items()]
    if body is not None:
        headers.append(_CONTENT_TYPE)
    if resp.status not in (204, 304):
        headers.append((b"content-length", b"%d" % len(body or b"")))
    return resp.status, headers, body or b""


def _failure(exc: BaseException, pretty: bool) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The one place an exception becomes an HTTP answer: an OperationOutcome with its status."""
    status, body = outcome_for(exc)
    headers = dict(exc.headers) if isinstance(exc, HTTPException | Denied) and exc.headers else {}
    return _render(FhirResponse(status, body, headers), pretty)


def error_response(exc: BaseException) -> Response:
    """``_failure`` as a Starlette response, for FastAPI's exception handlers (paths outside ``/fhir``)."""
    status, headers, body = _failure(exc, False)
    response = Response(body, status)
    response.raw_headers = headers
    return response


Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
Endpoint = Callable[[Request], Awaitable[Answer]]


def _endpoint(route: FhirRoute, ctx: ApiContext) -> Endpoint:
    interaction = route.interaction

    async def endpoint(request: Request) -> Answer:
        pretty = negotiation.is_pretty(request.query_params.get("_pretty"))
        address = request.client.host if request.client else ""
        try:
            principal = ctx.gate.admit(interaction, request.headers.get("authorization"), address)
            req = await _parse(request, route, ctx)
            call = ctx.gate.authorize(principal, interaction, req, address)
            if ctx.inline:
                resp = call.run(interaction, req, ctx.repo)
            else:
                resp = await run_in_threadpool(call.run, interaction, req, ctx.repo)
        except Exception as exc:
            return _failure(exc, pretty)
        return _render(resp, pretty)

    endpoint.__name__ = route.interaction.__name__
    endpoint.__doc__ = route.interaction.__doc__
    return endpoint


def _operations_text(route: FhirRoute, registry: OperationRegistry) -> str:
    """Markdown list of the operations invocable at a ``$operation`` route's level."""
    level = route.path.count("/")  # /$op: 1, /{type}/$op: 2, /{type}/{id}/$op: 3
    lines = []
    for op in registry:
        if level == 1 and op.system:
            lines.append(f"* `${op.name}`: {op.documentation}")
        elif level > 1 and op.types and op.serves(op.types[0], instance=level == 3):
            lines.append(f"* `${op.name}` on {', '.join(op.types)}: {op.documentation}")
    return (
        "Operations served here:\n\n" + "\n".join(lines)
        if lines
        else "No operation is registered at this level."
    )


def _openapi(route: FhirRoute, served: list[str], registry: OperationRegistry) -> dict[str, Any]:
    params: list[dict[str, Any]] = []
    for name, doc in _PARAM_DOCS.items():
        if "{" + name + "}" in route.path:
            schema: dict[str, Any] = {"type": "string"}
            if name == "type":
                schema["enum"] = served
            params.append(
                {"name": name, "in": "path", "required": True, "description": doc, "schema": schema}
            )
    params.append(
        {
            "name": "_format",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": sorted(negotiation.JSON_FORMATS), "default": "json"},
        }
    )
    params.append({"name": "_pretty", "in": "query", "required": False, "schema": {"type": "boolean"}})
    extra: dict[str, Any] = {"parameters": params}
    if "{operation}" in route.path:
        extra["description"] = _operations_text(route, registry)
    if route.body:
        media = (
            "application/x-www-form-urlencoded" if route.path.endswith("_search") else "application/fhir+json"
        )
        extra["requestBody"] = {"content": {media: {"schema": {"type": "object"}}}}
    extra["responses"] = {
        "default": {
            "description": "FHIR resource or OperationOutcome",
            "content": {"application/fhir+json": {}},
        }
    }
    return extra


class _FhirFront:
    """ASGI middleware answering every request below ``/fhir`` from the route table (``Dispatcher``);
    everything else (``/docs``, ``/openapi.json``) goes on to FastAPI."""

    def __init__(
        self,
        app: ASGIApp,
        dispatcher: Dispatcher,
        endpoints: dict[FhirRoute, Endpoint],
    ) -> None:
        self.app = app
        self.dispatcher = dispatcher
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (path == BASE_PATH or path.startswith(BASE_PATH + "/")):
            await self.app(scope, receive, send)
            return
        route, params, allowed = self.dispatcher.match(scope["method"], path[len(BASE_PATH) :])
        if route is None:
            exc = HTTPException(
                405 if allowed else 404, headers={"Allow": ", ".join(allowed)} if allowed else None
            )
            status, headers, body = _failure(exc, False)
        else:
            scope["path_params"] = params
            status, headers, body = await self.endpoints[route](Request(scope, receive))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def create_app(
    repo: Repository | None = None,
    settings: Settings | None = None,
    *,
    operations: OperationRegistry | None = None,
    threaded: bool | None = None,
) -> FastAPI:
    """The FHIR API application over ``repo`` (opened from ``settings.database_url`` when None).

    ``operations`` defaults to the process registry with every module of ``interop.api.ops`` loaded.
    ``threaded`` runs interactions in the thread pool (default for PostgreSQL, whose calls wait on the
    network); on SQLite they run on the event loop: a read there takes less time than a thread hand-off,
    and SQLite serializes writers anyway.
    """
    settings = settings or get_settings()
    owned = repo is None
    if repo is None:
        from interop.store import open_repository

        repo = open_repository(settings.database_url)
    if threaded is None:
        threaded = getattr(repo, "dialect_name", "sqlite") != "sqlite"
    served_list = served_types()
    ctx = ApiContext(
        repo=repo,
        settings=settings,
        operations=operations if operations is not None else load_operations(),
        served=frozenset(served_list),
        inline=not threaded,
        bases={},
        gate=Gate(settings),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            ctx.repo.close()

    app = FastAPI(
        title="medsync-interop FHIR R4 API",
        description=DESCRIPTION,
        version=__version__,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    doc_routes: list[BaseRoute] = []
    endpoints: dict[FhirRoute, Endpoint] = {}
    for route in ROUTES:
        endpoint = _endpoint(route, ctx)
        path, name = BASE_PATH + route.path, f"{route.method.lower()}:{route.path}"
        endpoints[route] = endpoint
        doc_routes.append(
            APIRoute(
                path,
                endpoint,
                methods=[route.method],
                summary=route.summary,
                name=name,
                response_class=Response,
                response_model=None,
                openapi_extra=_openapi(route, served_list, ctx.operations),
                tags=["FHIR"],
            )
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=[*doc_routes, *app.routes],  # the FHIR table, then routers included by features
            )
            document_security(app.openapi_schema, BASE_PATH, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    async def home(request: Request) -> Response:
        return RedirectResponse("/docs")

    app.add_api_route("/", home, methods=["GET"], include_in_schema=False)

    async def http_error(request: Request, exc: Exception) -> Response:
        return error_response(exc)

    app.add_middleware(_FhirFront, dispatcher=Dispatcher(ROUTES), endpoints=endpoints)
    app.add_middleware(PathRateLimit, limiter=ctx.gate.limiter, prefixes=("/app", "/inbound"))
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, http_error)
    app.add_exception_handler(Exception, http_error)
    app.include_router(outreach_router)
    app.include_router(staff_router(ctx.repo, settings))
    app.state.fhir = ctx
    return app
