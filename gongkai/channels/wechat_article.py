"""The WeChat article as a pure function of the item: limits, safe HTML, bilingual section.

WeChat's draft/add refuses a title over 32 characters, an author over 16, a digest over 128
and content of 20,000 characters or 1 MB; it strips scripts and filters external images. We
fit everything here, at planning time, and say what we changed in the notes, so the stored
delivery is exactly what WeChat receives and an admin can see why a title ends in "…". The one
exception is body images: only WeChat-hosted ones show, so they are uploaded when the draft is
made (``wechat_images``) and stored here as marked links.
"""

from __future__ import annotations

import re
import struct
import zlib
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markupsafe import Markup

from gongkai.channels import rendering
from gongkai.channels.base import ItemView, TargetView

TITLE_MAX, AUTHOR_MAX, DIGEST_MAX = 32, 16, 128
CONTENT_MAX_CHARS = 19_999  # WeChat: fewer than 20,000 characters
CONTENT_MAX_BYTES = 999_999  # and less than 1 MB
PARAGRAPH_UNIT = 4_000  # a longer paragraph is cut into sentences before truncating
ELLIPSIS = "…"
_FOLDABLE_SPACE = re.compile(r"[ \t\r\n\u3000]+")


IMAGE_MARK = "data-gongkai-image"


def _image_as_link(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    """WeChat drops images not uploaded through uploadimg, so a body image is stored as a
    marked link; the send step uploads it and puts the image in its place (``wechat_images``),
    or leaves the plain link, which at least keeps it reachable."""
    token = tokens[idx]
    src = escapeHtml(str(token.attrGet("src") or ""))
    alt = escapeHtml(self.renderInlineAsText(token.children or [], options, env) or "图片")
    return f'<a href="{src}" {IMAGE_MARK}="1">[{alt}]</a>'


@lru_cache(maxsize=1)
def markdown() -> MarkdownIt:
    # html=False: raw HTML in the body is shown as text, so no script or handler gets through;
    # markdown-it also refuses javascript:/vbscript:/file: links.
    md = MarkdownIt("commonmark", {"html": False, "breaks": True})
    md.enable(["table", "strikethrough"])
    md.add_render_rule("image", _image_as_link)
    return md


def cut(text: str, limit: int) -> str:
    """At most ``limit`` characters, ending in "…" at a word boundary when cut. Line breaks
    fold to spaces but U+202F stays: str.split() would part Mongolian words from suffixes."""
    text = _FOLDABLE_SPACE.sub(" ", text).strip() if "\n" in text else text
    if len(text) <= limit:
        return text
    return text[: rendering.word_start(text, limit - 1)].rstrip() + ELLIPSIS


def translation_sections(
    item: ItemView, target: TargetView
) -> tuple[list[dict[str, str]], list[str]]:
    """The wanted languages the item has (shown first), and a note for each one it lacks."""
    sections: list[dict[str, str]] = []
    notes: list[str] = []
    for lang in target.languages:
        if lang == "zh":
            continue
        if not item.has_language(lang):
            notes.append(f"translation missing: {lang}")
            continue
        sections.append(
            {
                "lang": lang,
                "html_lang": rendering.HTML_LANG.get(lang, lang),
                "dir": "rtl" if lang in rendering.RTL_LANGUAGES else "ltr",
                "title": item.text(lang, "title") or "",
                "summary": item.text(lang, "summary") or "",
            }
        )
    return sections, notes


def build_article(
    item: ItemView, target: TargetView, public_url: str
) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    """The ``articles[0]`` of draft/add (without ``thumb_media_id``), notes, and counts."""
    account = target.account or {}
    sections, notes = translation_sections(item, target)
    template_lang = sections[0]["lang"] if sections else "zh"
    source_url = item.page_link(public_url, "wechat_mp")

    title = cut(item.title, TITLE_MAX)
    if title != item.title:
        notes.append(f"title cut to {TITLE_MAX} characters")
    author_full = str(account.get("author") or item.issuer or "")
    author = cut(author_full, AUTHOR_MAX)
    if author != author_full:
        notes.append(f"author shortened to {AUTHOR_MAX} characters")

    context: dict[str, Any] = {
        "item": item,
        "translations": sections,
        "summary": item.summary,
        "issuer": item.issuer,
        "doc_number": item.doc_number,
        "issued_at": item.issued_at,
        "full_url": source_url,
    }
    digest_full = rendering.render("wechat_mp", template_lang, "digest.txt", **context)
    digest = cut(digest_full, DIGEST_MAX)
    if digest != digest_full:
        notes.append(f"digest cut to {DIGEST_MAX} characters")

    content, truncated = fit_content(item.body, template_lang, context)
    if truncated:
        notes.append(
            "content cut at a paragraph to stay under 20,000 characters / 1 MB; "
            f"a 阅读全文 link leads to {source_url}"
        )
    article = {
        "article_type": "news",
        "title": title,
        "author": author,
        "digest": digest,
        "content": content,
        "content_source_url": source_url,
        "need_open_comment": 0,
        "only_fans_can_comment": 0,
    }
    meta = {
        "title_chars": len(title),
        "digest_chars": len(digest),
        "content_chars": len(content),
        "content_bytes": rendering.utf8_len(content),
        "truncated": truncated,
        "languages": [s["lang"] for s in sections] + ["zh"],
    }
    return article, notes, meta


def _units(body: str) -> list[str]:
    units: list[str] = []
    for para in body.strip().split("\n\n"):
        if len(para) > PARAGRAPH_UNIT:
            units.extend(rendering.split_to_fit(para, PARAGRAPH_UNIT, measure=len))
        elif para.strip():
            units.append(para)
    return units


def _fits(html: str) -> bool:
    return len(html) <= CONTENT_MAX_CHARS and rendering.utf8_len(html) <= CONTENT_MAX_BYTES


def fit_content(body: str, lang: str, context: dict[str, Any]) -> tuple[str, bool]:
    """The article HTML; when too long, the longest paragraph prefix that fits plus 阅读全文."""

    def article_html(markdown_text: str, truncated: bool) -> str:
        body_html = Markup(markdown().render(markdown_text))
        return rendering.render(
            "wechat_mp",
            lang,
            "article.html",
            html=True,
            body_html=body_html,
            truncated=truncated,
            **context,
        )

    full = article_html(body, False)
    if _fits(full):
        return full, False
    units = _units(body)
    low, high = 0, len(units) - 1  # the largest prefix that fits, found in log(n) renders
    while low < high:
        mid = (low + high + 1) // 2
        if _fits(article_html("\n\n".join(units[:mid]), True)):
            low = mid
        else:
            high = mid - 1
    html = article_html("\n\n".join(units[:low]), True)
    if not _fits(html):  # the frame alone is too big: only a link is left to send
        html = article_html("", True)
    return html, True


@lru_cache(maxsize=4)
def default_cover(
    width: int = 900, height: int = 383, rgb: tuple[int, int, int] = (178, 34, 34)
) -> bytes:
    """A plain 2.35:1 PNG (the share-card ratio) built here, so no binary ships in the repo."""
    row = b"\x00" + bytes(rgb) * width
    raw = zlib.compress(row * height, 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
