"""Deliveries a dead worker left behind.

A worker that dies between claiming a row and recording the outcome leaves it ``sending``
forever. Every few minutes the sweeper finds rows that have been ``sending`` too long without
waiting on a provider's verdict, and either queues them again (from the first part not known to
be accepted) or, where a duplicate would hurt (SMS), marks them dead for a person to check.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlmodel import col, select

from gongkai.channels import registry
from gongkai.dispatch.delivery import Deps
from gongkai.dispatch.queue import enqueue_delivery
from gongkai.storage.models import Delivery, DeliveryStatus
from gongkai.storage.types import utcnow

log = logging.getLogger(__name__)
STUCK_AFTER = timedelta(minutes=15)


async def sweep_stuck(deps: Deps, stuck_after: timedelta = STUCK_AFTER) -> int:
    cutoff = utcnow() - stuck_after
    requeue: list[int] = []
    async with deps.maker() as session:
        rows = (
            await session.exec(
                select(Delivery).where(
                    Delivery.status == DeliveryStatus.sending, col(Delivery.updated_at) < cutoff
                )
            )
        ).all()
        for d in rows:
            if d.parts_done >= len(d.payload.get("parts", [])):
                continue  # all parts accepted: waiting on the provider's verdict, not stuck
            channel = registry.get(d.channel)
            if channel.resend_when_uncertain:
                d.status = DeliveryStatus.failed
                d.last_error = (
                    f"a worker stopped while sending part {d.parts_done + 1}; sending it again"
                )
                requeue.append(d.id)  # type: ignore[arg-type]
            else:
                d.status = DeliveryStatus.dead
                d.last_error = (
                    f"a worker stopped while sending part {d.parts_done + 1}; the provider may "
                    "have accepted it — check its console before retrying"
                )
            d.updated_at = utcnow()
            session.add(d)
        await session.commit()
    for delivery_id in requeue:
        await enqueue_delivery(deps.pool, delivery_id)
    if rows:
        log.warning("swept %d stuck deliveries (%d queued again)", len(rows), len(requeue))
    return len(rows)
