"""The one app factory, used by the CLI and by the tests (after aiohttp-demos)."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web
from arq import create_pool

from gongkai.config import Settings
from gongkai.dispatch.queue import arq_settings
from gongkai.domain.workdays import WorkCalendar
from gongkai.storage.crypto import Sealer
from gongkai.storage.db import make_engine, make_sessionmaker
from gongkai.web import api, errors, health, public
from gongkai.web.inputs import MAX_JSON_BYTES
from gongkai.web.keys import CALENDAR, ENGINE, HTTP, MAKER, POOL, REDIS_URL, SEALER, SETTINGS

log = logging.getLogger(__name__)

# Feature modules that add their own routes: each exposes ``setup(app)``. Imported lazily so a
# missing optional feature never stops the core service.
FEATURES = (
    "gongkai.web.script_routes",
    "gongkai.bots.wechat_callback",
    "gongkai.bots.telegram_webhook",
    "gongkai.web.questions",
    "gongkai.web.sandbox_routes",  # only with GONGKAI_SANDBOX on: the simulators and the banner
    "gongkai.web.short_links",
    "gongkai.web.applications",
    "gongkai.web.apply_pages",
    "gongkai.console",
)


async def _database(app: web.Application) -> AsyncIterator[None]:
    engine = make_engine(app[SETTINGS].resolved_database_url)
    app[ENGINE] = engine
    app[MAKER] = make_sessionmaker(engine)
    yield
    await engine.dispose()


async def _redis(app: web.Application) -> AsyncIterator[None]:
    pool = await create_pool(arq_settings(app[REDIS_URL]))
    app[POOL] = pool
    yield
    await pool.aclose()


async def _http(app: web.Application) -> AsyncIterator[None]:
    app[HTTP] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    yield
    await app[HTTP].close()
    telegram = sys.modules.get("gongkai.channels.telegram")
    if telegram is not None:  # bots opened for applicants' notices: aiogram is slow to import
        await telegram.close_bots()


@web.middleware
async def security_headers(request: web.Request, handler: Callable) -> web.StreamResponse:  # type: ignore[type-arg]
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def create_app(settings: Settings, redis_url: str) -> web.Application:
    app = web.Application(middlewares=[security_headers], client_max_size=MAX_JSON_BYTES)
    errors.install(app)  # outermost: it sees every other middleware's exceptions too
    app[SETTINGS] = settings
    app[REDIS_URL] = redis_url
    app[SEALER] = Sealer(settings.resolved_secret_key())
    app[CALENDAR] = WorkCalendar.from_file(settings.holidays_file)
    app.cleanup_ctx.extend([_database, _redis, _http])
    app.add_routes(api.routes)
    app.add_routes(public.routes)
    app.add_routes(health.routes)
    public.add_static(app)
    for name in FEATURES:  # a missing one is a broken build: fail here, loudly
        importlib.import_module(name).setup(app)
    return app
