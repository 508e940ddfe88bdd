"""The claim of a delivery job: what must wait (backing off, scheduled for later) is not
claimed until it is due, and a row a worker stopped with is taken over beside ready rows.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from gongkai.sandbox import wecom_robot
from gongkai.sandbox.server import serve
from gongkai.storage.types import utcnow
from tests.support import fetch_deliveries, ingest, item, prepare_db, settings_for
from tests.test_worker import set_deliveries, set_items

VILLAGE = "150627100201"  # one village group, robot key "robot-1"


@pytest.fixture
async def robot():  # type: ignore[no-untyped-def]
    app, state = wecom_robot.make_app(valid_keys={"robot-1"})
    async with serve(app) as url:
        yield url, state


async def notice_to_the_village(s, redis_url: str, item_id: str):  # type: ignore[no-untyped-def]
    """A notice to the one village group, ingested and planned."""
    notice = item(
        id=item_id, kind="notice", doc_number=None, regions=[VILLAGE], channels=["village_group"]
    )
    return await ingest(s, redis_url, notice)


async def run_job(s, redis_url, ids):  # type: ignore[no-untyped-def]
    """The job a worker runs for ``ids``, on a fresh worker's deps (no cache carried over)."""
    from gongkai.dispatch.delivery import deliver_batch
    from gongkai.dispatch.worker import close_deps, open_deps

    deps, engine = open_deps(s, redis_url)
    try:
        return await deliver_batch(deps, ids)
    finally:
        await close_deps(deps, engine)


async def test_rows_not_due_yet_are_not_claimed_and_go_once_due(
    tmp_path, embedded_redis_url, robot
):
    url, state = robot
    s = settings_for(tmp_path, wecom_api_base=url, quiet_hours="off")  # no quiet hours hold
    await prepare_db(s)
    result = await notice_to_the_village(s, embedded_redis_url, "notice-1")
    ids = [d.id for d in result.deliveries]
    assert len(ids) == 1

    await set_deliveries(s, not_before=utcnow() + timedelta(minutes=10))  # backing off
    assert await run_job(s, embedded_redis_url, ids) == ["not yet"]
    await set_deliveries(s, not_before=None)
    await set_items(s, publish_at=utcnow() + timedelta(minutes=10))  # scheduled for later
    assert await run_job(s, embedded_redis_url, ids) == ["scheduled"]
    (d,), attempts = await fetch_deliveries(s)
    assert d.status in ("queued", "scheduled") and not attempts[d.id]
    assert state.messages == []

    await set_items(s, publish_at=utcnow() - timedelta(minutes=1))  # due now
    assert await run_job(s, embedded_redis_url, ids) == ["delivered"]
    assert await run_job(s, embedded_redis_url, ids) == ["skipped (delivered)"]
    assert len(state.messages) == 1


async def test_a_row_whose_lease_ran_out_is_taken_over_alongside_ready_rows(
    tmp_path, embedded_redis_url, robot
):
    url, state = robot
    s = settings_for(tmp_path, wecom_api_base=url, quiet_hours="off")  # no quiet hours hold
    await prepare_db(s)
    first = await notice_to_the_village(s, embedded_redis_url, "notice-1")
    await set_deliveries(  # a worker claimed it and stopped renewing
        s, status="sending", lease_until=utcnow() - timedelta(seconds=5), lease_owner="gone:1"
    )
    second = await notice_to_the_village(s, embedded_redis_url, "notice-2")
    ids = [first.deliveries[0].id, second.deliveries[0].id]
    assert await run_job(s, embedded_redis_url, ids) == ["delivered", "delivered"]
    assert await run_job(s, embedded_redis_url, ids) == ["skipped (delivered)"] * 2
    assert len(state.messages) == 2
