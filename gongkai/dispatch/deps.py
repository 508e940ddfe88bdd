"""What a worker shares between jobs, and its caches of what does not change mid-delivery."""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from arq.connections import ArqRedis
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.channels.base import SendContext, TargetView
from gongkai.config import Settings
from gongkai.dispatch.budget import Budget
from gongkai.dispatch.planning import Directory
from gongkai.dispatch.ratelimit import RateLimiter
from gongkai.storage.crypto import Sealer
from gongkai.storage.models import Delivery, Item, Target

CACHE_SECONDS = 30.0

# A batch's ids as one list parameter, passed as ``{"ids": [...]}``: ``in_(ids)`` would build
# and check a parameter per value, 500 of them, every time.
IDS = bindparam("ids", expanding=True)


@dataclass
class Deps:
    settings: Settings
    maker: async_sessionmaker[AsyncSession]
    sealer: Sealer
    http: aiohttp.ClientSession
    pool: ArqRedis
    limiter: RateLimiter
    # deliveries being sent at once by this worker
    slots: Budget = field(default_factory=lambda: Budget(100))
    # deliveries sent or being sent whose outcome is not committed yet: the most a crash can
    # make another worker send twice
    unrecorded: Budget = field(default_factory=lambda: Budget(200))
    # An item's schedule and the opened targets, cached for a few seconds. Recall is still seen
    # at once: the claim checks it in SQL.
    items: dict[str, tuple[float, Item]] = field(default_factory=dict)
    targets: dict[int, tuple[float, TargetView, bool, str | None]] = field(default_factory=dict)
    regions: dict[str, Any] = field(default_factory=dict)
    accounts: dict[tuple[str, str], Any] = field(default_factory=dict)
    places: dict[str, Any] = field(default_factory=dict)
    directory_loaded: float = 0.0
    # Who this worker is in a row's ``lease_owner``, and the rows it holds leases on now.
    worker_id: str = field(
        default_factory=lambda: f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    )
    held: set[int] = field(default_factory=set)
    # Set on SIGTERM: lanes send nothing new and hand their claimed rows back.
    stopping: bool = False
    recorder: Any = None  # recorder.Recorder, made on first use (recorder.recorder_for)

    def directory(self, session: AsyncSession) -> Directory:
        if time.monotonic() - self.directory_loaded > CACHE_SECONDS:
            self.regions.clear()
            self.accounts.clear()
            self.places.clear()
            self.directory_loaded = time.monotonic()
        return Directory(session, self.sealer, self.regions, self.accounts, self.places)

    async def prefetch_targets(self, session: AsyncSession, ids: set[int]) -> None:
        """Open a batch's targets with one query instead of one each."""
        now = time.monotonic()
        missing = [
            i for i in ids if i not in self.targets or now - self.targets[i][0] >= CACHE_SECONDS
        ]
        if not missing:
            return
        directory = self.directory(session)
        t = Target.__table__.c  # type: ignore[attr-defined]
        columns = (t.id, t.channel, t.region_code, t.address_sealed, t.account_name, t.options)
        rows = (
            await session.execute(
                select(*columns, t.active, t.inactive_reason).where(t.id.in_(IDS)),
                {"ids": missing},
            )
        ).all()
        for target_id, channel, code, sealed, account, options, active, reason in rows:
            tv = await directory.open_target(target_id, channel, code, sealed, account, options)
            self.targets[target_id] = (now, tv, active, reason)

    async def item(self, session: AsyncSession, item_id: str) -> Item | None:
        hit = self.items.get(item_id)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        item = await session.get(Item, item_id)
        if item is not None:
            session.expunge(item)
            self.items[item_id] = (time.monotonic(), item)
        return item

    async def target(
        self, session: AsyncSession, target_id: int | None, channel: str
    ) -> tuple[TargetView, bool, str | None]:
        """(opened target, active, why inactive); LookupError when the target is gone."""
        if target_id is None:
            return await self.directory(session).target_view(None, channel), True, None
        hit = self.targets.get(target_id)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1], hit[2], hit[3]
        target = await session.get(Target, target_id)
        if target is None:
            raise LookupError(f"target {target_id} is gone")
        tv = await self.directory(session).target_view(target, channel)
        self.targets[target_id] = (time.monotonic(), tv, target.active, target.inactive_reason)
        return tv, target.active, target.inactive_reason

    def context(
        self, d: Delivery, tv: TargetView, part_index: int, state: dict[str, Any] | None = None
    ) -> SendContext:
        return SendContext(
            http=self.http,
            settings=self.settings,
            redis=self.pool,
            target=tv,
            item_id=d.item_id,
            delivery_id=d.id or 0,
            part_index=part_index,
            limiter=self.limiter,
            state=state if state is not None else {},
        )
