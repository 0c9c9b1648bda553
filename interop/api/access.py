"""Who may do what: bearer-token authentication, SMART scope checks per interaction and operation, rate
limits, and the audited, compartment-limited repository each admitted request runs against.

Every FHIR route except ``/metadata`` needs a token (RFC 6750: 401 with ``WWW-Authenticate: Bearer``);
the interaction's resource type and action (SMART v2 ``c r u d s``) must be granted (403 otherwise).
Operations declare the grants they need (``Operation.scopes``, e.g. ``("Patient.r", "CarePlan.cu")``); one
that declares none needs user/system ``*.cruds``. ``patient/`` grants see only the token patient's compartment.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from interop.api import interactions as i
from interop.api.audit import AuditedRepository, AuditTrail
from interop.api.compartment import CompartmentRepository
from interop.api.exchange import FhirRequest, FhirResponse
from interop.api.limits import RateLimiter
from interop.api.outcome import Rejected
from interop.api.smart import ACTIONS, AUDIT_TYPE, Grant, Grants
from interop.api.tokens import Principal, TokenError, TokenVerifier
from interop.config import Settings
from interop.fhir.validation import Issue
from interop.store.base import Repository, StoreError

log = logging.getLogger(__name__)

REALM = "medsync-interop"
INSECURE = Principal(
    "anonymous",
    "insecure-dev",
    Grants((Grant("system", "*", frozenset(ACTIONS)), Grant("system", AUDIT_TYPE, frozenset(ACTIONS)))),
)
"""The caller when authorization is off (``serve --insecure-dev``): every grant, audited as anonymous."""

_NEEDS: dict[object, tuple[str, str]] = {
    i.read: ("read", "r"),
    i.vread: ("vread", "r"),
    i.history_instance: ("history-instance", "r"),
    i.history_type: ("history-type", "s"),
    i.history_system: ("history-system", "s"),
    i.search_type: ("search-type", "s"),
    i.search_post: ("search-type", "s"),
    i.search_system: ("search-system", "s"),
    i.create: ("create", "c"),
    i.update: ("update", "u"),
    i.conditional_update: ("update", "us"),
    i.delete: ("delete", "d"),
    i.conditional_delete: ("delete", "ds"),
}
"""Interaction → (restful-interaction code, SMART actions it needs on the request's type)."""

_BUNDLE_ACTIONS = {"GET": "r", "HEAD": "r", "POST": "c", "PUT": "u", "PATCH": "u", "DELETE": "d"}


class Denied(Rejected):
    """A refused request (401, 403, 429) with the headers its status calls for."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str]) -> None:
        super().__init__(status, [Issue(message, [], code, status)])
        self.headers = dict(headers)


def forbidden(message: str) -> Denied:
    challenge = f'Bearer realm="{REALM}", error="insufficient_scope"'
    return Denied(403, "forbidden", message, {"WWW-Authenticate": challenge})


@dataclass(slots=True)
class Call:
    """One admitted request: its caller, the grants that apply and the audit trail it writes."""

    principal: Principal
    trail: AuditTrail | None

    def run(self, interaction: i.Interaction, req: FhirRequest, repo: Repository) -> FhirResponse:
        """Run ``interaction`` against ``repo`` limited to the caller's grants; audit it."""
        grants = self.principal.grants
        scoped: Repository
        audited = AuditedRepository(repo, self.trail) if self.trail is not None else None
        scoped = CompartmentRepository(audited or repo, grants.mode, grants.patient)
        try:
            resp = interaction(req, scoped)
        except Exception as exc:
            if audited is not None:
                audited.finish(_status(exc))
            raise
        if audited is not None:
            audited.finish(resp.status)
        return resp


def _status(exc: BaseException) -> int:
    if isinstance(exc, Rejected | StoreError):
        return exc.status
    return 500


class Gate:
    """Authenticates, rate-limits and authorizes each FHIR request (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.verifier = TokenVerifier(settings) if settings.auth_enabled else None
        self.limiter = RateLimiter(settings.rate_limit, settings.rate_burst)

    def admit(self, interaction: object, authorization: str | None, address: str) -> Principal:
        """The caller of a request; 401 without a valid token, 429 over the rate (``/metadata`` is public)."""
        if self.verifier is None or interaction is i.capabilities:
            self._limit(address)
            return INSECURE
        try:
            principal = self.verifier.verify(authorization)
        except TokenError as exc:
            self._limit(address)
            cause = type(exc.__cause__ or exc).__name__  # the type only: a token's text may carry claims
            log.info("request from %s refused (401): %s", address, cause)
            reason = "".join(ch for ch in str(exc) if " " <= ch <= "~" and ch != '"')  # one safe header line
            challenge = f'Bearer realm="{REALM}", error="invalid_token", error_description="{reason}"'
            if not authorization:
                challenge = f'Bearer realm="{REALM}"'
            raise Denied(401, "login", f"authentication required: {exc}", {"WWW-Authenticate": challenge}) from exc
        self._limit(f"sub:{principal.subject}")
        return principal

    def _limit(self, client: str) -> None:
        wait = self.limiter.take(client)
        if wait:
            raise Denied(
                429,
                "throttled",
                f"too many requests: at most {self.limiter.rate:g} per second (burst {self.limiter.burst})",
                {"Retry-After": str(wait)},
            )

    def authorize(self, principal: Principal, interaction: object, req: FhirRequest, address: str) -> Call:
        """403 unless the caller's grants allow the interaction; the :class:`Call` that runs it otherwise."""
        if interaction is i.capabilities:
            return Call(principal, None)
        grants = principal.grants
        if interaction is i.bundle:
            subtype = self._bundle(grants, req)
        elif req.operation is not None:
            subtype = "operation"
            self._operation(grants, req)
        elif interaction in _NEEDS:
            subtype, actions = _NEEDS[interaction]
            self._interaction(grants, req, actions, interaction)
        else:  # a route added without an entry above: only full access reaches it
            subtype = "operation"
            if not grants.has_wildcard(ACTIONS):
                raise forbidden("this interaction needs a user/ or system/ '*.cruds' scope")
        audited = self.settings.audit_enabled and req.type != AUDIT_TYPE
        trail = None
        if audited:
            query = req.criteria() if subtype.startswith(("search", "history")) else ""
            if interaction is i.search_post and req.body:
                form = parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True)
                query = urlencode([*req.params, *form])
            trail = AuditTrail(
                principal.subject,
                principal.client,
                address,
                subtype,
                query=f"{req.type or ''}?{query}" if query else "",
                operation=req.operation or "",
            )
            if req.type and req.id:
                trail.entities.append(f"{req.type}/{req.id}")
        return Call(principal, trail)

    @staticmethod
    def _interaction(grants: Grants, req: FhirRequest, actions: str, interaction: object) -> None:
        if req.type is None:
            types = [t for k, v in req.params if k == "_type" for t in v.split(",") if t]
            if not types and not grants.has_wildcard(actions):
                raise forbidden(f"a user/ or system/ '*.{actions}' scope is needed to {actions} across all types")
        else:
            types = [req.type]
        if interaction is i.create and (req.headers.get("if-none-exist") or req.params):
            actions += "s"
        for rtype in types:
            for action in actions:
                if grants.mode(rtype, action) is None:
                    raise forbidden(f"the token grants no '{action}' on {rtype}")

    @staticmethod
    def _bundle(grants: Grants, req: FhirRequest) -> str:
        try:
            data = req.json()
        except StoreError:
            data = None
        if not grants.grants:
            raise forbidden("the token grants no resource access")
        if not isinstance(data, dict):
            return "transaction"
        for index, entry in enumerate(data.get("entry") or []):
            request = entry.get("request") if isinstance(entry, dict) else None
            if not isinstance(request, dict):
                continue
            url = str(request.get("url", ""))
            path, _, query = url.partition("?")
            parts = [p for p in path.split("/") if p]
            method = str(request.get("method", "")).upper()
            action = _BUNDLE_ACTIONS.get(method, "cruds")
            if method == "GET" and len(parts) < 2:
                action = "s"
            if query or (isinstance(entry, dict) and request.get("ifNoneExist")):
                action += "s"
            if not parts or parts[0].startswith(("$", "_")) or any(p.startswith("$") for p in parts):
                if not grants.has_wildcard(ACTIONS):
                    raise forbidden(f"Bundle.entry[{index}] {method} {path}: needs a user/ or system/ '*.cruds' scope")
                continue
            for letter in action:
                if grants.mode(parts[0], letter) is None:
                    raise forbidden(f"Bundle.entry[{index}]: the token grants no '{letter}' on {parts[0]}")
        kind = data.get("type")
        return kind if kind in ("batch", "transaction") else "transaction"

    @staticmethod
    def _operation(grants: Grants, req: FhirRequest) -> None:
        op = req.operations.find(req.operation or "", req.type, req.id is not None) if req.operations else None
        declared = op.scopes if op is not None else None
        if declared is None:
            if not grants.has_wildcard("cruds"):
                raise forbidden(f"${req.operation} needs a user/ or system/ '*.cruds' scope")
            return
        restricted = False
        for item in declared:
            rtype, _, actions = item.partition(".")
            for action in actions:
                mode = grants.mode(rtype, action)
                if mode is None:
                    raise forbidden(f"${req.operation} needs '{action}' on {rtype}")
                restricted = restricted or mode == "patient"
        if not restricted or (req.id is not None and req.type != "Patient"):
            return  # an instance of another type: the compartment-limited repository checks what it reads
        if req.type != "Patient" or req.id != grants.patient:
            raise forbidden(f"${req.operation} here is outside the token's patient compartment")


def document_security(schema: dict[str, Any], base_path: str, settings: Settings) -> None:
    """Declare the bearer scheme in an OpenAPI document: every FHIR route needs it but ``/metadata``."""
    if not settings.auth_enabled:
        return
    schema.setdefault("components", {})["securitySchemes"] = {
        "smart": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "SMART on FHIR v2 scopes, e.g. system/*.rs, user/Patient.r, patient/MedicationDispense.rs",
        }
    }
    for path, item in schema.get("paths", {}).items():
        if not path.startswith(base_path):
            continue
        for operation in item.values():
            if isinstance(operation, dict):
                operation["security"] = [] if path == f"{base_path}/metadata" else [{"smart": []}]
