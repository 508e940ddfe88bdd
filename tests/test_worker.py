"""The worker against a fake WeCom robot: retries, dead letters, never twice, shared limits.

Runs once on the embedded Redis and once on Debian's redis-server.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
from arq import create_pool

from gongkai.dispatch.queue import arq_settings, enqueue_delivery
from gongkai.sandbox import wecom_robot
from gongkai.sandbox.server import serve
from tests.support import (
    fetch_deliveries,
    ingest,
    item,
    prepare_db,
    run_workers,
    settings_for,
    workers_until,
)

VILLAGE = "150627100201"  # one village group, robot key "robot-1"


@pytest.fixture(params=["embedded", "redis-server"])
def redis_url(request, embedded_redis_url):  # type: ignore[no-untyped-def]
    if request.param == "embedded":
        return embedded_redis_url
    return request.getfixturevalue("real_redis_url")


@pytest.fixture
async def robot(redis_url):  # type: ignore[no-untyped-def]
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    await client.flushall()
    await client.aclose()
    app, state = wecom_robot.make_app(valid_keys={"robot-1", "robot-2", "robot-3"})
    async with serve(app) as url:
        yield url, state


def village_item(n: int = 0, **kw):  # type: ignore[no-untyped-def]
    return item(
        id=f"notice-{n}",
        kind="notice",
        title=f"第{n}号通知：停水安排",
        doc_number=None,
        regions=[VILLAGE],
        channels=["village_group"],
        **kw,
    )


@asynccontextmanager
async def reconciler(s, redis_url):  # type: ignore[no-untyped-def]
    """A worker's reconciliation round, to run by hand: ``await rounds()`` gives its counts."""
    from gongkai.dispatch.reconcile import reconcile
    from gongkai.dispatch.worker import close_deps, open_deps

    deps, engine = open_deps(s, redis_url)
    try:
        yield lambda: reconcile(deps)
    finally:
        await close_deps(deps, engine)


async def set_deliveries(s, **values) -> None:  # type: ignore[no-untyped-def]
    """Every delivery row gets ``values``: how a test moves the rows' clock or their owner."""
    from sqlmodel import update

    from gongkai.storage.db import make_engine, make_sessionmaker
    from gongkai.storage.models import Delivery

    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            await session.exec(update(Delivery).values(**values))
            await session.commit()
    finally:
        await engine.dispose()


async def set_items(s, **values) -> None:  # type: ignore[no-untyped-def]
    """Every item row gets ``values`` (its clock, its planning lease)."""
    from sqlmodel import update

    from gongkai.storage.db import make_engine, make_sessionmaker
    from gongkai.storage.models import Item

    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            await session.exec(update(Item).values(**values))
            await session.commit()
    finally:
        await engine.dispose()


async def oldest_undelivered(s) -> float:  # type: ignore[no-untyped-def]
    from gongkai.dispatch.reconcile import oldest_undelivered_seconds
    from gongkai.storage.db import make_engine, make_sessionmaker

    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            return await oldest_undelivered_seconds(session)
    finally:
        await engine.dispose()


def minutes_ago(n: float):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from gongkai.storage.types import utcnow

    return utcnow() - timedelta(minutes=n)


async def test_transient_failures_are_retried_and_each_attempt_recorded(tmp_path, redis_url, robot):
    url, state = robot
    s = settings_for(tmp_path, wecom_api_base=url)
    await prepare_db(s)
    state.fail_next = [502, 503]
    await ingest(s, redis_url, village_item())
    await run_workers(s, redis_url)
    (d,), attempts = await fetch_deliveries(s)
    assert d.status == "delivered"
    assert [a.outcome for a in attempts[d.id]] == ["transient", "transient", "delivered"]
    assert "502" in (attempts[d.id][0].error or "")
    assert d.attempts == 3
    assert len(state.messages_for("robot-1")) == 1


async def test_a_delivery_is_never_sent_twice_when_its_job_runs_twice(tmp_path, redis_url, robot):
    url, state = robot
    s = settings_for(tmp_path, wecom_api_base=url)
    await prepare_db(s)
    result = await ingest(s, redis_url, village_item())
    pool = await create_pool(arq_settings(redis_url))
    for _ in range(3):  # the same delivery queued three more times, as a redelivery would
        await enqueue_delivery(pool, result.deliveries[0].id)
    await pool.aclose()
    await run_workers(s, redis_url, n=2)
    (d,), _ = await fetch_deliveries(s)
    assert d.status == "delivered"
    assert len(state.messages) == 1
    # and once more after it was delivered
    pool = await create_pool(arq_settings(redis_url))
    await enqueue_delivery(pool, d.id)
    await pool.aclose()
    await run_workers(s, redis_url)
    assert len(state.messages) == 1


async def test_invalid_robot_key_is_permanent_and_deactivates_the_target(
    tmp_path, redis_url, robot
):
    url, state = robot
    state.valid_keys = {"robot-2"}
    s = settings_for(tmp_path, wecom_api_base=url)
    await prepare_db(s)
    await ingest(s, redis_url, village_item())
    await run_workers(s, redis_url)
    (d,), attempts = await fetch_deliveries(s)
    assert d.status == "dead"
    assert "robot key invalid" in d.last_error
    assert [a.outcome for a in attempts[d.id]] == ["permanent"]
    # the next item does not even try the dead robot
    await ingest(s, redis_url, village_item(1))
    rows, _ = await fetch_deliveries(s, "notice-1")
    assert rows == []


async def test_attempts_run_out_and_the_delivery_is_dead(tmp_path, redis_url, robot):
    url, state = robot
    s = settings_for(tmp_path, wecom_api_base=url, max_attempts=3)
    await prepare_db(s)
    state.fail_next = [500, 500, 500, 500]
    await ingest(s, redis_url, village_item())
    await run_workers(s, redis_url)
    (d,), attempts = await fetch_deliveries(s)
    assert d.status == "dead"
    assert d.last_error.startswith("gave up after 3 attempts")
    assert len(attempts[d.id]) == 3 and state.messages == []


async def test_two_workers_share_one_robot_within_its_limit(tmp_path, redis_url, robot):
    url, state = robot
    s = settings_for(tmp_path, wecom_api_base=url)
    await prepare_db(s)
    for n in range(22):  # 22 notices, one robot: 20 may go this minute, 2 must wait
        await ingest(s, redis_url, village_item(n))

    async def twenty_sent_two_deferred() -> bool:
        rows, _ = await fetch_deliveries(s)
        return (
            sum(d.status == "delivered" for d in rows) == 20
            and sum(d.status == "queued" and d.attempts == 0 for d in rows) == 2
        )

    await workers_until(s, redis_url, twenty_sent_two_deferred, n=2)
    assert len(state.messages_for("robot-1")) == 20
    assert state.rate_limited == 0  # the fake never had to refuse
    rows, _ = await fetch_deliveries(s)
    assert sum(d.status == "delivered" for d in rows) == 20


async def test_admin_retry_requeues_a_dead_delivery_with_fresh_attempts(tmp_path, redis_url, robot):
    from tests.support import running_app, token

    url, state = robot
    s = settings_for(tmp_path, wecom_api_base=url, max_attempts=2)
    await prepare_db(s)
    state.fail_next = [500, 500]
    await ingest(s, redis_url, village_item())
    await run_workers(s, redis_url)
    (d,), _ = await fetch_deliveries(s)
    assert d.status == "dead"
    admin = await token(s, __import__("gongkai.storage.models", fromlist=["Role"]).Role.admin)
    async with running_app(s, redis_url) as client:
        r = await client.post(
            f"/api/v1/deliveries/{d.id}/retry", headers={"Authorization": f"Bearer {admin}"}
        )
        assert r.status == 200
    await run_workers(s, redis_url)
    (d,), attempts = await fetch_deliveries(s)
    assert d.status == "delivered"
    assert [a.outcome for a in attempts[d.id]] == [
        "transient",
        "transient",
        "requeued",
        "delivered",
    ]
    assert len(state.messages) == 1


async def test_a_delivery_whose_worker_died_is_taken_over_when_its_lease_runs_out(
    tmp_path, redis_url, robot
):
    url, state = robot
    s = settings_for(tmp_path, wecom_api_base=url)
    await prepare_db(s)
    await ingest(s, redis_url, village_item())
    # as if a worker claimed it, then died
    await set_deliveries(
        s, status="sending", lease_owner="dead-worker", lease_until=minutes_ago(-60)
    )
    await run_workers(s, redis_url)  # its job finds the row leased and leaves it
    assert state.messages == []
    async with reconciler(s, redis_url) as rounds:
        assert (await rounds())["leases_expired"] == 0  # the lease still runs
        await set_deliveries(s, lease_until=minutes_ago(1 / 60))
        assert (await rounds())["leases_expired"] == 1
    await run_workers(s, redis_url)
    (d,), _ = await fetch_deliveries(s)
    assert d.status == "delivered" and len(state.messages) == 1
    assert d.lease_until is None and d.lease_owner not in (None, "dead-worker")


async def test_a_recall_landing_mid_message_stops_before_the_next_part(tmp_path, redis_url, robot):
    from redis.asyncio import Redis

    from gongkai.dispatch.queue import recalled_key

    url, state = robot
    s = settings_for(tmp_path, wecom_api_base=url)
    await prepare_db(s)
    long_body = "\n\n".join(
        f"第{i}段：" + "请各位村民按时缴纳医疗保险费用。" * 20 for i in range(12)
    )
    result = await ingest(s, redis_url, village_item(body=long_body))
    parts = result.deliveries[0].payload["parts"]
    assert len(parts) > 1
    # The recall has flagged the item (as recall_item does) while this delivery was claimable.
    client = Redis.from_url(redis_url)
    await client.set(recalled_key("notice-0"), 1)
    await client.aclose()
    await run_workers(s, redis_url)
    (d,), _ = await fetch_deliveries(s)
    assert d.status == "cancelled"
    assert d.last_error == "recalled while sending; stopped before part 2"
    assert len(state.messages_for("robot-1")) == 1 and d.parts_done == 1


async def test_a_row_whose_job_redis_lost_is_queued_again_and_a_waiting_one_is_left_alone(
    tmp_path, redis_url, robot
):
    from redis.asyncio import Redis

    url, state = robot
    s = settings_for(tmp_path, wecom_api_base=url)
    await prepare_db(s)
    await ingest(s, redis_url, village_item())
    # queued a minute ago, nobody ran it yet
    await set_deliveries(s, updated_at=minutes_ago(1), created_at=minutes_ago(1))
    assert 59 < await oldest_undelivered(s) < 120  # what /metrics shows an operator
    async with reconciler(s, redis_url) as rounds:
        assert (await rounds())["reconciled"] == 0  # its job is still in Redis
        client = Redis.from_url(redis_url)
        await client.flushall()  # Redis restarted empty
        await client.aclose()
        assert (await rounds())["reconciled"] == 1
        assert (await rounds())["reconciled"] == 0  # its new job exists: not doubled
    await run_workers(s, redis_url)
    (d,), _ = await fetch_deliveries(s)
    assert d.status == "delivered" and len(state.messages) == 1
    assert await oldest_undelivered(s) == 0


async def test_an_item_published_while_redis_is_down_is_stored_and_delivered_once_it_is_back(
    tmp_path, redis_url, robot
):
    from gongkai.dispatch.ingest import ingest_item
    from gongkai.dispatch.worker import open_pool
    from gongkai.domain.items import parse_item
    from gongkai.domain.workdays import WorkCalendar
    from gongkai.storage.crypto import Sealer
    from gongkai.storage.db import make_engine, make_sessionmaker
    from tests.servers import free_port

    url, state = robot
    s = settings_for(tmp_path, wecom_api_base=url)
    await prepare_db(s)
    engine = make_engine(s.resolved_database_url)
    nowhere = open_pool(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    try:
        async with make_sessionmaker(engine)() as session:
            result = await ingest_item(
                session,
                Sealer(s.resolved_secret_key()),
                parse_item(village_item()),
                actor="test",
                public_url=s.public_url,
                calendar=WorkCalendar(),
                pool=nowhere,
                tz=s.tz,
            )
        assert result.created and any("Redis" in w for w in result.warnings)
    finally:
        await nowhere.aclose()
        await engine.dispose()
    await set_items(s, created_at=minutes_ago(1))  # as a minute later
    async with reconciler(s, redis_url) as rounds:
        assert (await rounds())["plans"] == 1  # its planning job never reached Redis
        assert (await rounds())["plans"] == 0  # queued again once, not twice
    await run_workers(s, redis_url)
    (d,), _ = await fetch_deliveries(s)
    assert d.status == "delivered" and len(state.messages) == 1


async def test_rows_of_a_job_a_worker_started_and_died_with_are_queued_again(
    tmp_path, redis_url, robot
):
    """arq holds a job its worker started "in progress" for the whole job timeout, even when
    that worker was killed before it claimed a row; reconciliation does not wait that long."""
    from arq.constants import in_progress_key_prefix

    url, state = robot
    s = settings_for(tmp_path, wecom_api_base=url)
    await prepare_db(s)
    result = await ingest(s, redis_url, village_item())
    old_job = result.deliveries[0].job
    pool = await create_pool(arq_settings(redis_url))
    await pool.psetex(in_progress_key_prefix + old_job, 300_000, b"1")  # as arq marks it
    async with reconciler(s, redis_url) as rounds:
        await set_deliveries(s, updated_at=minutes_ago(10 / 60))
        assert (await rounds())["reconciled"] == 0  # within a lease: its worker may claim yet
        await set_deliveries(s, updated_at=minutes_ago(1))
        assert (await rounds())["reconciled"] == 1  # a lease later, still unclaimed
    (d,), _ = await fetch_deliveries(s)
    assert d.job != old_job and await pool.exists(f"arq:job:{d.job}")
    await pool.zrem("gongkai:queue", old_job)  # the dead worker's job, never finished
    await pool.aclose()
    await run_workers(s, redis_url)
    (d,), _ = await fetch_deliveries(s)
    assert d.status == "delivered" and len(state.messages) == 1


async def test_a_worker_whose_records_cannot_be_written_stops_at_its_unrecorded_budget(
    tmp_path, redis_url
):
    """What a crash could make another worker send twice is bounded: with the database locked,
    a worker sends at most twice ``worker_concurrency`` messages it has not recorded, then
    waits; once the database is back every delivery is recorded, each sent once."""
    import asyncio
    import sqlite3

    from aiohttp import web

    from gongkai.dispatch.delivery import deliver_batch
    from gongkai.dispatch.worker import close_deps, open_deps
    from tests.bot_support import until

    lock = sqlite3.connect(tmp_path / "gongkai.sqlite3", timeout=30, check_same_thread=False)

    locking: list[asyncio.Future[object]] = []

    @web.middleware
    async def lock_at_first_message(request, handler):  # type: ignore[no-untyped-def]
        if not locking:  # no message is answered, so no outcome recorded, before the lock
            locking.append(
                asyncio.ensure_future(asyncio.to_thread(lock.execute, "BEGIN EXCLUSIVE"))
            )
        await locking[0]
        return await handler(request)

    app, state = wecom_robot.make_app(valid_keys={"robot-1"})
    app.middlewares.append(lock_at_first_message)
    async with serve(app) as url:
        s = settings_for(
            tmp_path, wecom_api_base=url, rate_limits_enabled=False, worker_concurrency=2
        )
        await prepare_db(s)
        for n in range(16):  # under the robot's 20 a minute
            await ingest(s, redis_url, village_item(n))
        rows, _ = await fetch_deliveries(s)
        deps, engine = open_deps(s, redis_url)
        try:
            sending = asyncio.create_task(deliver_batch(deps, [d.id for d in rows]))
            await until(lambda: deps.unrecorded.free == 0)
            recorded = lock.execute("SELECT count(*) FROM delivery WHERE status = 'delivered'")
            assert len(state.messages) - recorded.fetchone()[0] <= 2 * 2
            assert len(state.messages) < len(rows)  # the lanes wait for the database
            lock.rollback()
            assert set(await asyncio.wait_for(sending, 60)) == {"delivered"}
        finally:
            lock.close()
            await close_deps(deps, engine)
    rows, _ = await fetch_deliveries(s)
    assert {d.status for d in rows} == {"delivered"}
    assert len(state.messages) == len(rows) == 16
