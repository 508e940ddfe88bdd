"""``/sandbox/``: the provider simulators mounted on this app, and the page that shows them.

Only with ``GONGKAI_SANDBOX`` on (``gongkai run --demo`` turns it on). Then this module arms the
guard that refuses any connection to a real provider, mounts every simulator under
``/sandbox/<provider>/`` (the settings already point the provider base URLs there), serves the
sandbox page, its JSON (``GET /sandbox/api/messages?channel=&target=``) and the training
controls, and puts a banner on every HTML page so nobody mistakes it for production.

Outside the demo the page, the JSON and the controls ask for a console sign-in (or, for the
JSON, an API token); changing a control takes an admin and the session's CSRF token.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlmodel import col, select

from gongkai.channels.rendering import PACKAGE_TEMPLATES
from gongkai.console.sessions import ConsoleSession, load_session, same_token
from gongkai.sandbox import guard
from gongkai.sandbox.faults import MODE_LABELS, MODES, PROVIDERS
from gongkai.sandbox.inbox import received
from gongkai.sandbox.site import Sandbox
from gongkai.storage.models import Item
from gongkai.web.auth import principal
from gongkai.web.keys import MAKER, SEALER, SETTINGS
from gongkai.web.sandbox_view import (
    CHANNEL_ORDER,
    CHANNEL_TITLES,
    MONGOLIAN,
    assign,
    target_cards,
    telegram_html,
    wecom_markdown,
)

SANDBOX = web.AppKey("sandbox", Sandbox)
BANNER_TEXT = "沙箱 / sandbox: nothing is sent to real providers"
BANNER = (
    '<div class="gk-sandbox-banner" role="status" lang="zh-Hans">'
    f'<link rel="stylesheet" href="/static/sandbox.css">{BANNER_TEXT} · '
    '<a href="/sandbox/">看看收到了什么 / see what arrived</a></div>'
)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; frame-src 'self'; connect-src 'self'; form-action 'self'; "
    "frame-ancestors 'self'; base-uri 'none'"
)
# the article frame: WeChat articles carry inline styles; no script runs and nothing loads from
# elsewhere (the page's iframe is sandboxed too, keeping only its origin so the font loads)
ARTICLE_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; font-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
PROVIDER_TITLES = {
    "wecom": "企业微信群机器人 / WeCom robot",
    "wechat": "微信公众平台 / WeChat MP",
    "telegram": "Telegram Bot API",
    "aliyun": "阿里云短信 / Aliyun SMS",
    "tencent": "腾讯云短信 / Tencent SMS",
}
_BODY = re.compile(rb"<body\b[^>]*>", re.I)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@lru_cache(maxsize=1)
def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(PACKAGE_TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        wecom_markdown=wecom_markdown,
        telegram_html=telegram_html,
        CHANNEL_TITLES=CHANNEL_TITLES,
        PROVIDER_TITLES=PROVIDER_TITLES,
        MODE_LABELS=MODE_LABELS,
    )
    return env


@web.middleware
async def sandbox_banner(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every HTML page says it is a sandbox, right after ``<body>``: public pages, the console,
    error pages alike (a stream or a file is left alone)."""
    response = await handler(request)
    if (
        type(response) is web.Response
        and response.content_type == "text/html"
        and isinstance(response.body, bytes)
        and not request.path.startswith("/sandbox/article/")
    ):
        body = response.body
        match = _BODY.search(body)
        if match is not None:
            response.body = body[: match.end()] + BANNER.encode() + body[match.end() :]
    return response


def _harden(response: web.StreamResponse, csp: str = CSP) -> web.StreamResponse:
    response.headers["Content-Security-Policy"] = csp
    response.headers["Cache-Control"] = "no-store"
    return response


async def _reader(request: web.Request) -> ConsoleSession | bool | None:
    """True in the demo (open to all); the console session otherwise, None when signed out."""
    if request.app[SETTINGS].sandbox == "demo":
        return True
    return await load_session(request)


def _same_origin(request: web.Request) -> bool:
    """A form post from this site: a browser names its origin (or at least its referrer)."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source:
        return False
    return urlsplit(source).netloc == request.host


async def page(request: web.Request) -> web.StreamResponse:
    me = await _reader(request)
    if me is None:
        raise web.HTTPFound("/admin/login")
    sb = request.app[SANDBOX]
    settings = request.app[SETTINGS]
    async with request.app[MAKER]() as session:
        cards, index = await target_cards(session, request.app[SEALER])
        items = (await session.exec(select(Item).order_by(col(Item.id)))).all()
    cards = assign(received(sb), cards, index, settings.tz)
    by_channel = {ch: [c for c in cards if c.channel == ch] for ch in CHANNEL_ORDER}
    csrf = me.csrf if isinstance(me, ConsoleSession) else ""
    html = (
        _templates()
        .get_template("sandbox/page.html.j2")
        .render(
            by_channel=by_channel,
            channels=CHANNEL_ORDER,
            items=[
                {"id": i.id, "title": i.title, "mn": "mn" in (i.translations or {})} for i in items
            ],
            faults=sb.faults.modes,
            providers=PROVIDERS,
            modes=MODES,
            csrf=csrf,
            demo=settings.sandbox == "demo",
            banner=BANNER_TEXT,
            base=settings.sandbox_url,
        )
    )
    return _harden(web.Response(text=html, content_type="text/html"))


async def messages(request: web.Request) -> web.StreamResponse:
    """What was received, newest first: ``channel`` and ``target`` (a target id or a region
    code) narrow it."""
    me = await _reader(request)
    if me is None and await principal(request) is None:
        raise web.HTTPUnauthorized(
            text='{"error": "sign in to the console or send an API token"}',
            content_type="application/json",
        )
    channel = request.query.get("channel", "")
    target = request.query.get("target", "")
    if len(channel) > 200 or len(target) > 200:
        raise web.HTTPBadRequest(text='{"error": "invalid query"}', content_type="application/json")
    sb = request.app[SANDBOX]
    tz = request.app[SETTINGS].tz
    async with request.app[MAKER]() as session:
        cards, index = await target_cards(session, request.app[SEALER])
    out: list[dict[str, Any]] = []
    for card in assign(received(sb), cards, index, tz):
        if channel and card.channel != channel:
            continue
        if target and target not in (str(card.target_id), card.region_code):
            continue
        for m in card.messages:
            out.append(
                {
                    **m,
                    "target": {
                        "id": card.target_id,
                        "region_code": card.region_code or None,
                        "region_name": card.region_name or None,
                        "label": card.label,
                    },
                }
            )
    out.sort(key=lambda m: (m["at"], m["id"]), reverse=True)
    return _harden(web.json_response({"messages": out, "count": len(out)}))


async def set_fault(request: web.Request) -> web.StreamResponse:
    me = await _reader(request)
    form = await request.post()
    if me is None:
        raise web.HTTPFound("/admin/login")
    if isinstance(me, ConsoleSession):
        if me.role != "admin" or not same_token(str(form.get("csrf") or ""), me.csrf):
            raise web.HTTPForbidden(text="an admin's console session is required")
    elif not _same_origin(request):
        raise web.HTTPForbidden(text="controls are changed from the sandbox page only")
    sb = request.app[SANDBOX]
    if form.get("clear"):
        sb.faults.clear()
    else:
        provider, mode = str(form.get("provider") or ""), str(form.get("mode") or "")
        try:
            sb.faults.set(provider, mode)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
    raise web.HTTPSeeOther("/sandbox/#controls")


async def media(request: web.Request) -> web.StreamResponse:
    """A file a robot was sent (the loudspeaker's audio), for the page's player."""
    if await _reader(request) is None:
        raise web.HTTPNotFound()
    upload = request.app[SANDBOX].wecom.uploads.get(request.match_info["media_id"])
    if upload is None:
        raise web.HTTPNotFound()
    kind = mimetypes.guess_type(upload.filename)[0] or "application/octet-stream"
    return _harden(web.Response(body=upload.data, content_type=kind))


async def article(request: web.Request) -> web.StreamResponse:
    """One official-account article as a follower's phone shows it (inside the page's frame)."""
    if await _reader(request) is None:
        raise web.HTTPNotFound()
    rid = request.match_info["rid"]
    found = next((r for r in received(request.app[SANDBOX]) if r.id == rid), None)
    if found is None or found.kind != "article":
        raise web.HTTPNotFound()
    content = str(found.meta.get("content") or "")
    html = (
        _templates()
        .get_template("sandbox/article.html.j2")
        .render(
            title=found.text,
            author=found.meta.get("author") or "",
            digest=found.meta.get("digest") or "",
            content=content,
            mongolian=bool(MONGOLIAN.search(found.text)),  # a Mongolian article turns whole
            status=found.meta.get("status"),
        )
    )
    return _harden(web.Response(text=html, content_type="text/html"), ARTICLE_CSP)


async def to_page(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/sandbox/")


def setup(app: web.Application) -> None:
    settings = app[SETTINGS]
    if not settings.sandbox_on:
        return
    guard.arm()
    sb = Sandbox(callback_base=settings.sandbox_url.removesuffix("/sandbox"))
    app[SANDBOX] = sb
    app.middlewares.append(sandbox_banner)
    app.router.add_get("/sandbox", to_page)
    app.router.add_get("/sandbox/", page)
    app.router.add_get("/sandbox/api/messages", messages)
    app.router.add_post("/sandbox/faults", set_fault)
    app.router.add_get("/sandbox/media/{media_id}", media)
    app.router.add_get("/sandbox/article/{rid}", article)
    sb.mount(app)
