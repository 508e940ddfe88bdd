"""How fast is the console's delivery log over 100,000 deliveries? Run by hand:

    python bench/delivery_log.py [--rows 100000] [--repeat 15] [--database-url URL]

Fills a fresh database (a county of 10 townships × 20 villages, 1,000 items, N deliveries of
every channel and status spread over 90 days), starts the real app on a loopback port with the
embedded Redis, signs in as a console user and times ``GET /admin/deliveries`` for the first
page, a deep page and each filter, plus the full CSV export. Goal: a page in < 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gongkai.cli.embedded_redis import EmbeddedRedis
from gongkai.config import Settings
from gongkai.console.users import create_user
from gongkai.storage.crypto import Sealer
from gongkai.storage.db import make_engine, make_sessionmaker, upgrade
from gongkai.storage.directory import import_directory, parse_directory
from gongkai.storage.models import Delivery, Item, Role, Target
from gongkai.web.app import create_app

PASSWORD = "bench-password"
STATUSES = ["delivered"] * 80 + ["dead"] * 6 + ["failed"] * 4 + ["queued"] * 6 + ["cancelled"] * 4
CHANNELS = ["village_group"] * 5 + ["sms"] * 3 + ["web"]


def directory_yaml() -> str:
    lines = [
        "accounts:",
        "  sms:",
        "    - {name: county-sms, provider: aliyun, access_key_id: id, access_key_secret: s,",
        "       sign_name: 伊金霍洛旗政务公开, template_code: SMS_1}",
        "regions:",
        '  - code: "150627"',
        "    name: 伊金霍洛旗",
        '    names: {mn: "ᠡᠵᠡᠨ ᠬᠣᠷᠣᠭ᠎ᠠ ᠬᠣᠰᠢᠭᠤ"}',
        "    children:",
    ]
    for t in range(10):
        town = f"150627{100 + t}"
        lines += [f'      - code: "{town}"', f"        name: 第{t + 1}镇", "        children:"]
        for v in range(20):
            lines += [
                f'          - code: "{town}{201 + v}"',
                f"            name: 第{t + 1}镇{v + 1}村",
                "            languages: [mn, zh]",
                "            targets:",
                f"              - {{channel: village_group, robot_key: robot-{t}-{v}}}",
                "              - {channel: sms, account: county-sms, phones: "
                f'["138{t:02d}{v:02d}0000", "139{t:02d}{v:02d}0001"]}}',
            ]
    return "\n".join(lines) + "\n"


async def fill(s: Settings, rows: int) -> dict[str, str]:
    await upgrade(s.resolved_database_url)
    engine = make_engine(s.resolved_database_url)
    maker = make_sessionmaker(engine)
    rng = random.Random(7)
    async with maker() as session:
        await import_directory(
            session, parse_directory(directory_yaml()), Sealer(s.resolved_secret_key())
        )
        await create_user(session, "bench", Role.viewer, PASSWORD)
        targets = {
            ch: [
                (t.id, t.region_code)
                for t in (
                    await session.exec(
                        __import__("sqlmodel").select(Target).where(Target.channel == ch)
                    )
                ).all()
            ]
            for ch in ("village_group", "sms")
        }
    now = datetime.now(UTC)
    items = [
        {
            "id": f"bench-{i:04d}",
            "kind": "notice",
            "title": f"第{i}号通知",
            "issued_at": date(2026, 9, 1),
            "approved_by": "王某",
            "approved_at": now,
            "secrecy_reviewed": True,
            "disclosure": "public",
            "domain": "市政服务",
            "regions": ["150627"],
            "channels": ["web", "village_group", "sms"],
            "urgent": False,
            "summary": "摘要",
            "body": "正文",
            "catalog": {},
            "translations": {},
            "attachments": [],
            "status": "publishing",
            "deadline_warnings": [],
            "created_at": now,
            "published_at": now,
            "content_hash": "x" * 64,
        }
        for i in range(1000)
    ]
    part = {
        "msgtype": "markdown",
        "markdown": {"content": "**第1号通知**\n" + "城乡低保标准调整。" * 40},
    }
    batch: list[dict[str, object]] = []
    async with engine.begin() as conn:
        await conn.execute(insert(Item), items)
        for n in range(rows):
            channel = rng.choice(CHANNELS)
            target_id, region = (None, None) if channel == "web" else rng.choice(targets[channel])
            status = rng.choice(STATUSES)
            # rows are created in time order: ids and created_at rise together, as in service
            created = now - timedelta(seconds=(rows - n) * 90 * 86400 / rows)
            batch.append(
                {
                    "item_id": f"bench-{n % 1000:04d}",
                    "target_id": target_id,
                    "channel": channel,
                    "region_code": region,
                    "languages": ["mn", "zh"],
                    "payload": {"parts": [part], "meta": {}},
                    "notes": [],
                    "status": status,
                    "attempts": 1,
                    "parts_done": 1 if status == "delivered" else 0,
                    "provider_message_ids": [],
                    "last_error": "HTTP 502" if status in ("dead", "failed") else None,
                    "created_at": created,
                    "updated_at": created,
                    "delivered_at": created if status == "delivered" else None,
                    "dedup_key": f"bench|{n}",
                }
            )
            if len(batch) == 5000:
                await conn.execute(insert(Delivery), batch)
                batch.clear()
        if batch:
            await conn.execute(insert(Delivery), batch)
    await engine.dispose()
    return {"item": "bench-0042", "town": "150627103", "village": "150627103205"}


async def measure(s: Settings, redis_url: str, repeat: int, sample: dict[str, str]) -> None:
    server = TestServer(create_app(s, redis_url), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession(
            base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True)
        ) as http:
            page = await (await http.get("/admin/login")).text()
            csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
            r = await http.post(
                "/admin/login", data={"name": "bench", "password": PASSWORD, "csrf": csrf}
            )
            assert r.url.path == "/admin/", "login failed"
            first = await (await http.get("/admin/deliveries")).text()
            ids = [int(x) for x in re.findall(r'href="/admin/deliveries/(\d+)">#', first)]
            today = date.today()
            cases = {
                "first page": "",
                "deep page (after id 50,000)": "?after=50000",
                "last page (after id 150)": "?after=150",
                "status=dead": "?status=dead",
                "status=queued&channel=sms": "?status=queued&channel=sms",
                "channel=web": "?channel=web",
                "item=one of 1,000": f"?item={sample['item']}",
                "region=township (20 villages)": f"?region={sample['town']}",
                "region=one village": f"?region={sample['village']}",
                "last 7 days": f"?since={(today - timedelta(days=7)).isoformat()}",
                "nothing matches (since next year)": f"?since={today.year + 1}-01-01",
                "rare: failed web deliveries in a village": f"?status=failed&channel=web"
                f"&region={sample['village']}",
                "a 10-day window 60 days ago": f"?since={(today - timedelta(days=60)).isoformat()}"
                f"&until={(today - timedelta(days=50)).isoformat()}",
            }
            print(f"first page shows {len(ids)} rows, ids {ids[0]}…{ids[-1]}")
            print(f"{'case':42} {'median ms':>10} {'p95 ms':>8} {'max ms':>8} {'rows':>5}")
            worst = 0.0
            for name, query in cases.items():
                times, count = [], 0
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    r = await http.get("/admin/deliveries" + query)
                    body = await r.text()
                    times.append((time.perf_counter() - t0) * 1000)
                    assert r.status == 200, body[:500]
                    count = len(re.findall(r'href="/admin/deliveries/\d+">#', body))
                times.sort()
                p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
                median = statistics.median(times)
                worst = max(worst, median)
                print(f"{name:42} {median:10.1f} {p95:8.1f} {times[-1]:8.1f} {count:5d}")
            t0 = time.perf_counter()
            r = await http.get("/admin/deliveries.csv")
            data = await r.read()
            csv_ms = (time.perf_counter() - t0) * 1000
            lines = data.count(b"\n")
            print(
                f"CSV export of everything: {lines - 1} rows, {len(data) / 1e6:.1f} MB "
                f"in {csv_ms:.0f} ms"
            )
            print(
                f"slowest median page: {worst:.1f} ms — goal < 300 ms: "
                f"{'met' if worst < 300 else 'NOT met'}"
            )
    finally:
        await server.close()


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu}), "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="gongkai-bench-"))
    s = Settings(
        data_dir=data_dir,
        secret_key="bench-secret",
        public_url="http://bench.test",
        database_url=args.database_url,
    )
    print(f"machine: {machine()}")
    print(f"database: {s.resolved_database_url.split('@')[-1]}")
    t0 = time.perf_counter()
    sample = await fill(s, args.rows)
    print(f"filled {args.rows:,} deliveries in {time.perf_counter() - t0:.1f} s")
    redis = EmbeddedRedis(data_dir)
    try:
        await measure(s, redis.url, args.repeat, sample)
    finally:
        redis.close()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
