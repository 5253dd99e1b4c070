"""Per-client token buckets for the HTTP API, in a table that is pruned.

Each client (its address) has a bucket of ``burst`` tokens refilled at ``rate`` a second;
a request takes one, and one that finds the bucket empty is answered 429 with
``Retry-After``. A bucket that has been full for a while says nothing a fresh one would
not, so the table drops those when it grows past ``max_clients``: an attacker cycling
addresses costs memory only up to that bound (then everyone idle is forgotten first).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from quart import Quart, Response, request

from orchestrator.errors import error_response

__all__ = ["RateLimiter", "install_rate_limit"]

_EXEMPT = frozenset({"/health"})  # probes poll it


class RateLimiter:
    """Token buckets keyed by client.

    Args:
        rate: tokens added a second.
        burst: a bucket's size.
        max_clients: buckets kept before the full ones are dropped.
        clock: seconds, monotonic.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)

    def __len__(self) -> int:
        return len(self._buckets)

    def _level(self, client: str, now: float) -> float:
        tokens, at = self._buckets.get(client, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - at) * self.rate)

    def take(self, client: str) -> float:
        """Take a token for ``client``: 0.0 if it had one, else the seconds until it will."""
        now = self._clock()
        tokens = self._level(client, now)
        if tokens >= 1:
            self._buckets[client] = (tokens - 1, now)
            if len(self._buckets) > self.max_clients:
                self.prune()
            return 0.0
        self._buckets[client] = (tokens, now)
        return (1 - tokens) / self.rate

    def prune(self) -> int:
        """Drop the buckets that have refilled (and so equal a fresh one); how many."""
        now = self._clock()
        full = [c for c in self._buckets if self._level(c, now) >= self.burst]
        for client in full:
            del self._buckets[client]
        if len(self._buckets) > self.max_clients:  # still too many: forget the oldest
            oldest = sorted(self._buckets, key=lambda c: self._buckets[c][1])
            for client in oldest[: len(self._buckets) - self.max_clients]:
                del self._buckets[client]
        return len(full)


def install_rate_limit(app: Quart, limiter: RateLimiter) -> None:
    """Answer 429 to a client past its rate, before any other work on its request."""

    @app.before_request
    async def limit() -> Response | None:
        if request.path in _EXEMPT:
            return None
        wait = limiter.take(request.remote_addr or "-")
        if wait == 0.0:
            return None
        return error_response(
            429, "rate_limited", f"too many requests: retry in {wait:.2f} s",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )  # fmt: skip
