"""The arq worker: one WorkerSettings, shared clients built once at start-up and put in ctx."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import aiohttp
from arq import cron, func
from arq.worker import Worker

from gongkai.bot.settings import Settings
from gongkai.dispatch.delivery import Deps, deliver_batch, poll_pending
from gongkai.dispatch.queue import DELIVER_JOB, POLL_JOB, QUEUE_NAME
from gongkai.dispatch.ratelimit import RateLimiter
from gongkai.dispatch.redis_server import arq_settings
from gongkai.dispatch.sweeper import sweep_stuck
from gongkai.storage.crypto import Sealer
from gongkai.storage.db import make_engine, make_sessionmaker

log = logging.getLogger(__name__)


async def deliver_job(ctx: dict[str, Any], *delivery_ids: int) -> str:
    """Jobs carry ids only, several per job; each id is guarded by its own row."""
    words = await deliver_batch(ctx["deps"], list(delivery_ids))
    return ", ".join(f"{i}: {w}" for i, w in zip(delivery_ids, words, strict=True))


async def sweep_job(ctx: dict[str, Any]) -> int:
    return await sweep_stuck(ctx["deps"])


async def poll_job(ctx: dict[str, Any], delivery_id: int) -> str:
    return await poll_pending(ctx["deps"], delivery_id)


# Jobs a worker runs at once. A job holds up to queue.BATCH claimed deliveries whose sends share
# the worker's ``worker_concurrency`` slots, so a few jobs keep those slots busy (one records
# while the others send); more would only claim rows that wait, and leave other workers idle.
MAX_JOBS = 4


def build_worker(
    settings: Settings, redis_url: str, *, burst: bool = False, max_jobs: int = MAX_JOBS
) -> Worker:
    async def startup(ctx: dict[str, Any]) -> None:
        engine = make_engine(settings.resolved_database_url)
        ctx["engine"] = engine
        ctx["deps"] = Deps(
            settings=settings,
            maker=make_sessionmaker(engine),
            sealer=Sealer(settings.resolved_secret_key()),
            http=aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)),
            pool=ctx["redis"],
            limiter=RateLimiter(redis_url, enabled=settings.rate_limits_enabled),
            slots=asyncio.Semaphore(settings.worker_concurrency),
        )

    async def shutdown(ctx: dict[str, Any]) -> None:
        deps: Deps | None = ctx.get("deps")
        if deps is not None:
            await deps.http.close()
            await deps.limiter.close()
        telegram = sys.modules.get("gongkai.channels.telegram")
        if telegram is not None:  # only when a Telegram bot was used: aiogram is slow to import
            await telegram.close_bots()
        if "engine" in ctx:
            await ctx["engine"].dispose()

    return Worker(
        functions=[func(deliver_job, name=DELIVER_JOB), func(poll_job, name=POLL_JOB)],
        queue_name=QUEUE_NAME,
        redis_settings=arq_settings(redis_url),
        cron_jobs=[cron(sweep_job, minute=set(range(0, 60, 5)), unique=True, run_at_startup=False)],
        on_startup=startup,
        on_shutdown=shutdown,
        burst=burst,
        max_jobs=max_jobs,
        keep_result=60,
        handle_signals=False,
        job_timeout=300,
        poll_delay=0.2,
        health_check_interval=10,
    )
