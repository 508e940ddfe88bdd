"""`gongkai run --demo` loads a county, FAQ and items a newcomer can open at once."""

from __future__ import annotations

from gongkai.cli.demo import load_demo
from gongkai.storage.db import upgrade
from tests.support import running_app, settings_for


async def test_demo_loads_and_its_urls_work(tmp_path, embedded_redis_url, redis) -> None:
    s = settings_for(tmp_path)
    await upgrade(s.resolved_database_url)
    lines = await load_demo(s, embedded_redis_url)
    again = await load_demo(s, embedded_redis_url)  # a second start changes nothing but secrets
    assert lines[:4] == again[:4]
    page_urls = [u for u in lines if u.startswith(s.public_url + "/p/")]
    assert len(page_urls) == 3
    async with running_app(s, embedded_redis_url) as client:
        for url in page_urls:
            r = await client.get(url.removeprefix(s.public_url))
            assert r.status == 200
        policy = await (await client.get("/p/demo-ejhl-2026-0113")).text()
        assert "关于2026年城乡低保标准调整的通知" in policy
        assert "/p/demo-ejhl-2026-0113-jd" in policy
        mongolian = await (await client.get("/p/demo-ejhl-2026-0113?lang=mn")).text()
        assert 'lang="mn-Mong"' in mongolian
        token = next(line.split(": ")[-1] for line in lines if "publisher token" in line)
        r = await client.get(
            "/api/v1/items/demo-ejhl-2026-0113", headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status == 200
