"""Reconciliation: every row that should be moving is moving, whatever Redis lost.

Each worker runs this every ``reconcile_seconds`` (one at a time across workers, by a short
lock in Redis). It finds, in the database:

- rows whose worker's lease has run out (a killed worker, a lost machine): queued again in
  batches, and the claim takes them over;
- waiting rows that are due and whose job no longer exists in Redis (a Redis restarted empty,
  an enqueue that failed): queued again under a new job;
- rows awaiting a provider's verdict whose poll is overdue and whose poll job is gone;
- applicants' notices whose retry is due and whose job is gone (``notice_retry.py``): queued
  again;
- items whose planning is pending with no job in Redis, or running under a lease that ran out
  (``plan_job.py``): planned again, resuming after the deliveries already written.

A row whose job still exists is only waiting its turn and is left alone, so a long queue is
never doubled.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from arq.constants import in_progress_key_prefix
from sqlalchemy import and_, func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.dispatch import metrics
from gongkai.dispatch.notice_retry import requeue_lost_retries
from gongkai.dispatch.pending import schedule_polls
from gongkai.dispatch.plan_job import requeue_plans, stalled_plans
from gongkai.dispatch.progress import CLAIMABLE
from gongkai.dispatch.queue import (
    batches,
    job_exists_key,
    offer,
)
from gongkai.dispatch.rows import stamp_jobs
from gongkai.storage.models import Delivery, DeliveryStatus
from gongkai.storage.types import utcnow

if TYPE_CHECKING:
    from gongkai.dispatch.deps import Deps

log = logging.getLogger(__name__)

DELIVERY = Delivery.__table__  # type: ignore[attr-defined]
D = DELIVERY.c
SENDING = DeliveryStatus.sending.value
LOCK = "gongkai:reconcile-lock"
# A row just queued may not have its job in Redis yet (the job is enqueued after the commit).
GRACE = timedelta(seconds=5)
MOST_PER_ROUND = 5000


async def reconcile(deps: Deps) -> dict[str, int]:
    """One round; returns how many rows of each kind were queued again."""
    now = utcnow()
    waiting = and_(
        D.status.in_(CLAIMABLE),
        or_(D.not_before.is_(None), D.not_before < now - GRACE),
        D.updated_at < now - GRACE,
    )
    awaiting_verdict = and_(
        D.status == SENDING,
        D.lease_until.is_(None),
        or_(D.not_before.is_(None), D.not_before < now - GRACE),
    )
    async with deps.maker() as session:
        expired = await _ids(
            session, and_(D.status == SENDING, D.lease_until.is_not(None), D.lease_until < now)
        )
        lost = await _ids(session, waiting, await _lost_jobs(deps, session, waiting))
        # A job a worker took and died with before claiming its rows: arq holds it "in
        # progress" for the job timeout (minutes). A live worker claims a job's rows as it
        # starts it, so rows still unclaimed a lease after their job started are queued again;
        # should that worker be alive after all, the claim lets only one of the two send.
        stale = and_(waiting, D.updated_at < now - timedelta(seconds=deps.settings.lease_seconds))
        seen = set(lost)
        stuck = await _ids(session, stale, await _stuck_jobs(deps, session, stale))
        lost += [i for i in stuck if i not in seen]
        lost_polls = await _ids(
            session, awaiting_verdict, await _lost_jobs(deps, session, awaiting_verdict)
        )
        plans = await stalled_plans(deps, session, now)
    counts = {
        "leases_expired": len(expired),
        "reconciled": len(lost),
        "polls": len(lost_polls),
        "plans": len(plans),
        "notices": await requeue_lost_retries(deps, now),
    }
    if plans:
        log.warning("reconciled: %d items whose planning stalled", len(plans))
        await requeue_plans(deps, plans)
        await metrics.count_shared(deps.pool, "plans_reconciled", len(plans))
    if expired or lost:
        await _queue_again(deps, [*expired, *lost])
    if lost_polls:
        await schedule_polls(deps, lost_polls, 0)
    if expired or lost or lost_polls:
        log.warning(
            "reconciled: %d leases expired, %d rows whose job was lost, %d verdict polls",
            len(expired),
            len(lost),
            len(lost_polls),
        )
        await metrics.count_shared(deps.pool, "reconciled", len(lost))
        await metrics.count_shared(deps.pool, "polls_reconciled", len(lost_polls))
    return counts


async def _ids(session: AsyncSession, where: Any, jobs: list[str] | None = None) -> list[int]:
    """Rows matching ``where`` (and, given ``jobs``, carried by none of them or by a lost one)."""
    stmt = select(D.id).where(where)
    if jobs is not None:
        stmt = stmt.where(or_(D.job.is_(None), D.job.in_(jobs)) if jobs else D.job.is_(None))
    rows = await session.execute(stmt.order_by(D.id).limit(MOST_PER_ROUND))
    return [r[0] for r in rows.all()]


async def _jobs_by_key(
    deps: Deps, session: AsyncSession, where: Any, key: Callable[[str], str]
) -> list[tuple[str, bool]]:
    """The distinct jobs named by rows matching ``where``, each with whether Redis holds
    ``key(job)`` (one EXISTS per job, pipelined): a queue thousands of rows long is a few dozen
    jobs."""
    jobs = [
        r[0]
        for r in (
            await session.execute(
                select(D.job).where(where, D.job.is_not(None)).distinct().limit(MOST_PER_ROUND)
            )
        ).all()
    ]
    if not jobs:
        return []
    async with deps.pool.pipeline(transaction=False) as pipe:
        for job in jobs:
            pipe.exists(key(job))
        found = await pipe.execute()
    return [(job, bool(n)) for job, n in zip(jobs, found, strict=True)]


async def _lost_jobs(deps: Deps, session: AsyncSession, where: Any) -> list[str]:
    """The jobs named by rows matching ``where`` that Redis no longer holds."""
    return [
        job for job, held in await _jobs_by_key(deps, session, where, job_exists_key) if not held
    ]


async def _stuck_jobs(deps: Deps, session: AsyncSession, where: Any) -> list[str]:
    """The jobs named by rows matching ``where`` that a worker has started (arq's in-progress
    mark) without claiming those rows."""
    started = await _jobs_by_key(deps, session, where, lambda job: in_progress_key_prefix + job)
    return [job for job, held in started if held]


async def _queue_again(deps: Deps, ids: list[int]) -> None:
    """New named jobs for the rows, written into them first (see ``queue.py``)."""
    named = batches(ids)
    async with deps.maker() as session:
        await stamp_jobs(session, named)
        await session.commit()
    for job, chunk in named:
        await offer(deps.pool, job, chunk)


async def reconcile_forever(deps: Deps) -> None:
    """The worker's background round: survives Redis and database outages by trying later."""
    every = deps.settings.reconcile_seconds
    while True:
        await asyncio.sleep(every * random.uniform(0.8, 1.2))
        try:
            if not await deps.pool.set(LOCK, deps.worker_id, nx=True, px=int(every * 800)):
                continue  # another worker reconciles this round
            await reconcile(deps)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an outage: log once a round and carry on
            log.warning("reconciliation skipped: %s: %s", type(exc).__name__, exc)


async def oldest_undelivered_seconds(session: AsyncSession) -> float:
    """How long the oldest due, undelivered row has been waiting (what an operator alarms on)."""
    now = utcnow()
    oldest = (
        await session.execute(
            select(func.min(func.coalesce(D.not_before, D.created_at))).where(
                or_(D.status.in_(CLAIMABLE), and_(D.status == SENDING, D.lease_until.is_not(None))),
                or_(D.not_before.is_(None), D.not_before <= now),
            )
        )
    ).scalar()
    if oldest is None:
        return 0.0
    return max(0.0, (now - oldest).total_seconds())
