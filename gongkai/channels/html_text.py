"""Item bodies (Markdown) turned into the markup chat providers accept.

Two dialects: WeCom robot markdown (headings, bold, links, quotes, inline code, font colours;
no tables, no italics) and Telegram's HTML parse mode (only ``b i u s a code pre blockquote
tg-spoiler`` and the entities ``&lt; &gt; &amp; &quot;``). Both are produced as a list of
*blocks* — self-contained pieces that never leave a tag open — so a long bilingual item can
be cut between blocks without ever producing markup the provider rejects.

Pure functions over strings: no aiohttp, no aiogram, so renderers stay fast to test.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from html.parser import HTMLParser
from itertools import zip_longest

from markdown_it import MarkdownIt
from markdown_it.token import Token

from gongkai.channels.rendering import split_to_fit

# How a body is read wherever it is re-spelled (chat markup, speech): CommonMark plus tables
# and ~~strikes~~, raw HTML kept as tokens so its text can be read and its tags dropped.
BODY_MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_AROUND_NEWLINE = re.compile(r"[ \t]*\n[ \t]*")
_SAFE_SCHEMES = ("http://", "https://", "tg://", "mailto:")

# Between the language versions of one bilingual message: script-neutral, visible everywhere.
LANGUAGE_DIVIDER = "────────"

# --- measuring -------------------------------------------------------------------------------


def escape_html(text: str) -> str:
    """Escape for Telegram: exactly the four entities it documents, nothing numeric."""
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def utf16_len(text: str) -> int:
    """Telegram counts text in UTF-16 code units; counting them never undercounts."""
    return len(text.encode("utf-16-le")) // 2


class _TextOf(HTMLParser):
    """Text and entities kept, tags dropped, ``<br>`` a line break: HTML read by a parser,
    so a ``<`` in text or a ``>`` inside an attribute cannot swallow the words after it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")


def html_to_plain(markup: str) -> str:
    """The text a reader sees once Telegram has parsed the tags and entities; also the words
    of an HTML block inside a Markdown body."""
    parser = _TextOf()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)


def visible_length(markup: str) -> int:
    """Length of ``markup`` as Telegram measures its 4096 limit (after entity parsing)."""
    return utf16_len(html_to_plain(markup))


# --- overflow fallbacks ----------------------------------------------------------------------


def split_plain_html(block: str, budget: int) -> list[str]:
    """A Telegram block bigger than a message: give up its formatting, keep every word."""
    return [escape_html(p) for p in split_to_fit(html_to_plain(block), budget, measure=utf16_len)]


def split_markdown(block: str, budget: int) -> list[str]:
    return split_to_fit(block, budget)


# --- Markdown → blocks -----------------------------------------------------------------------


class Dialect:
    """How one provider spells each Markdown construct."""

    def text(self, s: str) -> str:
        return s

    def opener(self, tok: Token) -> tuple[str, str]:
        return "", ""

    def code(self, s: str) -> str:
        return s

    def image(self, alt: str, src: str) -> str:
        return alt

    def heading(self, level: int, inline: str) -> str:
        return inline

    def quote(self, inner: list[str]) -> str:
        return "\n".join(inner)

    def pre(self, content: str) -> str:
        return content

    def bullet(self, marker: str, text: str) -> str:
        return f"{marker} {text}"

    def rule(self) -> str:
        return "———"


class TelegramDialect(Dialect):
    def text(self, s: str) -> str:
        return escape_html(s)

    def opener(self, tok: Token) -> tuple[str, str]:
        tags = {"strong_open": "b", "em_open": "i", "s_open": "s"}
        if tok.type in tags:
            return f"<{tags[tok.type]}>", f"</{tags[tok.type]}>"
        href = str(tok.attrs.get("href", ""))
        if tok.type == "link_open" and href.startswith(_SAFE_SCHEMES):
            return f'<a href="{escape_html(href)}">', "</a>"
        return "", ""

    def code(self, s: str) -> str:
        return f"<code>{escape_html(s)}</code>"

    def image(self, alt: str, src: str) -> str:
        if src.startswith(_SAFE_SCHEMES):
            return f'<a href="{escape_html(src)}">{escape_html(alt or src)}</a>'
        return escape_html(alt)

    def heading(self, level: int, inline: str) -> str:
        return f"<b>{inline}</b>"

    def quote(self, inner: list[str]) -> str:
        return "<blockquote>" + "\n".join(inner) + "</blockquote>"

    def pre(self, content: str) -> str:
        return f"<pre>{escape_html(content)}</pre>"

    def bullet(self, marker: str, text: str) -> str:
        return f"{'•' if marker == '-' else marker} {text}"


class WeComDialect(Dialect):
    def opener(self, tok: Token) -> tuple[str, str]:
        if tok.type == "strong_open":
            return "**", "**"
        href = str(tok.attrs.get("href", ""))
        if tok.type == "link_open" and href.startswith(_SAFE_SCHEMES):
            return "[", f"]({href})"
        return "", ""  # WeCom shows *italics* and ~~strikes~~ literally: drop the marks

    def code(self, s: str) -> str:
        return f"`{s}`"

    def image(self, alt: str, src: str) -> str:
        return f"[{alt or src}]({src})" if src.startswith(_SAFE_SCHEMES) else alt

    def heading(self, level: int, inline: str) -> str:
        return "#" * min(level, 6) + " " + inline

    def quote(self, inner: list[str]) -> str:
        return "\n".join("> " + line for line in "\n".join(inner).split("\n"))


def markdown_blocks(source: str, dialect: Dialect) -> list[str]:
    """Top-level blocks of ``source``, each closing every tag it opens (a safe cut point)."""
    return list(_cached_blocks(source or "", type(dialect)))


@lru_cache(maxsize=64)
def _cached_blocks(source: str, dialect_type: type[Dialect]) -> tuple[str, ...]:
    """Planning renders one item for thousands of targets: parse its Markdown once."""
    tokens = BODY_MARKDOWN.parse(source)
    return tuple(b for b in _blocks(tokens, 0, len(tokens), dialect_type()) if b.strip())


def markdown_to_telegram_html(source: str) -> str:
    return "\n\n".join(markdown_blocks(source, TelegramDialect()))


def markdown_to_wecom(source: str) -> str:
    return "\n\n".join(markdown_blocks(source, WeComDialect()))


def close_of(tokens: list[Token], start: int) -> int:
    """Where the markdown-it block opened at ``start`` closes."""
    depth = 0
    for i in range(start, len(tokens)):
        depth += tokens[i].nesting
        if depth == 0:
            return i
    return len(tokens) - 1


def _blocks(tokens: list[Token], start: int, end: int, d: Dialect) -> list[str]:
    out: list[str] = []
    i = start
    while i < end:
        tok = tokens[i]
        close = close_of(tokens, i) if tok.nesting == 1 else i
        kind = tok.type
        if kind in ("paragraph_open", "heading_open"):
            inline = _inline(tokens[i + 1].children or [], d).strip()
            out.append(d.heading(int(tok.tag[1:]), inline) if kind == "heading_open" else inline)
        elif kind == "blockquote_open":
            out.append(d.quote(_blocks(tokens, i + 1, close, d)))
        elif kind in ("bullet_list_open", "ordered_list_open"):
            out.append(_list(tokens, i, close, d))
        elif kind == "table_open":
            out.append(_table(tokens, i, close, d))
        elif kind in ("fence", "code_block"):
            out.append(d.pre(tok.content.rstrip("\n")))
        elif kind == "hr":
            out.append(d.rule())
        elif kind == "html_block":
            text = html_to_plain(tok.content).strip()
            if text:
                out.append(d.text(text))
        i = close + 1
    return out


def _list(tokens: list[Token], start: int, end: int, d: Dialect) -> str:
    ordered = tokens[start].type == "ordered_list_open"
    number = int(tokens[start].attrs.get("start", 1) or 1)
    lines: list[str] = []
    i = start + 1
    while i < end:
        close = close_of(tokens, i)
        if tokens[i].type == "list_item_open":
            inner = "\n".join(_blocks(tokens, i + 1, close, d)).replace("\n", "\n  ")
            lines.append(d.bullet(f"{number}." if ordered else "-", inner))
            number += 1
        i = close + 1
    return "\n".join(lines)


def table_cells(
    tokens: list[Token], start: int, end: int, read: Callable[[Token], str]
) -> tuple[list[str], list[list[str]]]:
    """A markdown-it table's header and body rows, each cell's inline token read by ``read``
    (the chat dialects and the loudspeaker script read a table alike, then say it apart)."""
    header: list[str] = []
    rows: list[list[str]] = []
    in_head = False
    for tok in tokens[start:end]:
        if tok.type in ("thead_open", "thead_close"):
            in_head = tok.type == "thead_open"
        elif tok.type == "tr_open" and not in_head:
            rows.append([])
        elif tok.type == "inline":
            (header if in_head else rows[-1]).append(read(tok))
    return header, rows


def _table(tokens: list[Token], start: int, end: int, d: Dialect) -> str:
    """Tables flattened to one line per row, "header: cell", since neither dialect has tables."""
    header, rows = table_cells(tokens, start, end, lambda t: _inline(t.children or [], d).strip())
    if not rows:
        return d.bullet("-", " · ".join(header))
    lines = []
    for row in rows:
        pairs = [f"{h}: {c}" if h else c for h, c in zip_longest(header, row, fillvalue="") if c]
        lines.append(d.bullet("-", " · ".join(pairs)))
    return "\n".join(lines)


def _inline(children: list[Token], d: Dialect) -> str:
    out: list[str] = []
    closers: list[str] = []
    for tok in children:
        kind = tok.type
        if kind == "text":
            out.append(d.text(tok.content))
        elif kind in ("softbreak", "hardbreak"):
            out.append("\n")
        elif kind == "code_inline":
            out.append(d.code(tok.content))
        elif kind == "image":
            alt = "".join(c.content for c in tok.children or [])
            out.append(d.image(alt, str(tok.attrs.get("src", ""))))
        elif kind == "html_inline":
            out.append("\n" if _BR.fullmatch(tok.content.strip()) else "")
        elif tok.nesting == 1:
            opening, closing = d.opener(tok)
            out.append(opening)
            closers.append(closing)
        elif tok.nesting == -1 and closers:
            out.append(closers.pop())
    out.extend(reversed(closers))
    return _AROUND_NEWLINE.sub("\n", "".join(out))
