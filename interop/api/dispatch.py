"""The route table compiled for dispatch: a request path split into segments is matched against the routes
with that many segments, in table order (literals first, as ``interop.api.routes`` orders them).

This replaces framework routing on the hot path: Starlette tried ~20 regexes per read and FastAPI's
per-request machinery halved a bare endpoint's throughput; here a read costs a dict lookup and a few
string comparisons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from interop.api.routes import Route


@dataclass(frozen=True, slots=True)
class _Compiled:
    route: Route
    segments: tuple[tuple[str, str], ...]
    """(kind, text): ("literal", "_history"), ("param", "type") or ("operation", "operation")."""


def _compile(route: Route) -> _Compiled:
    out = []
    for part in route.path.strip("/").split("/") if route.path.strip("/") else []:
        if part.startswith("${") and part.endswith("}"):
            out.append(("operation", part[2:-1]))
        elif part.startswith("{") and part.endswith("}"):
            out.append(("param", part[1:-1]))
        else:
            out.append(("literal", part))
    return _Compiled(route, tuple(out))


class Dispatcher:
    """Finds the route and path parameters for a method and a path below the FHIR base."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self._by_length: dict[int, list[_Compiled]] = {}
        self._by_method: dict[tuple[str, int], list[_Compiled]] = {}
        for route in routes:
            compiled = _compile(route)
            self._by_length.setdefault(len(compiled.segments), []).append(compiled)
            self._by_method.setdefault((route.method, len(compiled.segments)), []).append(compiled)
            if route.method == "GET":
                self._by_method.setdefault(("HEAD", len(compiled.segments)), []).append(compiled)

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        """(route, path parameters, allowed methods): route None with methods → 405, without → 404."""
        trimmed = path.strip("/")
        parts = trimmed.split("/") if trimmed else []
        for compiled in self._by_method.get((method, len(parts)), ()):
            params = _bind(compiled.segments, parts)
            if params is not None:
                return compiled.route, params, []
        allowed: list[str] = []
        for compiled in self._by_length.get(len(parts), ()):
            if _bind(compiled.segments, parts) is not None and compiled.route.method not in allowed:
                allowed.append(compiled.route.method)
        return None, {}, allowed


def _bind(segments: tuple[tuple[str, str], ...], parts: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for (kind, text), part in zip(segments, parts, strict=True):
        if kind == "literal":
            if part != text:
                return None
        elif kind == "operation":
            if len(part) < 2 or part[0] != "$":
                return None
            params[text] = part[1:]
        elif not part:
            return None
        else:
            params[text] = part
    return params
