"""How long `gongkai run --demo` takes until every demo delivery on all six channels is delivered.

Runs what `gongkai run --demo` runs (migrations, the server on a free port with the sandbox, one
worker, the demo load) in a fresh data dir with an embedded Redis, and prints the time to load
the demo and then the time until each channel's last demo delivery was delivered.

    .venv/bin/python bench/demo.py
"""

from __future__ import annotations

import asyncio
import socket
import sys
import tempfile
import time
from pathlib import Path

from sqlmodel import select

from gongkai.cli.demo import demo_settings, load_demo
from gongkai.cli.embedded_redis import EmbeddedRedis
from gongkai.cli.runtime import serving
from gongkai.dispatch.worker import run_worker
from gongkai.storage.db import make_engine, make_sessionmaker, upgrade
from gongkai.storage.models import Delivery

DEMO_IDS = ("demo-ejhl-2026-0113", "demo-ejhl-2026-0113-jd", "demo-ejhl-2026-0201")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="gongkai-demo-bench-"))
    redis = EmbeddedRedis(tmp / "redis")
    port = free_port()
    s = demo_settings(data_dir=tmp, port=port, public_url=f"http://127.0.0.1:{port}")
    started = time.monotonic()
    await upgrade(s.resolved_database_url)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(s, redis.url, stop))
    engine = make_engine(s.resolved_database_url)
    done: dict[str, float] = {}
    try:
        async with serving(s, redis.url):
            await load_demo(s, redis.url)
            loaded = time.monotonic() - started
            print(f"demo loaded after {loaded:.1f} s")
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                async with make_sessionmaker(engine)() as session:
                    rows = (
                        await session.exec(select(Delivery).where(Delivery.item_id.in_(DEMO_IDS)))  # type: ignore[attr-defined]
                    ).all()
                channels = {d.channel for d in rows}
                for ch in channels - done.keys():
                    if all(d.status == "delivered" for d in rows if d.channel == ch):
                        done[ch] = time.monotonic() - started
                if rows and len(done) == len(channels):
                    break
                await asyncio.sleep(0.1)
            for ch, at in sorted(done.items(), key=lambda kv: kv[1]):
                print(f"  {ch:14s} all delivered {at:5.1f} s after start")
            missing = sorted({d.channel for d in rows} - done.keys())
            if missing:
                print(f"not delivered within 120 s: {missing}")
                return 1
            print(f"every demo delivery delivered {max(done.values()):.1f} s after start")
    finally:
        stop.set()
        await worker
        await engine.dispose()
        redis.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
