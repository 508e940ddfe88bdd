"""`gongkai run --demo` loads a county, FAQ and items a newcomer can open at once, and delivers
them on all six channels through the provider sandbox mounted on the same server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from gongkai.cli.demo import DEMO_ITEMS, demo_settings, load_demo
from gongkai.cli.runtime import serving
from gongkai.config import Settings
from gongkai.dispatch.worker import run_worker
from gongkai.domain.catalog import CHANNEL_NAMES
from gongkai.sandbox import guard
from gongkai.storage.db import upgrade
from tests.servers import free_port
from tests.support import fetch_deliveries, running_app, settings_for

DEMO_IDS = ("demo-ejhl-2026-0113", "demo-ejhl-2026-0113-jd", "demo-ejhl-2026-0201")


async def test_demo_loads_and_its_urls_work(tmp_path, embedded_redis_url, redis) -> None:
    s = settings_for(tmp_path)
    await upgrade(s.resolved_database_url)
    lines = await load_demo(s, embedded_redis_url)
    again = await load_demo(s, embedded_redis_url)  # a second start changes nothing but secrets
    assert lines[:5] == again[:5]
    page_urls = [u for u in lines if u.startswith(s.public_url + "/p/")]
    assert len(page_urls) == 4
    async with running_app(s, embedded_redis_url) as client:
        for url in page_urls:
            r = await client.get(url.removeprefix(s.public_url))
            assert r.status == 200
        policy = await (await client.get("/p/demo-ejhl-2026-0113")).text()
        assert "关于2026年城乡低保标准调整的通知" in policy
        assert "/p/demo-ejhl-2026-0113-jd" in policy
        assert "sandbox" not in policy  # no banner without the sandbox
        mongolian = await (await client.get("/p/demo-ejhl-2026-0113?lang=mn")).text()
        assert 'lang="mn-Mong"' in mongolian
        token = next(line.split(": ")[-1] for line in lines if "publisher token" in line)
        r = await client.get(
            "/api/v1/items/demo-ejhl-2026-0113", headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status == 200
        assert (await client.get("/sandbox/")).status == 404  # nothing mounted when off


def demo_for(tmp_path: Path, **overrides: Any) -> Settings:
    port = free_port()
    return demo_settings(
        data_dir=tmp_path,
        secret_key="test-secret-key",
        port=port,
        public_url=f"http://127.0.0.1:{port}",
        retry_base_seconds=0.2,
        retry_max_seconds=1.0,
        reconcile_seconds=1.0,
        **overrides,
    )


@contextlib.asynccontextmanager
async def demo_running(s: Settings, redis_url: str) -> AsyncIterator[list[str]]:
    """What ``gongkai run --demo`` starts (the server on its port, one worker, the demo data),
    without the signal handlers; yields the lines it would print."""
    await upgrade(s.resolved_database_url)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(s, redis_url, stop))
    try:
        async with serving(s, redis_url):
            yield await load_demo(s, redis_url)
    finally:
        stop.set()
        await worker
        guard.disarm()


async def until_delivered(s: Settings, item_ids: tuple[str, ...], limit: float = 60) -> list:  # type: ignore[type-arg]
    deadline = time.monotonic() + limit
    while True:
        rows = [d for i in item_ids for d in (await fetch_deliveries(s, i))[0]]
        if rows and all(d.status == "delivered" for d in rows):
            return rows
        if time.monotonic() > deadline:
            stuck = [(d.item_id, d.channel, d.status, d.last_error) for d in rows]
            raise AssertionError(f"not all delivered within {limit} s: {stuck}")
        await asyncio.sleep(0.25)


async def test_demo_delivers_every_channel_into_the_sandbox(
    tmp_path, embedded_redis_url, redis
) -> None:
    s = demo_for(tmp_path)
    assert len(DEMO_ITEMS) == 3
    async with demo_running(s, embedded_redis_url) as lines:
        assert f"sandbox: what every channel received {s.public_url}/sandbox/" in lines
        # within a minute of the demo's load (bench/demo.py measures it from the start, with
        # the imports and migrations that a busy test machine makes slow)
        rows = await until_delivered(s, DEMO_IDS, limit=60)
        # every item reached every one of the six channels, and in both languages somewhere
        for item_id in DEMO_IDS:
            assert {d.channel for d in rows if d.item_id == item_id} == set(CHANNEL_NAMES)
        async with aiohttp.ClientSession(base_url=s.public_url) as http:
            answer = await (await http.get("/sandbox/api/messages")).json()
            by_channel: dict[str, list[dict[str, Any]]] = {}
            for m in answer["messages"]:
                by_channel.setdefault(m["channel"], []).append(m)
            assert set(by_channel) == set(CHANNEL_NAMES) - {"web"}
            stamps = [m["at"] for m in answer["messages"]]
            assert stamps == sorted(stamps, reverse=True)  # newest first

            group = await (await http.get("/sandbox/api/messages?channel=village_group")).json()
            texts = "\n".join(m["text"] for m in group["messages"])
            for title in ("关于2026年城乡低保标准调整的通知", "关于冬季停水检修的紧急通知"):
                assert title in texts
            assert "ᠡᠪᠦᠯ ᠤᠨ ᠤᠰᠤ" in texts  # the Mongolian notice, in the gacha's group

            sms = by_channel["sms"]
            assert all(m["meta"]["sign"] == "伊金霍洛旗政务公开" for m in sms)
            assert {m["address"] for m in sms} == {"138****0001", "138****0002"}
            assert all(m["meta"]["segments"] >= 1 for m in sms)

            articles = by_channel["wechat_mp"]
            assert {m["text"] for m in articles} >= {"关于冬季停水检修的紧急通知"}
            assert all(m["meta"]["status"] == "published" for m in articles)

            speaker = by_channel["loudspeaker"]
            assert any(m["kind"] == "markdown" for m in speaker)
            assert any(m["kind"] == "sms" for m in speaker)  # the committee without a robot

            assert any("紧急" in m["text"] for m in by_channel["telegram"])

            one = await (
                await http.get("/sandbox/api/messages?channel=sms&target=150627100201")
            ).json()
            assert one["count"] == len(sms) and one["messages"][0]["target"]["region_code"]

            page = await (await http.get("/sandbox/")).text()
            assert "nothing is sent to real providers" in page
            public = await (await http.get("/p/demo-ejhl-2026-0201")).text()
            assert "沙箱 / sandbox: nothing is sent to real providers" in public
