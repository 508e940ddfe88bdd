"""An admin's retry of a dead or failed delivery: the one rule the API and the console share."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.dispatch.queue import job_name
from gongkai.storage.models import Attempt, AuditEntry, Delivery, DeliveryStatus, Item, ItemStatus
from gongkai.storage.types import utcnow


class NotRetryable(Exception):
    pass


async def requeue(session: AsyncSession, d: Delivery, actor: str, via: str = "api") -> str:
    """Dead or failed deliveries of live items only: a delivered one is never sent again.

    The "requeued" attempt starts the failure count afresh in the dispatcher. The caller
    enqueues the delivery under ``d.job`` after this commits.
    """
    item = await session.get(Item, d.item_id)
    if d.status not in (DeliveryStatus.dead, DeliveryStatus.failed) or (
        item is not None and item.status == ItemStatus.recalled
    ):
        raise NotRetryable(
            f"投递 #{d.id} 的状态是“{d.status}”，只有失败或已放弃、且条目未撤回的投递可以重试 / "
            f"delivery {d.id} is {d.status}; only dead or failed deliveries of live items can be "
            "retried"
        )
    d.status = DeliveryStatus.queued
    d.not_before = None
    d.give_up_at = None  # a new deadline from its next failure
    d.lease_until = d.lease_owner = None
    d.job = job = job_name()
    d.updated_at = utcnow()
    session.add(d)
    session.add(
        Attempt(
            delivery_id=d.id,  # type: ignore[arg-type]
            number=d.attempts,
            outcome="requeued",
            error=f"requeued by {actor}",
        )
    )
    session.add(
        AuditEntry(
            actor=actor, action="retry", item_id=d.item_id, detail={"delivery": d.id, "via": via}
        )
    )
    await session.commit()
    return job
