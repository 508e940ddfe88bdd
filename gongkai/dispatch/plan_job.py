"""Planning as a job: the POST answers at once, a worker renders and writes the deliveries.

An item reaching a county's ten thousand targets took seconds to render inside its request.
Now ingest stores the item with ``planning_status = pending`` and queues a ``plan_item`` job on
the same arq queue the deliveries use. The job:

- claims the planning with a lease on the item row (``planning_owner``, ``planning_lease_until``),
  so two jobs for one item (a re-queue by reconciliation, arq's own retry) never plan at once;
- counts the deliveries to make (``planning_total``), skips those already written (a resumed
  plan), and renders the rest in chunks, a small first one so the first messages leave at once;
- writes each chunk with its rows' job names, the item's ``planned`` count and a renewed lease in
  one transaction, then queues the chunk's delivery jobs, so deliveries go out while later chunks
  are still being rendered; an urgent item's jobs go to the head of the queue;
- ends ``done`` (or ``cancelled`` when the item was recalled meanwhile, ``failed`` naming the
  error when rendering broke).

A worker killed mid-way stops renewing its lease; reconciliation queues the planning again and
the next worker resumes after the last committed chunk: the deliveries' unique ``dedup_key``
makes a row written twice impossible.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from arq import Retry
from arq.connections import ArqRedis
from sqlalchemy import or_, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.channels import registry
from gongkai.dispatch.planning import (
    Pair,
    dedup_key,
    existing_keys,
    insert_new,
    item_view,
    plan_template_push,
    planned_pairs,
    render_rows,
)
from gongkai.dispatch.progress import finish_items
from gongkai.dispatch.queue import (
    BATCH,
    DELIVER_JOB,
    QUEUE_NAME,
    SMALLEST_BATCH,
    SPREAD,
    job_exists_key,
    job_name,
)
from gongkai.dispatch.rows import DATABASE_DOWN
from gongkai.storage.models import (
    PLANNING_OPEN,
    DeliveryStatus,
    Item,
    ItemStatus,
    PlanningStatus,
)
from gongkai.storage.short_links import codes_for, linked_keys
from gongkai.storage.types import utcnow

if TYPE_CHECKING:
    from gongkai.dispatch.deps import Deps

log = logging.getLogger(__name__)

PLAN_JOB = "plan_item"
PLAN_JOB_KIND = "l"  # job ids: ``b…`` deliveries, ``p…`` verdict polls, ``l…`` planning
FIRST_CHUNK = 20  # rendered and queued before anything else: the first messages leave at once
CHUNK = 600  # then this many a transaction (three delivery jobs of queue.BATCH)
# An urgent item's jobs are scored this far in the past: arq takes the lowest score first, so
# they run before a fan-out already waiting in the queue.
URGENT_HEAD = timedelta(hours=1)

ITEM = Item.__table__  # type: ignore[attr-defined]
IT = ITEM.c


async def enqueue_job(
    pool: ArqRedis,
    function: str,
    job: str,
    *args: Any,
    urgent: bool = False,
    at: datetime | None = None,
) -> None:
    """One named job; an urgent one ahead of everything already waiting."""
    kwargs: dict[str, Any] = {"_queue_name": QUEUE_NAME, "_job_id": job}
    if at is not None and at > utcnow():
        kwargs["_defer_until"] = at
    elif urgent:
        kwargs["_defer_until"] = utcnow() - URGENT_HEAD
    await pool.enqueue_job(function, *args, **kwargs)


async def queue_planning(pool: ArqRedis, item_id: str, job: str, *, urgent: bool) -> None:
    """Queue the item's planning under ``job`` (already written into ``item.planning_job``)."""
    await enqueue_job(pool, PLAN_JOB, job, item_id, urgent=urgent)


def planning_job_name() -> str:
    return job_name(PLAN_JOB_KIND)


async def plan_job(ctx: dict[str, Any], item_id: str) -> str:
    """The arq function: a database outage retries the job, anything else fails the planning."""
    deps: Deps = ctx["deps"]
    try:
        return await plan_item(deps, item_id)
    except DATABASE_DOWN as exc:
        log.warning("database unavailable while planning %s (%s); retried", item_id, exc)
        raise Retry(defer=2) from exc


def job_size(todo: int) -> int:
    """Ids per delivery job, as ``queue.batches`` would cut the whole fan-out."""
    return min(BATCH, max(SMALLEST_BATCH, math.ceil(todo / SPREAD)))


def chunks(pairs: list[Pair], size: int) -> list[list[Pair]]:
    """A small first chunk, then whole delivery jobs' worth."""
    step = max(size, (CHUNK // size) * size)
    head = min(FIRST_CHUNK, size)
    out = [pairs[:head]] if pairs else []
    out += [pairs[i : i + step] for i in range(head, len(pairs), step)]
    return out


# Items this process is planning now: a second job for one of them (a re-queue arriving while
# the first still runs here) would pass the lease check, which is per worker, not per job.
_PLANNING_HERE: set[str] = set()


async def plan_item(deps: Deps, item_id: str) -> str:
    """Claim the item's planning, plan what is not planned yet, chunk by chunk; idempotent."""
    if item_id in _PLANNING_HERE:
        return "already being planned by this worker"
    _PLANNING_HERE.add(item_id)
    try:
        return await _plan_item(deps, item_id)
    finally:
        _PLANNING_HERE.discard(item_id)


async def _plan_item(deps: Deps, item_id: str) -> str:
    if not await _claim(deps, item_id):
        return "not mine: planned, recalled or held by another worker"
    try:
        return await _plan_claimed(deps, item_id)
    except DATABASE_DOWN:
        await _release(deps, item_id)  # let the retry (or another worker) claim it at once
        raise
    except asyncio.CancelledError:
        await asyncio.shield(_release(deps, item_id))
        raise
    except Exception as exc:
        log.exception("planning %s failed", item_id)
        await _end(deps, item_id, PlanningStatus.failed, f"{type(exc).__name__}: {exc}"[:2000])
        return f"failed: {exc}"


async def _plan_claimed(deps: Deps, item_id: str) -> str:
    started = time.monotonic()
    async with deps.maker() as session:
        item = await session.get(Item, item_id)
        if item is None:
            return "no such item"
        session.expunge(item)
        if item.status == ItemStatus.recalled:
            await _end(deps, item_id, PlanningStatus.cancelled, None)
            return "recalled"
        pairs = await planned_pairs(session, item)
        done = await existing_keys(session, item_id)
        todo = [p for p in pairs if dedup_key(item_id, p[0], p[1]) not in done]
        await session.execute(
            update(ITEM)
            .where(IT.id == item_id)
            .values(planning_total=len(pairs), planned=len(pairs) - len(todo))
        )
        # Each channel's short link (/s/{code}) is drawn once, before the first chunk renders.
        view = item_view(item)
        names = item.channels or registry.available()
        codes = await codes_for(session, item_id, linked_keys(names, view))
        view = replace(view, short_codes=codes)
        await session.commit()
    status = (
        DeliveryStatus.scheduled if item.status == ItemStatus.scheduled else DeliveryStatus.queued
    )
    at = item.publish_at if item.status == ItemStatus.scheduled else None
    size = job_size(len(todo))
    written = 0
    for chunk in chunks(todo, size):
        if deps.stopping:  # SIGTERM: hand the rest back at once, another worker goes on
            await _release(deps, item_id)
            await requeue_plans(deps, [item_id])
            return f"stopping: handed back after {written} deliveries"
        jobs = [job_name() for _ in range(math.ceil(len(chunk) / size))]
        names: list[str | None] = [jobs[i // size] for i in range(len(chunk))]
        async with deps.maker() as session:
            directory = deps.directory(session)
            rows = await render_rows(
                session,
                deps.sealer,
                directory,
                item,
                view,
                chunk,
                deps.settings.public_url,
                status,
                names,
            )
            new = await insert_new(session, rows)
            if not await _renew(session, deps, item_id, len(new)):
                await session.rollback()
                return await _lost(deps, item_id, written)
            await session.commit()
        written += len(new)
        await _offer(deps, new, urgent=item.urgent, at=at)
    if (item.options or {}).get("wechat", {}).get("template_push") and "wechat_mp" in (
        item.channels or registry.available()
    ):
        written += await _template_pushes(deps, item, view, status, at)
    await _end(deps, item_id, PlanningStatus.done, None)
    seconds = time.monotonic() - started
    log.info("planned %s: %d deliveries in %.2f s", item_id, written, seconds)
    return f"planned {written} of {len(pairs)} in {seconds:.2f} s"


async def _offer(
    deps: Deps, rows: list[dict[str, Any]], *, urgent: bool, at: datetime | None
) -> None:
    """Queue the chunk's delivery jobs; with Redis away, reconciliation finds the rows."""
    jobs: dict[str, list[int]] = {}
    for row in rows:
        if row.get("status") == DeliveryStatus.dead:  # refused at planning: nothing to send
            continue
        jobs.setdefault(row["job"], []).append(row["id"])
    for job, ids in jobs.items():
        try:
            await enqueue_job(deps.pool, DELIVER_JOB, job, *ids, urgent=urgent, at=at)
        except Exception as exc:
            log.warning("could not enqueue %s (%s); reconciliation will", job, exc)


async def _template_pushes(
    deps: Deps, item: Item, view: Any, status: DeliveryStatus, at: datetime | None
) -> int:
    """精准推送 deliveries, planned after the articles (one per official account)."""
    async with deps.maker() as session:
        done = await existing_keys(session, item.id)
        directory = deps.directory(session)
        made = await plan_template_push(
            session, directory, item, view, deps.settings.public_url, status, done
        )
        await session.flush()
        job = job_name()
        for d in made:
            d.job = job
        await session.flush()
        ids = [d.id for d in made if d.id is not None]
        await session.execute(
            update(ITEM)
            .where(IT.id == item.id)
            .values(planned=IT.planned + len(ids), planning_total=IT.planning_total + len(ids))
        )
        await session.commit()
    if ids:
        rows = [{"id": i, "job": job} for i in ids]
        await _offer(deps, rows, urgent=item.urgent, at=at)
    return len(ids)


def _lease_until(deps: Deps) -> datetime:
    return utcnow() + timedelta(seconds=deps.settings.lease_seconds)


def _planning_open() -> Any:
    """Planning not yet ended (pending or running)."""
    return IT.planning_status.in_([s.value for s in PLANNING_OPEN])


def _lease_free(now: datetime) -> Any:
    """No worker holds the planning: never leased, handed back, or run out."""
    return or_(IT.planning_lease_until.is_(None), IT.planning_lease_until < now)


async def _claim(deps: Deps, item_id: str) -> bool:
    """Take the planning lease: open planning whose lease is free, run out or already ours."""
    now = utcnow()
    async with deps.maker() as session:
        result = await session.execute(
            update(ITEM)
            .where(
                IT.id == item_id,
                _planning_open(),
                or_(_lease_free(now), IT.planning_owner == deps.worker_id),
            )
            .values(
                planning_status=PlanningStatus.running.value,
                planning_owner=deps.worker_id,
                planning_lease_until=_lease_until(deps),
                planning_error=None,
            )
        )
        await session.commit()
    return bool(result.rowcount)


async def _renew(session: AsyncSession, deps: Deps, item_id: str, added: int) -> bool:
    """Count the chunk and renew the lease, in the chunk's transaction; False when the lease
    was lost (taken over after a stall) or the item was recalled: the chunk is not written."""
    result = await session.execute(
        update(ITEM)
        .where(
            IT.id == item_id,
            IT.planning_owner == deps.worker_id,
            IT.planning_status == PlanningStatus.running.value,
            IT.status != ItemStatus.recalled.value,
        )
        .values(planned=IT.planned + added, planning_lease_until=_lease_until(deps))
    )
    return bool(result.rowcount)


async def _lost(deps: Deps, item_id: str, written: int) -> str:
    async with deps.maker() as session:
        status = (await session.execute(select(IT.status).where(IT.id == item_id))).scalar()
    if status == ItemStatus.recalled:
        await _end(deps, item_id, PlanningStatus.cancelled, None)
        return f"recalled after {written} deliveries"
    return f"lease lost after {written} deliveries; another worker goes on"


async def _end(deps: Deps, item_id: str, status: PlanningStatus, error: str | None) -> None:
    async with deps.maker() as session:
        values: dict[str, Any] = {
            "planning_status": status.value,
            "planning_error": error,
            "planning_lease_until": None,
        }
        if status == PlanningStatus.done:
            values["planning_total"] = IT.planned
        await session.execute(
            update(ITEM)
            .where(
                IT.id == item_id,
                or_(IT.planning_owner == deps.worker_id, IT.planning_owner.is_(None)),
                _planning_open(),
            )
            .values(**values)
        )
        if status == PlanningStatus.done:  # nothing to send, or all of it sent already
            await finish_items(session, {item_id})
        await session.commit()


async def _release(deps: Deps, item_id: str) -> None:
    """Give the lease back (an outage, a drain): whoever runs next resumes at once."""
    try:
        async with deps.maker() as session:
            await session.execute(
                update(ITEM)
                .where(IT.id == item_id, IT.planning_owner == deps.worker_id)
                .values(planning_lease_until=None)
            )
            await session.commit()
    except Exception as exc:  # the lease runs out by itself
        log.warning("could not release the planning of %s (%s)", item_id, exc)


# --- reconciliation ------------------------------------------------------------------------


GRACE = timedelta(seconds=5)  # a planning just stored may not have its job in Redis yet


async def stalled_plans(deps: Deps, session: AsyncSession, now: datetime) -> list[str]:
    """Items whose planning should be moving and is not: running under a lease that ran out (a
    killed worker) or was handed back (a drain, an outage), or pending with no job in Redis (a
    Redis restarted empty, a failed enqueue)."""
    rows = (
        await session.execute(
            select(IT.id, IT.planning_status, IT.planning_job, IT.planning_lease_until)
            .where(_planning_open(), _lease_free(now), IT.created_at < now - GRACE)
            .limit(1000)
        )
    ).all()
    if not rows:
        return []
    waiting = [r for r in rows if r.planning_status == PlanningStatus.pending and r.planning_job]
    found: list[int] = []
    if waiting:
        async with deps.pool.pipeline(transaction=False) as pipe:
            for r in waiting:
                pipe.exists(job_exists_key(r.planning_job))
            found = await pipe.execute()
    alive = {r.id for r, n in zip(waiting, found, strict=True) if n}
    return [r.id for r in rows if r.id not in alive]


async def requeue_plans(deps: Deps, item_ids: list[str]) -> None:
    """A new planning job for each, named in its row first (as ``queue.py`` does for rows)."""
    for item_id in item_ids:
        job = planning_job_name()
        async with deps.maker() as session:
            result = await session.execute(
                update(ITEM)
                .where(
                    IT.id == item_id,
                    _planning_open(),
                    _lease_free(utcnow()),
                )
                .values(planning_job=job)
            )
            urgent = (await session.execute(select(IT.urgent).where(IT.id == item_id))).scalar()
            await session.commit()
        if result.rowcount:
            try:
                await queue_planning(deps.pool, item_id, job, urgent=bool(urgent))
            except Exception as exc:
                log.warning("could not queue the planning of %s again (%s)", item_id, exc)
