"""Recall: stop what has not gone out; delete what the provider lets us delete; say the rest."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import aiohttp
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.channels import registry
from gongkai.channels.base import ChannelError, SendContext
from gongkai.config import Settings
from gongkai.dispatch.planning import Directory
from gongkai.dispatch.queue import recalled_key
from gongkai.storage.crypto import Sealer
from gongkai.storage.models import (
    PENDING_STATUSES,
    AuditEntry,
    Delivery,
    DeliveryStatus,
    Item,
    ItemStatus,
    Target,
)
from gongkai.storage.types import utcnow

log = logging.getLogger(__name__)


@dataclass
class RecallReport:
    cancelled: int = 0
    deleted: int = 0
    not_recallable: int = 0
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "cancelled": self.cancelled,
            "deleted": self.deleted,
            "not_recallable": self.not_recallable,
            "errors": self.errors,
        }


async def recall_item(
    session: AsyncSession,
    sealer: Sealer,
    settings: Settings,
    http: aiohttp.ClientSession,
    item: Item,
    actor: str,
    redis: object | None = None,
) -> RecallReport:
    report = RecallReport()
    item.status = ItemStatus.recalled
    item.recalled_at = utcnow()
    session.add(item)
    await session.commit()  # workers see it at once and stop picking up its deliveries
    if redis is not None:  # and a worker between two parts of a message stops there
        await redis.set(recalled_key(item.id), 1, ex=7 * 86400)  # type: ignore[attr-defined]
    rows = (await session.exec(select(Delivery).where(Delivery.item_id == item.id))).all()
    directory = Directory(session, sealer)
    for d in rows:
        if d.status in PENDING_STATUSES:
            d.status = DeliveryStatus.cancelled
            d.last_error = "recalled before sending"
            report.cancelled += 1
        elif d.status == DeliveryStatus.delivered or (
            d.status == DeliveryStatus.sending and (d.provider_message_ids or d.parts_done)
        ):
            # A robot's message has no id, yet it reached the group: the log must say so.
            channel = registry.get(d.channel)
            if not channel.can_recall:
                d.notes = [*d.notes, f"cannot be recalled on the {d.channel} channel"]
                report.not_recallable += 1
            elif d.provider_message_ids:
                target = await session.get(Target, d.target_id) if d.target_id else None
                ctx = SendContext(
                    http=http,
                    settings=settings,
                    redis=redis,  # type: ignore[arg-type]
                    target=await directory.target_view(target, d.channel),
                    item_id=item.id,
                    delivery_id=d.id or 0,
                    part_index=0,
                )
                try:
                    note = await channel.recall(list(d.provider_message_ids), ctx)
                    d.notes = [*d.notes, f"recalled: {note}"]
                    d.status = DeliveryStatus.cancelled
                    report.deleted += 1
                except ChannelError as exc:
                    d.notes = [*d.notes, f"recall failed: {exc}"]
                    report.errors.append(f"delivery {d.id}: {exc}")
        d.updated_at = utcnow()
        session.add(d)
    session.add(AuditEntry(actor=actor, action="recall", item_id=item.id, detail=report.as_json()))
    await session.commit()
    return report
