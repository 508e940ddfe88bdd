"""Who gets an item pushed to them (精准推送): a query over followers, their subscriptions and
places. It lives here, below the planner that asks it and the bots that fill the tables.

A subscription is (follower, domain); ``*`` stands for every domain. A follower's place is the
region they bound; an item reaches them when one of its regions is that place or an ancestor
of it (the same subtree rule as every other channel, through ``Region.path``).
"""

from __future__ import annotations

from sqlalchemy import and_, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.storage.models import Account, Follower, Item, Region, Subscription

ALL = "*"
ACCOUNT_CHANNEL = {"wechat": "wechat_mp", "telegram": "telegram"}  # Follower.platform → Account


async def _covering_paths(session: AsyncSession, codes: list[str]) -> list[str]:
    rows = await session.exec(select(Region.path).where(col(Region.code).in_(codes)))
    return list(rows.all())


async def followers_for(
    session: AsyncSession, item: Item, *, platform: str | None = None, account: str | None = None
) -> list[Follower]:
    """Followers to push ``item`` to: subscribed to its domain (or to everything), still
    following, and placed inside one of its regions. A follower who bound no place counts as
    being at their account's region, so county-wide items reach them and village ones don't."""
    paths = await _covering_paths(session, list(item.regions or []))
    if not paths:
        return []
    in_item = or_(*[col(Region.path).startswith(p) for p in paths])
    wanted = or_(Subscription.domain == item.domain, Subscription.domain == ALL)
    base = (
        select(Follower)
        .join(Subscription, col(Subscription.follower_id) == col(Follower.id))
        .where(Follower.subscribed == True, wanted)  # noqa: E712
    )
    if platform:
        base = base.where(Follower.platform == platform)
    if account:
        base = base.where(Follower.account == account)
    placed = base.join(Region, col(Region.code) == col(Follower.region_code)).where(in_item)
    same_account = or_(
        *[
            and_(Follower.platform == platform_name, Account.channel == channel)
            for platform_name, channel in ACCOUNT_CHANNEL.items()
        ]
    )
    unplaced = (
        base.where(col(Follower.region_code).is_(None))
        .join(Account, and_(col(Account.name) == col(Follower.account), same_account))
        .join(Region, col(Region.code) == col(Account.region_code))
        .where(in_item)
    )
    found: dict[int, Follower] = {}
    for stmt in (placed, unplaced):
        for f in (await session.exec(stmt)).all():
            if f.id is not None:
                found.setdefault(f.id, f)
    return sorted(found.values(), key=lambda f: f.id or 0)
