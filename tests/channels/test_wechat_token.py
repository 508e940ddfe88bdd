"""The access token: one fetch for many processes, one refresh on a token error, clear errors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from redis.asyncio import Redis

from gongkai.channels.base import PermanentError, TransientError
from gongkai.channels.wechat_api import WechatApi, token_key
from gongkai.sandbox.wechat_api import FakeWechatState
from tests.channels.wechat_cases import APP_ID, SECRET, wechat_server

AUTOREPLY = "cgi-bin/get_current_autoreply_info"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[str, FakeWechatState]]:
    async with wechat_server() as server:
        yield server


def api(base: str, http: aiohttp.ClientSession, redis: Redis, **kw: object) -> WechatApi:
    return WechatApi(base, APP_ID, kw.pop("secret", SECRET), http, redis, **kw)  # type: ignore[arg-type]


async def test_five_processes_starting_together_fetch_one_token(
    fake: tuple[str, FakeWechatState], embedded_redis_url: str, redis: Redis
) -> None:
    base, state = fake
    # Five "processes": each its own Redis connection and HTTP session, nothing shared but Redis.
    clients = [Redis.from_url(embedded_redis_url) for _ in range(5)]
    sessions = [aiohttp.ClientSession() for _ in range(5)]
    try:
        apis = [api(base, s, r) for s, r in zip(sessions, clients, strict=True)]
        tokens = await asyncio.gather(*(a.access_token() for a in apis))
    finally:
        for s in sessions:
            await s.close()
        for r in clients:
            await r.aclose()
    assert state.token_calls == 1
    assert len(set(tokens)) == 1
    ttl = await redis.ttl(token_key(APP_ID))
    assert 7200 - 300 - 60 < ttl <= 7200 - 300  # cached with the five-minute margin


async def test_classic_token_endpoint_is_shared_too(
    fake: tuple[str, FakeWechatState], http: aiohttp.ClientSession, redis: Redis
) -> None:
    base, state = fake
    apis = [api(base, http, redis, token_endpoint="token") for _ in range(3)]
    await asyncio.gather(*(a.access_token() for a in apis))
    assert state.token_calls == 1
    assert (await apis[0].autoreply_rules())["is_autoreply_open"] == 1


async def test_expired_token_is_refreshed_once_and_the_call_succeeds(
    fake: tuple[str, FakeWechatState], http: aiohttp.ClientSession, redis: Redis
) -> None:
    base, state = fake
    client = api(base, http, redis)
    first = await client.access_token()
    state.advance(7200)  # WeChat's clock: the token has expired, our cache has not noticed
    rules = await client.autoreply_rules()
    assert rules["keyword_autoreply_info"]["list"]
    assert state.token_calls == 2
    assert len(state.calls_to(AUTOREPLY)) == 2  # 42001, then success with the new token
    assert await client.access_token() != first


async def test_token_refused_twice_is_an_error_after_one_refresh(
    fake: tuple[str, FakeWechatState], http: aiohttp.ClientSession, redis: Redis
) -> None:
    base, state = fake
    client = api(base, http, redis)
    state.fail_next(AUTOREPLY, 40001, times=2)
    with pytest.raises(TransientError) as caught:
        await client.autoreply_rules()
    assert getattr(caught.value, "errcode", None) == 40001
    assert len(state.calls_to(AUTOREPLY)) == 2  # refreshed once, never a third try


async def test_revoked_token_refresh_keeps_a_newer_token_of_another_worker(
    fake: tuple[str, FakeWechatState], http: aiohttp.ClientSession, redis: Redis
) -> None:
    base, state = fake
    a, b = api(base, http, redis), api(base, http, redis)
    old = await a.access_token()
    state.revoke(old)
    await a.autoreply_rules()  # 40001 → worker a replaces the token
    fresh = await a.access_token()
    assert fresh != old
    # Worker b still holds the old token and now sees it refused: it must not drop the new one.
    assert await b.invalidate(old) is False
    assert await b.access_token() == fresh
    assert state.token_calls == 2


async def test_wrong_secret_is_permanent(
    fake: tuple[str, FakeWechatState], http: aiohttp.ClientSession, redis: Redis
) -> None:
    base, _ = fake
    for endpoint in ("stable", "token"):
        client = api(base, http, redis, secret="wrong", token_endpoint=endpoint)
        with pytest.raises(PermanentError, match="40125"):
            await client.access_token()
    unknown = WechatApi(base, "wx-unknown", SECRET, http, redis)
    with pytest.raises(PermanentError, match="40013"):
        await unknown.access_token()


async def test_frequency_cap_is_transient(http: aiohttp.ClientSession, redis: Redis) -> None:
    async with wechat_server(per_minute_cap=2) as (base, _):
        client = api(base, http, redis)
        await client.autoreply_rules()
        await client.autoreply_rules()
        with pytest.raises(TransientError) as caught:
            await client.autoreply_rules()
    assert caught.value.retry_after == 60


async def test_daily_token_budget_is_enforced_by_the_fake(
    http: aiohttp.ClientSession, redis: Redis
) -> None:
    async with wechat_server(daily_token_limit=1) as (base, state):
        client = api(base, http, redis, token_endpoint="token")
        token = await client.access_token()
        assert await client.invalidate(token)
        with pytest.raises(TransientError, match="45009"):
            await client.access_token()
    assert state.token_calls == 2


async def test_unreachable_wechat_is_transient(http: aiohttp.ClientSession, redis: Redis) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before we connect: nothing listens there
    client = api(f"http://127.0.0.1:{port}", http, redis)
    with pytest.raises(TransientError, match="unreachable"):
        await client.access_token()
