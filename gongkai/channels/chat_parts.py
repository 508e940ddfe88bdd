"""One item as a chat message in several languages, cut to a provider's limit.

Shared by the chat channels (village WeChat groups, Telegram): the target's languages in
order (Mongolian first for [mn, zh]), each from its own templates, then — only when the whole
does not fit — numbered parts cut between blocks, every part repeating the urgent marker and
ending with the links. Adding a language is adding templates; nothing here names one, except
Chinese as the original a missing translation falls back to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gongkai.channels.base import ItemView, TargetView
from gongkai.channels.html_text import LANGUAGE_DIVIDER, Dialect, markdown_blocks
from gongkai.channels.rendering import render

Measure = Callable[[str], int]


# --- languages -------------------------------------------------------------------------------


def plan_languages(item: ItemView, target: TargetView) -> tuple[list[str], list[str]]:
    """The languages to write, in the target's order, and notes for missing translations.

    A missing translation never blocks the message: Chinese takes its place (once).
    """
    langs: list[str] = []
    notes: list[str] = []
    for lang in target.languages or ("zh",):
        chosen = lang if item.has_language(lang) else "zh"
        if chosen != lang:
            notes.append(f"translation missing: {lang}")
        if chosen not in langs:
            langs.append(chosen)
    return langs, notes


def item_fields(item: ItemView, lang: str) -> dict[str, Any]:
    """Title, summary, body, issuer in ``lang``, each falling back to the Chinese original."""
    return {
        "title": item.text(lang, "title") or item.title,
        "summary": item.text(lang, "summary") or ("" if lang != "zh" else item.summary),
        "body": item.text(lang, "body") or ("" if lang != "zh" else item.body),
        "issuer": item.text(lang, "issuer") or item.issuer or "",
        "doc_number": item.doc_number or "",
        "issued_at": item.issued_at,
        "urgent": item.urgent,
    }


# --- overflow --------------------------------------------------------------------------------


# A heading block as either chat dialect writes it: "## …" or **…** (WeCom), <b>…</b> (Telegram).
_HEADING = re.compile(r"#{1,6} [^\n]*|\*\*[^\n]*\*\*|<b>[^\n]*</b>")


def fit_parts(
    blocks: Sequence[str],
    footer: str,
    *,
    limit: int,
    measure: Measure,
    oversized: Callable[[str, int], list[str]],
    prefix: str = "",
    sep: str = "\n\n",
) -> list[str]:
    """One message when everything fits, else numbered parts cut between blocks.

    Every part starts with ``prefix`` (the urgent marker) and ends with ``footer`` (the links),
    so a reader who sees only one part still knows it is urgent and can open the whole item.
    Text measures are additive over blocks (tags have no visible length), so a running sum
    is exact.
    """
    whole = sep.join([*blocks, footer])
    if prefix:
        whole = f"{prefix}\n{whole}"
    if measure(whole) <= limit:
        return [whole]
    reserve = measure(prefix + _number(999, 999) + "\n") + measure(sep + footer)
    budget = limit - reserve
    if budget <= 0:
        raise ValueError("the footer leaves no room for text")
    pieces: list[list[str]] = []
    size = 0
    for block in blocks:
        if measure(block) <= budget:
            chunks = [block]
        else:  # strip ordinary blanks left at the cut, never U+202F (str.strip would)
            chunks = [c.strip(" \t\n") for c in oversized(block, budget)]
        for chunk in chunks:
            grown = size + measure(sep) + measure(chunk)
            if pieces and grown <= budget:
                pieces[-1].append(chunk)
                size = grown
                continue
            # a heading goes with its section, never alone at the end of a part
            carried = pieces[-1][-1:] if pieces and len(pieces[-1]) > 1 else []
            if carried and _HEADING.fullmatch(carried[0]):
                if measure(carried[0]) + measure(sep) + measure(chunk) <= budget:
                    pieces[-1].pop()
                    chunk = sep.join([carried[0], chunk])
            pieces.append([chunk])
            size = measure(chunk)
    total = len(pieces)
    return [
        f"{prefix}{_number(i, total)}\n{sep.join(piece)}{sep}{footer}"
        for i, piece in enumerate(pieces, start=1)
    ]


def _number(index: int, total: int) -> str:
    return f"（{index}/{total}）"


# --- composing one chat message in several languages -----------------------------------------

_BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")
_BODY = "\x00body\x00"  # where the template puts the body; replaced by the body's own blocks


@dataclass
class Composition:
    """The pieces of a bilingual chat message before it is cut to the provider's limit."""

    blocks: list[str]
    footer: str  # the links, one per language, ending every part
    prefix: str  # urgent markers, starting every part
    langs: list[str]
    notes: list[str]


def compose(
    item: ItemView,
    target: TargetView,
    public_url: str,
    *,
    channel: str,
    ext: str,
    dialect: Dialect,
    escape: Callable[[str], str],
) -> Composition:
    """Render each language's template in the target's order (Mongolian first for [mn, zh]).

    Templates ``message.<ext>``, ``link.<ext>`` and ``urgent.<ext>`` per language decide the
    wording; this code only orders, escapes and keeps block boundaries.
    """
    langs, notes = plan_languages(item, target)
    blocks: list[str] = []
    links: list[str] = []
    urgent: list[str] = []
    for n, lang in enumerate(langs):
        fields = item_fields(item, lang)
        body = markdown_blocks(fields.pop("body"), dialect)
        # a blank line inside a title or summary would be taken for a block boundary
        context = {
            k: escape(_BLANK_LINES.sub("\n", v).strip()) if isinstance(v, str) else v
            for k, v in fields.items()
        }
        urls = {
            "page_url": escape(item.page_link(public_url, channel)),
            "lang_url": escape(item.page_link(public_url, channel, lang, pin_lang=True)),
        }
        text = render(
            channel, lang, f"message.{ext}", body=_BODY if body else "", **context, **urls
        )
        if n:
            blocks.append(escape(LANGUAGE_DIVIDER))
        for block in text.split("\n\n"):
            if block.strip() == _BODY:
                blocks.extend(body)
            elif block.strip():
                blocks.append(block.strip("\n").replace(_BODY, "\n".join(body)))
        links.append(render(channel, lang, f"link.{ext}", **urls))
        if item.urgent:
            urgent.append(render(channel, lang, f"urgent.{ext}"))
    return Composition(blocks, "\n".join(links), "".join(urgent), langs, notes)
