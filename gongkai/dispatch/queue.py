"""Putting deliveries on the arq queue. Jobs carry ids only; the row is the truth.

Every job has a name chosen before it is enqueued and written into the rows it carries
(``delivery.job``), in the same transaction as the change that makes them wait. Reconciliation
asks Redis whether that job still exists: a row whose job Redis lost (a restart, a flush, an
enqueue that never happened) is queued again, and a row whose job is only waiting is left alone.
"""

from __future__ import annotations

import logging
import math
import random
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from urllib.parse import urlparse

from arq.connections import ArqRedis, RedisSettings
from arq.constants import job_key_prefix

from gongkai.storage.types import utcnow

log = logging.getLogger(__name__)

QUEUE_NAME = "gongkai:queue"
DELIVER_JOB = "deliver"
POLL_JOB = "poll_pending"
POLL_INTERVAL = 60.0  # seconds between asking a provider for its verdict

# Delivery ids per job. Each job pays arq's bookkeeping and a few SQL statements once, whatever
# its size; a worker runs a few jobs at once (worker.MAX_JOBS), so a job small enough that a
# fan-out makes several of them is what lets two workers each take about half of it.
BATCH = 200


def job_name(kind: str = "b") -> str:
    """A fresh job id: ``b…`` a batch of deliveries, ``p…`` a verdict poll."""
    return f"{kind}{uuid.uuid4().hex[:20]}"


def job_exists_key(job: str) -> str:
    return job_key_prefix + job


SPREAD = 8  # a fan-out is cut into at least this many jobs (when it has SMALLEST_BATCH × 8 ids)
SMALLEST_BATCH = 20


def batches(ids: list[int], size: int | None = None) -> list[tuple[str, list[int]]]:
    """Ids cut into jobs, each with its name. A small fan-out is still cut into several jobs,
    so that every running worker gets a share of it, not one worker all of it."""
    if size is None:
        size = min(BATCH, max(SMALLEST_BATCH, math.ceil(len(ids) / SPREAD)))
    return [(job_name(), ids[i : i + size]) for i in range(0, len(ids), size)]


def by_delay(pairs: Iterable[tuple[int, float | None]]) -> list[tuple[float, str, list[int]]]:
    """Ids that wait, grouped into one job per whole second of delay (retries and rate-limited
    sends of one batch go out together instead of one job each)."""
    groups: dict[int, list[int]] = defaultdict(list)
    for delivery_id, delay in pairs:
        groups[math.ceil(max(0.0, delay or 0.0))].append(delivery_id)
    out: list[tuple[float, str, list[int]]] = []
    for seconds, ids in sorted(groups.items()):
        out += [(float(seconds), job, chunk) for job, chunk in batches(ids)]
    return out


async def enqueue_job(
    pool: ArqRedis,
    job: str,
    ids: list[int],
    *,
    at: datetime | None = None,
    delay: float | None = None,
) -> None:
    """One named job of delivery ids (its name is already written into their rows)."""
    kwargs: dict[str, object] = {"_queue_name": QUEUE_NAME, "_job_id": job}
    if delay is not None and delay > 0:
        kwargs["_defer_by"] = timedelta(seconds=delay)
    elif at is not None and at > utcnow():
        kwargs["_defer_until"] = at
    await pool.enqueue_job(DELIVER_JOB, *ids, **kwargs)


async def enqueue_delivery(
    pool: ArqRedis,
    delivery_id: int,
    *,
    at: datetime | None = None,
    delay: float | None = None,
    job: str | None = None,
) -> None:
    """Queue one delivery (an admin's retry, a test); the row guards against doubles."""
    await offer(pool, job or job_name(), [delivery_id], at=at, delay=delay)


async def offer(
    pool: ArqRedis,
    job: str,
    ids: list[int],
    *,
    at: datetime | None = None,
    delay: float | None = None,
) -> bool:
    """Enqueue a named job whose rows are already written, as far as Redis lets us: with Redis
    away the rows stay queued in the database and reconciliation finds them (False)."""
    try:
        await enqueue_job(pool, job, ids, at=at, delay=delay)
    except Exception as exc:
        log.warning("could not enqueue %s (%s); reconciliation will", job, exc)
        return False
    return True


async def enqueue_deliveries(
    pool: ArqRedis, jobs: list[tuple[str, list[int]]], *, at: datetime | None = None
) -> None:
    """Queue named batches (see ``batches``)."""
    for job, chunk in jobs:
        await enqueue_job(pool, job, chunk, at=at)


async def enqueue_poll(pool: ArqRedis, delivery_id: int, delay: float, job: str) -> None:
    await pool.enqueue_job(
        POLL_JOB,
        delivery_id,
        _queue_name=QUEUE_NAME,
        _defer_by=timedelta(seconds=delay),
        _job_id=job,
    )


def backoff_seconds(failures: int, base: float, cap: float, retry_after: float | None) -> float:
    """Exponential backoff with full jitter over the upper half, never earlier than retry-after."""
    exp = min(cap, base * (2 ** max(0, min(failures, 60) - 1)))
    delay = exp / 2 + random.uniform(0, exp / 2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def recalled_key(item_id: str) -> str:
    return f"gongkai:recalled:{item_id}"


async def queue_depth(pool: ArqRedis) -> int:
    return int(await pool.zcard(QUEUE_NAME))


def arq_settings(url: str) -> RedisSettings:
    if url.startswith("unix://"):
        parsed = urlparse(url)
        return RedisSettings(unix_socket_path=parsed.path, conn_timeout=5)
    return RedisSettings.from_dsn(url)
