"""The public web channel: item pages, the Atom feed and static files. No login, no CDN."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from sqlmodel import col, select

from gongkai.channels.rendering import HTML_LANG, RTL_LANGUAGES, label, render, render_markdown
from gongkai.domain.links import page_url
from gongkai.storage.models import Item, ItemStatus
from gongkai.web.keys import MAKER, SETTINGS

routes = web.RouteTableDef()
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
LANGUAGE_NAMES = {"zh": "中文", "mn": "ᠮᠣᠩᠭᠣᠯ", "ug": "ئۇيغۇرچە", "bo": "བོད་ཡིག", "ko": "조선어"}
VERTICAL_LANGUAGES = {"mn"}


def is_visible(item: Item, now: datetime | None = None) -> bool:
    now = now or datetime.now(UTC)
    return item.published_at is not None and item.published_at <= now


async def _load_visible(request: web.Request, item_id: str) -> Item:
    async with request.app[MAKER]() as session:
        item = await session.get(Item, item_id)
    if item is None or not is_visible(item):
        raise web.HTTPNotFound(text="没有找到该信息 / not found")
    return item


@routes.get("/p/{id}")
async def item_page(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    item = await _load_visible(request, request.match_info["id"])
    lang = request.query.get("lang", "zh")
    if lang != "zh" and lang not in LANGUAGE_NAMES and lang not in (item.translations or {}):
        lang = "zh"
    tr = (item.translations or {}).get(lang, {}) if lang != "zh" else {}
    translation_missing = lang != "zh" and not tr.get("title")
    async with request.app[MAKER]() as session:
        policy = await session.get(Item, item.interprets) if item.interprets else None
        interpretations = (
            await session.exec(
                select(Item)
                .where(Item.interprets == item.id, Item.status != ItemStatus.recalled)
                .order_by(col(Item.created_at))
            )
        ).all()
    interpretations = [i for i in interpretations if is_visible(i)]
    body = tr.get("body") or item.public_body or ""
    languages = [("zh", LANGUAGE_NAMES["zh"])] + [
        (code, LANGUAGE_NAMES.get(code, code)) for code in sorted(item.translations or {})
    ]
    published_on = item.published_at.astimezone(settings.tz).date() if item.published_at else None
    html = render(
        "web",
        lang,
        "page.html",
        html=True,
        item=item,
        title=tr.get("title") or item.title,
        summary=tr.get("summary") or item.summary,
        body_html=render_markdown(body),
        policy=policy if policy and is_visible(policy) else None,
        interpretations=interpretations,
        catalog=item.catalog or {},
        withdrawn=item.status == ItemStatus.recalled,
        translation_missing=translation_missing,
        published_on=published_on,
        languages=languages,
        public_url=settings.public_url.rstrip("/"),
        html_lang=HTML_LANG.get(lang, lang),
        rtl=lang in RTL_LANGUAGES,
        vertical=lang in VERTICAL_LANGUAGES and not translation_missing,
        extra_links=[
            (page_url(settings.public_url, item.id, view="script"), label("script", lang)),
            (page_url(settings.public_url, item.id, view="print"), label("print", lang)),
        ],
    )
    status = 410 if item.status == ItemStatus.recalled else 200
    return web.Response(text=html, content_type="text/html", charset="utf-8", status=status)


@routes.get("/feed.xml")
async def feed(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    now = datetime.now(UTC)
    async with request.app[MAKER]() as session:
        rows = (
            await session.exec(
                select(Item)
                .where(Item.status != ItemStatus.recalled, col(Item.published_at) <= now)
                .order_by(col(Item.published_at).desc())
                .limit(50)
            )
        ).all()
    entries = [
        {
            "id": i.id,
            "title": i.title,
            "issuer": i.issuer,
            "domain": i.domain,
            "summary": i.summary,
            "updated": i.published_at.isoformat() if i.published_at else "",
        }
        for i in rows
    ]
    xml = render(
        "web",
        "zh",
        "feed.xml",
        html=True,
        entries=entries,
        updated=entries[0]["updated"] if entries else now.isoformat(),
        public_url=settings.public_url.rstrip("/"),
    )
    return web.Response(text=xml, content_type="application/atom+xml", charset="utf-8")


def add_static(app: web.Application) -> None:
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=False)
