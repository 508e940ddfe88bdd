"""Redis writes an answer need not wait for, sent together in one pipeline.

The reply kept for WeChat's retries is the last thing a callback writes. Waiting for it held
every answer back by a Redis round trip; queued here, the answer leaves at once and the
replies of all the answers given meanwhile go to Redis in one pipeline a moment later. A
retry arriving in that moment is answered "success", exactly as one arriving while the first
copy was still being answered always was.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)


class LaterSets:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._pending: list[tuple[str, bytes, int]] = []
        self._sender: asyncio.Task[None] | None = None

    def set(self, key: str, value: bytes, ttl: int) -> None:
        self._pending.append((key, value, ttl))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send(), name="later redis sets")

    async def _send(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for key, value, ttl in batch:
                        pipe.set(key, value, ex=ttl)
                    await pipe.execute()
            except Exception as exc:  # a lost reply only means a retry gets "success"
                log.warning("could not keep %d replies in Redis: %s", len(batch), exc)

    async def flush(self) -> None:
        """Wait until everything queued has been sent (shutdown and tests)."""
        while self._sender is not None and not self._sender.done():
            await asyncio.gather(self._sender, return_exceptions=True)
