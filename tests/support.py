"""Test helpers: a sample directory and item, and a running Gongkai on a temp data dir."""

from __future__ import annotations

import copy
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from gongkai.config import Settings
from gongkai.storage.crypto import Sealer
from gongkai.storage.db import make_engine, make_sessionmaker, upgrade
from gongkai.storage.directory import import_directory, parse_directory
from gongkai.storage.models import Role
from gongkai.web.app import create_app
from gongkai.web.auth import create_token

DATA = Path(__file__).resolve().parent / "data"

DIRECTORY = """
accounts:
  wechat_mp:
    - {name: ejhl, app_id: wx0000000000000001, app_secret: s3cret-app, token: t0ken,
       region: "150627"}
  telegram:
    - {name: ordos, token: "123456:TESTTOKEN", webhook_secret: hook-secret}
  sms:
    - {name: county-sms, provider: aliyun, access_key_id: testid, access_key_secret: testsecret,
       sign_name: 伊金霍洛旗政务公开, template_code: SMS_000001}
regions:
  - code: "150627"
    name: 伊金霍洛旗
    names: {mn: "ᠡᠵᠡᠨ ᠬᠣᠷᠣᠭ᠎ᠠ ᠬᠣᠰᠢᠭᠤ"}
    children:
      - code: "150627100"
        name: 乌兰木伦镇
        children:
          - code: "150627100201"
            name: 巴图塔嘎查
            languages: [mn, zh]
            targets:
              - {channel: village_group, robot_key: "${ROBOT_1}"}
              - {channel: sms, account: county-sms, phones: ["13800000000", "139 0000 0001"]}
          - code: "150627100202"
            name: 苏布尔嘎嘎查
            targets:
              - {channel: village_group, robot_key: robot-2}
      - code: "150627101"
        name: 札萨克镇
        children:
          - code: "150627101201"
            name: 门克庆嘎查
            targets:
              - {channel: village_group, robot_key: robot-3}
"""
ENV = {"ROBOT_1": "robot-1"}

ITEM: dict[str, Any] = {
    "id": "ejhl-2026-0113",
    "kind": "policy",
    "title": "关于2026年城乡低保标准调整的通知",
    "doc_number": "伊政办发〔2026〕3号",
    "issuer": "伊金霍洛旗人民政府办公室",
    "issued_at": "2026-11-02",
    "approved_by": "王某",
    "approved_at": "2026-11-20T09:30:00+08:00",
    "secrecy_reviewed": True,
    "disclosure": "public",
    "domain": "社会救助",
    "regions": ["150627"],
    "channels": ["web"],
    "summary": "城乡低保标准每人每月提高60元，12月起执行。",
    "body": "各苏木镇人民政府：\n\n自2026年12月1日起，城乡低保标准每人每月提高60元。",
}


def item(**overrides: Any) -> dict[str, Any]:
    data = copy.deepcopy(ITEM)
    for k, v in overrides.items():
        if v is None:
            data.pop(k, None)
        else:
            data[k] = v
    return data


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "data_dir": tmp_path,
        "secret_key": "test-secret-key",
        "public_url": "http://gongkai.test",
        "retry_base_seconds": 0.01,
        "retry_max_seconds": 0.05,
        "quiet_hours": "",
    }
    base.update(overrides)
    return Settings(**base)


async def prepare_db(s: Settings, directory: str | None = DIRECTORY) -> None:
    await upgrade(s.resolved_database_url)
    if directory is None:
        return
    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            await import_directory(
                session, parse_directory(directory, ENV), Sealer(s.resolved_secret_key())
            )
    finally:
        await engine.dispose()


async def token(s: Settings, role: Role, name: str = "tester") -> str:
    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            return await create_token(session, role, name)
    finally:
        await engine.dispose()


@asynccontextmanager
async def running_app(s: Settings, redis_url: str):  # type: ignore[no-untyped-def]
    """The app on a test server; on leaving, fails the test if any request it served raised an
    unhandled exception (answered 500 by the error middleware), whatever the test asserted."""
    from gongkai.web.errors import UNHANDLED

    app = create_app(s, redis_url)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
    assert not app[UNHANDLED], f"requests ended in an unhandled exception: {app[UNHANDLED]}"


async def run_workers(s: Settings, redis_url: str, n: int = 1, max_jobs: int = 10) -> None:
    """Run ``n`` burst workers side by side until the queue is empty (deferred jobs included)."""
    import asyncio

    from gongkai.dispatch.worker import build_worker

    workers = [build_worker(s, redis_url, burst=True, max_jobs=max_jobs) for _ in range(n)]
    try:
        await asyncio.wait_for(asyncio.gather(*(w.main() for w in workers)), timeout=60)
    finally:
        for w in workers:
            await w.close()


async def plan_now(s: Settings, redis_url: str) -> list[str]:
    """Run the planning job of every item still waiting for it, to its end, as a worker runs
    it (the arq job function itself, on a worker's own deps): its deliveries are written and
    their jobs queued on ``redis_url``, nothing is sent. Returns each job's answer. The job is
    taken off the queue as a worker finishing it would."""
    from sqlalchemy import select

    from gongkai.dispatch.plan_job import plan_job
    from gongkai.dispatch.queue import QUEUE_NAME, job_exists_key
    from gongkai.dispatch.worker import close_deps, open_deps
    from gongkai.storage.models import PLANNING_OPEN, Item

    table = Item.__table__.c  # type: ignore[attr-defined]
    deps, engine = open_deps(s, redis_url)
    try:
        async with deps.maker() as session:
            rows = (
                await session.execute(
                    select(table.id, table.planning_job)
                    .where(table.planning_status.in_([p.value for p in PLANNING_OPEN]))
                    .order_by(table.created_at)
                )
            ).all()
        answers = []
        for item_id, job in rows:
            answers.append(await plan_job({"deps": deps}, item_id))
            if job:
                await deps.pool.zrem(QUEUE_NAME, job)
                await deps.pool.delete(job_exists_key(job))
        return answers
    finally:
        await close_deps(deps, engine)


async def planned(client: Any) -> list[str]:
    """``plan_now`` for the ``gk`` fixture's app: after a POST, its deliveries exist."""
    return await plan_now(client.settings, client.redis_url)


async def ingest(s: Settings, redis_url: str, data: dict[str, Any], plan: bool = True):  # type: ignore[no-untyped-def]
    """Ingest as the API does, enqueueing on ``redis_url``, then (unless ``plan`` is false) run
    its planning job to its end (``plan_now``): the result lists the deliveries planned, queued
    and not yet sent."""
    import dataclasses

    from arq import create_pool

    from gongkai.dispatch.ingest import ingest_item
    from gongkai.dispatch.queue import arq_settings
    from gongkai.domain.items import parse_item
    from gongkai.domain.workdays import WorkCalendar

    engine = make_engine(s.resolved_database_url)
    pool = await create_pool(arq_settings(redis_url))
    try:
        async with make_sessionmaker(engine)() as session:
            result = await ingest_item(
                session,
                Sealer(s.resolved_secret_key()),
                parse_item(data),
                actor="test",
                public_url=s.public_url,
                calendar=WorkCalendar(),
                pool=pool,
                tz=s.tz,
            )
    finally:
        await pool.aclose()
        await engine.dispose()
    if not result.created or not plan:
        return result
    await plan_now(s, redis_url)
    item = await planned_item(s, result.item.id)  # a running worker may have planned it
    rows, _ = await fetch_deliveries(s, result.item.id)
    return dataclasses.replace(result, item=item, deliveries=rows)


async def planned_item(s: Settings, item_id: str, limit: float = 60):  # type: ignore[no-untyped-def]
    """The item once its planning has ended, whoever planned it."""
    import asyncio

    from gongkai.storage.models import PLANNING_OPEN, Item

    engine = make_engine(s.resolved_database_url)
    try:
        async with asyncio.timeout(limit):
            while True:
                async with make_sessionmaker(engine)() as session:
                    item = await session.get(Item, item_id)
                if item is None or item.planning_status not in PLANNING_OPEN:
                    return item
                await asyncio.sleep(0.05)
    finally:
        await engine.dispose()


async def fetch_deliveries(s: Settings, item_id: str | None = None):  # type: ignore[no-untyped-def]
    from sqlmodel import select

    from gongkai.storage.models import Attempt, Delivery

    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            stmt = select(Delivery).order_by(Delivery.id)
            if item_id:
                stmt = stmt.where(Delivery.item_id == item_id)
            rows = list((await session.exec(stmt)).all())
            attempts = {
                d.id: list(
                    (
                        await session.exec(
                            select(Attempt).where(Attempt.delivery_id == d.id).order_by(Attempt.id)
                        )
                    ).all()
                )
                for d in rows
            }
            return rows, attempts
    finally:
        await engine.dispose()


async def polls_due_now(pool) -> list[tuple[bytes, float]]:  # type: ignore[no-untyped-def]
    """Make the provider-verdict polls waiting in the queue due now (they wait a minute), so a
    test need not wait them out; returns the queue as it was."""
    import time

    from gongkai.dispatch.queue import QUEUE_NAME

    jobs = await pool.zrange(QUEUE_NAME, 0, -1, withscores=True)
    now_ms = time.time() * 1000
    polls = {job: now_ms for job, at in jobs if job.startswith(b"p") and at > now_ms}
    if polls:
        await pool.zadd(QUEUE_NAME, polls, xx=True)
    return jobs


async def hurry_polls(redis_url: str) -> None:
    from arq import create_pool

    from gongkai.dispatch.queue import arq_settings

    pool = await create_pool(arq_settings(redis_url))
    try:
        await polls_due_now(pool)
    finally:
        await pool.aclose()


async def workers_until(s: Settings, redis_url: str, done, n: int = 1, limit: float = 30) -> None:  # type: ignore[no-untyped-def]
    """Run ``n`` long-lived workers until ``await done()`` is true (for jobs deferred on purpose,
    such as a provider-verdict poll a minute away, which a burst worker would wait out)."""
    import asyncio
    import contextlib

    from gongkai.dispatch.worker import build_worker

    workers = [build_worker(s, redis_url) for _ in range(n)]
    tasks = [asyncio.create_task(w.async_run()) for w in workers]
    try:
        async with asyncio.timeout(limit):
            while not await done():  # noqa: ASYNC110  (the condition lives in the database)
                await asyncio.sleep(0.05)
    finally:
        # Stop the polling first, then let the jobs already running finish: arq's close()
        # cancels running jobs and re-raises their CancelledError, skipping its own shutdown.
        for t in tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for w in workers:
            running = [job for job in w.tasks.values() if not job.done()]
            if running:
                await asyncio.wait(running, timeout=10)
            await w.close()
