"""Read queries only the console needs (the shared ones live in ``storage/queries.py``)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, cast, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.storage.models import (
    FINAL_STATUSES,
    PLANNING_OPEN,
    Delivery,
    DeliveryStatus,
    Item,
    ItemStatus,
    Question,
)
from gongkai.storage.queries import OPEN_STATUSES, item_status, planning_public
from gongkai.storage.types import utcnow

ATTENTION = (DeliveryStatus.dead, DeliveryStatus.failed)


def day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


@dataclass
class ChannelStats:
    channel: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def success(self) -> float | None:
        """Delivered among those that ended (delivered or given up): what residents got."""
        done = self.counts.get("delivered", 0) + self.counts.get("dead", 0)
        return self.counts.get("delivered", 0) / done if done else None


async def channel_stats(session: AsyncSession, since: datetime) -> list[ChannelStats]:
    rows = await session.exec(
        select(Delivery.channel, Delivery.status, func.count())
        .where(Delivery.created_at >= since)
        .group_by(Delivery.channel, Delivery.status)
    )
    stats: dict[str, ChannelStats] = {}
    for channel, status, n in rows.all():
        stats.setdefault(channel, ChannelStats(channel)).counts[status] = n
    return sorted(stats.values(), key=lambda s: s.channel)


async def items_since(session: AsyncSession, since: datetime, limit: int = 100) -> list[Item]:
    rows = await session.exec(
        select(Item)
        .where(or_(col(Item.created_at) >= since, col(Item.published_at) >= since))
        .order_by(col(Item.created_at).desc())
        .limit(limit)
    )
    return list(rows.all())


async def needing_attention(
    session: AsyncSession, limit: int = 20
) -> tuple[list[Any], dict[str, int]]:
    """Failed and dead deliveries of live items, newest first, and how many there are."""
    live = Item.status != ItemStatus.recalled
    rows = await session.exec(
        select(Delivery, Item.title)
        .join(Item, col(Item.id) == Delivery.item_id)
        .where(col(Delivery.status).in_(ATTENTION), live)
        .order_by(col(Delivery.id).desc())
        .limit(limit)
    )
    counts = await session.exec(
        select(Delivery.status, func.count())
        .join(Item, col(Item.id) == Delivery.item_id)
        .where(col(Delivery.status).in_(ATTENTION), live)
        .group_by(Delivery.status)
    )
    return list(rows.all()), {s: n for s, n in counts.all()}


async def unanswered_count(session: AsyncSession) -> int:
    return (
        await session.exec(
            select(func.count()).select_from(Question).where(Question.answered == False)  # noqa: E712
        )
    ).one()


# --- the item list ----------------------------------------------------------------------------


@dataclass
class ItemSearch:
    q: str = ""
    domain: str = ""
    region: str = ""
    status: str = ""
    since: date | None = None
    until: date | None = None  # inclusive
    page: int = 1
    per_page: int = 50


def _region_condition(code: str) -> Any:
    """Items addressed to the region, to one of its parents, or to a place inside it.

    Division codes nest by prefix (150627 → 150627100 → 150627100201), so the JSON text of
    ``regions`` is matched with LIKE on the code and on each of its ancestors' codes.
    """
    text = cast(Item.regions, String)
    conditions = [text.like(f'%"{code}%')]
    for length in (2, 4, 6, 9):
        if len(code) > length:
            conditions.append(text.like(f'%"{code[:length]}"%'))
    return or_(*conditions)


def _open_deliveries() -> Any:
    return (
        select(Delivery.id)
        .where(Delivery.item_id == Item.id, col(Delivery.status).in_(OPEN_STATUSES))
        .exists()
    )


def _status_condition(status: str) -> Any:
    """The status a person sees: "published" is derived (nothing of the item still on its way),
    the worker never writes it on the item row."""
    if status == ItemStatus.published:
        return or_(
            Item.status == ItemStatus.published,
            and_(Item.status == ItemStatus.publishing, ~_open_deliveries()),
        )
    if status == ItemStatus.publishing:
        return and_(Item.status == ItemStatus.publishing, _open_deliveries())
    return Item.status == status


async def shown_statuses(session: AsyncSession, items: list[Item]) -> dict[str, str]:
    """Each item's status as shown (see ``queries.item_status``), in one query for a page."""
    publishing = [i.id for i in items if i.status == ItemStatus.publishing]
    still_open: set[str] = set()
    if publishing:
        still_open = set(
            (
                await session.exec(
                    select(Delivery.item_id)
                    .distinct()
                    .where(
                        col(Delivery.item_id).in_(publishing),
                        col(Delivery.status).in_(OPEN_STATUSES),
                    )
                )
            ).all()
        )
    return {
        i.id: ItemStatus.published.value
        if i.status == ItemStatus.publishing and i.id not in still_open
        else str(i.status)
        for i in items
    }


async def search_items(
    session: AsyncSession, s: ItemSearch, tz: ZoneInfo
) -> tuple[list[Item], bool]:
    """One page of items, newest first, and whether there is another page."""
    stmt = select(Item)
    if s.q:
        like = f"%{s.q}%"
        stmt = stmt.where(
            or_(
                col(Item.title).like(like),
                col(Item.id).like(like),
                col(Item.doc_number).like(like),
                col(Item.issuer).like(like),
            )
        )
    if s.domain:
        stmt = stmt.where(Item.domain == s.domain)
    if s.status:
        stmt = stmt.where(_status_condition(s.status))
    if s.region:
        stmt = stmt.where(_region_condition(s.region))
    if s.since:
        stmt = stmt.where(col(Item.created_at) >= day_start(s.since, tz))
    if s.until:
        stmt = stmt.where(col(Item.created_at) < day_start(s.until + timedelta(days=1), tz))
    stmt = (
        stmt.order_by(col(Item.created_at).desc(), col(Item.id).desc())
        .offset((s.page - 1) * s.per_page)
        .limit(s.per_page + 1)
    )
    rows = list((await session.exec(stmt)).all())
    return rows[: s.per_page], len(rows) > s.per_page


# --- one item -------------------------------------------------------------------------------


@dataclass
class ItemProgress:
    """Counts per status, overall and per channel: what the progress stream sends each second."""

    counts: dict[str, int]
    channels: dict[str, dict[str, int]]
    # the item's planning job (``storage.queries.planning_public``): deliveries appear as it runs
    planning: dict[str, Any] | None = None

    @property
    def planning_open(self) -> bool:
        return self.planning is not None and self.planning["status"] in PLANNING_OPEN

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> int:
        return sum(n for s, n in self.counts.items() if s in FINAL_STATUSES)

    @property
    def final(self) -> bool:
        return self.finished == self.total and not self.planning_open

    def as_json(self, item: Item | None) -> dict[str, Any]:
        return {
            "total": self.total,
            "finished": self.finished,
            "final": self.final,
            "counts": self.counts,
            "channels": self.channels,
            "item_status": item_status(item, self.channels) if item else "missing",
            "planning": self.planning,
        }


async def item_progress(session: AsyncSession, item_id: str) -> ItemProgress:
    rows = await session.exec(
        select(Delivery.channel, Delivery.status, func.count())
        .where(Delivery.item_id == item_id)
        .group_by(Delivery.channel, Delivery.status)
    )
    counts: dict[str, int] = defaultdict(int)
    channels: dict[str, dict[str, int]] = defaultdict(dict)
    for channel, status, n in rows.all():
        counts[status] += n
        channels[channel][status] = n
    item = await session.get(Item, item_id)
    planning = planning_public(item) if item is not None else None
    return ItemProgress(dict(counts), dict(channels), planning)


def by_channel_and_languages(
    rows: list[Delivery],
) -> list[tuple[str, str, dict[str, int], Delivery]]:
    """(channel, languages, counts per status, one delivery to preview) for each combination."""
    groups: dict[tuple[str, str], tuple[dict[str, int], Delivery]] = {}
    for d in rows:
        key = (d.channel, "+".join(d.languages or ["zh"]))
        counts = groups.setdefault(key, ({}, d))[0]
        counts[d.status] = counts.get(d.status, 0) + 1
    return [(ch, langs, counts, first) for (ch, langs), (counts, first) in sorted(groups.items())]


def now_local(tz: ZoneInfo) -> datetime:
    return utcnow().astimezone(tz)
