"""A worker taking over an SMS delivery from a stopped one (kill -9): a part the stopped worker
may have had on the wire is never sent blind. Aliyun is asked by our OutId; found, the part
counts as sent; not found (or no way to ask), the delivery waits for a person."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from sqlmodel import update

from gongkai.dispatch.reconcile import reconcile
from gongkai.dispatch.worker import close_deps, open_deps
from gongkai.sandbox import aliyun_sms
from gongkai.sandbox.aliyun_sms import SentMessage
from gongkai.sandbox.server import serve
from gongkai.storage.db import make_engine, make_sessionmaker
from gongkai.storage.models import Attempt, Delivery
from gongkai.storage.types import utcnow
from tests.support import fetch_deliveries, ingest, item, prepare_db, run_workers, settings_for

VILLAGE = "150627100201"  # its SMS target texts 13800000000 and 13900000001


async def publish(s: Any, redis_url: str, item_id: str) -> int:
    notice = item(id=item_id, kind="notice", doc_number=None, channels=["sms"])
    notice["regions"] = [VILLAGE]
    await ingest(s, redis_url, notice)
    (d,), _ = await fetch_deliveries(s, item_id)
    return d.id


async def stopped_worker_left(s: Any, redis_url: str, on_the_wire: list[int]) -> None:
    """Every delivery claimed by a worker that then died, its lease run out; the parts in
    ``on_the_wire`` were written as leaving. Then reconciliation and a worker take over."""
    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            past = utcnow() - timedelta(seconds=5)
            result = await session.exec(
                update(Delivery).values(status="sending", lease_owner="dead", lease_until=past)
            )
            claimed = result.rowcount
            for delivery_id in on_the_wire:
                session.add(
                    Attempt(delivery_id=delivery_id, number=1, part_index=0, outcome="sending")
                )
            await session.commit()
    finally:
        await engine.dispose()
    deps, deps_engine = open_deps(s, redis_url)
    try:
        assert (await reconcile(deps))["leases_expired"] == claimed
    finally:
        await close_deps(deps, deps_engine)
    await run_workers(s, redis_url)


async def test_a_part_not_found_at_aliyun_is_never_resent_and_one_never_started_is_sent(
    tmp_path, embedded_redis_url, redis
) -> None:
    app, state = aliyun_sms.make_app()
    async with serve(app) as base:
        s = settings_for(tmp_path, aliyun_sms_endpoint=base)
        await prepare_db(s)
        uncertain = await publish(s, embedded_redis_url, "water-0")
        await publish(s, embedded_redis_url, "water-1")
        await stopped_worker_left(s, embedded_redis_url, on_the_wire=[uncertain])
        (d0,), attempts = await fetch_deliveries(s, "water-0")
        (d1,), _ = await fetch_deliveries(s, "water-1")
    assert d0.status == "dead" and "worker sending it stopped" in d0.last_error
    assert [a.outcome for a in attempts[d0.id]] == ["uncertain"]
    assert d1.status == "delivered"
    assert len(state.texts_to("13800000000")) == 1  # water-1 only: water-0 was never resent


async def test_a_part_aliyun_lists_by_our_out_id_counts_as_sent_and_is_not_resent(
    tmp_path, embedded_redis_url, redis
) -> None:
    app, state = aliyun_sms.make_app()
    async with serve(app) as base:
        s = settings_for(tmp_path, aliyun_sms_endpoint=base)
        await prepare_db(s)
        delivery_id = await publish(s, embedded_redis_url, "water-0")
        for phone in ("13800000000", "13900000001"):  # what the stopped worker's request did
            state.messages.append(
                SentMessage(
                    phone, "…", "sign", "SMS_1", {}, "biz-1", f"{delivery_id}-0", time.time()
                )
            )
        await stopped_worker_left(s, embedded_redis_url, on_the_wire=[delivery_id])
        (d,), _ = await fetch_deliveries(s, "water-0")
    assert d.status == "delivered", d.last_error
    assert any("按 OutId 查到已发送" in n for n in d.notes)
    assert f"outid:{d.id}-0" in d.provider_message_ids
    assert len(state.texts_to("13800000000")) == 1  # only what the stopped worker sent
    assert [r["Action"] for r in state.requests] == ["QuerySendDetails"]
