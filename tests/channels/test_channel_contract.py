"""The channel contract (issue 3): every channel in the table keeps the same four promises.

Its parts stay within the provider's documented limits; a transient error is retried and the
retry resumes at the failed part, a permanent one is never retried; a job that runs several
times sends each part once; recall deletes what the provider lets us delete and says so for
the rest, and a recall before the worker runs sends nothing. The rows (how to run each fake,
make it fail, count what it got) are in ``contract_cases.py``: a new channel joins by adding
a row, and cannot opt out of a promise without saying why there.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from arq import create_pool

from gongkai.channels import telegram
from gongkai.config import Settings
from gongkai.dispatch.planning import open_part
from gongkai.dispatch.queue import arq_settings, enqueue_delivery
from gongkai.dispatch.worker import build_worker
from gongkai.sandbox.server import serve
from gongkai.storage.crypto import Sealer
from gongkai.storage.models import Role
from tests.channels.contract_cases import CASES, ITEM_ID, ChannelCase, directory_for, long_item
from tests.support import (
    fetch_deliveries,
    ingest,
    polls_due_now,
    prepare_db,
    running_app,
    settings_for,
)
from tests.support import token as make_token

# --- running it ------------------------------------------------------------------------------


@dataclass
class Env:
    case: ChannelCase
    settings: Settings
    redis_url: str
    state: Any  # the fake's record; None without a fake
    trap: Trap | None = None

    def received(self) -> int | None:
        return None if self.case.received is None else self.case.received(self.state)


class Trap:
    """Springs the fake's own transient failure once it has accepted the first part, so a
    multi-part retry must resume at the failed part. Sits in front of the fake's routes."""

    def __init__(self, received: Callable[[], int]) -> None:
        self.received = received
        self.spring: Callable[[], None] | None = None

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response = await handler(request)
        if self.spring is not None and self.received() >= 1:
            spring, self.spring = self.spring, None
            spring()
        return response


@pytest.fixture(params=CASES, ids=lambda c: c.name)
async def env(
    request: pytest.FixtureRequest, tmp_path: Any, embedded_redis_url: str, redis: Any
) -> AsyncIterator[Env]:
    case: ChannelCase = request.param
    async with contextlib.AsyncExitStack() as stack:
        overrides: dict[str, Any] = {}
        state = trap = None
        if case.make_fake is not None:
            app, state = case.make_fake()
            if case.received is not None:
                trap = Trap(lambda: case.received(state))  # type: ignore[misc]
                app.middlewares.append(trap.middleware)
            overrides[case.setting] = await stack.enter_async_context(serve(app))
        s = settings_for(tmp_path, **overrides)
        await prepare_db(s, directory_for(case))
        try:
            yield Env(case, s, embedded_redis_url, state, trap)
        finally:
            await telegram.close_bots()  # the app's recall opens a bot of its own


async def work(env: Env, n: int = 1) -> None:
    """Run ``n`` workers until the queue is empty.

    WeChat judges an article a minute after it was submitted, so its poll job is deferred by
    a minute; the queue is moved on to that minute instead of the test waiting it out.
    """
    workers = [build_worker(env.settings, env.redis_url, max_jobs=10) for _ in range(n)]
    tasks = [asyncio.create_task(w.async_run()) for w in workers]
    pool = await create_pool(arq_settings(env.redis_url))
    try:
        deadline = time.monotonic() + 30
        while jobs := await polls_due_now(pool):
            for task in tasks:
                if task.done():
                    task.result()  # a worker that crashed says why
            assert time.monotonic() < deadline, f"the queue never drained: {jobs}"
            await asyncio.sleep(0.02)
    finally:
        await pool.aclose()
        for w in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await w.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def enqueue_again(env: Env, delivery_id: int, times: int) -> None:
    pool = await create_pool(arq_settings(env.redis_url))
    try:
        for _ in range(times):  # as arq's at-least-once redelivery would
            await enqueue_delivery(pool, delivery_id)
    finally:
        await pool.aclose()


async def the_delivery(env: Env) -> tuple[Any, list[Any]]:
    (d,), attempts = await fetch_deliveries(env.settings, ITEM_ID)
    return d, attempts[d.id]


async def post_recall(env: Env, client: TestClient) -> dict[str, Any]:
    publisher = await make_token(env.settings, Role.publisher, "publisher")
    r = await client.post(
        f"/api/v1/items/{ITEM_ID}/recall", headers={"Authorization": f"Bearer {publisher}"}
    )
    assert r.status == 200, await r.text()
    return await r.json()


def assert_each_part_sent_once(env: Env, d: Any, attempts: list[Any]) -> None:
    parts = len(d.payload["parts"])
    sent = [a.part_index for a in attempts if a.outcome in ("delivered", "pending")]
    assert sent == list(range(parts)), [(a.part_index, a.outcome) for a in attempts]
    if env.received() is not None:
        assert env.received() == parts


def skip_without_fake(case: ChannelCase) -> None:
    if case.fail_once is None or case.fail_for_good is None:
        pytest.skip(case.no_fake)


# --- the promises ----------------------------------------------------------------------------


async def test_every_part_keeps_the_providers_documented_limits(env: Env) -> None:
    await ingest(env.settings, env.redis_url, long_item(env.case.name))
    d, _ = await the_delivery(env)
    sealer = Sealer(env.settings.resolved_secret_key())
    parts = [open_part(p, sealer) for p in d.payload["parts"]]
    assert len(parts) >= env.case.min_parts, d.notes
    for part in parts:
        env.case.check_part(part)


async def test_a_transient_error_is_retried_and_resumes_at_the_failed_part(env: Env) -> None:
    skip_without_fake(env.case)
    assert env.case.fail_once is not None and env.trap is not None
    await ingest(env.settings, env.redis_url, long_item(env.case.name))
    d, _ = await the_delivery(env)
    failing = 1 if len(d.payload["parts"]) > 1 else 0  # the second part when there is one
    fail_once = partial(env.case.fail_once, env.state)
    if failing:
        env.trap.spring = fail_once
    else:
        fail_once()
    await work(env)
    d, attempts = await the_delivery(env)
    outcomes = [(a.part_index, a.outcome) for a in attempts]
    assert d.status == "delivered", (d.last_error, outcomes)
    (transient,) = [a for a in attempts if a.outcome == "transient"]
    assert transient.part_index == failing and transient.error, outcomes
    assert attempts[failing] is transient  # only the parts before it went first
    assert_each_part_sent_once(env, d, attempts)
    # the ids of parts accepted before the failure survive the retry's record, in order
    accepted = [a.provider_message_id for a in attempts if a.provider_message_id]
    assert [i for i in d.provider_message_ids if i in accepted] == accepted


async def test_a_permanent_error_is_not_retried(env: Env) -> None:
    skip_without_fake(env.case)
    env.case.fail_for_good(env.state)  # type: ignore[misc]
    await ingest(env.settings, env.redis_url, long_item(env.case.name))
    await work(env)
    d, attempts = await the_delivery(env)
    assert d.status == "dead"
    assert env.case.permanent_error in (d.last_error or ""), d.last_error
    assert [a.outcome for a in attempts] == ["permanent"]
    await enqueue_again(env, d.id, 1)  # and a job that runs again leaves it alone
    await work(env)
    d, attempts = await the_delivery(env)
    assert d.status == "dead" and len(attempts) == 1
    assert env.received() == 0


async def test_a_job_that_runs_several_times_sends_each_part_once(env: Env) -> None:
    await ingest(env.settings, env.redis_url, long_item(env.case.name))
    d, _ = await the_delivery(env)
    await enqueue_again(env, d.id, 3)
    await work(env, n=2)
    d, attempts = await the_delivery(env)
    assert d.status == "delivered", (d.last_error, [a.outcome for a in attempts])
    assert_each_part_sent_once(env, d, attempts)
    await enqueue_again(env, d.id, 1)  # and once more after it was delivered
    await work(env)
    d, attempts = await the_delivery(env)
    assert_each_part_sent_once(env, d, attempts)


async def test_recall_deletes_what_the_provider_allows_and_says_so_for_the_rest(
    env: Env,
) -> None:
    case = env.case  # case.recallable is what the provider's API offers; the report must agree
    await ingest(env.settings, env.redis_url, long_item(case.name))
    await work(env)
    d, _ = await the_delivery(env)
    assert d.status == "delivered"
    sent = env.received()
    async with running_app(env.settings, env.redis_url) as client:
        report = await post_recall(env, client)
        d, _ = await the_delivery(env)
        if case.recallable:
            assert report["deleted"] == 1 and not report["errors"], report
            assert d.status == "cancelled"
            assert [n for n in d.notes if n.startswith("recalled: ")], d.notes
            assert case.gone is not None and await case.gone(env.state, client)
        else:
            assert report["not_recallable"] == 1, report
            assert f"cannot be recalled on the {case.name} channel" in d.notes
            assert d.status == "delivered"  # it did reach residents; the log must say so
    assert env.received() == sent  # nothing new went out


async def test_recall_before_the_worker_runs_sends_nothing(env: Env) -> None:
    await ingest(env.settings, env.redis_url, long_item(env.case.name))
    async with running_app(env.settings, env.redis_url) as client:
        report = await post_recall(env, client)
    assert report["cancelled"] == 1, report
    await work(env)
    d, attempts = await the_delivery(env)
    assert d.status == "cancelled" and attempts == []
    assert env.received() in (0, None)
