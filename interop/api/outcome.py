"""Every error becomes an OperationOutcome here, and only here (FHIR R4 §3.1.0.9, OperationOutcome).

Store errors carry their HTTP status; validation issues carry 400 or 422; an unexpected exception is a 500
whose details go to the log, not to the client.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import orjson
from starlette.exceptions import HTTPException

from interop.fhir.validation import Issue
from interop.store.base import Resource, StoreError

log = logging.getLogger(__name__)


class Rejected(Exception):
    """A request the API itself refuses: a status and the issues that explain it."""

    def __init__(self, status: int, issues: Sequence[Issue]) -> None:
        super().__init__("; ".join(i.diagnostics for i in issues))
        self.status = status
        self.issues = list(issues)


def rejected(status: int, code: str, message: str, expression: Sequence[str] = ()) -> Rejected:
    """One-issue :class:`Rejected`, e.g. ``raise rejected(415, "not-supported", "...")``."""
    return Rejected(status, [Issue(message, list(expression), code, status)])


def operation_outcome(issues: Sequence[Issue], *, severity: str = "error") -> Resource:
    """An OperationOutcome with one ``issue`` per :class:`Issue`."""
    out = []
    for issue in issues:
        entry: Resource = {"severity": severity, "code": issue.code, "diagnostics": issue.diagnostics}
        if issue.expression:
            entry["expression"] = list(issue.expression)
        out.append(entry)
    return {"resourceType": "OperationOutcome", "issue": out}


def information(message: str) -> bytes:
    """An informational OperationOutcome (successful delete, ``Prefer: return=OperationOutcome``)."""
    return orjson.dumps(operation_outcome([Issue(message, [], "informational", 200)], severity="information"))


_HTTP_CODES = {
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    413: "too-long",
    415: "not-supported",
}


def outcome_for(exc: BaseException) -> tuple[int, bytes]:
    """The status and OperationOutcome bytes that answer ``exc``: the one error mapping of the API."""
    if isinstance(exc, Rejected):
        return exc.status, orjson.dumps(operation_outcome(exc.issues))
    if isinstance(exc, StoreError):
        issue = Issue(exc.message, exc.expression, exc.code, exc.status)
        return exc.status, orjson.dumps(operation_outcome([issue]))
    if isinstance(exc, HTTPException):
        code = _HTTP_CODES.get(exc.status_code, "processing")
        message = str(exc.detail) if exc.detail else "request failed"
        if exc.status_code == 404:
            message = "no FHIR interaction at this URL"
        elif exc.status_code == 405 and exc.headers and exc.headers.get("Allow"):
            message = f"method not allowed at this URL; allowed: {exc.headers['Allow']}"
        return exc.status_code, orjson.dumps(operation_outcome([Issue(message, [], code, exc.status_code)]))
    log.exception("unexpected error while serving a FHIR request", exc_info=exc)
    issue = Issue(f"internal error ({type(exc).__name__}); see the server log", [], "exception", 500)
    return 500, orjson.dumps(operation_outcome([issue], severity="fatal"))
