"""An item turns published when its last delivery is recorded and its planning has ended — even
when the two are committed at the same moment by two workers on PostgreSQL.

Each transaction alone sees the other's change uncommitted; before the item's row lock was
taken by both, the recorder's transaction and the planning's end could each pass the item by,
and it stayed ``publishing`` for good (the API showed it published, the row did not).
"""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from gongkai.dispatch.plan_job import _end
from gongkai.dispatch.progress import finish_items
from gongkai.storage.db import make_engine, make_sessionmaker
from gongkai.storage.models import PlanningStatus
from tests.bot_support import until
from tests.support import ingest, item, prepare_db, settings_for

pytestmark = pytest.mark.postgres


async def _own_database(postgres_url: str) -> str:
    name = f"finish_{uuid.uuid4().hex[:8]}"  # others share this server
    engine = make_engine(postgres_url)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f"CREATE DATABASE {name}"))
    await engine.dispose()
    return postgres_url.rsplit("/", 1)[0] + "/" + name


async def _waiting_on_a_lock(maker) -> bool:  # type: ignore[no-untyped-def]
    async with maker() as watch:
        found = await watch.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
        return bool(found.scalar())


async def test_last_delivery_and_planning_end_together_publish_the_item(
    tmp_path, postgres_url, embedded_redis_url
) -> None:
    s = settings_for(tmp_path, database_url=await _own_database(postgres_url))
    await prepare_db(s)
    await ingest(s, embedded_redis_url, item(id="race-1"))
    engine = make_engine(s.resolved_database_url)
    maker = make_sessionmaker(engine)
    try:
        async with maker() as setup:  # the moment before: one delivery left, planning running
            last = (
                await setup.execute(text("SELECT max(id) FROM delivery WHERE item_id = 'race-1'"))
            ).scalar()
            await setup.execute(
                text(
                    "UPDATE delivery SET status = CASE WHEN id = :last THEN 'sending'"
                    " ELSE 'delivered' END WHERE item_id = 'race-1'"
                ),
                {"last": last},
            )
            await setup.execute(
                text(
                    "UPDATE item SET status = 'publishing', planning_status = 'running',"
                    " planning_owner = NULL WHERE id = 'race-1'"
                )
            )
            await setup.commit()

        async with maker() as recorder:  # the worker recording the last delivery
            await recorder.execute(
                text("UPDATE delivery SET status = 'delivered' WHERE id = :last"), {"last": last}
            )
            await finish_items(recorder, {"race-1"})
            # meanwhile the planning worker ends the planning, before the recorder commits
            worker = SimpleNamespace(maker=maker, worker_id="planner")
            ending = asyncio.create_task(_end(worker, "race-1", PlanningStatus.done, None))  # type: ignore[arg-type]
            # it ends at once (the bug) or waits for the item's row lock (the fix)
            await until(lambda: ending.done() or _waiting_on_a_lock(maker))
            await recorder.commit()
        await asyncio.wait_for(ending, 10)

        async with maker() as check:
            status, planning = (
                await check.execute(
                    text("SELECT status, planning_status FROM item WHERE id = 'race-1'")
                )
            ).one()
        assert (status, planning) == ("published", "done")
    finally:
        await engine.dispose()
