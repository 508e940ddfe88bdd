"""Sending one delivery: claim the row, respect limits, send part by part, record each attempt.

arq runs a job at least once, so the delivery row is the guard: a compare-and-set on its status
claims it, parts already accepted are never sent again, and a delivered row is left alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
from arq.connections import ArqRedis
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.bot.settings import Settings
from gongkai.channels import registry
from gongkai.channels.base import (
    PermanentError,
    SendContext,
    SentPart,
    TargetView,
    TransientError,
)
from gongkai.dispatch import metrics
from gongkai.dispatch.planning import Directory, open_part
from gongkai.dispatch.queue import backoff_seconds, enqueue_delivery, enqueue_poll
from gongkai.dispatch.quiet import quiet_until
from gongkai.dispatch.ratelimit import RateLimiter
from gongkai.storage.crypto import Sealer
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
CLAIMABLE = (
    DeliveryStatus.planned,
    DeliveryStatus.scheduled,
    DeliveryStatus.queued,
    DeliveryStatus.failed,
)
POLL_INTERVAL = 60.0


@dataclass
class Deps:
    """What a worker shares between jobs (built once at worker start-up)."""

    settings: Settings
    maker: async_sessionmaker[AsyncSession]
    sealer: Sealer
    http: aiohttp.ClientSession
    pool: ArqRedis
    limiter: RateLimiter
    slots: asyncio.Semaphore  # deliveries in flight per worker: keep within the DB pool
    # Per-worker caches of what does not change while an item is delivered: an item's schedule
    # and the opened targets. Recall is still seen at once: the claim checks it in SQL.
    items: dict[str, tuple[float, Any]] = field(default_factory=dict)
    targets: dict[int, tuple[float, TargetView, bool, str | None]] = field(default_factory=dict)


CACHE_SECONDS = 30.0


async def _item_facts(session: AsyncSession, deps: Deps, item_id: str) -> Any:
    hit = deps.items.get(item_id)
    if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    item = await session.get(Item, item_id)
    if item is not None:
        deps.items[item_id] = (time.monotonic(), item)
        session.expunge(item)
    return item


async def _target(
    session: AsyncSession, deps: Deps, target_id: int | None, channel: str
) -> tuple[TargetView, Target | None, bool, str | None]:
    if target_id is None:
        return await Directory(session, deps.sealer).target_view(None, channel), None, True, None
    hit = deps.targets.get(target_id)
    if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1], None, hit[2], hit[3]
    target = await session.get(Target, target_id)
    if target is None:
        raise LookupError(f"target {target_id} is gone")
    tv = await Directory(session, deps.sealer).target_view(target, channel)
    deps.targets[target_id] = (time.monotonic(), tv, target.active, target.inactive_reason)
    return tv, target, target.active, target.inactive_reason


async def _claim(session: AsyncSession, delivery_id: int) -> bool:
    result = await session.exec(  # type: ignore[call-overload]
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.status.in_(CLAIMABLE),  # type: ignore[attr-defined]
            Delivery.item_id.not_in(  # type: ignore[attr-defined]
                select(Item.id).where(Item.status == ItemStatus.recalled)
            ),
        )
        .values(status=DeliveryStatus.sending, updated_at=utcnow())
    )
    await session.commit()
    return result.rowcount == 1


async def _set(session: AsyncSession, d: Delivery, **values: Any) -> None:
    for k, v in values.items():
        setattr(d, k, v)
    d.updated_at = utcnow()
    session.add(d)
    await session.commit()


async def deliver(deps: Deps, delivery_id: int) -> str:
    """Run one delivery as far as it can go now; returns a word for logs and tests."""
    async with deps.maker() as session:
        d = await session.get(Delivery, delivery_id)
        if d is None:
            return "missing"
        if d.status not in CLAIMABLE:
            return f"skipped ({d.status})"
        item = await _item_facts(session, deps, d.item_id)
        assert item is not None
        now = utcnow()
        if item.publish_at and item.publish_at > now:
            await enqueue_delivery(deps.pool, delivery_id, at=item.publish_at)
            return "scheduled"
        if d.not_before and d.not_before > now + timedelta(seconds=1):
            await enqueue_delivery(deps.pool, delivery_id, at=d.not_before)
            return "not yet"
        channel = registry.get(d.channel)
        if channel.quiet_hours_apply and not item.urgent:
            until = quiet_until(now, deps.settings.quiet_window, deps.settings.tz)
            if until is not None:
                await _set(session, d, status=DeliveryStatus.queued, not_before=until)
                await enqueue_delivery(deps.pool, delivery_id, at=until)
                return "quiet hours"
        if not await _claim(session, delivery_id):
            await session.refresh(d)
            if d.status in CLAIMABLE:  # not claimable only because its item was recalled
                await _set(session, d, status=DeliveryStatus.cancelled, last_error="recalled")
                return "cancelled"
            return "claimed elsewhere"
        d.status = DeliveryStatus.sending
        try:
            tv, _target_row, active, reason = await _target(session, deps, d.target_id, d.channel)
        except LookupError as exc:
            await _set(session, d, status=DeliveryStatus.dead, last_error=str(exc))
            return "dead"
        if not active:
            await _set(
                session,
                d,
                status=DeliveryStatus.dead,
                last_error=f"target inactive: {reason or 'deactivated'}",
            )
            return "dead"
        parts = d.payload.get("parts", [])
        state: dict[str, Any] = {}
        pending = False
        for index in range(d.parts_done, len(parts)):
            part = open_part(parts[index], deps.sealer)
            wait = await deps.limiter.acquire(channel.rate_limits(tv, part))
            if wait is not None:
                # Not an attempt: hand the slot back to the queue and let other channels flow.
                await _set(session, d, status=DeliveryStatus.queued)
                await enqueue_delivery(deps.pool, delivery_id, delay=wait)
                metrics.RATE_LIMITED.labels(d.channel).inc()
                return "rate limited"
            ctx = SendContext(
                http=deps.http,
                settings=deps.settings,
                redis=deps.pool,
                target=tv,
                item_id=d.item_id,
                delivery_id=delivery_id,
                part_index=index,
                limiter=deps.limiter,
                state=state,
            )
            outcome = await _send_part(
                session,
                deps,
                d,
                channel,
                part,
                ctx,
                index,
                last=index == len(parts) - 1 and not pending,
            )
            if outcome == "stop":
                return d.status
            pending = pending or outcome == "pending"
        if pending:
            await _set(session, d, status=DeliveryStatus.sending)
            await enqueue_poll(deps.pool, delivery_id, POLL_INTERVAL)
            return "pending"
        if d.status != DeliveryStatus.delivered:  # nothing was left to send
            await _set(session, d, status=DeliveryStatus.delivered, delivered_at=utcnow())
        metrics.DELIVERIES.labels(d.channel, "delivered").inc()
        return "delivered"


async def _send_part(
    session: AsyncSession,
    deps: Deps,
    d: Delivery,
    channel: Any,
    part: dict[str, Any],
    ctx: SendContext,
    index: int,
    *,
    last: bool,
) -> str:
    number = d.attempts + 1
    attempt = Attempt(delivery_id=d.id, number=number, part_index=index, outcome="sending")  # type: ignore[arg-type]
    started = time.perf_counter()
    try:
        sent: SentPart = await channel.send(part, ctx)
    except TransientError as exc:
        return await _failed(session, deps, d, attempt, str(exc), exc.retry_after)
    except PermanentError as exc:
        attempt.outcome, attempt.error, attempt.finished_at = "permanent", str(exc), utcnow()
        session.add(attempt)
        if exc.deactivate_target and d.target_id is not None:
            target = await session.get(Target, d.target_id)
            if target is not None:
                target.active = False
                target.inactive_reason = str(exc)
                session.add(target)
            deps.targets.pop(d.target_id, None)
        await _set(session, d, status=DeliveryStatus.dead, attempts=number, last_error=str(exc))
        metrics.DELIVERIES.labels(d.channel, "dead").inc()
        return "stop"
    except Exception as exc:  # a bug or an unforeseen network error: retry, but say what it was
        log.exception("delivery %s: unexpected error", d.id)
        return await _failed(session, deps, d, attempt, f"{type(exc).__name__}: {exc}", None)
    finally:
        metrics.SEND_LATENCY.labels(d.channel).observe(time.perf_counter() - started)
    attempt.outcome = "pending" if sent.pending else "delivered"
    attempt.provider_message_id = sent.provider_message_id
    attempt.finished_at = utcnow()
    if sent.extra:
        attempt.error = _extra_note(sent.extra)
    session.add(attempt)
    ids = list(d.provider_message_ids)
    if sent.provider_message_id:
        ids.append(sent.provider_message_id)
    notes = list(d.notes)
    if sent.extra.get("note"):
        notes.append(str(sent.extra["note"]))
    done: dict[str, Any] = {}
    if last and not sent.pending:  # the last part: the row says delivered in the same commit
        done = {"status": DeliveryStatus.delivered, "delivered_at": utcnow(), "last_error": None}
    await _set(
        session,
        d,
        parts_done=index + 1,
        attempts=number,
        provider_message_ids=ids,
        notes=notes,
        **done,
    )
    return "pending" if sent.pending else "sent"


def _extra_note(extra: dict[str, Any]) -> str | None:
    failed = extra.get("failed")
    return f"partly refused: {failed}" if failed else None


async def _failed(
    session: AsyncSession,
    deps: Deps,
    d: Delivery,
    attempt: Attempt,
    error: str,
    retry_after: float | None,
) -> str:
    attempt.outcome, attempt.error, attempt.finished_at = "transient", error, utcnow()
    attempt.retry_after = retry_after
    session.add(attempt)
    await session.flush()
    # An admin's retry starts the count afresh: count failures since the last requeue.
    since = (
        await session.exec(
            select(func.max(Attempt.id)).where(
                Attempt.delivery_id == d.id, Attempt.outcome == "requeued"
            )
        )
    ).one() or 0
    failures = (
        await session.exec(
            select(func.count())
            .select_from(Attempt)
            .where(Attempt.delivery_id == d.id, Attempt.outcome == "transient", Attempt.id > since)
        )
    ).one()
    if failures >= deps.settings.max_attempts:
        await _set(
            session,
            d,
            status=DeliveryStatus.dead,
            attempts=attempt.number,
            last_error=f"gave up after {failures} attempts: {error}",
        )
        metrics.DELIVERIES.labels(d.channel, "dead").inc()
        return "stop"
    delay = backoff_seconds(
        failures, deps.settings.retry_base_seconds, deps.settings.retry_max_seconds, retry_after
    )
    next_at = utcnow() + timedelta(seconds=delay)
    await _set(
        session,
        d,
        status=DeliveryStatus.failed,
        attempts=attempt.number,
        last_error=error,
        not_before=next_at,
    )
    await enqueue_delivery(deps.pool, d.id, delay=delay)  # type: ignore[arg-type]
    metrics.DELIVERIES.labels(d.channel, "failed").inc()
    return "stop"


async def complete_pending(
    maker: async_sessionmaker[AsyncSession],
    provider_message_id: str,
    *,
    ok: bool,
    reason: str | None = None,
    final_id: str | None = None,
) -> Delivery | None:
    """A provider's verdict on a pending part (a WeChat PUBLISHJOBFINISH event or a poll)."""
    async with maker() as session:
        rows = (
            await session.exec(select(Delivery).where(Delivery.status == DeliveryStatus.sending))
        ).all()
        for d in rows:
            if provider_message_id in d.provider_message_ids:
                ids = list(d.provider_message_ids) + ([final_id] if final_id else [])
                if ok:
                    await _set(
                        session,
                        d,
                        status=DeliveryStatus.delivered,
                        delivered_at=utcnow(),
                        provider_message_ids=ids,
                    )
                else:
                    await _set(session, d, status=DeliveryStatus.dead, last_error=reason)
                return d
    return None


async def poll_pending(deps: Deps, delivery_id: int) -> str:
    async with deps.maker() as session:
        d = await session.get(Delivery, delivery_id)
        if d is None or d.status != DeliveryStatus.sending or not d.provider_message_ids:
            return "nothing to poll"
        channel = registry.get(d.channel)
        target = await session.get(Target, d.target_id) if d.target_id else None
        tv = await Directory(session, deps.sealer).target_view(target, d.channel)
        ctx = SendContext(
            http=deps.http,
            settings=deps.settings,
            redis=deps.pool,
            target=tv,
            item_id=d.item_id,
            delivery_id=delivery_id,
            part_index=0,
            limiter=deps.limiter,
        )
        pid = d.provider_message_ids[-1]
        try:
            result = await channel.poll(pid, ctx)
        except PermanentError as exc:
            await _set(session, d, status=DeliveryStatus.dead, last_error=str(exc))
            return "rejected"
        except TransientError:
            result = None
        if result is None:
            await enqueue_poll(deps.pool, delivery_id, POLL_INTERVAL)
            return "still pending"
    await complete_pending(deps.maker, pid, ok=True, final_id=result.provider_message_id)
    return "delivered"
