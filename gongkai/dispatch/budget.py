"""A count of tokens that coroutines take and give back, the oldest job's sends first.

It does what ``asyncio.Semaphore`` does for the worker's two budgets (sends at once, outcomes
not yet committed), at a small constant cost per call, with one difference that matters to a
fan-out: waiters are served by ``rank`` (the job's start), then first come first served.

Why the rank: a worker runs a few jobs at once, each with as many lanes as the worker has
slots. Served in arrival order, every job's lanes take turns, so the jobs progress in lock-step,
end together, and the next jobs all claim their rows together while nothing is sent
(bench/fanout.py measured no send in flight for about half of a fan-out). Served oldest job
first, one job finishes while the others still send, and its successor claims meanwhile.

Why not ``asyncio.Semaphore``: Python 3.11's semaphore leaves woken waiters in its queue until
they run, and every release and every acquire walks that queue; with a few hundred lanes
waiting on a budget of a hundred, a profiled fan-out of 10,000 deliveries made 870,000 checks.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from types import TracebackType


class Budget:
    def __init__(self, tokens: int) -> None:
        if tokens < 1:
            raise ValueError("a budget needs at least one token")
        self._free = tokens
        # (rank, arrival, waiter); a cancelled waiter stays until it reaches the top
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    @property
    def free(self) -> int:
        return self._free

    @property
    def waiting(self) -> int:
        return sum(1 for *_, w in self._waiters if not w.done())

    async def acquire(self, rank: float = 0.0) -> None:
        """Take a token, waiting behind every waiter of a lower rank and every earlier one of
        the same rank when none is free."""
        if self._free > 0:  # tokens are free only while nobody live waits: dead entries go
            self._waiters.clear()
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (rank, next(self._arrivals), waiter))
        try:
            await waiter  # resolved only by release(), which has taken the token for us
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a token as we were cancelled: pass it on
            raise

    def release(self, n: int = 1) -> None:
        """Give back ``n`` tokens, handing each to the first live waiter by rank."""
        self._free += n
        waiters = self._waiters
        while self._free > 0 and waiters:
            waiter = heapq.heappop(waiters)[2]
            if not waiter.done():
                self._free -= 1
                waiter.set_result(None)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
