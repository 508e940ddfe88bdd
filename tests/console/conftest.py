"""Console fixtures: a running Gongkai wired to a fake WeCom robot, users per role, and a
browser-like client per user (its own cookie jar, the CSRF token read from the page)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from gongkai.config import Settings
from gongkai.console.users import hash_password
from gongkai.sandbox import wecom_robot
from gongkai.sandbox.server import serve
from gongkai.storage.db import make_engine, make_sessionmaker
from gongkai.storage.models import Role, User
from tests.support import prepare_db, running_app, settings_for

PASSWORDS = {"admin": "admin-pass-1", "publisher": "publisher-pass-1", "viewer": "viewer-pass-1"}
_HASHES: dict[str, str] = {}  # argon2 is slow on purpose: hash each password once per run


def password_hash(role: str) -> str:
    if role not in _HASHES:
        _HASHES[role] = hash_password(PASSWORDS[role])
    return _HASHES[role]


def csrf_in(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


class Console:
    """One signed-in browser: cookies kept, the session's CSRF token added to every POST."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http
        self.csrf = ""

    async def get(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        return await self.http.get(path, **kw)

    async def post(
        self, path: str, data: Any = None, *, csrf: bool = True, **kw: Any
    ) -> aiohttp.ClientResponse:
        if isinstance(data, aiohttp.FormData):
            if csrf:
                data.add_field("csrf", self.csrf)
        else:
            data = list((data or {}).items()) if isinstance(data, dict) else list(data or [])
            if csrf:
                data.append(("csrf", self.csrf))
        return await self.http.post(path, data=data, **kw)

    async def text(self, path: str, status: int = 200) -> str:
        r = await self.get(path)
        body = await r.text()
        assert r.status == status, (r.status, body[:2000])
        return body


@dataclass
class Site:
    client: TestClient
    settings: Settings
    redis_url: str
    robot: wecom_robot.RobotState
    sessions: list[aiohttp.ClientSession]

    @property
    def base(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    def browser(self) -> aiohttp.ClientSession:
        http = aiohttp.ClientSession(base_url=self.base, cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.sessions.append(http)
        return http

    async def login(self, role: str, password: str | None = None) -> Console:
        console = Console(self.browser())
        page = await console.text("/admin/login")
        r = await console.post(
            "/admin/login",
            {
                "name": f"{role}-user",
                "password": password or PASSWORDS[role],
                "csrf": csrf_in(page),
            },
            csrf=False,
        )
        assert r.status == 200 and r.url.path == "/admin/", (r.status, await r.text())
        console.csrf = csrf_in(await r.text())
        return console

    def maker(self):  # type: ignore[no-untyped-def]
        return _Db(self.settings)


class _Db:
    """``async with site.maker() as session`` on the site's database."""

    def __init__(self, s: Settings) -> None:
        self.engine = make_engine(s.resolved_database_url)
        self.session = make_sessionmaker(self.engine)()

    async def __aenter__(self):  # type: ignore[no-untyped-def]
        return await self.session.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        await self.session.__aexit__(*exc)
        await self.engine.dispose()


async def add_users(s: Settings) -> None:
    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            for role in Role:
                session.add(
                    User(
                        name=f"{role.value}-user",
                        role=role.value,
                        password_hash=password_hash(role.value),
                    )
                )
            await session.commit()
    finally:
        await engine.dispose()


@pytest.fixture
async def robot() -> AsyncIterator[tuple[str, wecom_robot.RobotState]]:
    app, state = wecom_robot.make_app(valid_keys={"robot-1", "robot-2", "robot-3"})
    async with serve(app) as url:
        yield url, state


@pytest.fixture
async def site(
    tmp_path: Path,
    embedded_redis_url: str,
    redis: object,
    robot: tuple[str, wecom_robot.RobotState],
) -> AsyncIterator[Site]:
    url, state = robot
    s = settings_for(tmp_path, wecom_api_base=url, max_attempts=2)
    await prepare_db(s)
    await add_users(s)
    async with running_app(s, embedded_redis_url) as client:
        site = Site(client, s, embedded_redis_url, state, [])
        try:
            yield site
        finally:
            for http in site.sessions:
                await http.close()
