"""Per-client request rate: a token bucket per token subject (or client address without a token).

Each client may make ``burst`` requests at once and ``rate`` per second after that; a request over the
limit is answered 429 with ``Retry-After`` (RFC 6585 §4). The table forgets idle clients, so it stays small.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

MAX_CLIENTS = 10_000


class RateLimiter:
    """Token buckets by client key; :meth:`take` answers 0 (go ahead) or the seconds to wait."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, client: str) -> int:
        """Spend one token of ``client``'s bucket: 0 when there was one, else whole seconds until there is."""
        if not self.enabled:
            return 0
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[client] = (tokens, now)
                return max(1, math.ceil((1.0 - tokens) / self.rate))
            if len(self._buckets) >= MAX_CLIENTS and client not in self._buckets:
                self._forget(now)
            self._buckets[client] = (tokens - 1.0, now)
            return 0

    def _forget(self, now: float) -> None:
        """Drop buckets that have refilled completely (their clients were idle)."""
        full = float(self.burst) / self.rate
        for key in [k for k, (_, last) in self._buckets.items() if now - last >= full]:
            del self._buckets[key]
        if len(self._buckets) >= MAX_CLIENTS:
            self._buckets.clear()


class PathRateLimit:
    """ASGI middleware spending a client-address token for requests below ``prefixes`` (``/app``, ``/inbound``).

    The FHIR routes are limited by their gate (by token subject); these pages and webhooks share its buckets.
    """

    def __init__(self, app: ASGIApp, limiter: RateLimiter, prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.limiter = limiter
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and self.limiter.enabled and any(
            path == p or path.startswith(p + "/") for p in self.prefixes
        ):
            client = scope.get("client")
            wait = self.limiter.take(str(client[0]) if client else "unknown")
            if wait:
                answer = JSONResponse(
                    {"error": f"too many requests: at most {self.limiter.rate:g} per second (burst {self.limiter.burst})"},
                    status_code=429,
                    headers={"Retry-After": str(wait)},
                )
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)
