"""Precise push (精准推送): who follows which domain in which village, and what is new there.

A subscription is (follower, domain); ``*`` stands for every domain. A follower's place is the
region they bound; an item reaches them when one of its regions is that place or an ancestor
of it (the same subtree rule as every other channel, through ``Region.path``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.domain.catalog import DOMAIN_ALIASES, DOMAINS, OTHER_DOMAIN
from gongkai.storage.followers import ACCOUNT_CHANNEL, ALL, followers_for
from gongkai.storage.models import Follower, Item, ItemStatus, Region, Subscription

_ALL_WORDS = {"全部", "所有", "全部领域", "所有领域", "all", "*"}
# Everyday words residents use for a domain; the rest is found by substring (救助 → 社会救助).
_EVERYDAY = {
    "低保": "社会救助",
    "特困": "社会救助",
    "临时救助": "社会救助",
    "户口": "户籍管理",
    "身份证": "户籍管理",
    "社保": "社会保险",
    "养老金": "社会保险",
    "医保": "社会保险",
    "危房": "农村危房改造",
    "上学": "义务教育",
    "学校": "义务教育",
    "看病": "医疗卫生",
    "找工作": "就业创业",
    "拆迁": "国有土地上房屋征收",
    "征地": "征地补偿",
    "惠农": "涉农补贴",
    "补贴": "涉农补贴",
    "防返贫": "扶贫",
    "脱贫": "扶贫",
    "受灾": "救灾",
    "食品": "食品药品监管",
}
CHOICES = (*DOMAINS, OTHER_DOMAIN)


def match_domains(text: str) -> list[str]:
    """The domains ``text`` may mean: one when clear, several to offer, none when unknown."""
    word = "".join(text.split())
    if not word:
        return []
    if word.lower() in _ALL_WORDS:
        return [ALL]
    word = DOMAIN_ALIASES.get(word, word)
    if word in CHOICES:
        return [word]
    if word in _EVERYDAY:
        return [_EVERYDAY[word]]
    return [d for d in CHOICES if (len(word) >= 2 and word in d) or (len(d) >= 2 and d in word)]


async def subscribe(session: AsyncSession, follower: Follower, domain: str) -> bool:
    """True when the subscription is new. Subscribing also (re)starts pushes."""
    if follower.id is None:  # met just now: the subscription needs the follower's row
        session.add(follower)
        await session.flush()
    existing = (
        await session.exec(
            select(Subscription).where(
                Subscription.follower_id == follower.id, Subscription.domain == domain
            )
        )
    ).first()
    follower.subscribed = True
    session.add(follower)
    if existing is not None:
        return False
    session.add(Subscription(follower_id=follower.id, domain=domain))
    return True


async def unsubscribe(session: AsyncSession, follower: Follower, domain: str) -> bool:
    """True when there was such a subscription; ``*`` removes every one."""
    stmt = select(Subscription).where(Subscription.follower_id == follower.id)
    if domain != ALL:
        stmt = stmt.where(Subscription.domain == domain)
    rows = (await session.exec(stmt)).all()
    for row in rows:
        await session.delete(row)
    return bool(rows)


async def domains_of(session: AsyncSession, follower: Follower) -> list[str]:
    rows = await session.exec(
        select(Subscription.domain)
        .where(Subscription.follower_id == follower.id)
        .order_by(col(Subscription.id))
    )
    return list(rows.all())


async def latest_items(
    session: AsyncSession, region_code: str | None, limit: int = 5, scan: int = 200
) -> list[Item]:
    """Newest published (never recalled) items whose regions cover ``region_code``."""
    now = datetime.now(UTC)
    rows = (
        await session.exec(
            select(Item)
            .where(
                Item.status != ItemStatus.recalled,
                col(Item.published_at).is_not(None),
                col(Item.published_at) <= now,
            )
            .order_by(col(Item.published_at).desc())
            .limit(scan)
        )
    ).all()
    if region_code:
        region = await session.get(Region, region_code)
        mine = set(region.path.strip("/").split("/")) if region else {region_code}
        rows = [r for r in rows if mine & set(r.regions or [])]
    return list(rows[:limit])


__all__ = ["ACCOUNT_CHANNEL", "ALL", "followers_for"]  # where the residents' side looks for them
