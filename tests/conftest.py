"""Shared fixtures: a fresh data dir, settings, an embedded or a real Redis, an HTTP session."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="gongkai-real-redis-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", tmp],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("redis-server did not start")
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(5)
    shutil.rmtree(tmp, ignore_errors=True)


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
        client.tokens = tokens  # type: ignore[attr-defined]
        client.auth = lambda role: {"Authorization": f"Bearer {tokens[role]}"}  # type: ignore[attr-defined]
        yield client


def _pg_bin(name: str) -> str | None:
    import glob

    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a loopback port (Debian's postgresql package)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    tmp = tempfile.mkdtemp(prefix="gongkai-pg-")
    data = os.path.join(tmp, "data")
    port = free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(tmp, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_user, initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    subprocess.run(
        [
            *as_user,
            pg_ctl,
            "-D",
            data,
            "-w",
            "-l",
            os.path.join(tmp, "log"),
            "-o",
            f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, pg_ctl, "-D", data, "-m", "immediate", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(tmp, ignore_errors=True)


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
