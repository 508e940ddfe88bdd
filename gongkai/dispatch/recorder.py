"""Recording outcomes as they happen, many to a transaction.

A lane takes one of the worker's ``unrecorded`` tokens before it sends a delivery and hands the
outcome here; the token comes back when the outcome is committed. So a worker never has more
deliveries sent-but-unrecorded than it has tokens (twice ``worker_concurrency``): that, not a
whole job's worth, is what a crash can make a takeover send twice. Outcomes that arrive while
a transaction is being written wait for the next one, which is how a busy worker still writes
a hundred rows per transaction (bench/fanout.py). The tokens of a transaction's outcomes come
back together once it is committed.

If the database is unreachable the recorder keeps the outcomes and tries again with backoff
until it is back; the lanes wait (nothing new is sent) and nothing is lost. The jobs that follow
(retries, verdict polls) are named and written into their rows in the same transaction, then
enqueued; if Redis is down then, reconciliation finds the rows whose job never arrived.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, select, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.dispatch import metrics
from gongkai.dispatch.claims import Claimed, Outcome
from gongkai.dispatch.fence import lower_fence, raise_fence
from gongkai.dispatch.leases import renew_leases
from gongkai.dispatch.outcomes import retry_or_give_up, settled
from gongkai.dispatch.progress import finish_items
from gongkai.dispatch.queue import POLL_INTERVAL, by_delay, enqueue_poll, job_name, offer
from gongkai.dispatch.rows import DATABASE_DOWN, write_attempts
from gongkai.storage.models import Attempt, Delivery, Target
from gongkai.storage.types import utcnow

if TYPE_CHECKING:
    from gongkai.dispatch.deps import Deps

log = logging.getLogger(__name__)

DELIVERY = Delivery.__table__  # type: ignore[attr-defined]
D = DELIVERY.c
A = Attempt.__table__  # type: ignore[attr-defined]
IDS = bindparam("ids", expanding=True)
MOST_PER_TRANSACTION = 1000


def recorder_for(deps: Deps) -> Recorder:
    """The worker's one recorder (kept on its Deps)."""
    if deps.recorder is None:
        deps.recorder = Recorder(deps)
    return deps.recorder


class Recorder:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._waiting: list[tuple[Claimed, Outcome, asyncio.Future[str]]] = []
        self._task: asyncio.Task[None] | None = None

    def submit(self, d: Claimed, o: Outcome) -> asyncio.Future[str]:
        """The outcome's word for the log, once it is committed. The ``unrecorded`` token the
        lane took for this delivery is given back then, by the recorder."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting.append((d, o, future))
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        return future

    async def _run(self) -> None:
        try:
            while self._waiting:
                chunk = self._waiting[:MOST_PER_TRANSACTION]
                del self._waiting[:MOST_PER_TRANSACTION]
                try:
                    words = await self._write([(d, o) for d, o, _ in chunk])
                except Exception as exc:  # a bug, not an outage: the lanes see it
                    for _, _, future in chunk:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                finally:  # committed (or beyond saving): the lanes may send as many again
                    self.deps.unrecorded.release(len(chunk))
                for (_, _, future), word in zip(chunk, words, strict=True):
                    if not future.done():
                        future.set_result(word)
        finally:
            self._task = None

    async def _write(self, results: list[tuple[Claimed, Outcome]]) -> list[str]:
        pause, outage = 0.2, False
        deps = self.deps
        while True:
            try:
                async with deps.maker() as session:
                    words, follow = await record(session, deps, results)
                break
            except DATABASE_DOWN as exc:
                log.warning(
                    "recording %d outcomes failed (%s: %s); trying again in %.1f s",
                    len(results),
                    type(exc).__name__,
                    str(exc).splitlines()[0][:200] if str(exc) else "",
                    pause,
                )
                # the leases cannot be renewed either: keep other workers off the rows in Redis
                outage = True
                await raise_fence(deps.pool, deps.worker_id, deps.held, deps.settings.lease_seconds)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
        for d, _ in results:
            deps.held.discard(d.id)
        if outage:
            await self._after_outage()
        await self._enqueue(follow)
        return words

    async def _after_outage(self) -> None:
        """Leases first, then the fence down: the rows still held are never unguarded."""
        try:
            await renew_leases(self.deps)
        except Exception as exc:  # down again: the fence stays up until it expires
            log.warning("could not renew leases after the outage (%s)", exc)
            return
        await lower_fence(self.deps.pool, self.deps.worker_id)

    async def _enqueue(self, follow: list[tuple[str, str, list[int], float]]) -> None:
        for kind, job, ids, delay in follow:
            if kind != "poll":
                await offer(self.deps.pool, job, ids, delay=delay)
                continue
            try:
                await enqueue_poll(self.deps.pool, ids[0], delay, job)
            except Exception as exc:  # Redis away: reconciliation finds the overdue poll
                log.warning("could not enqueue %s (%s); reconciliation will", job, exc)


async def record(
    session: AsyncSession, deps: Deps, results: list[tuple[Claimed, Outcome]]
) -> tuple[list[str], list[tuple[str, str, list[int], float]]]:
    """Write outcomes in one transaction; return each one's word and the jobs to enqueue.

    Rows whose outcome is alike and needs no follow-up (most of a fan-out: delivered, one
    attempt, nothing to append) share one ``UPDATE … WHERE id IN``; the rest go through one
    executemany per shape of change.
    """
    now = utcnow()
    attempts = [a for _, o in results for a in o.attempts]
    failures = await _failures_since_requeue(
        session, [d.id for d, o in results if o.kind == "transient"]
    )
    appends = {d.id for d, o in results if o.provider_message_ids or o.notes}
    lists = await _lists(session, appends)
    alike: dict[tuple[str, int, int, str | None], list[int]] = defaultdict(list)
    special: list[tuple[Claimed, Outcome, dict[str, Any]]] = []
    waits: list[tuple[int, float | None]] = []
    words: list[str] = []
    deactivate: dict[int, str | None] = {}
    counted: Counter[tuple[str, str]] = Counter()
    for d, o in results:
        delay: float | None = None
        if o.kind == "transient":
            item = await deps.item(session, d.item_id)
            changes, word, delay = retry_or_give_up(
                deps.settings,
                o,
                failures.get(d.id, 0) + 1,
                now,
                d.give_up_at,
                bool(item and item.urgent),
            )
        else:
            changes, word = settled(o.kind, o.error, now)
            if o.kind == "rate_limited":
                delay = o.retry_after or 1.0
                changes["not_before"] = now + timedelta(seconds=delay)
            if o.deactivate_target and d.target_id is not None:
                deactivate[d.target_id] = o.error
        words.append(word)
        counted[(d.channel, changes["status"])] += 1
        if delay is not None:
            waits.append((d.id, delay))
        if d.id in appends or o.kind in ("transient", "pending", "rate_limited"):
            special.append((d, o, changes))
        else:
            alike[(o.kind, o.parts_done, len(o.attempts), o.error)].append(d.id)
    grouped = by_delay(waits)
    jobs = {i: job for _, job, ids in grouped for i in ids}
    follow: list[tuple[str, str, list[int], float]] = [
        ("deliver", job, ids, seconds) for seconds, job, ids in grouped
    ]
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for d, o, changes in special:
        row = {
            "_id": d.id,
            "attempts": d.attempts + len(o.attempts),
            "parts_done": o.parts_done,
            "updated_at": now,
            **changes,
        }
        if d.id in jobs:
            row["job"] = jobs[d.id]
        if o.kind == "pending":
            poll = job_name("p")
            row.update(job=poll, not_before=now + timedelta(seconds=POLL_INTERVAL))
            follow.append(("poll", poll, [d.id], POLL_INTERVAL))
        if d.id in appends:
            message_ids, notes = lists[d.id]
            row["provider_message_ids"] = [*message_ids, *o.provider_message_ids]
            row["notes"] = [*notes, *o.notes]
        shapes[tuple(sorted(row))].append(row)
    for (channel, status), n in counted.items():
        metrics.outcome(channel, status, n)
    for target_id, reason in deactivate.items():
        await session.execute(
            update(Target)
            .where(col(Target.id) == target_id)
            .values(active=False, inactive_reason=reason)
        )
        deps.targets.pop(target_id, None)
    await write_attempts(session, attempts)
    conn = await session.connection()  # Core statements skip the ORM's execution path
    for (kind, parts_done, added, error), ids in alike.items():
        changes = settled(kind, error, now)[0]
        await conn.execute(
            update(DELIVERY)
            .where(D.id.in_(IDS))
            .values(**changes, parts_done=parts_done, updated_at=now, attempts=D.attempts + added),
            {"ids": ids},
        )
    for keys, rows in shapes.items():
        await conn.execute(
            update(DELIVERY)
            .where(D.id == bindparam("_id"))
            .values({k: bindparam(k) for k in keys if k != "_id"}),
            rows,
        )
    await finish_items(session, {d.item_id for d, o in results if o.kind == "delivered"})
    await session.commit()
    return words, follow


async def _lists(session: AsyncSession, ids: set[int]) -> dict[int, tuple[list[str], list[str]]]:
    """Provider message ids and notes so far, for the rows that append to them."""
    if not ids:
        return {}
    rows = await session.execute(select(D.id, D.provider_message_ids, D.notes).where(D.id.in_(ids)))
    return {i: (list(m or []), list(n or [])) for i, m, n in rows.all()}


async def _failures_since_requeue(session: AsyncSession, ids: list[int]) -> dict[int, int]:
    """Transient failures per delivery since an admin last requeued it (a retry starts afresh)."""
    if not ids:
        return {}
    a = A.c
    requeued = dict(
        (
            await session.execute(
                select(a.delivery_id, func.max(a.id))
                .where(a.delivery_id.in_(ids), a.outcome == "requeued")
                .group_by(a.delivery_id)
            )
        ).all()
    )
    rows = (
        await session.execute(
            select(a.delivery_id, a.id).where(a.delivery_id.in_(ids), a.outcome == "transient")
        )
    ).all()
    counts: dict[int, int] = defaultdict(int)
    for delivery_id, attempt_id in rows:
        if attempt_id > requeued.get(delivery_id, 0):
            counts[delivery_id] += 1
    return counts
