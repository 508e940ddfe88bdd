"""A running Gongkai with resident bots: accounts in plain, compatible and safe mode, the demo
FAQ, the fake WeChat API and the fake Telegram Bot API, and readers for what got stored."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiohttp.test_utils import TestClient
from sqlmodel import select

from gongkai.config import Settings
from gongkai.faq.store import import_faq_text
from gongkai.sandbox import telegram_api, wechat_api
from gongkai.sandbox.server import serve
from gongkai.sandbox.wechat_push import VECTOR_AES_KEY, VECTOR_APP_ID, VECTOR_TOKEN, WechatPush
from gongkai.storage.db import make_engine, make_sessionmaker
from gongkai.storage.models import Role
from tests.support import prepare_db, running_app, settings_for, token

T = TypeVar("T")
DEMO_FAQ = Path(__file__).resolve().parent.parent / "gongkai" / "demo" / "faq.yaml"
PLAIN_APP, SLOW_APP = "wx0000000000000001", "wx0000000000000003"
SECRETS = {PLAIN_APP: "s3cret-app", VECTOR_APP_ID: "s3cret-vector", SLOW_APP: "s3cret-slow"}
TG_TOKEN, TG_SECRET = "123456:TESTTOKEN", "hook-secret"
COUNTY, BATUTA, SUBUER = "150627", "150627100201", "150627100202"

DIRECTORY = f"""
accounts:
  wechat_mp:
    - {{name: plain, app_id: {PLAIN_APP}, app_secret: s3cret-app, token: t0ken, region: "150627"}}
    - {{name: safe, app_id: {VECTOR_APP_ID}, app_secret: s3cret-vector, token: {VECTOR_TOKEN},
       encoding_aes_key: {VECTOR_AES_KEY}, region: "150627"}}
    - {{name: compat, app_id: {VECTOR_APP_ID}, app_secret: s3cret-vector, token: {VECTOR_TOKEN},
       encoding_aes_key: {VECTOR_AES_KEY}, encryption_mode: compatible, region: "150627"}}
    - {{name: slow, app_id: {SLOW_APP}, app_secret: s3cret-slow, token: sl0w, reply_budget: 0,
       region: "150627"}}
  telegram:
    - {{name: ordos, token: "{TG_TOKEN}", webhook_secret: {TG_SECRET}, region: "150627"}}
regions:
  - code: "150627"
    name: 伊金霍洛旗
    names: {{mn: "ᠡᠵᠡᠨ ᠬᠣᠷᠣᠭ᠎ᠠ ᠬᠣᠰᠢᠭᠤ"}}
    languages: [zh]
    children:
      - code: "150627100"
        name: 乌兰木伦镇
        children:
          - code: "150627100201"
            name: 巴图塔嘎查
            names: {{mn: "ᠪᠠᠲᠤᠲᠠ ᠭᠠᠴᠠᠭ᠎ᠠ"}}
            languages: [mn, zh]
          - code: "150627100202"
            name: 苏布尔嘎嘎查
          - code: "150627100203"
            name: 巴音嘎查
      - code: "150627101"
        name: 札萨克镇
        children:
          - code: "150627101201"
            name: 门克庆嘎查
          - code: "150627101202"
            name: 巴音嘎查
"""


DIBAO_ANSWER = "持户口簿、身份证、家庭收入和财产情况说明"  # the demo FAQ's answer to 低保咋申请


@dataclass
class BotEnv:
    client: TestClient
    settings: Settings
    wechat: wechat_api.FakeWechatState
    telegram: telegram_api.TelegramState
    viewer_token: str
    redis_url: str

    def push(self, account: str = "plain", mode: str | None = None) -> WechatPush:
        if account == "plain":
            return WechatPush(self.client, "plain", "t0ken", PLAIN_APP)
        if account == "slow":
            return WechatPush(self.client, "slow", "sl0w", SLOW_APP)
        default = "safe" if account == "safe" else "compatible"
        return WechatPush(self.client, account, VECTOR_TOKEN, VECTOR_APP_ID, VECTOR_AES_KEY,
                          mode or default)  # fmt: skip

    async def rows(self, model: Any, *where: Any) -> list[Any]:
        engine = make_engine(self.settings.resolved_database_url)
        try:
            async with make_sessionmaker(engine)() as session:
                stmt = select(model)
                if where:
                    stmt = stmt.where(*where)
                return list((await session.exec(stmt)).all())
        finally:
            await engine.dispose()

    async def questions(self) -> list[Any]:
        """The stored questions, once the app has written those it queued (it batches them)."""
        from gongkai.bots.inbound import INBOUND
        from gongkai.storage.models import Question

        await self.client.app[INBOUND].flush()
        return await self.rows(Question)

    async def session_do(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        engine = make_engine(self.settings.resolved_database_url)
        try:
            async with make_sessionmaker(engine)() as session:
                return await fn(session)
        finally:
            await engine.dispose()


async def load_faq(s: Settings, text: str | None = None) -> None:
    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            await import_faq_text(session, text or DEMO_FAQ.read_text("utf-8"))
    finally:
        await engine.dispose()


@asynccontextmanager
async def bot_env(tmp_path: Path, redis_url: str, **overrides: Any) -> AsyncIterator[BotEnv]:
    wechat_app, wechat_state = wechat_api.make_app(SECRETS)
    tg_app, tg_state = telegram_api.make_app(tokens=[TG_TOKEN])
    async with serve(wechat_app) as wechat_base, serve(tg_app) as tg_base:
        s = settings_for(
            tmp_path, wechat_api_base=wechat_base, telegram_api_base=tg_base, **overrides
        )
        await prepare_db(s, DIRECTORY)
        await load_faq(s)
        viewer = await token(s, Role.viewer, "viewer")
        async with running_app(s, redis_url) as client:
            yield BotEnv(client, s, wechat_state, tg_state, viewer, redis_url)


class Clock:
    """A wall clock that moves only when told: the app's `Inbound.clock` during a test."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now


def freeze(env: BotEnv) -> Clock:
    """Stop the app's clock at a whole second, so that a request signed "now" is exactly as
    old as the test says, however slowly the machine runs the test."""
    from gongkai.bots.inbound import INBOUND

    clock = Clock(float(int(time.time())))
    env.client.app[INBOUND].clock = clock
    return clock


async def travel(env: BotEnv, seconds: float) -> Clock:
    """Let ``seconds`` pass for the app and for Redis without waiting for them.

    The app's clock (signed timestamps, rate minutes) is frozen and moved forward; Redis cannot
    be, so every key's remaining time to live is cut by the same amount (a key whose time has
    come is deleted, as Redis would have expired it).
    """
    from redis.asyncio import Redis

    from gongkai.bots.inbound import INBOUND

    inbound = env.client.app[INBOUND]
    clock = inbound.clock if isinstance(inbound.clock, Clock) else freeze(env)
    clock.now += seconds
    redis = Redis.from_url(env.redis_url)
    try:
        async for key in redis.scan_iter("gongkai:*"):
            left = await redis.pttl(key)
            if left < 0:  # no expiry (-1) or already gone (-2)
                continue
            if left <= seconds * 1000:
                await redis.delete(key)
            else:
                await redis.pexpire(key, int(left - seconds * 1000))
    finally:
        await redis.aclose()
    return clock


async def until(check: Callable[[], Awaitable[T] | T], within: float = 10.0) -> T:
    """Wait for ``check`` to return something truthy (no fixed sleeps in tests)."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
