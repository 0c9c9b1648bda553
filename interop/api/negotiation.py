"""Content negotiation: ``_format``, ``Accept``, ``Content-Type``, ``Prefer`` and ``_pretty`` (FHIR R4 §3.1.0.1.x).

Only JSON is served. ``_format`` json, ``application/json`` or ``application/fhir+json`` (with parameters)
selects it; a ``_format`` naming XML or Turtle, or an ``Accept`` that allows none of the JSON types nor
``*/*`` (or asks for a ``fhirVersion`` other than 4.0), is answered 406 rather than silently sending
JSON a client did not ask for.
"""

from __future__ import annotations

from interop.api.outcome import rejected

JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json"})
_ACCEPTABLE = frozenset({"application/fhir+json", "application/json", "application/*", "*/*", "json"})
_PREFER_RETURN = {
    "minimal": "minimal",
    "representation": "representation",
    "operationoutcome": "OperationOutcome",
}


def _media(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def check_format(format_param: str | None, accept: str | None) -> None:
    """Raise 406 unless the response may be JSON."""
    if format_param is not None:
        if _media(format_param.replace(" ", "+")) not in JSON_FORMATS:
            raise rejected(406, "not-supported", f"_format={format_param!r}: this server serves JSON only")
        return
    if not accept:
        return
    for part in accept.split(","):
        media = _media(part)
        if media in _ACCEPTABLE and not part.replace(" ", "").endswith(";q=0") and _r4(part):
            return
    raise rejected(
        406, "not-supported", f"Accept: {accept!r} allows no JSON type; this server serves JSON only"
    )


def _r4(media_range: str) -> bool:
    """False when the range names a ``fhirVersion`` other than R4 (4.0), e.g. ``fhirVersion=4.3``."""
    for param in media_range.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "fhirversion" and not value.strip().strip('"').startswith("4.0"):
            return False
    return True


def check_json_body(content_type: str | None) -> None:
    """Raise 415 when a resource body is declared as something other than JSON (absent is taken as JSON)."""
    if content_type is None or not content_type.strip():
        return
    if _media(content_type) not in JSON_FORMATS:
        raise rejected(415, "not-supported", f"Content-Type {content_type!r}: send application/fhir+json")


def is_form(content_type: str | None) -> bool:
    return content_type is not None and _media(content_type) == "application/x-www-form-urlencoded"


def prefer_return(prefer: str | None) -> str:
    """The ``return=`` preference of a ``Prefer`` header; representation when absent or unknown."""
    if prefer:
        for part in prefer.split(";"):
            for item in part.split(","):
                key, _, value = item.strip().partition("=")
                if key.strip().lower() == "return":
                    return _PREFER_RETURN.get(value.strip().strip('"').lower(), "representation")
    return "representation"


def is_pretty(value: str | None) -> bool:
    return value is not None and value.strip().lower() == "true"
