"""Putting delivery ids on the arq queue. Jobs carry ids only; the row is the truth."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

from arq.connections import ArqRedis

from gongkai.storage.types import utcnow

QUEUE_NAME = "gongkai:queue"
DELIVER_JOB = "deliver"
POLL_JOB = "poll_pending"
POLL_INTERVAL = 60.0  # seconds between asking a provider for its verdict


async def enqueue_delivery(
    pool: ArqRedis, delivery_id: int, *, at: datetime | None = None, delay: float | None = None
) -> None:
    """Queue one delivery; a unique job id per call, because the row guards against doubles."""
    kwargs: dict[str, object] = {
        "_queue_name": QUEUE_NAME,
        "_job_id": f"d{delivery_id}-{uuid.uuid4().hex[:12]}",
    }
    if delay is not None and delay > 0:
        kwargs["_defer_by"] = timedelta(seconds=delay)
    elif at is not None and at > utcnow():
        kwargs["_defer_until"] = at
    await pool.enqueue_job(DELIVER_JOB, delivery_id, **kwargs)


# Delivery ids per job. Each job pays arq's bookkeeping and about eight SQL statements once,
# whatever its size: at 100 ids that was ~80 µs of CPU per delivery, at 500 about a fifth of
# it (bench/fanout.py). Sends within a job still run 100 at a time (worker_concurrency), a
# rate-limited id is deferred on its own, and the sweeper recovers a batch a dead worker left.
BATCH = 500


async def enqueue_deliveries(
    pool: ArqRedis, delivery_ids: list[int], *, at: datetime | None = None
) -> None:
    """Queue many deliveries, a batch of ids per job (each id is still guarded by its row)."""
    for start in range(0, len(delivery_ids), BATCH):
        chunk = delivery_ids[start : start + BATCH]
        kwargs: dict[str, object] = {
            "_queue_name": QUEUE_NAME,
            "_job_id": f"b{chunk[0]}-{uuid.uuid4().hex[:12]}",
        }
        if at is not None and at > utcnow():
            kwargs["_defer_until"] = at
        await pool.enqueue_job(DELIVER_JOB, *chunk, **kwargs)


async def enqueue_poll(pool: ArqRedis, delivery_id: int, delay: float) -> None:
    await pool.enqueue_job(
        POLL_JOB,
        delivery_id,
        _queue_name=QUEUE_NAME,
        _defer_by=timedelta(seconds=delay),
        _job_id=f"p{delivery_id}-{uuid.uuid4().hex[:12]}",
    )


def backoff_seconds(failures: int, base: float, cap: float, retry_after: float | None) -> float:
    """Exponential backoff with full jitter over the upper half, never earlier than retry-after."""
    exp = min(cap, base * (2 ** max(0, failures - 1)))
    delay = exp / 2 + random.uniform(0, exp / 2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def recalled_key(item_id: str) -> str:
    return f"gongkai:recalled:{item_id}"


async def queue_depth(pool: ArqRedis) -> int:
    return int(await pool.zcard(QUEUE_NAME))
