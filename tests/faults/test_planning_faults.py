"""A worker killed (kill -9) while it plans a large item: the other worker finishes the plan
and every village gets exactly one delivery, judged by what the robot fake received.

Real processes, as in ``test_faults.py``: Debian's redis-server, two ``gongkai worker``
processes, SQLite. The item is published with its planning queued (as the API does), so the
planning runs inside a worker, which is killed once the first chunks are written.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections import Counter

import pytest

from tests.faults.cluster import Cluster, notice, prepare, robot, until, verdict
from tests.servers import RedisServer

VILLAGES = 600
ITEM = "fault-plan-0001"

pytestmark = [
    pytest.mark.redis_server,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


async def planning(cluster: Cluster) -> tuple[str, int, int | None, str | None]:
    from gongkai.storage.db import make_engine, make_sessionmaker
    from gongkai.storage.models import Item

    engine = make_engine(cluster.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            it = await session.get(Item, ITEM)
            if it is None:
                return "missing", 0, None, None
            return it.planning_status, it.planned, it.planning_total, it.planning_owner
    finally:
        await engine.dispose()


async def delivery_rows_per_target(cluster: Cluster) -> Counter[int]:
    from sqlalchemy import func, select

    from gongkai.storage.db import make_engine, make_sessionmaker
    from gongkai.storage.models import Delivery

    engine = make_engine(cluster.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = await session.execute(
                select(Delivery.target_id, func.count())
                .where(Delivery.item_id == ITEM)
                .group_by(Delivery.target_id)
            )
            return Counter({target: n for target, n in rows.all()})
    finally:
        await engine.dispose()


async def test_a_worker_killed_while_planning_leaves_no_village_out_and_none_twice(tmp_path):
    from tests.faults.cluster import Faults
    from tests.support import ingest

    redis = RedisServer()
    redis.start()
    cluster: Cluster | None = None
    try:
        async with robot(Faults(latency=0.05)) as (url, state):
            cluster = Cluster(
                tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'gongkai.sqlite3'}", redis.url, url
            )
            cluster.concurrency = 10
            await prepare(cluster, VILLAGES)
            workers = [cluster.start_worker(), cluster.start_worker()]

            async def started() -> bool:
                return all(
                    "Starting worker" in log.read_text(errors="replace") for log in cluster.logs
                )

            await until(started, 60)
            await ingest(cluster.settings(), cluster.redis_url, notice(ITEM), plan=False)

            async def planning_under_way() -> bool:
                status, planned, _, _ = await planning(cluster)
                return status == "running" and planned > 0

            await until(planning_under_way, 60, every=0.01)
            _, _, _, owner = await planning(cluster)
            assert owner is not None
            victim = next(p for p in workers if p.pid == int(owner.split(":")[1]))
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(10)
            killed_at = time.monotonic()
            status, planned_then, total, _ = await planning(cluster)
            assert status == "running" and planned_then < VILLAGES, (status, planned_then)

            async def planned_all() -> bool:
                return (await planning(cluster))[0] == "done"

            await until(planned_all, 60)
            v = await verdict(cluster, ITEM, state, VILLAGES, killed_at)
            rows = await delivery_rows_per_target(cluster)
            assert len(rows) == VILLAGES and set(rows.values()) == {1}  # one row a village
            assert v.missing == [] and v.statuses.get("delivered", 0) == VILLAGES
            # a killed worker may have had sends on the wire (the bound of test_faults.py)
            assert v.extra_messages <= 2 * cluster.concurrency, v.duplicates
            survivor = next(p for p in workers if p is not victim)
            assert survivor.poll() is None, cluster.tail()
            assert (await planning(cluster))[1:3] == (VILLAGES, VILLAGES)
            print(
                f"killed at {planned_then}/{total} planned; all delivered "
                f"{v.seconds_after_fault:.1f} s after the kill; duplicates {v.extra_messages}"
            )
    finally:
        if cluster is not None:
            cluster.stop_all()
        redis.close()
