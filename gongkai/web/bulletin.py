"""The printable sheet for the village bulletin board (信息公示栏): ``GET /p/{id}/print``.

Many residents read notices on the board outside the committee office, not on a phone. The
sheet is plain HTML and CSS (no JavaScript) sized for A4, in large type, one page per language,
each with a QR code that leads to the same page on the web. Bilingual order follows the
regional rules on bilingual notices: the minority script comes first (in Inner Mongolia the
Mongolian text goes first, on the left), Chinese after it, unless the region lists its own order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from io import BytesIO
from typing import Any

import qrcode
import qrcode.image.svg
from aiohttp import web
from markupsafe import Markup

from gongkai.channels.rendering import HTML_LANG, RTL_LANGUAGES, render, render_markdown
from gongkai.dispatch.planning import Directory
from gongkai.domain.links import page_url
from gongkai.storage.models import Item, ItemStatus, Region
from gongkai.web.keys import MAKER, SEALER, SETTINGS
from gongkai.web.public import VERTICAL_LANGUAGES, is_visible

routes = web.RouteTableDef()

FIRST_LANGUAGES = ("mn",)  # minority scripts that regional rules put first on bilingual notices


def item_languages(item: Item) -> list[str]:
    """Chinese plus every translation that has at least a title."""
    translated = [lang for lang, tr in (item.translations or {}).items() if (tr or {}).get("title")]
    return ["zh", *sorted(set(translated) - {"zh"})]


def sheet_order(
    available: list[str], wanted: list[str] | tuple[str, ...] | None = None
) -> list[str]:
    """The languages to print, in order.

    ``wanted`` is a region's list (its order is kept; languages without a translation are left
    out, and Chinese stands in when none is left). Without it: every available language,
    Mongolian first, the other minority languages next, Chinese last.
    """
    if wanted:
        chosen = [lang for lang in dict.fromkeys(wanted) if lang in available]
        return chosen or ["zh"]
    first = [lang for lang in FIRST_LANGUAGES if lang in available]
    rest = [lang for lang in available if lang not in first and lang != "zh"]
    return [*first, *rest, "zh"]


def qr_svg(data: str) -> Markup:
    """An inline SVG QR code (error correction M: survives a crease or a drawing pin).

    The library's fixed size in millimetres is dropped so the stylesheet decides the size.
    """
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        border=4,
        image_factory=qrcode.image.svg.SvgPathImage,
    )
    code.add_data(data)
    code.make(fit=True)
    buffer = BytesIO()
    code.make_image().save(buffer)
    svg = buffer.getvalue().decode("utf-8")
    svg = re.sub(r"^<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r'\s(width|height)="[^"]*"', "", svg, count=2)
    svg = svg.replace("<svg ", '<svg class="qr" role="img" shape-rendering="crispEdges" ', 1)
    return Markup(svg)


@dataclass(frozen=True)
class Section:
    """One language's part of a printed sheet or script page."""

    lang: str
    html_lang: str
    vertical: bool
    rtl: bool
    url: str

    @classmethod
    def of(cls, lang: str, public_url: str, item_id: str) -> Section:
        return cls(
            lang=lang,
            html_lang=HTML_LANG.get(lang, lang),
            vertical=lang in VERTICAL_LANGUAGES,
            rtl=lang in RTL_LANGUAGES,
            url=page_url(public_url, item_id, lang),
        )


def text_in(item: Item, lang: str, field: str) -> str:
    if lang == "zh":
        return str(getattr(item, field) or "")
    return str((item.translations or {}).get(lang, {}).get(field) or "")


async def load_public_item(request: web.Request) -> Item:
    """The item if the public may see it; 404 otherwise, 410 (with a notice) when recalled."""
    async with request.app[MAKER]() as session:
        item = await session.get(Item, request.match_info["id"])
    if item is None or not is_visible(item):
        raise web.HTTPNotFound(text="没有找到该信息 / not found")
    if item.status == ItemStatus.recalled:
        raise web.HTTPGone(text="本信息已撤回 / this item has been withdrawn")
    return item


async def region_languages(request: web.Request) -> list[str] | None:
    """``?region=CODE`` → that region's wanted languages (inherited from its ancestors)."""
    code = request.query.get("region")
    if not code:
        return None
    async with request.app[MAKER]() as session:
        if await session.get(Region, code) is None:
            raise web.HTTPNotFound(text=f"没有该地区 / unknown region: {code}")
        return list(await Directory(session, request.app[SEALER]).languages(code))


@routes.get("/p/{id}/print")
async def print_sheet(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    item = await load_public_item(request)
    languages = sheet_order(item_languages(item), await region_languages(request))
    public_url = settings.public_url
    published_on: date | None = (
        item.published_at.astimezone(settings.tz).date() if item.published_at else None
    )
    sections: list[dict[str, Any]] = []
    for lang in languages:
        section = Section.of(lang, public_url, item.id)
        # Chinese: the public (possibly redacted) body, never ``item.body``
        body = (item.public_body or "") if lang == "zh" else text_in(item, lang, "body")
        sections.append(
            {
                "section": section,
                "title": text_in(item, lang, "title"),
                "summary": text_in(item, lang, "summary"),
                "body_chars": len(body),
                "body_html": render_markdown(body),
                "qr": qr_svg(section.url),
            }
        )
    html = render(
        "web",
        languages[0],
        "print.html",
        html=True,
        item=item,
        sections=sections,
        languages=languages,
        published_on=published_on,
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8")
