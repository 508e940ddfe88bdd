"""An item's progress, derived from its deliveries (and from its planning, which must be done
before the item can be published: the first chunks' deliveries may all end while later chunks
are still being planned)."""

from __future__ import annotations

from sqlalchemy import bindparam, exists, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.storage.models import Delivery, DeliveryStatus, Item, ItemStatus, PlanningStatus

CLAIMABLE = (
    DeliveryStatus.planned,
    DeliveryStatus.scheduled,
    DeliveryStatus.queued,
    DeliveryStatus.failed,
)


_D = Delivery.__table__.c  # type: ignore[attr-defined]
_ITEM = Item.__table__  # type: ignore[attr-defined]
_ITEM_ID = bindparam("item_id")
# An item is published once planning is done and none of its deliveries is still on its way.
# One prepared Core statement (a look followed by an update was two, the look through the
# ORM): a worker runs it with every batch of outcomes it records. On PostgreSQL the item's row
# lock (``_LOCK``) goes first.
_FINISH = (
    update(_ITEM)
    .where(
        _ITEM.c.id == _ITEM_ID,
        _ITEM.c.status == ItemStatus.publishing.value,
        _ITEM.c.planning_status == PlanningStatus.done.value,
        ~exists()
        .where(
            _D.item_id == _ITEM_ID,
            _D.status.in_([s.value for s in (*CLAIMABLE, DeliveryStatus.sending)]),
        )
        .correlate(None),
    )
    .values(status=ItemStatus.published.value)
)


# PostgreSQL: the item's row lock, taken before the look (SQLite has one writer at a time)
_LOCK = select(_ITEM.c.id).where(_ITEM.c.id == _ITEM_ID).with_for_update()


async def finish_items(session: AsyncSession, item_ids: set[str]) -> None:
    """An item is published once none of its deliveries is still on its way (once per batch).

    Two transactions decide it together: the one recording the last delivery and the one ending
    the planning. Each alone sees the other's change uncommitted, so on PostgreSQL both could
    pass the item by and leave it ``publishing`` for good. Both therefore take the item's row
    lock first (the planning's end by updating the row, this by ``FOR UPDATE``): the second
    waits for the first to commit and then sees its change. Items are locked in one order, so
    two workers finishing the same items cannot deadlock.
    """
    if not item_ids:
        return
    conn = await session.connection()
    locking = conn.dialect.name == "postgresql"
    for item_id in sorted(item_ids):
        if locking:
            await conn.execute(_LOCK, {"item_id": item_id})
        await conn.execute(_FINISH, {"item_id": item_id})
