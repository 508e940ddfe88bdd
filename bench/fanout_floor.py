"""The floor of the stack for a durable fan-out, run by ``bench/fanout.py`` beside the workers.

The bare aiohttp loop is the machine's limit for posting, but it remembers nothing: a crash
loses track of what was sent. The least any sender that keeps a durable record must do, on the
same stack as Gongkai (SQLAlchemy Core over aiosqlite or asyncpg, aiohttp), is: claim a batch
in one committed transaction before sending it (so a second sender does not take it too), send
it, and commit the outcomes (one attempt row each, the rows marked delivered). The batch is
what a crash can leave sent-but-unrecorded; it is 200 here, the bound Gongkai's worker keeps
(twice ``worker_concurrency``). Three batches run at once, as a worker runs three jobs, with
50 posts in flight, as the bare loop has.

No leases or their renewal, no takeover, no retries, rate limits, recalls, quiet hours, items,
metrics or job queue: each would cost more. What Gongkai's worker reaches above this floor is
not reachable on this stack by any sender that records what it sent.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, bindparam

BATCH = 200  # what a crash may leave sent-but-unrecorded: Gongkai's worker's bound
JOBS = 3  # batches at once: a worker's arq jobs
IN_FLIGHT = 50  # posts at once: the bare loop's

META = MetaData()
ROWS = Table(
    "floor_delivery",
    META,
    Column("id", Integer, primary_key=True),
    Column("robot_key", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("lease_until", DateTime),
    Column("updated_at", DateTime),
)
ATTEMPTS = Table(
    "floor_attempt",
    META,
    Column("id", Integer, primary_key=True),
    Column("delivery_id", Integer, nullable=False, index=True),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime, nullable=False),
    Column("outcome", String(16), nullable=False),
)
IDS = bindparam("ids", expanding=True)


async def _fill(engine: Any, payloads: list[bytes]) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(META.drop_all)
        await conn.run_sync(META.create_all)
        await conn.execute(
            ROWS.insert(),
            [
                {"id": i, "robot_key": f"bench-robot-{i}", "payload": b.decode(), "status": "new"}
                for i, b in enumerate(payloads)
            ],
        )


async def durable_loop(url: str, base: str, payloads: list[dict]) -> tuple[float, float]:
    """Send every payload through claim → post → record; (seconds, this process's CPU)."""
    from gongkai.storage.db import make_engine
    from gongkai.storage.json_codec import dumps_bytes

    engine = make_engine(url)  # Gongkai's engine: the same SQLite pragmas, the same pool
    try:
        await _fill(engine, [dumps_bytes(p) for p in payloads])
        ids = list(range(len(payloads)))
        batches = [ids[i : i + BATCH] for i in range(0, len(ids), BATCH)]
        posts = asyncio.Semaphore(IN_FLIGHT)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        r = ROWS.c
        claim = (
            ROWS.update()
            .where(r.id.in_(IDS), r.status == "new")
            .values(status="sending", lease_until=bindparam("until"), updated_at=bindparam("now"))
            .returning(r.id, r.robot_key, r.payload)
        )
        settle = (
            ROWS.update()
            .where(r.id.in_(IDS))
            .values(status="delivered", lease_until=None, updated_at=bindparam("now"))
        )
        async with aiohttp.ClientSession() as http:

            async def post(row: Any, done: list[dict[str, Any]]) -> None:
                async with posts:
                    started = datetime.now(UTC)
                    url_ = f"{base}/cgi-bin/webhook/send?key={row[1]}"
                    async with http.post(url_, data=row[2].encode(), headers=headers) as resp:
                        ok = (await resp.json())["errcode"] == 0
                done.append(
                    {
                        "delivery_id": row[0],
                        "started_at": started,
                        "finished_at": datetime.now(UTC),
                        "outcome": "delivered" if ok else "failed",
                    }
                )

            async def job(batch: list[int]) -> None:
                now = datetime.now(UTC)
                async with engine.begin() as conn:
                    claimed = (
                        await conn.execute(
                            claim, {"ids": batch, "until": now + timedelta(minutes=5), "now": now}
                        )
                    ).all()
                done: list[dict[str, Any]] = []
                await asyncio.gather(*(post(row, done) for row in claimed))
                async with engine.begin() as conn:
                    await conn.execute(ATTEMPTS.insert(), done)
                    await conn.execute(
                        settle, {"ids": [d["delivery_id"] for d in done], "now": datetime.now(UTC)}
                    )

            async def runner() -> None:
                while batches:
                    await job(batches.pop(0))

            start, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(runner() for _ in range(JOBS)))
            return time.perf_counter() - start, time.process_time() - cpu
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(META.drop_all)
        await engine.dispose()
