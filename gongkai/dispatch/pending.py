"""Parts a provider accepted but has not judged yet (a WeChat article in review)."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import String, cast
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.channels import registry
from gongkai.channels.base import PermanentError, TransientError
from gongkai.dispatch.deps import Deps
from gongkai.dispatch.progress import finish_items
from gongkai.dispatch.queue import POLL_INTERVAL, enqueue_poll, job_name
from gongkai.dispatch.rows import stamp_jobs
from gongkai.storage.models import Delivery, DeliveryStatus
from gongkai.storage.types import utcnow


async def complete_pending(
    maker: async_sessionmaker[AsyncSession],
    provider_message_id: str,
    *,
    ok: bool,
    reason: str | None = None,
    final_id: str | None = None,
    note: str | None = None,
) -> Delivery | None:
    """A provider's verdict on a pending part (a WeChat PUBLISHJOBFINISH event or a poll).

    The id is looked for in SQL (in the JSON list's text) before Python checks it exactly, so
    a verdict arriving during a fan-out does not load every row that is being sent.
    """
    listed = cast(col(Delivery.provider_message_ids), String).contains(
        json.dumps(provider_message_id), autoescape=True
    )
    async with maker() as session:
        rows = (
            await session.exec(
                select(Delivery).where(Delivery.status == DeliveryStatus.sending, listed)
            )
        ).all()
        for d in rows:
            if provider_message_id in d.provider_message_ids:
                if ok:
                    d.status = DeliveryStatus.delivered
                    d.delivered_at = utcnow()
                    if final_id:
                        d.provider_message_ids = [*d.provider_message_ids, final_id]
                else:
                    d.status = DeliveryStatus.dead
                    d.last_error = reason
                if note:
                    d.notes = [*d.notes, note]
                d.updated_at = utcnow()
                session.add(d)
                await session.flush()
                if ok:
                    await finish_items(session, {d.item_id})
                await session.commit()
                return d
    return None


async def poll_pending(deps: Deps, delivery_id: int) -> str:
    async with deps.maker() as session:
        d = await session.get(Delivery, delivery_id)
        if d is None or d.status != DeliveryStatus.sending or not d.provider_message_ids:
            return "nothing to poll"
        tv, _, _ = await deps.target(session, d.target_id, d.channel)
    pid = d.provider_message_ids[-1]
    try:
        result = await registry.get(d.channel).poll(pid, deps.context(d, tv, 0))
    except PermanentError as exc:
        await complete_pending(deps.maker, pid, ok=False, reason=str(exc))
        return "rejected"
    except TransientError:
        result = None
    if result is None:
        await schedule_polls(deps, [delivery_id], POLL_INTERVAL)
        return "still pending"
    await complete_pending(deps.maker, pid, ok=True, final_id=result.provider_message_id)
    return "delivered"


async def schedule_polls(deps: Deps, ids: list[int], delay: float) -> None:
    """Ask the provider again in ``delay`` seconds: each row names its poll job and when it is
    due (so reconciliation can tell a lost poll from a waiting one), then the job is queued."""
    named = [(job_name("p"), [delivery_id]) for delivery_id in ids]
    async with deps.maker() as session:
        await stamp_jobs(session, named, not_before=utcnow() + timedelta(seconds=delay))
        await session.commit()
    for job, (delivery_id,) in named:
        await enqueue_poll(deps.pool, delivery_id, delay, job)
