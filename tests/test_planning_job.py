"""The planning job: resumable after a worker died mid-way, never a delivery twice, urgent items
first, a recall stops it. Against the fake WeCom robot, through the real worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from gongkai.sandbox import wecom_robot
from gongkai.sandbox.server import serve
from gongkai.storage.db import make_engine, make_sessionmaker
from gongkai.storage.models import Delivery, Item
from gongkai.storage.types import utcnow
from tests.support import (
    fetch_deliveries,
    ingest,
    item,
    plan_now,
    prepare_db,
    run_workers,
    settings_for,
)

VILLAGES = 120


def county(villages: int = VILLAGES) -> str:
    """One town with ``villages`` village groups, robot keys ``vg-0`` … (enough for chunks)."""
    lines = [
        "regions:",
        '  - code: "150627"',
        "    name: 伊金霍洛旗",
        "    children:",
        '      - code: "150627100"',
        "        name: 乌兰木伦镇",
        "        children:",
    ]
    for i in range(villages):
        lines += [
            f'          - code: "150627100{i:03d}"',
            f"            name: 第{i}嘎查",
            f"            targets: [{{channel: village_group, robot_key: vg-{i}}}]",
        ]
    return "\n".join(lines) + "\n"


def notice(n: int = 1, **kw):  # type: ignore[no-untyped-def]
    fields = {
        "id": f"notice-{n}",
        "kind": "notice",
        "title": f"第{n}号通知：停水安排",
        "doc_number": None,
        "regions": ["150627100"],
        "channels": ["village_group"],
    }
    return item(**{**fields, **kw})


@pytest.fixture
async def site(tmp_path, embedded_redis_url, redis):  # type: ignore[no-untyped-def]
    app, state = wecom_robot.make_app(rate_per_minute=1000)
    async with serve(app) as url:
        s = settings_for(tmp_path, wecom_api_base=url, rate_limits_enabled=False)
        await prepare_db(s, county())
        yield s, state


async def execute(s, *statements):  # type: ignore[no-untyped-def]
    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            out = [await session.execute(stmt) for stmt in statements]
            await session.commit()
            return out
    finally:
        await engine.dispose()


async def planning_of(s, item_id: str) -> tuple[str, int, int | None]:  # type: ignore[no-untyped-def]
    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            it = await session.get(Item, item_id)
            assert it is not None
            return it.planning_status, it.planned, it.planning_total
    finally:
        await engine.dispose()


async def test_planning_resumed_after_a_dead_worker_makes_no_duplicate(
    site, embedded_redis_url, redis
) -> None:
    """What a worker killed mid-plan leaves: the first chunks written, the rest not, its lease
    running out, Redis restarted empty. Reconciliation queues the planning again, the next
    worker plans only what is missing, and every village gets its message exactly once."""
    s, state = site
    await ingest(s, embedded_redis_url, notice(), plan=False)
    await plan_now(s, embedded_redis_url)
    assert await planning_of(s, "notice-1") == ("done", VILLAGES, VILLAGES)
    rows, _ = await fetch_deliveries(s)
    kept = 45  # two chunks' worth survived the crash
    gone = [d.id for d in rows[kept:]]
    await execute(
        s,
        Delivery.__table__.delete().where(Delivery.__table__.c.id.in_(gone)),  # type: ignore[attr-defined]
        update(Delivery).values(updated_at=utcnow() - timedelta(minutes=1)),
        update(Item).values(
            planning_status="running",
            planned=kept,
            planning_owner="dead-host:1:abc",
            planning_lease_until=utcnow() - timedelta(seconds=1),
            created_at=utcnow() - timedelta(minutes=1),
        ),
    )
    await redis.flushall()  # Redis restarted empty: every job is gone
    from gongkai.dispatch.reconcile import reconcile
    from gongkai.dispatch.worker import close_deps, open_deps

    deps, engine = open_deps(s, embedded_redis_url)
    try:
        counts = await reconcile(deps)
    finally:
        await close_deps(deps, engine)
    assert counts["plans"] == 1 and counts["reconciled"] == kept
    await run_workers(s, embedded_redis_url)
    assert await planning_of(s, "notice-1") == ("done", VILLAGES, VILLAGES)
    rows, _ = await fetch_deliveries(s)
    assert len(rows) == VILLAGES
    assert sorted(d.target_id for d in rows) == sorted({d.target_id for d in rows})
    assert {d.status for d in rows} == {"delivered"}
    received = sorted(m.key for m in state.messages)
    assert received == sorted(f"vg-{i}" for i in range(VILLAGES))  # each exactly once
    # planning run again on a planned item writes nothing
    await execute(s, update(Item).values(planning_status="pending", planning_lease_until=None))
    (answer,) = await plan_now(s, embedded_redis_url)
    assert answer.startswith(f"planned 0 of {VILLAGES}")
    (count,) = await execute(s, select(func.count()).select_from(Delivery))
    assert count.scalar() == VILLAGES


async def test_an_urgent_item_goes_ahead_of_a_fan_out_already_queued(
    site, embedded_redis_url
) -> None:
    s, state = site
    await ingest(s, embedded_redis_url, notice(1))  # planned: its deliveries wait in the queue
    urgent = notice(2, urgent=True, regions=["150627100007"])
    await ingest(s, embedded_redis_url, urgent, plan=False)  # its planning queued after them
    await run_workers(s, embedded_redis_url, max_jobs=1)
    assert state.messages[0].key == "vg-7" and "第2号通知" in state.messages[0].content
    assert len(state.messages) == VILLAGES + 1


async def test_a_recall_before_planning_stops_it(site, embedded_redis_url) -> None:
    s, state = site
    await ingest(s, embedded_redis_url, notice(), plan=False)
    await execute(s, update(Item).values(status="recalled"))
    (answer,) = await plan_now(s, embedded_redis_url)
    assert answer == "recalled"
    assert await planning_of(s, "notice-1") == ("cancelled", 0, None)
    rows, _ = await fetch_deliveries(s)
    assert rows == [] and state.messages == []


async def test_an_item_is_published_only_once_planning_has_ended(site, embedded_redis_url) -> None:
    """The first chunk's deliveries may all end while later chunks are still being planned."""
    s, _ = site
    await ingest(s, embedded_redis_url, notice())
    await execute(s, update(Item).values(planning_status="running", planning_lease_until=utcnow()))
    await run_workers(s, embedded_redis_url)
    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            it = await session.get(Item, "notice-1")
            assert it is not None and it.status == "publishing"  # every delivery ended, yet
    finally:
        await engine.dispose()
    await execute(s, update(Item).values(planning_status="pending", planning_lease_until=None))
    await plan_now(s, embedded_redis_url)
    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            it = await session.get(Item, "notice-1")
            assert it is not None and it.status == "published"
    finally:
        await engine.dispose()


async def test_a_broken_template_fails_the_planning_by_name_and_sending_again_retries(
    site, embedded_redis_url, monkeypatch
) -> None:
    """A county's template override that cannot render: the item says why its planning
    failed; once the template is fixed, the same item sent again is planned."""
    s, _ = site
    override = s.data_dir / "templates" / "village_group" / "zh"
    override.mkdir(parents=True)
    (override / "message.md.j2").write_text("{{ no_such_field.title }}", encoding="utf-8")
    monkeypatch.setenv("GONGKAI_DATA_DIR", str(s.data_dir))
    await ingest(s, embedded_redis_url, notice(), plan=False)
    (answer,) = await plan_now(s, embedded_redis_url)
    assert answer.startswith("failed")
    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            it = await session.get(Item, "notice-1")
            assert it is not None and it.planning_status == "failed"
            assert "no_such_field" in (it.planning_error or "")
    finally:
        await engine.dispose()
    (override / "message.md.j2").unlink()
    again = await ingest(s, embedded_redis_url, notice(), plan=False)
    assert not again.created and again.warnings == ["its planning had failed: it is planned again"]
    await plan_now(s, embedded_redis_url)
    assert await planning_of(s, "notice-1") == ("done", VILLAGES, VILLAGES)
