"""Provider limits shared by every worker through Redis (the ``limits`` library).

Two, five or twenty workers together must never exceed a robot's 20 messages a minute: the
moving window lives in Redis and is hit atomically by a Lua script. A worker that finds a
limit reached does not wait; it gets the number of seconds until a slot frees and defers the
job, so other channels keep flowing.
"""

from __future__ import annotations

import time

from limits import parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from gongkai.channels.base import RateLimit


class RateLimiter:
    def __init__(self, redis_url: str, enabled: bool = True) -> None:
        self.enabled = enabled
        self._storage = RedisStorage(_limits_uri(redis_url)) if enabled else None
        self._limiter = MovingWindowRateLimiter(self._storage) if self._storage else None

    async def acquire(self, wanted: list[RateLimit]) -> float | None:
        """Take one slot from every limit; None when taken, else seconds to wait.

        Limits are hit in order; when a later one refuses, the earlier slots stay spent. That
        errs on the side of sending less, never more.
        """
        if not self.enabled or not wanted or self._limiter is None:
            return None
        for item in wanted:
            limit = parse(item.rate)
            if not await self._limiter.hit(limit, "gongkai", item.key):
                stats = await self._limiter.get_window_stats(limit, "gongkai", item.key)
                return max(0.05, stats.reset_time - time.time())
        return None

    async def close(self) -> None:
        # limits' storage owns its own connection pool; nothing else to release.
        return None


class Allowance:
    """So many events per window per key, shared by every process through Redis: a resident's
    messages a minute, a console name's failed logins. ``limits`` counts in one atomic call
    that sets the window's expiry with the first event, so a count can never outlive it."""

    def __init__(self, redis_url: str, rate: str, namespace: str) -> None:
        self.limit = parse(rate)
        self.namespace = namespace
        self._uri = redis_url
        self._limiter = FixedWindowRateLimiter(RedisStorage(_limits_uri(redis_url)))

    async def spent(self, *key: str) -> bool:
        """True once the window's events are used up (nothing is counted by asking)."""
        return not await self._limiter.test(self.limit, self.namespace, *key)

    async def take(self, *key: str) -> bool:
        """Count one event; False when it is over the window's allowance."""
        return await self._limiter.hit(self.limit, self.namespace, *key)

    def once(self) -> Allowance:
        """One event per the same window: saying "too many" once, not each time."""
        window = f"{self.limit.multiples} {self.limit.GRANULARITY.name}"
        return Allowance(self._uri, f"1/{window}", f"{self.namespace}-once")

    async def clear(self, *key: str) -> None:
        await self._limiter.clear(self.limit, self.namespace, *key)


def _limits_uri(redis_url: str) -> str:
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url[len("unix://") :]
    if redis_url.startswith(("redis://", "rediss://")):
        return "async+" + redis_url
    return redis_url
