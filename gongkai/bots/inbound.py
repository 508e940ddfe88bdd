"""What both bots need around the conversation: the account's opened config, the duplicate
guard, the per-follower rate limit, the follower, the question log and follow-up tasks.

A WeChat message must be answered in well under a second, hundreds a second per core, so the
common case touches no database: the duplicate guard, the replay defence, the rate count and
the follower come from Redis in one round trip (the follower row is cached there and written
through on change; a resident Redis has no copy of is read in one query with everyone else
asking meanwhile), no session is opened, and the question log, first contacts and last-seen
times are written by the backlog a few times a second. Only a change (a subscription, a
binding, a language, a numbered offer) costs a transaction.

Built once per process: by `install` for the web app (both bots share it), or directly by the
Telegram polling command.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web
from limits.aio.storage import RedisStorage
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.bots.backlog import Backlog
from gongkai.bots.cached_follower import (
    FOLLOWER_TTL,
    cached_json,
    columns_of,
    follower_key,
    from_cache,
    new_follower,
)
from gongkai.bots.conversation import Context
from gongkai.bots.later_sets import LaterSets
from gongkai.bots.lookups import FollowerReads
from gongkai.bots.settling import LazySession, Settle
from gongkai.config import Settings
from gongkai.dispatch.planning import Directory
from gongkai.dispatch.ratelimit import Allowance
from gongkai.faq.store import IndexKeeper
from gongkai.storage.crypto import Sealer
from gongkai.storage.models import Follower

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)
ACCOUNT_TTL = 30.0  # seconds an opened account is reused; a directory import shows up after it
RATE_PER_MINUTE = 10
# A reply is kept this long for WeChat's own retries (three tries within 15 s). How long a
# message itself is remembered is the caller's: as long as a replay of it could still be taken.
SEEN_TTL = 60


UNREAD = object()
# One round trip per message: the duplicate guard, the resident's rate count and their cached
# follower row. A first delivery is marked seen, counted in the resident's window and gets the
# cached follower; a repeat gets the reply cached for the first (and is not counted).
#
# KEYS: seen (the message), reply, follower, the resident's count in this window, whether they
#       were told "too many" in it, and optionally the signed request.
# ARGV: how long to remember the message, how long to remember the request, the allowance per
#       window, the count's expiry, the "told" expiry.
# The counts are the very keys `Allowance` (the limits library's fixed window) uses, so the
# Telegram bot, which counts through it, and this script agree on every resident's minute.
# A signed request seen before is a replay: it is answered with the message's reply only when
# it also carries the same message (in plain mode the signature does not cover the body, so a
# captured query with another body must get nothing, and must not mark that other message).
# A message seen before under another request is WeChat retrying (or a replay of the retry): it
# stays remembered at least as long as this copy's timestamp is accepted.
_ADMIT = """
if #KEYS >= 6 and not redis.call('SET', KEYS[6], '1', 'NX', 'EX', ARGV[2]) then
  if redis.call('EXISTS', KEYS[1]) == 1 then return {0, redis.call('GET', KEYS[2])} end
  return {0, false}
end
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  if redis.call('TTL', KEYS[1]) < tonumber(ARGV[1]) then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
  end
  return {0, redis.call('GET', KEYS[2])}
end
local verdict = 'ok'
local n = redis.call('INCR', KEYS[4])
if n == 1 then redis.call('EXPIRE', KEYS[4], ARGV[4]) end
if n > tonumber(ARGV[3]) then
  local told = redis.call('INCR', KEYS[5])
  if told == 1 then
    redis.call('EXPIRE', KEYS[5], ARGV[5])
    verdict = 'refuse'
  else
    verdict = 'silent'
  end
end
return {1, redis.call('GET', KEYS[3]), verdict}
"""


@dataclass
class Admission:
    first: bool
    verdict: str  # ok | refuse | silent
    reply: bytes | None  # for a repeat: what the first got
    follower: bytes | None  # for a first: the cached follower, if any


def _bytes(value: Any) -> bytes | None:
    if value is None or value is False:
        return None
    return value if isinstance(value, bytes) else str(value).encode()


def seen_key(key: str) -> str:
    return f"gongkai:bot:seen:{key}"


def _count_key(allowance: Allowance, *who: str) -> str:
    """The Redis key the limits library counts ``who``'s events in for this window."""
    return f"{RedisStorage.PREFIX}:{allowance.limit.key_for(allowance.namespace, *who)}"


class Inbound:
    def __init__(
        self,
        settings: Settings,
        maker: async_sessionmaker[AsyncSession],
        sealer: Sealer,
        redis: Redis,
        *,
        residents: Allowance,
    ) -> None:
        self.settings = settings
        self.maker = maker
        self.sealer = sealer
        self.redis = redis
        self.residents = residents  # each resident's messages a minute, shared by every process
        self.told = residents.once()  # and the one "too many" answer they get in a minute
        self._accounts: dict[tuple[str, str], tuple[float, dict[str, Any] | None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.backlog = Backlog(maker)
        self.reads = FollowerReads(maker)
        self.later = LaterSets(redis)
        self.faq = IndexKeeper(maker, settings.hotline)
        self._admit = redis.register_script(_ADMIT)
        # The wall clock signed timestamps are judged by. One attribute so that a test can
        # move it (with Redis's expiries) instead of waiting minutes for a window to pass.
        self.clock: Callable[[], float] = time.time

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

    async def admit(
        self,
        key: str,
        platform: str,
        account: str,
        external_id: str,
        *,
        ttl: int = SEEN_TTL,
        request_key: str | None = None,
        request_ttl: int = SEEN_TTL,
    ) -> Admission:
        """The duplicate guard, the rate count and the cached follower in one round trip.

        ``key`` names the message and is remembered for ``ttl`` seconds; ``request_key``, when
        given, names the signed request and is remembered for ``request_ttl``. Both live in
        Redis so that every web process refuses what any of them has seen.
        """
        who = (platform, account, external_id)
        keys = [
            seen_key(key),
            f"gongkai:bot:reply:{key}",
            follower_key(platform, account, external_id),
            _count_key(self.residents, *who),
            _count_key(self.told, *who),
        ]
        if request_key is not None:
            keys.append(seen_key(request_key))
        args = [
            max(1, ttl),
            max(1, request_ttl),
            self.residents.limit.amount,
            self.residents.limit.get_expiry(),
            self.told.limit.get_expiry(),
        ]
        got = await self._admit(keys=keys, args=args)
        if not got[0]:
            return Admission(False, "ok", _bytes(got[1]), None)
        verdict = got[2].decode() if isinstance(got[2], bytes) else str(got[2])
        return Admission(True, verdict, None, _bytes(got[1]))

    async def forget(self, *keys: str) -> None:
        """Undo `admit` for a message we failed to handle, so that WeChat's retry is taken."""
        await self.redis.delete(*(seen_key(k) for k in keys))

    async def first_time(self, key: str, ttl: int = SEEN_TTL) -> bool:
        """True for the first delivery of a message; retries of it get False."""
        return bool(await self.redis.set(seen_key(key), b"1", nx=True, ex=ttl))

    def remember_reply(self, key: str, reply: bytes, ttl: int = SEEN_TTL) -> None:
        """Keep the reply for WeChat's retries; sent to Redis with others, after the answer."""
        self.later.set(f"gongkai:bot:reply:{key}", reply, ttl)

    async def allow(self, platform: str, account: str, external_id: str) -> str:
        """ "ok"; "refuse" for the first message over the limit (say so once); "silent" after."""
        who = (platform, account, external_id)
        if await self.residents.take(*who):
            return "ok"
        return "refuse" if await self.told.take(*who) else "silent"

    # --- conversations ----------------------------------------------------------------------

    @asynccontextmanager
    async def conversation(
        self,
        platform: str,
        account: str,
        config: dict[str, Any],
        external_id: str,
        cached: bytes | object | None = UNREAD,
    ) -> AsyncIterator[tuple[Context, Follower]]:
        """A session, the follower in it and the conversation context; on the way out the
        follower's cached copy is brought up to date with what was committed. ``cached`` is
        the follower as `admit` already read it from Redis.

        A resident met for the first time gets a follower that is not in the database yet: it
        is inserted with whatever else the conversation writes, or, when the conversation
        writes nothing else (a plain question), by the backlog a moment later.
        """
        await self.backlog.room()
        index = await self.faq.index()
        key = follower_key(platform, account, external_id)
        who = (platform, account, external_id)
        if cached is UNREAD:
            cached = await self.redis.get(key)
        assert cached is None or isinstance(cached, bytes | str)
        if cached:
            follower = from_cache(cached)
        else:
            row = await self.reads.get(who)
            follower = from_cache(row) if row else new_follower(who)
        session = LazySession(self.maker, follower)
        try:
            before = columns_of(follower)
            settle = Settle(self.backlog, session, follower, who, before)
            ctx = Context(
                session=session,  # type: ignore[arg-type]  # opened on first use
                index=index,
                platform=platform,
                public_url=self.settings.public_url,
                hotline=self.settings.hotline,
                account_region=config.get("region"),
                languages=tuple(config.get("languages") or ("zh",)),
                title=str(config.get("title") or ""),
                record=lambda row: self.backlog.question(row, who),
                settle=settle,
                settings=self.settings,
                sealer=self.sealer,
            )
            yield ctx, follower
            await settle()
            if follower.id is not None and (columns_of(follower) != before or not cached):
                await self.redis.set(key, cached_json(follower), ex=FOLLOWER_TTL)
        finally:
            await session.close()

    async def forget_follower(self, platform: str, account: str, external_id: str) -> None:
        """For code that changes a follower row outside a conversation."""
        await self.redis.delete(follower_key(platform, account, external_id))

    # --- rows written after the answer -------------------------------------------------------

    def record(self, question: dict[str, Any]) -> None:
        """Queue a question row; written within a quarter of a second, many per commit."""
        self.backlog.question(question)

    async def flush(self) -> None:
        """Write every queued row and reply now (tests and shutdown call this)."""
        await self.later.flush()
        await self.backlog.flush()

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
        """Let follow-ups finish (a resident is waiting for them), cancel stragglers, and write
        the questions still queued."""
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
        await self.faq.close()
        await self.reads.close()
        await self.later.flush()
        await self.backlog.close()


INBOUND = web.AppKey("inbound", Inbound)
_INSTALLED = web.AppKey("inbound_installed", bool)


def resident_allowance(redis_url: str, per_minute: int = RATE_PER_MINUTE) -> Allowance:
    return Allowance(redis_url, f"{per_minute}/minute", "resident")


def install(app: web.Application) -> None:
    """Give the app its `Inbound` once, however many bot features ask for it."""
    if app.get(_INSTALLED):
        return
    app[_INSTALLED] = True

    async def _inbound(app: web.Application) -> AsyncIterator[None]:
        from gongkai.web.keys import MAKER, POOL, REDIS_URL, SEALER, SETTINGS

        app[INBOUND] = Inbound(
            app[SETTINGS],
            app[MAKER],
            app[SEALER],
            app[POOL],
            residents=resident_allowance(app[REDIS_URL]),
        )
        yield
        await app[INBOUND].close()

    # Registered after the database, Redis and HTTP contexts, so it is torn down before them:
    # follow-ups still running at shutdown can finish their work.
    app.cleanup_ctx.append(_inbound)
