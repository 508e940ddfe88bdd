"""What both bots need before and after the conversation: the account's opened config, the
duplicate guard, the per-follower rate limit and the follow-up tasks that outlive a request.

Built once per process: by `install` for the web app (both bots share it), or directly by the
Telegram polling command.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.bot.conversation import Context, follower_for
from gongkai.bot.faq_store import get_index
from gongkai.bot.settings import Settings
from gongkai.dispatch.planning import Directory
from gongkai.storage.crypto import Sealer
from gongkai.storage.models import Follower

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)
ACCOUNT_TTL = 30.0  # seconds an opened account is reused; a directory import shows up after it
RATE_PER_MINUTE = 10
SEEN_TTL = 60  # WeChat retries within 15 s; Telegram within a minute or so
PLATFORM_CHANNEL = {"wechat": "wechat_mp", "telegram": "telegram"}


class Inbound:
    def __init__(
        self,
        settings: Settings,
        maker: async_sessionmaker[AsyncSession],
        sealer: Sealer,
        redis: Redis,
        *,
        rate_per_minute: int = RATE_PER_MINUTE,
    ) -> None:
        self.settings = settings
        self.maker = maker
        self.sealer = sealer
        self.redis = redis
        self.rate_per_minute = rate_per_minute
        self._accounts: dict[tuple[str, str], tuple[float, dict[str, Any] | None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- accounts ---------------------------------------------------------------------------

    async def account(self, channel: str, name: str) -> dict[str, Any] | None:
        """The account's config and secrets, opened once per ``ACCOUNT_TTL``: unsealing on
        every message would cost more than answering it."""
        key = (channel, name)
        cached = self._accounts.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < ACCOUNT_TTL:
            return cached[1]
        async with self.maker() as session:
            directory = Directory(session, self.sealer)
            config = await directory.account(channel, name)
            if config is not None:
                config = dict(config)
                wanted = config.get("languages")
                config["languages"] = (
                    [str(x) for x in wanted]
                    if isinstance(wanted, list) and wanted
                    else list(await directory.languages(config.get("region")))
                )
                if not config.get("title"):
                    region = await directory.region(config.get("region"))
                    config["title"] = (region.name if region else "") + "政务公开"
        self._accounts[key] = (now, config)
        return config

    # --- duplicates and limits --------------------------------------------------------------

    async def first_time(self, key: str, ttl: int = SEEN_TTL) -> bool:
        """True for the first delivery of a message; retries of it get False."""
        return bool(await self.redis.set(f"gongkai:bot:seen:{key}", b"1", nx=True, ex=ttl))

    async def remember_reply(self, key: str, reply: bytes, ttl: int = SEEN_TTL) -> None:
        await self.redis.set(f"gongkai:bot:reply:{key}", reply, ex=ttl)

    async def cached_reply(self, key: str) -> bytes | None:
        value = await self.redis.get(f"gongkai:bot:reply:{key}")
        return value if value is None or isinstance(value, bytes) else str(value).encode()

    async def allow(self, platform: str, account: str, external_id: str) -> str:
        """ "ok"; "refuse" for the first message over the limit (say so once); "silent" after."""
        minute = int(time.time() // 60)
        key = f"gongkai:bot:rate:{platform}:{account}:{external_id}:{minute}"
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, 90)
            count, _ = await pipe.execute()
        if count <= self.rate_per_minute:
            return "ok"
        return "refuse" if count == self.rate_per_minute + 1 else "silent"

    # --- conversations ----------------------------------------------------------------------

    @asynccontextmanager
    async def conversation(
        self, platform: str, account: str, config: dict[str, Any], external_id: str
    ) -> AsyncIterator[tuple[Context, Follower]]:
        index = await get_index(self.maker, hotline=self.settings.hotline)
        async with self.maker() as session:
            follower = await follower_for(session, platform, account, external_id)
            ctx = Context(
                session=session,
                index=index,
                platform=platform,
                public_url=self.settings.public_url,
                hotline=self.settings.hotline,
                account_region=config.get("region"),
                languages=tuple(config.get("languages") or ("zh",)),
                title=str(config.get("title") or ""),
            )
            yield ctx, follower

    # --- work that outlives its request -----------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str = "") -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name or None)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("bot follow-up failed", exc_info=task.exception())

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def close(self, grace: float = 10.0) -> None:
        """Let follow-ups finish (a resident is waiting for them), then cancel stragglers."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.gather(*late, return_exceptions=True)


INBOUND = web.AppKey("inbound", Inbound)
_INSTALLED = web.AppKey("inbound_installed", bool)


def install(app: web.Application) -> None:
    """Give the app its `Inbound` once, however many bot features ask for it."""
    if app.get(_INSTALLED):
        return
    app[_INSTALLED] = True

    async def _inbound(app: web.Application) -> AsyncIterator[None]:
        from gongkai.bot.keys import MAKER, POOL, SEALER, SETTINGS

        app[INBOUND] = Inbound(app[SETTINGS], app[MAKER], app[SEALER], app[POOL])
        yield
        await app[INBOUND].close()

    # Registered after the database, Redis and HTTP contexts, so it is torn down before them:
    # follow-ups still running at shutdown can finish their work.
    app.cleanup_ctx.append(_inbound)
