"""The item pages: list and filters, detail with what was sent, live progress, recall, retry."""

from __future__ import annotations

import asyncio
import json
import re

from gongkai.storage.models import Delivery, Item
from tests.support import fetch_deliveries, ingest, item, run_workers

VILLAGE = "150627100201"  # robot-1, SMS to two phones, languages mn + zh


def village_item(n: int = 0, **kw):  # type: ignore[no-untyped-def]
    data = dict(
        id=f"notice-{n}",
        kind="notice",
        title=f"第{n}号通知：停水安排",
        doc_number=None,
        regions=[VILLAGE],
        channels=["village_group"],
    )
    data.update(kw)
    return item(**data)


async def test_item_list_searches_and_filters(site) -> None:
    await ingest(site.settings, site.redis_url, item())  # 社会救助, county 150627
    await ingest(site.settings, site.redis_url, village_item(1, domain="市政服务"))
    await ingest(
        site.settings,
        site.redis_url,
        village_item(
            2, regions=["150627101201"], title="门克庆嘎查道路施工公告", domain="市政服务"
        ),
    )
    viewer = await site.login("viewer")

    async def titles(query: str) -> set[str]:
        page = await viewer.text(f"/admin/items?{query}")
        return set(re.findall(r'<a href="/admin/items/[^"]+">([^<]+)</a>', page))

    everything = await titles("")
    assert len(everything) == 3
    assert await titles("q=道路") == {"门克庆嘎查道路施工公告"}
    assert await titles("q=notice-1") == {"第1号通知：停水安排"}
    assert await titles("domain=社会救助") == {"关于2026年城乡低保标准调整的通知"}
    # a village sees what was sent to it and what its county sent to everyone
    assert await titles(f"region={VILLAGE}") == {
        "第1号通知：停水安排",
        "关于2026年城乡低保标准调整的通知",
    }
    # a township sees what went to villages inside it
    assert await titles("region=150627101") == {
        "门克庆嘎查道路施工公告",
        "关于2026年城乡低保标准调整的通知",
    }
    assert await titles("status=recalled") == set()
    assert await titles("status=publishing") == everything
    assert await titles("since=2099-01-01") == set()
    assert await titles("until=2000-01-01") == set()


async def test_item_detail_shows_each_preview_as_sent_with_masked_phones(site) -> None:
    await ingest(site.settings, site.redis_url, village_item(channels=["village_group", "sms"]))
    viewer = await site.login("viewer")
    page = await viewer.text("/admin/items/notice-0")
    assert "138****0000" in page and "139****0001" in page
    assert "13800000000" not in page and "sealed" not in page
    rows, _ = await fetch_deliveries(site.settings, "notice-0")
    vg = next(d for d in rows if d.channel == "village_group")
    content = vg.payload["parts"][0]["markdown"]["content"]
    assert "第0号通知：停水安排" in content
    assert (
        content.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
    ) in page  # the stored text, escaped, not re-rendered
    assert "村民微信群（企业微信群机器人） · 语言 mn+zh" in page
    # the county's Mongolian name, marked as Mongolian script
    assert '<span lang="mn-Mong" class="mong">ᠡᠵᠡᠨ ᠬᠣᠷᠣᠭ᠎ᠠ ᠬᠣᠰᠢᠭᠤ</span>' in await viewer.text(
        "/admin/items?region=150627"
    )
    assert "test</strong> publish" in page  # the timeline starts with who published it


async def test_progress_streams_until_every_delivery_has_ended(site) -> None:
    await ingest(site.settings, site.redis_url, village_item())
    viewer = await site.login("viewer")
    r = await viewer.get("/admin/items/notice-0/events")
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    events: list[tuple[str, dict]] = []
    first = asyncio.Event()

    async def read() -> None:
        name = ""
        async for raw in r.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
                first.set()
                if name == "done":
                    return

    reader = asyncio.create_task(read())
    await asyncio.wait_for(first.wait(), 10)  # the state before the worker starts
    assert events[0][1]["counts"] == {"queued": 1}
    await run_workers(site.settings, site.redis_url)
    await asyncio.wait_for(reader, 10)
    name, final = events[-1]
    assert name == "done" and final["final"] is True
    assert final["counts"] == {"delivered": 1}
    assert final["channels"] == {"village_group": {"delivered": 1}}
    assert final["item_status"] == "published"
    listed = await viewer.text("/admin/items?status=published")
    assert (
        "第0号通知：停水安排" in listed
        and '<span class="badge i-published">已发布</span>' in listed
    )
    assert "第0号通知" not in await viewer.text("/admin/items?status=publishing")
    r.close()
    # a finished item: the stream says done at once
    r = await viewer.get("/admin/items/notice-0/events")
    assert "event: done" in await r.text()
    assert (await viewer.get("/admin/items/nope/events")).status == 404


async def test_publisher_recalls_an_item_viewer_cannot(site) -> None:
    await ingest(site.settings, site.redis_url, village_item())
    viewer = await site.login("viewer")
    page = await viewer.text("/admin/items/notice-0")
    assert "撤回此条目" not in page
    r = await viewer.post("/admin/items/notice-0/recall")
    assert r.status == 403 and "没有权限" in await r.text()
    publisher = await site.login("publisher")
    assert "撤回此条目" in await publisher.text("/admin/items/notice-0")
    r = await publisher.post("/admin/items/notice-0/recall")
    assert r.status == 200 and r.url.path == "/admin/items/notice-0"
    page = await r.text()
    assert "已撤回：取消未发出的投递 1 条" in page
    async with site.maker() as session:
        assert (await session.get(Item, "notice-0")).status == "recalled"
    rows, _ = await fetch_deliveries(site.settings, "notice-0")
    assert [d.status for d in rows] == ["cancelled"]
    await run_workers(site.settings, site.redis_url)
    assert site.robot.messages == []


async def test_only_an_admin_retries_a_dead_delivery(site) -> None:
    site.robot.fail_next = [500, 500]  # max_attempts is 2: the delivery dies
    await ingest(site.settings, site.redis_url, village_item())
    await run_workers(site.settings, site.redis_url)
    (d,), _ = await fetch_deliveries(site.settings)
    assert d.status == "dead"
    publisher = await site.login("publisher")
    page = await publisher.text("/admin/")
    assert f'href="/admin/deliveries/{d.id}"' in page  # the dashboard asks for attention
    assert f"/admin/deliveries/{d.id}/retry" not in page
    r = await publisher.post(f"/admin/deliveries/{d.id}/retry")
    assert r.status == 403
    admin = await site.login("admin")
    page = await admin.text("/admin/")
    assert f'action="/admin/deliveries/{d.id}/retry"' in page
    r = await admin.post(f"/admin/deliveries/{d.id}/retry", {"back": "/admin/"})
    assert r.status == 200 and r.url.path == "/admin/"
    assert f"投递 #{d.id} 已重新排队" in await r.text()
    await run_workers(site.settings, site.redis_url)
    (d,), attempts = await fetch_deliveries(site.settings)
    assert d.status == "delivered"
    assert [a.outcome for a in attempts[d.id]] == [
        "transient",
        "transient",
        "requeued",
        "delivered",
    ]
    assert "requeued by admin-user" in (attempts[d.id][2].error or "")
    assert len(site.robot.messages) == 1
    r = await admin.post(f"/admin/deliveries/{d.id}/retry")
    assert r.status == 409  # delivered: never sent again
    detail = await admin.text(f"/admin/deliveries/{d.id}")
    assert "requeued" in detail and "robot-1" not in detail


async def test_delivery_page_and_missing_things(site) -> None:
    await ingest(site.settings, site.redis_url, village_item(channels=["sms"]))
    viewer = await site.login("viewer")
    async with site.maker() as session:
        d = (await session.exec(__import__("sqlmodel").select(Delivery))).one()
    page = await viewer.text(f"/admin/deliveries/{d.id}")
    assert "138****0000" in page and "13800000000" not in page
    assert (await viewer.get("/admin/items/nope")).status == 404
    assert (await viewer.get("/admin/deliveries/999999")).status == 404
