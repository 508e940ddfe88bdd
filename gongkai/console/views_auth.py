"""Sign in and sign out.

The login form has no session yet, so its CSRF token is a double-submit cookie: a page on
another site can make the browser post the form but cannot read the cookie to fill the field.
"""

from __future__ import annotations

import secrets

from aiohttp import web

from gongkai.console.render import page, see_other
from gongkai.console.sessions import (
    LOGIN_CSRF_COOKIE,
    LOGIN_FAILURES_ALLOWED,
    LOGIN_WINDOW_SECONDS,
    clear_login_failures,
    cookie_secure,
    end_session,
    load_session,
    login_blocked,
    record_login_failure,
    same_token,
    start_session,
)
from gongkai.console.users import authenticate
from gongkai.web.inputs import local_target
from gongkai.web.keys import MAKER

routes = web.RouteTableDef()


def _safe_next(value: str | None) -> str:
    """Only back into the console: never an open redirect to another host, never a header
    split by CR/LF."""
    return local_target(value, "/admin/")


async def _login_form(
    request: web.Request, *, status: int = 200, error: str = "", name: str = ""
) -> web.Response:
    token = secrets.token_urlsafe(32)
    response = await page(
        request,
        "login.html.j2",
        status=status,
        error=error,
        name=name,
        login_csrf=token,
        next=_safe_next(request.query.get("next")),
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path="/admin/login",
        httponly=True,
        samesite="Strict",
        secure=cookie_secure(request),
    )
    return response


@routes.get("/admin/login")
async def login_page(request: web.Request) -> web.StreamResponse:
    if await load_session(request) is not None:
        raise web.HTTPFound(_safe_next(request.query.get("next")))
    return await _login_form(request)


@routes.post("/admin/login")
async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    token = form.get("csrf")
    if not same_token(
        token if isinstance(token, str) else None, request.cookies.get(LOGIN_CSRF_COOKIE, "")
    ):
        return await _login_form(
            request, status=403, error="登录表单已过期（CSRF 校验失败），请重新输入。"
        )
    name = str(form.get("name", "")).strip()
    password = str(form.get("password", ""))
    if not name or not password:
        return await _login_form(request, status=400, error="请输入用户名和密码。", name=name)
    if await login_blocked(request, name):
        return await _login_form(
            request,
            status=429,
            name=name,
            error=f"登录失败次数过多（{LOGIN_WINDOW_SECONDS // 60} 分钟内 "
            f"{LOGIN_FAILURES_ALLOWED} 次），请稍后再试。",
        )
    async with request.app[MAKER]() as session:
        user = await authenticate(session, name, password)
    if user is None:
        await record_login_failure(request, name)
        return await _login_form(request, status=401, error="用户名或密码错误。", name=name)
    await clear_login_failures(request, name)
    response = see_other(_safe_next(str(form.get("next", ""))))
    await start_session(request, response, user)
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/admin/login")
    return response


@routes.post("/admin/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    response = see_other("/admin/login")
    await end_session(request, response)
    return response
