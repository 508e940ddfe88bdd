"""An item's progress, derived from its deliveries (and from its planning, which must be done
before the item can be published: the first chunks' deliveries may all end while later chunks
are still being planned)."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.storage.models import Delivery, DeliveryStatus, Item, ItemStatus, PlanningStatus

CLAIMABLE = (
    DeliveryStatus.planned,
    DeliveryStatus.scheduled,
    DeliveryStatus.queued,
    DeliveryStatus.failed,
)


async def finish_items(session: AsyncSession, item_ids: set[str]) -> None:
    """An item is published once none of its deliveries is still on its way (once per batch).

    Two transactions decide it together: the one recording the last delivery and the one ending
    the planning. Each alone sees the other's change uncommitted, so on PostgreSQL both could
    pass the item by and leave it ``publishing`` for good. Both therefore take the item's row
    lock first (the planning's end by updating the row, this by ``FOR UPDATE``): the second
    waits for the first to commit and then sees its change. Items are locked in one order, so
    two workers finishing the same items cannot deadlock. (SQLite has one writer at a time.)
    """
    open_statuses = [*CLAIMABLE, DeliveryStatus.sending]
    for item_id in sorted(item_ids):
        await session.exec(select(Item.id).where(Item.id == item_id).with_for_update())
        still_open = (
            await session.exec(
                select(Delivery.id)
                .where(Delivery.item_id == item_id, col(Delivery.status).in_(open_statuses))
                .limit(1)
            )
        ).first()
        if still_open is None:
            await session.exec(  # type: ignore[call-overload]
                update(Item)
                .where(
                    col(Item.id) == item_id,
                    Item.status == ItemStatus.publishing,
                    Item.planning_status == PlanningStatus.done,
                )
                .values(status=ItemStatus.published)
            )
