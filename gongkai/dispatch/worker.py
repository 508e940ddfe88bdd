"""The worker: arq for the work, the database for the truth, and a supervisor that rides out
outages.

``build_worker`` is one arq Worker (tests and ``gongkai publish --wait`` run it in burst mode).
``run_worker`` is what ``gongkai worker`` and ``gongkai run`` use: the shared clients and the
background rounds (lease renewal, reconciliation) live for the whole process, and the arq
Worker inside is rebuilt whenever Redis goes away, after a backoff, instead of the process
exiting. SIGTERM drains: nothing new is sent, claimed rows are handed back, in-flight sends
are recorded, within ``DRAIN_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from typing import Any

import aiohttp
from arq import Retry, func
from arq.connections import ArqRedis
from arq.worker import Worker
from redis.asyncio import ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError
from sqlalchemy.ext.asyncio import AsyncEngine

from gongkai.config import Settings
from gongkai.dispatch.application_reminders import remind_forever
from gongkai.dispatch.budget import Budget
from gongkai.dispatch.delivery import Deps, deliver_batch, poll_pending
from gongkai.dispatch.leases import renew_leases_forever
from gongkai.dispatch.notice_retry import NOTICE_JOB, notice_retry_job
from gongkai.dispatch.plan_job import PLAN_JOB, plan_job
from gongkai.dispatch.queue import DELIVER_JOB, POLL_JOB, QUEUE_NAME, arq_settings
from gongkai.dispatch.ratelimit import RateLimiter
from gongkai.dispatch.reconcile import reconcile_forever
from gongkai.dispatch.rows import DATABASE_DOWN
from gongkai.storage.crypto import Sealer
from gongkai.storage.db import make_engine, make_sessionmaker

log = logging.getLogger(__name__)

# Jobs a worker runs at once. A job holds up to queue.BATCH claimed deliveries whose sends share
# the worker's ``worker_concurrency`` slots, so a few jobs keep those slots busy (one claims
# while the others send); more would only claim rows that wait, and leave other workers idle.
MAX_JOBS = 3
DRAIN_SECONDS = 5.0
# What an arq loop dies of when Redis goes away. redis-py turns a connection lost in the middle
# of a WATCH (arq's start_jobs, which now waits there for a free job slot more often) into a
# WatchError; arq catches the WatchError of a lost race itself, so this one is the outage.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, WatchError, ConnectionError, OSError)


async def deliver_job(ctx: dict[str, Any], *delivery_ids: int) -> str:
    """Jobs carry ids only, several per job; each id is guarded by its own row."""
    try:
        words = await deliver_batch(ctx["deps"], list(delivery_ids))
    except DATABASE_DOWN as exc:  # nothing was claimed: run the same job again shortly
        log.warning("database unavailable (%s); job retried", type(exc).__name__)
        raise Retry(defer=2) from exc
    return ", ".join(f"{i}: {w}" for i, w in zip(delivery_ids, words, strict=True))


async def poll_job(ctx: dict[str, Any], delivery_id: int) -> str:
    return await poll_pending(ctx["deps"], delivery_id)


# Every arq function a worker runs, under the name jobs are enqueued with. Add a job kind here.
JOB_FUNCTIONS = [
    func(deliver_job, name=DELIVER_JOB),
    func(poll_job, name=POLL_JOB),
    func(plan_job, name=PLAN_JOB),
    func(notice_retry_job, name=NOTICE_JOB),  # an applicant's notice refused for now
]


def open_pool(redis_url: str) -> ArqRedis:
    """A Redis client that connects on first use and reconnects after an outage by itself."""
    if redis_url.startswith("unix://"):
        pool = ConnectionPool.from_url(redis_url, socket_connect_timeout=5)
    else:
        pool = ConnectionPool.from_url(redis_url, socket_connect_timeout=5, socket_timeout=30)
    return ArqRedis(connection_pool=pool)


def open_deps(settings: Settings, redis_url: str) -> tuple[Deps, AsyncEngine]:
    engine = make_engine(settings.resolved_database_url)
    deps = Deps(
        settings=settings,
        maker=make_sessionmaker(engine),
        sealer=Sealer(settings.resolved_secret_key()),
        http=aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=settings.http_timeout_seconds)
        ),
        pool=open_pool(redis_url),
        limiter=RateLimiter(redis_url, enabled=settings.rate_limits_enabled),
        slots=Budget(settings.worker_concurrency),
        unrecorded=Budget(2 * settings.worker_concurrency),
    )
    return deps, engine


async def close_deps(deps: Deps, engine: AsyncEngine) -> None:
    await deps.http.close()
    await deps.limiter.close()
    with contextlib.suppress(Exception):
        await deps.pool.aclose(close_connection_pool=True)
    telegram = sys.modules.get("gongkai.channels.telegram")
    if telegram is not None:  # only when a Telegram bot was used: aiogram is slow to import
        await telegram.close_bots()
    await engine.dispose()


def start_background(deps: Deps, *, reconcile: bool) -> list[asyncio.Task[None]]:
    tasks = [asyncio.create_task(renew_leases_forever(deps))]
    if reconcile:
        tasks.append(asyncio.create_task(reconcile_forever(deps)))
        tasks.append(asyncio.create_task(remind_forever(deps)))  # applications' due days
    return tasks


async def stop_background(tasks: list[asyncio.Task[None]]) -> None:
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t


def build_worker(
    settings: Settings,
    redis_url: str,
    *,
    burst: bool = False,
    max_jobs: int = MAX_JOBS,
    deps: Deps | None = None,
) -> Worker:
    """One arq Worker. Without ``deps`` it opens its own and runs its own background rounds
    (reconciliation only when long-lived); with them, the caller owns both."""

    async def startup(ctx: dict[str, Any]) -> None:
        if deps is not None:
            ctx["deps"] = deps
            return
        own, engine = open_deps(settings, redis_url)
        ctx["deps"], ctx["engine"] = own, engine
        ctx["background"] = start_background(own, reconcile=not burst)

    async def shutdown(ctx: dict[str, Any]) -> None:
        if "engine" not in ctx:
            return
        await stop_background(ctx["background"])
        await close_deps(ctx["deps"], ctx["engine"])

    return Worker(
        functions=list(JOB_FUNCTIONS),
        queue_name=QUEUE_NAME,
        redis_settings=arq_settings(redis_url),
        on_startup=startup,
        on_shutdown=shutdown,
        burst=burst,
        max_jobs=max_jobs,
        keep_result=60,
        handle_signals=False,
        job_timeout=300,
        # a worker takes its next job only when it polls: at 0.2 s, jobs of a couple of hundred
        # ids left it idle between them (bench/fanout.py); twenty polls a second cost Redis nothing
        poll_delay=0.05,
        health_check_interval=10,
        max_tries=1000,
    )


async def run_worker(
    settings: Settings,
    redis_url: str,
    stop: asyncio.Event,
    *,
    max_jobs: int = MAX_JOBS,
    drain_seconds: float = DRAIN_SECONDS,
) -> None:
    """Run until ``stop`` is set; an unreachable Redis or database is waited out, never fatal."""
    deps, engine = open_deps(settings, redis_url)
    background = start_background(deps, reconcile=True)
    pause = 1.0
    try:
        while not stop.is_set():
            worker = build_worker(settings, redis_url, max_jobs=max_jobs, deps=deps)
            started = time.monotonic()
            run = asyncio.create_task(worker.async_run())
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({run, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if stop.is_set():
                await drain(worker, deps, drain_seconds)
                await _discard(worker, run)
                break
            error = run.exception() if not run.cancelled() else None
            await _settle(worker)
            await _discard(worker, run)
            if error is None:
                break
            if not isinstance(error, REDIS_DOWN):
                raise error
            if time.monotonic() - started > 60:
                pause = 1.0
            log.warning(
                "Redis unreachable (%s: %s); the worker tries again in %.0f s",
                type(error).__name__,
                error,
                pause,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
            pause = min(pause * 2, 30.0)
    finally:
        await stop_background(background)
        await close_deps(deps, engine)


async def drain(worker: Worker, deps: Deps, seconds: float) -> None:
    """Stop taking jobs; let lanes record what is in flight and hand the rest back."""
    deps.stopping = True
    worker.allow_pick_jobs = False
    tasks = [t for t in worker.tasks.values() if not t.done()]
    if tasks:
        log.info("stopping: finishing %d jobs (at most %.0f s)", len(tasks), seconds)
        _, pending = await asyncio.wait(tasks, timeout=seconds)
        for t in pending:
            t.cancel()
        if pending:
            log.warning("stopping: %d jobs cut short; their leases will run out", len(pending))


async def _settle(worker: Worker) -> None:
    """Let a dead arq loop's running jobs finish: they record to the database, not Redis."""
    tasks = [t for t in worker.tasks.values() if not t.done()]
    if tasks:
        await asyncio.wait(tasks, timeout=60)


async def _discard(worker: Worker, run: asyncio.Task[None]) -> None:
    if worker.main_task is not None:
        worker.main_task.cancel()
    run.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await run
    for t in worker.tasks.values():
        t.cancel()
    if worker._pool is not None:  # arq's own client; ours (deps.pool) lives on
        with contextlib.suppress(Exception):
            await worker._pool.aclose(close_connection_pool=True)
        worker._pool = None
