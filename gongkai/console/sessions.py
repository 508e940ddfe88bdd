"""Console sessions: a random id in an HttpOnly cookie, the session itself in Redis.

Server-side sessions can be ended at once (logout, a deactivated user) which a signed cookie
cannot. The Redis key is an HMAC of the cookie under the service's secret key, so a copy of
Redis does not hand out working cookies. Each session carries its own CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from gongkai.dispatch.ratelimit import Allowance
from gongkai.storage.models import ROLE_RANK, Role, User
from gongkai.web.clients import client_address
from gongkai.web.keys import MAKER, POOL, SETTINGS

COOKIE = "gk_admin"
LOGIN_CSRF_COOKIE = "gk_login_csrf"
IDLE_SECONDS = 8 * 3600
MAX_AGE_SECONDS = 24 * 3600
PREFIX = "gongkai:admin:"
LOGIN_FAILURES_ALLOWED = 5
LOGIN_WINDOW_SECONDS = 15 * 60


@dataclass
class ConsoleSession:
    """What the console knows about the signed-in user, refreshed from the User row each time."""

    key: str
    uid: int
    name: str
    role: str
    csrf: str
    created: float
    flashes: list[list[str]] = field(default_factory=list)

    def can(self, role: Role) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[role]

    def stored(self) -> str:
        data = asdict(self)
        data.pop("key")
        return json.dumps(data, ensure_ascii=False)


SESSION = web.RequestKey("console_session", ConsoleSession)


def _redis_key(app: web.Application, sid: str) -> str:
    secret = app[SETTINGS].resolved_secret_key().encode()
    return (
        PREFIX
        + "session:"
        + hmac.new(secret, b"session:" + sid.encode(), hashlib.sha256).hexdigest()
    )


def cookie_secure(request: web.Request) -> bool:
    return request.secure or request.app[SETTINGS].public_url.startswith("https://")


async def start_session(request: web.Request, response: web.StreamResponse, user: User) -> None:
    """A fresh id on every login, so a session id planted before login is worth nothing."""
    sid = secrets.token_urlsafe(32)
    session = ConsoleSession(
        key=_redis_key(request.app, sid),
        uid=user.id or 0,
        name=user.name,
        role=user.role,
        csrf=secrets.token_urlsafe(32),
        created=time.time(),
    )
    await request.app[POOL].set(session.key, session.stored(), ex=IDLE_SECONDS)
    response.set_cookie(
        COOKIE,
        sid,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=cookie_secure(request),
        max_age=MAX_AGE_SECONDS,
    )


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    sid = request.cookies.get(COOKIE)
    if sid:
        await request.app[POOL].delete(_redis_key(request.app, sid))
    response.del_cookie(COOKIE, path="/")


async def load_session(request: web.Request) -> ConsoleSession | None:
    """The session behind the cookie, with the user's current role; None when it has ended."""
    if SESSION in request:
        return request[SESSION]
    sid = request.cookies.get(COOKIE)
    if not sid or len(sid) > 100:
        return None
    pool = request.app[POOL]
    key = _redis_key(request.app, sid)
    raw = await pool.get(key)
    if raw is None:
        return None
    data: dict[str, Any] = json.loads(raw)
    if time.time() - float(data.get("created", 0)) > MAX_AGE_SECONDS:
        await pool.delete(key)
        return None
    async with request.app[MAKER]() as db:
        user = await db.get(User, data["uid"])
    if user is None or not user.active:
        await pool.delete(key)
        return None
    session = ConsoleSession(
        key=key,
        uid=data["uid"],
        name=user.name,
        role=user.role,
        csrf=data["csrf"],
        created=data["created"],
        flashes=data.get("flashes", []),
    )
    await pool.expire(key, IDLE_SECONDS)
    request[SESSION] = session
    return session


async def flash(request: web.Request, message: str, kind: str = "ok") -> None:
    """A message shown once on the next page (after the redirect that follows a POST)."""
    session = request[SESSION]
    session.flashes.append([kind, message])
    await request.app[POOL].set(session.key, session.stored(), ex=IDLE_SECONDS)


async def take_flashes(request: web.Request) -> list[list[str]]:
    session = request.get(SESSION)
    if session is None or not session.flashes:
        return []
    shown, session.flashes = session.flashes, []
    await request.app[POOL].set(session.key, session.stored(), ex=IDLE_SECONDS)
    return shown


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


# --- login rate limit -----------------------------------------------------------------------


LOGIN_TRIES = web.AppKey("console_login_tries", Allowance)


def login_tries(redis_url: str) -> Allowance:
    """Five failed logins per name and address in fifteen minutes, counted in Redis."""
    return Allowance(
        redis_url, f"{LOGIN_FAILURES_ALLOWED}/{LOGIN_WINDOW_SECONDS // 60} minutes", "console-login"
    )


def _failure_key(name: str, ip: str) -> str:
    return hashlib.sha256(f"{name.strip().lower()}|{ip}".encode()).hexdigest()


async def login_blocked(request: web.Request, name: str) -> bool:
    return await request.app[LOGIN_TRIES].spent(_failure_key(name, client_address(request)))


async def record_login_failure(request: web.Request, name: str) -> None:
    """A window starting at the first failure: five tries per fifteen minutes."""
    await request.app[LOGIN_TRIES].take(_failure_key(name, client_address(request)))


async def clear_login_failures(request: web.Request, name: str) -> None:
    await request.app[LOGIN_TRIES].clear(_failure_key(name, client_address(request)))
