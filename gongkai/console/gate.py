"""The one middleware in front of ``/admin``: sign-in, CSRF on every POST, strict headers.

It also lets a signed-in console user call the JSON API (``request[PRINCIPAL]``), asking the
CSRF token in ``X-CSRF-Token`` for anything but a read, so a cookie alone never authorises a
change from another site.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler

from gongkai.console.render import message_page
from gongkai.console.sessions import COOKIE, load_session, same_token
from gongkai.web.auth import PRINCIPAL
from gongkai.web.inputs import QueryRefused

PUBLIC_PATHS = {"/admin/login"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _is_console(path: str) -> bool:
    return path == "/admin" or path.startswith("/admin/")


def _harden(response: web.StreamResponse) -> None:
    if response.prepared:  # a stream (server-sent events) has sent its headers already
        return
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"


async def _api(request: web.Request, handler: Handler) -> web.StreamResponse:
    if "Authorization" not in request.headers and COOKIE in request.cookies:
        me = await load_session(request)
        if me is not None:
            if request.method not in SAFE_METHODS and not same_token(
                request.headers.get("X-CSRF-Token"), me.csrf
            ):
                raise web.HTTPForbidden(
                    text='{"error": "X-CSRF-Token is required with a console session"}',
                    content_type="application/json",
                )
            request[PRINCIPAL] = {"name": me.name, "role": me.role, "via": "console"}
    return await handler(request)


@web.middleware
async def console_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path.startswith("/api/"):
        return await _api(request, handler)
    if not _is_console(path):
        return await handler(request)
    if path == "/admin":
        raise web.HTTPFound("/admin/")
    try:
        response = await _console(request, handler)
    except web.HTTPException as exc:
        _harden(exc)
        raise
    except QueryRefused as exc:
        response = await message_page(request, 400, "查询参数有误", f"{exc.field}：{exc.message}")
    _harden(response)
    return response


async def _has_nul(request: web.Request) -> bool:
    """A NUL in a form value would fail the first PostgreSQL query it reached, as a 500."""
    if request.content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return False
    form = await request.post()  # cached by aiohttp: the handler reads it again for free
    return any(isinstance(v, str) and "\x00" in v for v in form.values())


async def _console(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in SAFE_METHODS and await _has_nul(request):
        return await message_page(request, 400, "请求无效", "表单含 NUL 字符。")
    if path_is_public(request.path):
        return await handler(request)
    me = await load_session(request)
    if me is None:
        if request.method == "GET" and not request.path.endswith("/events"):
            target = request.path_qs
            raise web.HTTPFound(f"/admin/login?next={quote(target, safe='')}")
        return await message_page(request, 401, "请先登录", "登录已过期或尚未登录，请重新登录。")
    if request.method not in SAFE_METHODS:
        given = request.headers.get("X-CSRF-Token")
        if given is None:
            form = await request.post()  # cached by aiohttp: the handler reads it again for free
            value = form.get("csrf")
            given = value if isinstance(value, str) else None
        if not same_token(given, me.csrf):
            return await message_page(
                request,
                403,
                "请求无效",
                "表单已过期或来源不明（CSRF 校验失败）。请返回上一页刷新后重试。",
            )
    request[PRINCIPAL] = {"name": me.name, "role": me.role, "via": "console"}
    return await handler(request)


def path_is_public(path: str) -> bool:
    return path in PUBLIC_PATHS
