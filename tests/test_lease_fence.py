"""A database outage longer than a lease does not make a second worker send what a live worker
already sent: the live worker fences its rows in Redis until it has recorded them.

Against the fake WeCom robot, counting what it received: every village once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from aiohttp import web
from sqlalchemy import update

from gongkai.dispatch.delivery import deliver_batch
from gongkai.dispatch.fence import fence_key, raise_fence
from gongkai.dispatch.worker import close_deps, open_deps
from gongkai.sandbox import wecom_robot
from gongkai.sandbox.server import serve
from gongkai.storage.models import Delivery
from gongkai.storage.types import utcnow
from tests.bot_support import until
from tests.servers import PgServer, pg_bin
from tests.support import fetch_deliveries, ingest, prepare_db, settings_for
from tests.test_planning_job import county, execute, notice

VILLAGES = 6


async def _planned(s, redis_url: str) -> list[int]:  # type: ignore[no-untyped-def]
    await prepare_db(s, county(VILLAGES))
    await ingest(s, redis_url, notice())
    rows, _ = await fetch_deliveries(s)
    assert len(rows) == VILLAGES
    return [d.id for d in rows]


def _received(state: wecom_robot.RobotState) -> Counter[str]:
    return Counter(m.key for m in state.messages)


async def test_rows_a_live_worker_fences_are_not_taken_over_until_it_lets_go(
    tmp_path, embedded_redis_url, redis
) -> None:
    app, state = wecom_robot.make_app(rate_per_minute=1000)
    async with serve(app) as url:
        s = settings_for(tmp_path, wecom_api_base=url, rate_limits_enabled=False)
        ids = await _planned(s, embedded_redis_url)
        # what an outage leaves: the rows sending under another worker's lease, run out
        await execute(
            s,
            update(Delivery).values(status="sending", lease_owner="worker-a", lease_until=utcnow()),
        )
        deps, engine = open_deps(s, embedded_redis_url)
        try:
            assert await raise_fence(deps.pool, "worker-a", ids, s.lease_seconds)
            words = await deliver_batch(deps, ids)
            assert words == ["held by a live worker"] * VILLAGES
            assert not state.messages
            # worker-a died: its fence expires (here: goes) and the rows are taken over
            await redis.delete(fence_key("worker-a"))
            assert await deliver_batch(deps, ids) == ["delivered"] * VILLAGES
        finally:
            await close_deps(deps, engine)
    assert _received(state) == Counter({f"vg-{i}": 1 for i in range(VILLAGES)})


@pytest.mark.postgres
async def test_a_worker_cut_off_from_postgresql_past_its_leases_is_not_doubled(
    tmp_path, embedded_redis_url, redis
) -> None:
    """Sent, then PostgreSQL stopped before the outcomes were written, for longer than a lease;
    a second worker tries the rows as soon as the database is back. Nothing goes twice."""
    if pg_bin("initdb") is None:
        pytest.skip("PostgreSQL is not installed")
    gate, waiting = asyncio.Event(), []

    @web.middleware
    async def hold(request: web.Request, handler):  # type: ignore[no-untyped-def]
        waiting.append(request.query.get("key"))
        await gate.wait()  # the messages reach the robot only once PostgreSQL is down
        return await handler(request)

    app, state = wecom_robot.make_app(rate_per_minute=1000)
    app.middlewares.append(hold)
    pg = PgServer()
    pg.start()
    try:
        async with serve(app) as url:
            s = settings_for(
                tmp_path,
                wecom_api_base=url,
                rate_limits_enabled=False,
                database_url=pg.url,
                lease_seconds=1,
            )
            ids = await _planned(s, embedded_redis_url)
            a, a_engine = open_deps(s, embedded_redis_url)
            b, b_engine = open_deps(s, embedded_redis_url)
            try:
                sending = asyncio.create_task(deliver_batch(a, ids))
                await until(lambda: len(waiting) == VILLAGES)
                claimed_at = time.monotonic()
                await asyncio.to_thread(pg.stop)
                gate.set()
                fence = fence_key(a.worker_id)
                await until(lambda: redis.scard(fence), within=30)
                assert {int(i) for i in await redis.smembers(fence)} == set(ids)
                # the leases have run out while the database was away
                await until(lambda: time.monotonic() > claimed_at + 2 * s.lease_seconds)
                await asyncio.to_thread(pg.start)
                words = await deliver_batch(b, ids)  # before or after a's recorder: both fine
                assert set(words) <= {"held by a live worker", "skipped (delivered)"}, words
                assert await asyncio.wait_for(sending, 60) == ["delivered"] * VILLAGES
                assert not await redis.exists(fence)  # recorded, leases renewed, fence down
                assert await deliver_batch(b, ids) == ["skipped (delivered)"] * VILLAGES
            finally:
                await close_deps(a, a_engine)
                await close_deps(b, b_engine)
    finally:
        pg.close()
    assert _received(state) == Counter({f"vg-{i}": 1 for i in range(VILLAGES)})
