"""Per-client request rate: a token bucket per token subject (or client address without a token).

Each client may make ``burst`` requests at once and ``rate`` per second after that; a request over the
limit is answered 429 with ``Retry-After`` (RFC 6585 §4). The table forgets idle clients, so it stays small.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

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
