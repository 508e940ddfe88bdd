"""A live worker's rows are not taken over while the database keeps it from recording them.

A row's lease lives in the database, and the database is what an outage takes away: a worker
that has sent deliveries and is waiting to record them cannot renew their leases either. Once an
outage outlasts a lease, another worker would take those rows over as if their worker had died
and send them again. So while its recorder cannot write, a worker keeps, in Redis, the set of
rows it holds (``raise_fence``), refreshed on every try and expiring on its own when the worker
dies; a takeover passes over a row whose owner's fence names it (``fenced``). When the database
is back the worker renews its leases first and then takes the fence down, so there is no moment
when its rows are neither leased nor fenced.

A worker killed during the outage stops refreshing its fence: it expires and its rows are taken
over as any dead worker's are. If Redis cannot be asked, a takeover waits: no job reaches a
worker without Redis anyway, and reconciliation queues the rows again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

log = logging.getLogger(__name__)

CHUNK = 5000  # ids per SADD
LEAST_SECONDS = 15.0  # a fence outlives three of the recorder's longest pauses between tries


def fence_key(worker_id: str) -> str:
    return f"gongkai:fence:{worker_id}"


def fence_seconds(lease_seconds: float) -> int:
    return int(max(lease_seconds, LEAST_SECONDS)) + 1


async def raise_fence(pool: Any, worker_id: str, ids: Iterable[int], lease_seconds: float) -> bool:
    """Name the rows ``worker_id`` holds (only these: rows it let go are left out); True when
    Redis took it."""
    key, held = fence_key(worker_id), sorted(set(ids))
    try:
        async with pool.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            for start in range(0, len(held), CHUNK):
                pipe.sadd(key, *held[start : start + CHUNK])
            if held:
                pipe.expire(key, fence_seconds(lease_seconds))
            await pipe.execute()
    except Exception as exc:  # Redis away as well: the leases are all that is left
        log.warning("could not fence %d held rows in Redis (%s)", len(held), exc)
        return False
    return True


async def lower_fence(pool: Any, worker_id: str) -> None:
    try:
        await pool.delete(fence_key(worker_id))
    except Exception as exc:  # it expires by itself
        log.warning("could not take the fence down (%s); it expires by itself", exc)


async def fenced(pool: Any, owners: Mapping[int, str | None]) -> set[int]:
    """Of rows whose lease ran out (id → ``lease_owner``), those a live owner still fences; all
    of them when Redis cannot tell."""
    by_owner: dict[str, list[int]] = defaultdict(list)
    for row_id, owner in owners.items():
        if owner:
            by_owner[owner].append(row_id)
    if not by_owner:
        return set()
    try:
        async with pool.pipeline(transaction=False) as pipe:
            for owner, ids in by_owner.items():
                pipe.smismember(fence_key(owner), ids)
            answers = await pipe.execute()
    except Exception as exc:
        log.warning("could not read the fences (%s); no takeover now", exc)
        return {i for ids in by_owner.values() for i in ids}
    return {
        row_id
        for ids, flags in zip(by_owner.values(), answers, strict=True)
        for row_id, flag in zip(ids, flags, strict=True)
        if flag
    }
