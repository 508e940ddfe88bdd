"""The application's shared objects, one typed key each (after aiohttp-demos' typedefs)."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.config import Settings
from gongkai.domain.workdays import WorkCalendar
from gongkai.storage.crypto import Sealer

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
MAKER = web.AppKey("maker", async_sessionmaker[AsyncSession])
SEALER = web.AppKey("sealer", Sealer)
POOL = web.AppKey("pool", ArqRedis)
REDIS_URL = web.AppKey("redis_url", str)
CALENDAR = web.AppKey("calendar", WorkCalendar)
HTTP = web.AppKey("http", aiohttp.ClientSession)
