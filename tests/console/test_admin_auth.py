"""Signing in and out, the CSRF guard, the login rate limit, and console sessions on the API."""

from __future__ import annotations

from sqlmodel import select
from yarl import URL

from gongkai.storage.models import Item, User
from gongkai.web.keys import POOL
from tests.console.conftest import PASSWORDS, csrf_in
from tests.support import item


async def test_signed_out_visitors_are_sent_to_the_login_page(site) -> None:
    http = site.browser()
    r = await http.get("/admin/items?q=x", allow_redirects=False)
    assert r.status == 302
    location = URL(r.headers["Location"])
    assert location.path == "/admin/login" and location.query["next"] == "/admin/items?q=x"
    r = await http.get("/admin", allow_redirects=False)
    assert r.headers["Location"] == "/admin/"
    r = await http.get("/admin/items/x/events")
    assert r.status == 401
    page = await (await http.get("/admin/login")).text()
    assert '<label for="password">密码</label>' in page and 'lang="zh-Hans"' in page


async def test_login_sets_a_hardened_cookie_and_goes_where_asked(site) -> None:
    http = site.browser()
    page = await (await http.get("/admin/login?next=/admin/deadlines")).text()
    r = await http.post(
        "/admin/login",
        data={
            "name": "viewer-user",
            "password": PASSWORDS["viewer"],
            "csrf": csrf_in(page),
            "next": "/admin/deadlines",
        },
        allow_redirects=False,
    )
    assert r.status == 303 and r.headers["Location"] == "/admin/deadlines"
    cookie = r.headers["Set-Cookie"]
    assert "gk_admin=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Path=/" in cookie
    dashboard = await (await http.get("/admin/")).text()
    assert "viewer-user（查看员）" in dashboard


async def test_next_never_leaves_the_console(site) -> None:
    http = site.browser()
    page = await (await http.get("/admin/login")).text()
    r = await http.post(
        "/admin/login",
        data={
            "name": "viewer-user",
            "password": PASSWORDS["viewer"],
            "csrf": csrf_in(page),
            "next": "//evil.example/",
        },
        allow_redirects=False,
    )
    assert r.headers["Location"] == "/admin/"


async def test_wrong_password_and_unknown_user_get_the_same_answer(site) -> None:
    http = site.browser()
    answers = []
    for name, password in (("viewer-user", "wrong-password"), ("nobody", "wrong-password")):
        page = await (await http.get("/admin/login")).text()
        r = await http.post(
            "/admin/login", data={"name": name, "password": password, "csrf": csrf_in(page)}
        )
        answers.append((r.status, "用户名或密码错误" in await r.text()))
    assert answers == [(401, True), (401, True)]
    assert "gk_admin" not in {c.key for c in http.cookie_jar}


async def test_login_form_needs_its_csrf_token(site) -> None:
    http = site.browser()
    await http.get("/admin/login")  # the cookie is set, but the field is missing
    r = await http.post(
        "/admin/login", data={"name": "viewer-user", "password": PASSWORDS["viewer"]}
    )
    assert r.status == 403
    assert "gk_admin" not in {c.key for c in http.cookie_jar}


async def test_five_failures_lock_the_name_for_fifteen_minutes(site) -> None:
    http = site.browser()
    for _ in range(5):
        page = await (await http.get("/admin/login")).text()
        r = await http.post(
            "/admin/login", data={"name": "admin-user", "password": "guess", "csrf": csrf_in(page)}
        )
        assert r.status == 401
    page = await (await http.get("/admin/login")).text()
    r = await http.post(
        "/admin/login",
        data={"name": "admin-user", "password": PASSWORDS["admin"], "csrf": csrf_in(page)},
    )
    assert r.status == 429 and "登录失败次数过多" in await r.text()
    pool = site.client.app[POOL]
    keys = [k async for k in pool.scan_iter("*console-login*")]  # counted by `limits`
    assert len(keys) == 1 and 0 < await pool.ttl(keys[0]) <= 15 * 60
    # another name from the same address is not locked out
    console = await site.login("viewer")
    assert console.csrf


async def test_behind_our_proxy_the_limit_counts_each_client_not_the_proxy(site) -> None:
    """Through nginx every request comes from 127.0.0.1: the forwarded client address counts."""
    http = site.browser()

    async def attempt(client_ip: str, password: str) -> int:
        page = await (await http.get("/admin/login")).text()
        r = await http.post(
            "/admin/login",
            data={"name": "admin-user", "password": password, "csrf": csrf_in(page)},
            headers={"X-Forwarded-For": f"198.51.100.9, {client_ip}"},
        )
        return r.status

    for _ in range(5):
        assert await attempt("203.0.113.5", "guess") == 401
    assert await attempt("203.0.113.5", PASSWORDS["admin"]) == 429
    # the admin at another address behind the same proxy still signs in
    assert await attempt("203.0.113.77", PASSWORDS["admin"]) in (200, 302, 303)


async def test_logout_ends_the_session_on_the_server(site) -> None:
    console = await site.login("viewer")
    cookie = next(c.value for c in console.http.cookie_jar if c.key == "gk_admin")
    r = await console.post("/admin/logout", csrf=False)
    assert r.status == 403  # logging out is a POST like any other: it needs the token
    assert (await console.get("/admin/")).url.path == "/admin/"
    r = await console.post("/admin/logout", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/admin/login"
    replay = site.browser()
    replay.cookie_jar.update_cookies({"gk_admin": cookie})
    r = await replay.get("/admin/", allow_redirects=False)
    assert r.status == 302 and r.headers["Location"].startswith("/admin/login")


async def test_a_deactivated_user_is_signed_out_at_once(site) -> None:
    console = await site.login("publisher")
    async with site.maker() as session:
        user = (await session.exec(select(User).where(User.name == "publisher-user"))).one()
        user.active = False
        session.add(user)
        await session.commit()
    r = await console.get("/admin/", allow_redirects=False)
    assert r.status == 302


async def test_posts_without_the_session_token_are_refused(site) -> None:
    publisher = await site.login("publisher")
    api = await publisher.http.post(
        "/api/v1/items", json=item(), headers={"X-CSRF-Token": publisher.csrf}
    )
    assert api.status == 201
    r = await publisher.http.post("/admin/items/ejhl-2026-0113/recall", data={"csrf": "forged"})
    assert r.status == 403 and "CSRF" in await r.text()
    async with site.maker() as session:
        assert (await session.get(Item, "ejhl-2026-0113")).status != "recalled"


async def test_the_json_api_accepts_a_console_session(site) -> None:
    viewer = await site.login("viewer")
    r = await viewer.get("/api/v1/deliveries")
    assert r.status == 200
    r = await viewer.http.post("/api/v1/items", json=item(), headers={"X-CSRF-Token": viewer.csrf})
    assert r.status == 403  # the session's role applies
    publisher = await site.login("publisher")
    r = await publisher.http.post("/api/v1/items", json=item())
    assert r.status == 403  # a cookie alone never authorises a change
    assert "X-CSRF-Token" in await r.text()
    r = await publisher.http.post(
        "/api/v1/items", json=item(), headers={"X-CSRF-Token": publisher.csrf}
    )
    assert r.status == 201


async def test_console_pages_are_not_cached_or_framed(site) -> None:
    viewer = await site.login("viewer")
    r = await viewer.get("/admin/")
    assert r.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY"
