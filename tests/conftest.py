"""Shared fixtures: a fresh data dir, settings, an embedded or a real Redis, an HTTP session."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.servers import PgServer, RedisServer

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture(scope="session")
def embedded_redis_url() -> Iterator[str]:
    """One embedded Redis for the session; tests use distinct databases or key prefixes."""
    from gongkai.cli.embedded_redis import EmbeddedRedis

    tmp = tempfile.mkdtemp(prefix="gongkai-redis-")
    server = EmbeddedRedis(Path(tmp))
    yield server.url
    server.close()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def real_redis_url() -> Iterator[str]:
    """Debian's redis-server on a loopback port (skips when it is not installed)."""
    try:
        server = RedisServer()
    except RuntimeError:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    try:
        server.start()
    except RuntimeError:
        server.close()
        pytest.fail("redis-server did not start")
    yield server.url
    server.close()


@pytest.fixture
async def redis(embedded_redis_url: str) -> AsyncIterator[object]:
    """An async Redis client on a flushed embedded server."""
    from redis.asyncio import Redis

    client = Redis.from_url(embedded_redis_url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
async def gk(tmp_path: Path, embedded_redis_url: str, redis: object):
    """A migrated Gongkai with the sample directory, its test client and tokens per role."""
    from gongkai.storage.models import Role
    from tests.support import prepare_db, running_app, settings_for, token

    s = settings_for(tmp_path)
    await prepare_db(s)
    tokens = {role.value: await token(s, role, f"{role.value}-user") for role in Role}
    async with running_app(s, embedded_redis_url) as client:
        client.settings = s  # type: ignore[attr-defined]
        client.redis_url = embedded_redis_url  # type: ignore[attr-defined]
        client.tokens = tokens  # type: ignore[attr-defined]
        client.auth = lambda role: {"Authorization": f"Bearer {tokens[role]}"}  # type: ignore[attr-defined]
        yield client


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a loopback port (Debian's postgresql package)."""
    try:
        server = PgServer()
    except RuntimeError:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server.start()
    try:
        yield server.url
    finally:
        server.close()


CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
# Debian's Chromium as the probe ran it: no background networking on this closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    """Headless Debian Chromium through Playwright (never a downloaded browser)."""
    if not HAVE_CHROMIUM:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    async_api = pytest.importorskip("playwright.async_api")
    async with async_api.async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            await instance.close()
