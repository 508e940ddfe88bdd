"""Process wiring for ``gongkai run``, ``serve`` and ``worker``: Redis, migrations, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator

from aiohttp import web

from gongkai.cli.embedded_redis import EmbeddedRedis
from gongkai.config import Settings
from gongkai.dispatch.rows import DATABASE_DOWN
from gongkai.dispatch.worker import run_worker
from gongkai.storage.db import upgrade
from gongkai.web.app import create_app

log = logging.getLogger(__name__)


@contextlib.contextmanager
def redis_for(settings: Settings):  # type: ignore[no-untyped-def]
    """The configured Redis, or the embedded one in the data dir.

    The embedded server is shared by every process using the data dir: started here when none
    runs (this process then owns it), joined otherwise. Leaving stops it only when no other
    process still uses it, so a command never stops the server of a running service.
    Raises ``EmbeddedRedisError`` (a message for the user) when it cannot be started.
    """
    if settings.redis_url:
        yield settings.redis_url  # nothing embedded is started
        return
    embedded = EmbeddedRedis(settings.ensure_data_dir())
    try:
        yield embedded.url
    finally:
        embedded.close()


def settle_heap() -> None:
    """Move everything loaded at start-up out of the garbage collector's sight.

    A worker allocates a few hundred objects per delivery; with the default thresholds the
    collector runs often and its full passes walk every module, table and template loaded at
    start-up, which nothing will free. Freezing them and collecting young objects less often
    saved about 85 µs of CPU per delivery in ``bench/fanout.py`` (a fifth of the total).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)


@contextlib.asynccontextmanager
async def serving(settings: Settings, redis_url: str) -> AsyncIterator[web.AppRunner]:
    app = create_app(settings, redis_url)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    try:
        yield runner
    finally:
        await runner.cleanup()


async def run_all(
    settings: Settings,
    redis_url: str,
    *,
    web_on: bool = True,
    worker_on: bool = True,
    on_ready=None,
) -> None:  # type: ignore[no-untyped-def]
    """Until SIGINT or SIGTERM: then the web server closes and the worker drains (it finishes
    what is in flight and hands back what it had claimed)."""
    stop = asyncio.Event()
    _stop_on_signals(stop)
    if settings.sandbox_on:  # a worker alone too: nothing of this process reaches a provider
        from gongkai.sandbox import guard

        guard.arm()
    if not await _upgrade_when_reachable(settings, stop):
        return
    settle_heap()
    worker_task = asyncio.create_task(run_worker(settings, redis_url, stop)) if worker_on else None
    try:
        if web_on:
            async with serving(settings, redis_url):
                if on_ready:
                    await on_ready()
                await _wait(stop, worker_task)
        else:
            if on_ready:
                await on_ready()
            await _wait(stop, worker_task)
    finally:
        stop.set()
        if worker_task is not None:
            await worker_task


async def _upgrade_when_reachable(settings: Settings, stop: asyncio.Event) -> bool:
    """Migrate, waiting for a database that is not up yet (a host's boot order, a restart)
    instead of exiting; False when stopped meanwhile."""
    pause = 1.0
    while not stop.is_set():
        try:
            await upgrade(settings.resolved_database_url)
            return True
        except DATABASE_DOWN as exc:
            log.warning(
                "database unreachable (%s); trying again in %.0f s", type(exc).__name__, pause
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
            pause = min(pause * 2, 30.0)
    return False


async def _wait(stop: asyncio.Event, worker_task: asyncio.Task | None) -> None:  # type: ignore[type-arg]
    stopper = asyncio.create_task(stop.wait())
    waits = {stopper} | ({worker_task} if worker_task else set())
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
