"""The sandbox as a deployment sees it: nothing reaches a real provider, the page is closed to
strangers outside the demo, and the training controls make deliveries fail and recover."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from gongkai.cli.runtime import serving
from gongkai.config import Settings
from gongkai.dispatch.worker import run_worker
from gongkai.sandbox import guard
from gongkai.storage.models import Role
from tests.servers import free_port
from tests.support import fetch_deliveries, ingest, item, prepare_db, settings_for, token

VILLAGES = 3  # the sample directory's village groups


def sandbox_settings(tmp_path, mode: str = "on", **overrides: Any) -> Settings:  # type: ignore[no-untyped-def]
    port = free_port()
    return settings_for(
        tmp_path,
        sandbox=mode,
        port=port,
        public_url=f"http://127.0.0.1:{port}",
        retry_base_seconds=0.2,
        retry_max_seconds=0.5,
        reconcile_seconds=1.0,
        **overrides,
    )


@contextlib.asynccontextmanager
async def running(s: Settings, redis_url: str) -> AsyncIterator[aiohttp.ClientSession]:
    """The server on its own port with one worker, as ``gongkai run`` has them."""
    await prepare_db(s)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(s, redis_url, stop))
    try:
        async with serving(s, redis_url), aiohttp.ClientSession(base_url=s.public_url) as http:
            yield http
    finally:
        stop.set()
        await worker
        guard.disarm()


async def until(check: Callable[[], Any], limit: float = 30) -> Any:
    deadline = time.monotonic() + limit
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.2)


def group_notice(item_id: str) -> dict[str, Any]:
    return item(id=item_id, kind="notice", channels=["village_group"], urgent=True)


async def test_a_real_provider_address_is_replaced_by_the_sandbox(
    tmp_path, embedded_redis_url, redis
) -> None:
    s = sandbox_settings(tmp_path, wecom_api_base="https://qyapi.weixin.qq.com")
    assert s.wecom_api_base == f"{s.sandbox_url}/wecom"  # redirected, not refused
    async with running(s, embedded_redis_url) as http:
        reader = {"Authorization": f"Bearer {await token(s, Role.viewer)}"}
        await ingest(s, embedded_redis_url, group_notice("sandbox-guard-1"))

        async def delivered() -> bool:
            rows = (await fetch_deliveries(s, "sandbox-guard-1"))[0]
            return len(rows) == VILLAGES and all(d.status == "delivered" for d in rows)

        await until(delivered)
        answer = await (
            await http.get("/sandbox/api/messages?channel=village_group", headers=reader)
        ).json()
        assert {m["address"] for m in answer["messages"]} == {"robot-1", "robot-2", "robot-3"}
        assert {m["target"]["region_name"] for m in answer["messages"]} == {
            "巴图塔嘎查", "苏布尔嘎嘎查", "门克庆嘎查"}  # fmt: skip


async def test_the_guard_refuses_any_connection_to_a_real_provider(
    tmp_path, embedded_redis_url, redis
) -> None:
    s = sandbox_settings(tmp_path)
    async with running(s, embedded_redis_url):
        assert guard.armed()
        before = len(guard.blocked)
        async with aiohttp.ClientSession() as http:
            for url in (
                "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
                "https://api.telegram.org/bot1:x/getMe",
                "https://dysmsapi.aliyuncs.com/",
                "https://sms.tencentcloudapi.com/",
            ):
                with pytest.raises(aiohttp.ClientError) as refused:
                    await http.get(url)
                assert "nothing is sent to real providers" in str(refused.value.__cause__ or "")
            # the process's own loopback traffic is untouched
            assert (await http.get(f"{s.public_url}/healthz")).status in (200, 503)
        assert guard.blocked[before:] == [
            "qyapi.weixin.qq.com", "api.telegram.org", "dysmsapi.aliyuncs.com",
            "sms.tencentcloudapi.com"]  # fmt: skip
    assert not guard.armed()


async def test_outside_the_demo_the_sandbox_asks_for_a_sign_in(
    tmp_path, embedded_redis_url, redis
) -> None:
    s = sandbox_settings(tmp_path)
    async with running(s, embedded_redis_url) as http:
        r = await http.get("/sandbox/", allow_redirects=False)
        assert r.status == 302 and r.headers["Location"] == "/admin/login"
        assert (await http.get("/sandbox/api/messages")).status == 401
        r = await http.post(
            "/sandbox/faults", data={"provider": "wecom", "mode": "5xx"}, allow_redirects=False
        )
        assert r.status == 302
        login = await (await http.get("/admin/login")).text()
        assert "沙箱 / sandbox: nothing is sent to real providers" in login  # the banner


async def test_a_5xx_drill_makes_deliveries_retry_then_arrive_when_cleared(
    tmp_path, embedded_redis_url, redis
) -> None:
    s = sandbox_settings(tmp_path, mode="demo")
    async with running(s, embedded_redis_url) as http:
        origin = {"Origin": s.public_url}
        refused = await http.post("/sandbox/faults", data={"provider": "wecom", "mode": "5xx"})
        assert refused.status == 403  # a form from elsewhere changes nothing
        r = await http.post(
            "/sandbox/faults", data={"provider": "wecom", "mode": "5xx"}, headers=origin
        )
        assert r.status == 200 and str(r.url).endswith("/sandbox/")
        page = await r.text()
        assert 'class="mode mode-5xx"' in page

        await ingest(s, embedded_redis_url, group_notice("sandbox-drill-1"))

        async def retried() -> bool:
            rows, attempts = await fetch_deliveries(s, "sandbox-drill-1")
            return len(rows) == VILLAGES and all(
                sum(a.outcome == "transient" for a in attempts[d.id]) >= 2 for d in rows
            )

        await until(retried)
        rows, attempts = await fetch_deliveries(s, "sandbox-drill-1")
        assert all(d.status in ("failed", "queued", "sending") for d in rows)
        assert "502" in (attempts[rows[0].id][0].error or "")
        nothing = await (await http.get("/sandbox/api/messages?channel=village_group")).json()
        assert nothing["count"] == 0

        await http.post("/sandbox/faults", data={"clear": "1"}, headers=origin)

        async def delivered() -> bool:
            rows = (await fetch_deliveries(s, "sandbox-drill-1"))[0]
            return all(d.status == "delivered" for d in rows)

        await until(delivered)
        arrived = await (await http.get("/sandbox/api/messages?channel=village_group")).json()
        assert arrived["count"] == VILLAGES  # each group once, however many tries it took


async def test_the_inbox_lists_template_pushes_by_account() -> None:
    """What the page draws from: each record names its provider, address and what was shown."""
    from aiohttp import web

    from gongkai.sandbox import credentials
    from gongkai.sandbox.inbox import received
    from gongkai.sandbox.server import serve
    from gongkai.sandbox.site import Sandbox

    sb = Sandbox(callback_base="http://127.0.0.1:9")
    app = web.Application()
    sb.mount(app)
    account = credentials.WECHAT[0]
    async with serve(app) as base, aiohttp.ClientSession() as http:
        token = await (
            await http.get(
                f"{base}/sandbox/wechat/cgi-bin/token",
                params={"grant_type": "client_credential", "appid": account.app_id,
                        "secret": account.app_secret},
            )
        ).json()  # fmt: skip
        sent = await (
            await http.post(
                f"{base}/sandbox/wechat/cgi-bin/message/template/send",
                params={"access_token": token["access_token"]},
                json={"touser": "o-1", "template_id": "T1", "data": {"thing1": {"value": "停水"}}},
            )
        ).json()
        assert sent["errcode"] == 0
    [record] = received(sb)
    assert (record.provider, record.address, record.kind) == ("wechat", account.app_id, "template")
    assert record.text == "thing1: 停水" and record.meta["touser"] == "o-1"
