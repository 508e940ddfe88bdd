"""Delivering a batch of deliveries: claim the rows, send, record every outcome.

arq runs a job at least once, so the delivery row is the guard: one compare-and-set claims all
the batch's claimable rows, parts already accepted are never sent again, and a delivered row is
left alone. Sending touches no database (``sending.py``); the outcomes of the whole batch are
recorded in one transaction, which is what makes a worker fast.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.channels import registry
from gongkai.dispatch import metrics
from gongkai.dispatch.deps import Deps
from gongkai.dispatch.progress import CLAIMABLE, finish_items
from gongkai.dispatch.queue import POLL_INTERVAL, backoff_seconds, enqueue_delivery, enqueue_poll
from gongkai.dispatch.quiet import quiet_until
from gongkai.dispatch.sending import Outcome, send_parts
from gongkai.storage.models import (
    Attempt,
    Delivery,
    DeliveryStatus,
    Item,
    ItemStatus,
    Target,
)
from gongkai.storage.types import utcnow

log = logging.getLogger(__name__)


async def deliver(deps: Deps, delivery_id: int) -> str:
    """Run one delivery as far as it can go now; returns a word for logs and tests."""
    return (await deliver_batch(deps, [delivery_id]))[0]


async def deliver_batch(deps: Deps, ids: list[int]) -> list[str]:
    words: dict[int, str] = {}
    later: list[tuple[int, datetime | None, float | None]] = []  # (id, at, delay) to enqueue
    now = utcnow()
    async with deps.maker() as session:
        rows = {
            d.id: d
            for d in (await session.exec(select(Delivery).where(col(Delivery.id).in_(ids)))).all()
        }
        candidates: list[int] = []
        for delivery_id in ids:
            d = rows.get(delivery_id)
            if d is None:
                words[delivery_id] = "missing"
                continue
            if d.status not in CLAIMABLE:
                words[delivery_id] = f"skipped ({d.status})"
                continue
            item = await deps.item(session, d.item_id)
            wait_until = _not_yet(deps, d, item, now)
            if wait_until is not None:
                word, at = wait_until
                words[delivery_id] = word
                if word == "quiet hours":
                    d.status, d.not_before, d.updated_at = DeliveryStatus.queued, at, now
                    session.add(d)
                later.append((delivery_id, at, None))
                continue
            candidates.append(delivery_id)
        claimed = await _claim(session, candidates) if candidates else set()
        for delivery_id in set(candidates) - claimed:
            await session.refresh(rows[delivery_id])
            d = rows[delivery_id]
            if d.status in CLAIMABLE:  # not claimable only because its item was recalled
                d.status, d.last_error, d.updated_at = DeliveryStatus.cancelled, "recalled", now
                session.add(d)
                words[delivery_id] = "cancelled"
            else:
                words[delivery_id] = "claimed elsewhere"
        await session.commit()
        await deps.prefetch_targets(
            session,
            {rows[i].target_id for i in claimed if rows[i].target_id is not None},  # type: ignore[misc]
        )
        jobs = []
        for delivery_id in [i for i in candidates if i in claimed]:
            d = rows[delivery_id]
            try:
                tv, active, reason = await deps.target(session, d.target_id, d.channel)
            except LookupError as exc:
                jobs.append((d, _immediate("permanent", d, str(exc))))
                continue
            if not active:
                error = f"target inactive: {reason or 'deactivated'}"
                jobs.append((d, _immediate("permanent", d, error)))
                continue
            jobs.append((d, _bounded(deps, d, tv)))

    outcomes = await asyncio.gather(*(job for _, job in jobs))
    if jobs:
        async with deps.maker() as session:
            follow = await _record(
                session, deps, [(d, o) for (d, _), o in zip(jobs, outcomes, strict=True)]
            )
        for delivery_id, word, at, delay in follow:
            words[delivery_id] = word
            if word == "pending":
                await enqueue_poll(deps.pool, delivery_id, POLL_INTERVAL)
            elif at is not None or delay is not None:
                later.append((delivery_id, at, delay))
    for delivery_id, at, delay in later:
        await enqueue_delivery(deps.pool, delivery_id, at=at, delay=delay)
    return [words.get(i, "?") for i in ids]


def _not_yet(
    deps: Deps, d: Delivery, item: Item | None, now: datetime
) -> tuple[str, datetime] | None:
    if item is None:
        return None
    if item.publish_at and item.publish_at > now:
        return "scheduled", item.publish_at
    if d.not_before and d.not_before > now + timedelta(seconds=1):
        return "not yet", d.not_before
    if registry.get(d.channel).quiet_hours_apply and not item.urgent:
        until = quiet_until(now, deps.settings.quiet_window, deps.settings.tz)
        if until is not None:
            return "quiet hours", until
    return None


async def _claim(session: AsyncSession, ids: list[int]) -> set[int]:
    result = await session.exec(  # type: ignore[call-overload]
        update(Delivery)
        .where(
            col(Delivery.id).in_(ids),
            col(Delivery.status).in_(CLAIMABLE),
            col(Delivery.item_id).not_in(select(Item.id).where(Item.status == ItemStatus.recalled)),
        )
        .values(status=DeliveryStatus.sending, updated_at=utcnow())
        .returning(Delivery.id)
    )
    return {row[0] for row in result.all()}


async def _immediate(kind: str, d: Delivery, error: str) -> Outcome:
    return Outcome(kind=kind, parts_done=d.parts_done, error=error)


async def _bounded(deps: Deps, d: Delivery, tv: Any) -> Outcome:
    async with deps.slots:
        return await send_parts(deps, d, registry.get(d.channel), tv)


async def _record(
    session: AsyncSession, deps: Deps, results: list[tuple[Delivery, Outcome]]
) -> list[tuple[int, str, datetime | None, float | None]]:
    """Write every outcome of the batch in one transaction; return what to enqueue next."""
    now = utcnow()
    attempts = [a for _, o in results for a in o.attempts]
    failures = await _failures_since_requeue(
        session, [d.id for d, o in results if o.kind == "transient"]
    )  # type: ignore[misc]
    updates: list[dict[str, Any]] = []
    follow: list[tuple[int, str, datetime | None, float | None]] = []
    for d, o in results:
        row: dict[str, Any] = {
            "id": d.id,
            "parts_done": o.parts_done,
            "attempts": d.attempts + len(o.attempts),
            "provider_message_ids": [*d.provider_message_ids, *o.provider_message_ids],
            "notes": [*d.notes, *o.notes],
            "updated_at": now,
        }
        word = o.kind
        if o.kind == "delivered":
            row.update(status=DeliveryStatus.delivered, delivered_at=now, last_error=None)
            follow.append((d.id, "delivered", None, None))  # type: ignore[arg-type]
        elif o.kind == "pending":
            row.update(status=DeliveryStatus.sending)
            follow.append((d.id, "pending", None, None))  # type: ignore[arg-type]
        elif o.kind == "rate_limited":
            row.update(status=DeliveryStatus.queued)
            follow.append((d.id, "rate limited", None, o.retry_after))  # type: ignore[arg-type]
        elif o.kind == "recalled":
            row.update(status=DeliveryStatus.cancelled, last_error=o.error)
            follow.append((d.id, "cancelled", None, None))  # type: ignore[arg-type]
        elif o.kind == "permanent":
            row.update(status=DeliveryStatus.dead, last_error=o.error)
            word = "dead"
            if o.deactivate_target and d.target_id is not None:
                await session.exec(  # type: ignore[call-overload]
                    update(Target)
                    .where(col(Target.id) == d.target_id)
                    .values(active=False, inactive_reason=o.error)
                )
                deps.targets.pop(d.target_id, None)
            follow.append((d.id, word, None, None))  # type: ignore[arg-type]
        else:  # transient
            count = failures.get(d.id, 0) + 1  # type: ignore[arg-type]
            if count >= deps.settings.max_attempts:
                row.update(
                    status=DeliveryStatus.dead,
                    last_error=f"gave up after {count} attempts: {o.error}",
                )
                word = "dead"
                follow.append((d.id, word, None, None))  # type: ignore[arg-type]
            else:
                delay = backoff_seconds(
                    count,
                    deps.settings.retry_base_seconds,
                    deps.settings.retry_max_seconds,
                    o.retry_after,
                )
                row.update(
                    status=DeliveryStatus.failed,
                    last_error=o.error,
                    not_before=now + timedelta(seconds=delay),
                )
                word = "failed"
                follow.append((d.id, word, None, delay))  # type: ignore[arg-type]
        metrics.DELIVERIES.labels(d.channel, row.get("status", "queued")).inc()
        updates.append(row)
    if attempts:
        await session.exec(insert(Attempt), params=_complete_attempts(attempts))  # type: ignore[call-overload]
    await session.exec(update(Delivery), params=updates)  # type: ignore[call-overload]
    await finish_items(session, {d.item_id for d, o in results if o.kind == "delivered"})
    await session.commit()
    return follow


def _complete_attempts(attempts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = (
        "delivery_id",
        "number",
        "part_index",
        "started_at",
        "finished_at",
        "outcome",
        "provider_message_id",
        "error",
        "retry_after",
    )
    return [{k: a.get(k) for k in keys} for a in attempts]


async def _failures_since_requeue(session: AsyncSession, ids: list[int]) -> dict[int, int]:
    """Transient failures per delivery since an admin last requeued it (a retry starts afresh)."""
    if not ids:
        return {}
    requeued = dict(
        (
            await session.exec(
                select(Attempt.delivery_id, func.max(Attempt.id))
                .where(col(Attempt.delivery_id).in_(ids), Attempt.outcome == "requeued")
                .group_by(Attempt.delivery_id)
            )
        ).all()
    )
    rows = (
        await session.exec(
            select(Attempt.delivery_id, Attempt.id).where(
                col(Attempt.delivery_id).in_(ids), Attempt.outcome == "transient"
            )
        )
    ).all()
    counts: dict[int, int] = defaultdict(int)
    for delivery_id, attempt_id in rows:
        if attempt_id > requeued.get(delivery_id, 0):
            counts[delivery_id] += 1
    return counts


# The pending-verdict half lives in pending.py; these names are where callers look for them.
from gongkai.dispatch.pending import complete_pending, poll_pending  # noqa: E402

__all__ = ["CLAIMABLE", "Deps", "complete_pending", "deliver", "deliver_batch", "poll_pending"]
