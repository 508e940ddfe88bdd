"""The item page shows how many residents opened the page from each channel's short link."""

from __future__ import annotations

import asyncio
import re
import time

from tests.support import ingest, item, run_workers

VILLAGE = "150627100201"  # robot-1, SMS to two phones, languages mn + zh


async def test_opens_from_the_village_group_are_counted_on_the_item_page(site) -> None:
    notice = item(
        id="water-1",
        kind="notice",
        title="停水通知",
        doc_number=None,
        regions=[VILLAGE],
        channels=["village_group"],
    )
    await ingest(site.settings, site.redis_url, notice)
    await run_workers(site.settings, site.redis_url)
    (message,) = site.robot.messages_for("robot-1")
    (code,) = set(re.findall(r"http://gongkai\.test/s/([A-Za-z0-9]+)", message.content))
    assert "/p/" not in message.content  # the group's own link, not the page's address

    viewer = await site.login("viewer")
    page = await viewer.text("/admin/items/water-1")
    assert 'data-opens="village_group">0<' in page

    for _ in range(3):
        r = await site.client.get(f"/s/{code}", allow_redirects=False)
        assert r.status == 302 and r.headers["Location"] == "/p/water-1"

    deadline = time.monotonic() + 15
    while 'data-opens="village_group">3<' not in page and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        page = await viewer.text("/admin/items/water-1")
    section = page[page.index('id="short-link-opens"') :]
    assert re.search(r'村民微信群.*?data-opens="village_group">3<', section, re.S), section[:800]
