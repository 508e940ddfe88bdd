"""What both bots need around the conversation: the account's opened config, the duplicate
guard, the per-follower rate limit, the follower, the question log and follow-up tasks.

A WeChat message must be answered in well under a second, hundreds a second per core, so the
common case touches no database: the duplicate guard, the rate count and the follower come from
Redis in one round trip (the follower row is cached there and written through on change), and
question rows are written in batches a few times a second. Only a change (a subscription, a
binding, a numbered offer) costs a transaction.

Built once per process: by `install` for the web app (both bots share it), or directly by the
Telegram polling command.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.bots.conversation import Context, follower_for
from gongkai.config import Settings
from gongkai.dispatch.planning import Directory
from gongkai.dispatch.ratelimit import Allowance
from gongkai.faq.store import get_index
from gongkai.storage.crypto import Sealer
from gongkai.storage.models import Follower, Question

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)
ACCOUNT_TTL = 30.0  # seconds an opened account is reused; a directory import shows up after it
RATE_PER_MINUTE = 10
# A reply is kept this long for WeChat's own retries (three tries within 15 s). How long a
# message itself is remembered is the caller's: as long as a replay of it could still be taken.
SEEN_TTL = 60
FOLLOWER_TTL = 600  # seconds a follower is read from Redis instead of the database
QUESTION_FLUSH = 0.25  # seconds a question waits to be written with others
QUESTION_BATCH = 500
MAX_QUEUED = 20_000  # questions kept while the database refuses them
_FOLLOWER_FIELDS = ("id", "platform", "account", "external_id", "region_code", "language",
                    "subscribed", "created_at", "last_seen_at", "state")  # fmt: skip


UNREAD = object()
# First delivery: mark it seen, return the sender's cached follower row (their minute is
# counted apart, by `limits`). A repeat: return the reply cached for the first.
#
# KEYS: seen (the message), reply, follower, and optionally the signed request.
# ARGV: how long to remember the message, how long to remember the request.
# A signed request seen before is a replay: it is answered with the message's reply only when
# it also carries the same message (in plain mode the signature does not cover the body, so a
# captured query with another body must get nothing, and must not mark that other message).
# A message seen before under another request is WeChat retrying (or a replay of the retry): it
# stays remembered at least as long as this copy's timestamp is accepted.
_ADMIT = """
if #KEYS >= 4 and not redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[2]) then
  if redis.call('EXISTS', KEYS[1]) == 1 then return {0, redis.call('GET', KEYS[2])} end
  return {0, false}
end
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  if redis.call('TTL', KEYS[1]) < tonumber(ARGV[1]) then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
  end
  return {0, redis.call('GET', KEYS[2])}
end
return {1, redis.call('GET', KEYS[3])}
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


def follower_key(platform: str, account: str, external_id: str) -> str:
    return f"gongkai:bot:follower:{platform}:{account}:{external_id}"


def _snapshot(follower: Follower) -> str:
    data = {name: getattr(follower, name) for name in _FOLLOWER_FIELDS}
    for name in ("created_at", "last_seen_at"):
        data[name] = data[name].isoformat() if data[name] else None
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def _attach(session: AsyncSession, raw: bytes | str) -> Follower:
    """The cached follower as a persistent object of ``session``, without a SELECT: changes
    made to it are flushed as an UPDATE like those of a loaded row."""
    data = json.loads(raw)
    for name in ("created_at", "last_seen_at"):
        data[name] = datetime.fromisoformat(data[name]) if data[name] else None
    follower = Follower(**data)
    make_transient_to_detached(follower)
    session.add(follower)
    return follower


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
        self._questions: list[dict[str, Any]] = []
        self._admit = redis.register_script(_ADMIT)
        self._flusher: asyncio.Task[None] | None = None
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
        keys = [
            seen_key(key),
            f"gongkai:bot:reply:{key}",
            follower_key(platform, account, external_id),
        ]
        if request_key is not None:
            keys.append(seen_key(request_key))
        first, value = await self._admit(keys=keys, args=[max(1, ttl), max(1, request_ttl)])
        if not first:
            return Admission(False, "ok", _bytes(value), None)
        verdict = await self.allow(platform, account, external_id)
        return Admission(True, verdict, None, _bytes(value))

    async def forget(self, *keys: str) -> None:
        """Undo `admit` for a message we failed to handle, so that WeChat's retry is taken."""
        await self.redis.delete(*(seen_key(k) for k in keys))

    async def first_time(self, key: str, ttl: int = SEEN_TTL) -> bool:
        """True for the first delivery of a message; retries of it get False."""
        return bool(await self.redis.set(seen_key(key), b"1", nx=True, ex=ttl))

    async def remember_reply(self, key: str, reply: bytes, ttl: int = SEEN_TTL) -> None:
        await self.redis.set(f"gongkai:bot:reply:{key}", reply, ex=ttl)

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
        the follower as `admit` already read it from Redis."""
        index = await get_index(self.maker, hotline=self.settings.hotline)
        key = follower_key(platform, account, external_id)
        async with self.maker() as session:
            if cached is UNREAD:
                cached = await self.redis.get(key)
            assert cached is None or isinstance(cached, bytes | str)
            if cached:
                follower = _attach(session, cached)
            else:
                follower = await follower_for(session, platform, account, external_id)
            before = _snapshot(follower)
            ctx = Context(
                session=session,
                index=index,
                platform=platform,
                public_url=self.settings.public_url,
                hotline=self.settings.hotline,
                account_region=config.get("region"),
                languages=tuple(config.get("languages") or ("zh",)),
                title=str(config.get("title") or ""),
                record=self.record,
                settings=self.settings,
                sealer=self.sealer,
            )
            yield ctx, follower
            if session.dirty or session.new or session.deleted:
                await session.commit()
            after = _snapshot(follower)
            if after != before or not cached:
                await self.redis.set(key, after, ex=FOLLOWER_TTL)

    async def forget_follower(self, platform: str, account: str, external_id: str) -> None:
        """For code that changes a follower row outside a conversation."""
        await self.redis.delete(follower_key(platform, account, external_id))

    # --- questions, written in batches --------------------------------------------------------

    def record(self, question: dict[str, Any]) -> None:
        """Queue a question row; written within ``QUESTION_FLUSH`` seconds, many per commit.
        (A crash loses at most that much of the log; the answers went out regardless.)"""
        self._questions.append(question)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_soon(), name="question log")

    async def _flush_soon(self) -> None:
        """One batch per interval: under load a batch holds many rows, never one at a time."""
        while self._questions:
            await asyncio.sleep(QUESTION_FLUSH)
            if not await self._write(QUESTION_BATCH):
                return

    async def flush(self) -> None:
        """Write every queued question now (tests and shutdown call this)."""
        while self._questions:
            if not await self._write(QUESTION_BATCH):
                return

    async def _write(self, limit: int) -> bool:
        rows = self._questions[:limit]
        del self._questions[:limit]
        if not rows:
            return True
        try:
            async with self.maker() as session:
                await session.execute(insert(Question), rows)
                await session.commit()
        except Exception:
            log.exception("could not store %d questions; keeping them for later", len(rows))
            self._questions[:0] = rows[: max(0, MAX_QUEUED - len(self._questions))]
            return False
        return True

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
        if self._flusher is not None:  # never cancelled: it may hold rows mid-commit
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self.flush()


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
