"""API tokens (stored hashed) and the role check on every API route."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.storage.models import ROLE_RANK, ApiToken, Role
from gongkai.web.answers import Error, dumps
from gongkai.web.keys import MAKER

TOKEN_PREFIX = "gk_"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PRINCIPAL = web.RequestKey("principal", dict)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(session: AsyncSession, role: Role, name: str) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, role=role, token_hash=hash_token(token)))
    await session.commit()
    return token


def _json_error(status: int, message: str) -> web.HTTPException:
    cls = {401: web.HTTPUnauthorized, 403: web.HTTPForbidden}[status]
    headers = {"WWW-Authenticate": 'Bearer realm="gongkai"'} if status == 401 else None
    return cls(text=dumps(Error(error=message)), content_type="application/json", headers=headers)


async def principal(request: web.Request) -> dict[str, Any] | None:
    """The caller of this request: an API token, or a console session set by the admin app."""
    if PRINCIPAL in request:
        return request[PRINCIPAL]
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    token = header[len("Bearer ") :].strip()
    async with request.app[MAKER]() as session:
        row = (
            await session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
        ).first()
    if row is None or row.revoked:
        return None
    request[PRINCIPAL] = {"name": row.name, "role": row.role, "via": "token"}
    return request[PRINCIPAL]


def require(role: Role) -> Callable[[Handler], Handler]:
    def wrap(handler: Handler) -> Handler:
        async def checked(request: web.Request) -> web.StreamResponse:
            who = await principal(request)
            if who is None:
                raise _json_error(401, "a valid token is required (Authorization: Bearer …)")
            if ROLE_RANK[Role(who["role"])] < ROLE_RANK[role]:
                raise _json_error(403, f"the {role.value} role is required")
            return await handler(request)

        checked.__name__ = handler.__name__
        checked.__doc__ = handler.__doc__
        checked.required_role = role  # type: ignore[attr-defined]
        return checked

    return wrap
