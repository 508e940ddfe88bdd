"""How fast does ``/s/{code}`` redirect, and does every open get counted? Run by hand:

    python bench/short_links.py [--codes 10000] [--requests 5000] [--concurrency 50]

Fills a fresh SQLite database with one item and N short links, starts the real app on a
loopback port with the embedded Redis, and sends bounded bursts of GET /s/{code}: codes
resolved for the first time (a database lookup), the same codes again (cached), unknown codes
of the right form (a lookup that finds nothing) and hostile ones (too long, outside the
alphabet: refused before any lookup). Prints requests per second and latency percentiles per
kind, then waits for the batched counter and checks that the opens written equal the redirects.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer
from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gongkai.cli.embedded_redis import EmbeddedRedis
from gongkai.config import Settings
from gongkai.domain.links import CODE_ALPHABET, new_code
from gongkai.storage.db import make_engine, upgrade
from gongkai.storage.models import Item, ShortLink
from gongkai.storage.types import utcnow
from gongkai.web.app import create_app


async def fill(s: Settings, n: int) -> list[str]:
    await upgrade(s.resolved_database_url)
    engine = make_engine(s.resolved_database_url)
    codes = sorted({new_code() for _ in range(n)})
    now = utcnow()
    async with engine.begin() as conn:
        await conn.execute(
            insert(Item),
            [
                {
                    "id": "bench-item",
                    "kind": "notice",
                    "title": "停水通知",
                    "issued_at": date(2026, 12, 1),
                    "approved_by": "王某",
                    "approved_at": now,
                    "disclosure": "public",
                    "domain": "市政服务",
                    "regions": [],
                    "channels": ["sms"],
                    "catalog": {},
                    "translations": {},
                    "attachments": [],
                    "options": {},
                    "deadline_warnings": [],
                    "published_at": now,
                    "created_at": now,
                    "status": "published",
                }
            ],
        )
        await conn.execute(
            insert(ShortLink),
            [
                {
                    "code": c,
                    "item_id": "bench-item",
                    "channel": f"bench-{i}",  # one item's many codes: one per (channel, lang)
                    "lang": "zh",
                    "opens": 0,
                    "created_at": now,
                }
                for i, c in enumerate(codes)
            ],
        )
    await engine.dispose()
    return codes


async def burst(
    http: aiohttp.ClientSession, paths: list[str], concurrency: int, expect: int
) -> tuple[float, list[float]]:
    queue = iter(paths)
    latencies: list[float] = []

    async def lane() -> None:
        for path in queue:
            t = time.perf_counter()
            async with http.get(path, allow_redirects=False) as r:
                await r.read()
                assert r.status == expect, (path[:40], r.status)
            latencies.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.perf_counter() - t0, latencies


def report(kind: str, elapsed: float, latencies: list[float]) -> None:
    q = statistics.quantiles(latencies, n=100)
    print(
        f"{kind:<28} {len(latencies):>6} requests  {len(latencies) / elapsed:>7.0f}/s  "
        f"p50 {q[49] * 1000:6.1f} ms  p99 {q[98] * 1000:6.1f} ms"
    )


async def opens_written(s: Settings) -> int:
    engine = make_engine(s.resolved_database_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.sum(ShortLink.opens)))).scalar() or 0)
    finally:
        await engine.dispose()


async def measure(s: Settings, redis_url: str, codes: list[str], args: argparse.Namespace) -> None:
    rng = random.Random(7)
    server = TestServer(create_app(s, redis_url), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    redirects = 0
    try:
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(base_url=base, connector=connector) as http:
            first = [f"/s/{c}" for c in codes[: args.requests]]
            elapsed, lat = await burst(http, first, args.concurrency, 302)
            report("first open (lookup)", elapsed, lat)
            again = [f"/s/{rng.choice(codes[: args.requests])}" for _ in range(args.requests)]
            elapsed, lat = await burst(http, again, args.concurrency, 302)
            report("opened again (cached)", elapsed, lat)
            redirects = len(first) + len(again)
            taken = set(codes)
            unknown = []
            while len(unknown) < args.requests:
                c = "".join(rng.choice(CODE_ALPHABET) for _ in range(6))
                if c not in taken:
                    unknown.append(f"/s/{c}")
            elapsed, lat = await burst(http, unknown, args.concurrency, 404)
            report("unknown code (lookup)", elapsed, lat)
            hostile = [
                rng.choice(["/s/" + "A" * 4000, "/s/%0d%0aX", "/s/0O1lI0", "/s/%E4%BD%A0"])
                for _ in range(args.requests)
            ]
            elapsed, lat = await burst(http, hostile, args.concurrency, 404)
            report("hostile code (no lookup)", elapsed, lat)
    finally:
        await server.close()  # the app's cleanup writes the last tally
    written = await opens_written(s)
    verdict = "all counted" if written == redirects else "LOST SOME"
    print(f"redirects {redirects}, opens written {written}: {verdict}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="gongkai-bench-"))
    s = Settings(data_dir=data_dir, secret_key="bench-secret", public_url="http://bench.test")
    codes = await fill(s, args.codes)
    args.requests = min(args.requests, len(codes))
    redis = EmbeddedRedis(data_dir)
    try:
        await measure(s, redis.url, codes, args)
    finally:
        redis.close()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
