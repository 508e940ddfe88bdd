"""The one jinja2 environment and the overflow rules every channel shares.

Templates live at ``templates/<channel>/<lang>/<name>.j2``; a folder ``templates/`` in the data
dir overrides any of them, so a county can reword a message without touching code. Adding a
language is adding templates (and a ``labels/<lang>.yaml``), no code.
"""

from __future__ import annotations

import os
import re
import time
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

from gongkai.domain.links import page_url

PACKAGE_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

# Right-to-left scripts, for dir="rtl" on pages and for ordering bilingual text.
RTL_LANGUAGES = {"ug", "ar", "fa"}
HTML_LANG = {"zh": "zh-Hans", "mn": "mn-Mong", "ug": "ug-Arab", "bo": "bo", "ii": "ii", "ko": "ko"}


# Characters XML 1.0 cannot carry at all: C0 controls but tab, newline and carriage return,
# lone surrogates, U+FFFE and U+FFFF. One of them in /feed.xml makes the whole feed unreadable
# to every reader, and pages are read by XML tools too; item text is not the only source
# (a county's template override, a label), so whole rendered documents are cleaned.
NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """``text`` without the characters XML 1.0 forbids (dropped: none of them is visible)."""
    return NOT_XML.sub("", text)


def _override_dir() -> Path | None:
    return _override_in(os.environ.get("GONGKAI_DATA_DIR", "./var"), int(time.monotonic() // 10))


@lru_cache(maxsize=8)
def _override_in(data_dir: str, _epoch: int) -> Path | None:
    """Looked up at most every ten seconds: a folder created later is still picked up."""
    path = Path(data_dir) / "templates"
    return path if path.is_dir() else None


@lru_cache(maxsize=8)
def environment(override: str | None = None, autoescape: bool = False) -> Environment:
    loaders = []
    if override:
        loaders.append(FileSystemLoader(override))
    loaders.append(FileSystemLoader(str(PACKAGE_TEMPLATES)))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.globals["label"] = label
    # templates link to an item the way every channel does, not by pasting "/p/" themselves
    env.globals["page_url"] = page_url
    return env


def get_template(channel: str, lang: str, name: str, *, html: bool = False):  # type: ignore[no-untyped-def]
    """The template for ``lang``, falling back to Chinese when a language has none."""
    override = _override_dir()
    env = environment(str(override) if override else None, html)
    try:
        return env.get_template(f"{channel}/{lang}/{name}.j2")
    except TemplateNotFound:
        return env.get_template(f"{channel}/zh/{name}.j2")


def has_templates(channel: str, lang: str) -> bool:
    override = _override_dir()
    dirs = [PACKAGE_TEMPLATES] + ([override] if override else [])
    return any((d / channel / lang).is_dir() for d in dirs)


def render(channel: str, lang: str, name: str, *, html: bool = False, **context: Any) -> str:
    """The template rendered; for markup (``html``: pages, the feed, article HTML) every value
    is escaped and the document holds only characters XML 1.0 allows, whatever the item says
    (cleaning after escaping cannot make markup: every ``<`` of a value is already ``&lt;``)."""
    out = get_template(channel, lang, name, html=html).render(lang=lang, **context).strip()
    return xml_safe(out) if html else out


@lru_cache(maxsize=32)
def _labels(lang: str) -> dict[str, str]:
    path = PACKAGE_TEMPLATES / "labels" / f"{lang}.yaml"
    override = _override_dir()
    data: dict[str, str] = {}
    if path.exists():
        data.update(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    if override and (override / "labels" / f"{lang}.yaml").exists():
        data.update(yaml.safe_load((override / "labels" / f"{lang}.yaml").read_text("utf-8")) or {})
    return data


def label(key: str, lang: str = "zh") -> str:
    """A UI word in ``lang`` (issuer, document number, …); Chinese, then the key, as fallback."""
    return _labels(lang).get(key) or _labels("zh").get(key) or key


# --- overflow -----------------------------------------------------------------------------


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


# Mongolian free variation selectors, vowel separator and the joiners: inside a word.
_WORD_JOINERS = "\u180b\u180c\u180d\u180e\u180f\u200c\u200d"


def _in_spaced_word(ch: str) -> bool:
    """A letter, digit, mark or joiner of a script that spaces its words (Mongolian, Uyghur,
    Latin); a Chinese character is a word of its own, so a cut between two is fine."""
    if ch in _WORD_JOINERS:
        return True
    letter = ch.isalnum() or unicodedata.category(ch).startswith("M")
    return letter and unicodedata.east_asian_width(ch) not in ("W", "F")


def word_start(text: str, cut: int) -> int:
    """``cut`` moved back to the start of the word it would split; unchanged when it falls
    between words or the text is one long word. A Mongolian word cut short takes other letter
    forms at its new end: the reader sees a different word, not half of this one."""
    if not 0 < cut < len(text) or not (
        _in_spaced_word(text[cut - 1]) and _in_spaced_word(text[cut])
    ):
        return cut
    start = cut
    while start > 0 and _in_spaced_word(text[start - 1]):
        start -= 1
    return start or cut


def split_to_fit(
    text: str,
    limit: int,
    *,
    measure=utf8_len,  # type: ignore[no-untyped-def]
    reserve: int = 0,
) -> list[str]:
    """Split at paragraph, then line, then sentence boundaries so each piece fits ``limit``.

    Never cuts inside a character (we measure whole code points) and never splits on U+202F,
    the narrow no-break space that joins Mongolian suffixes. ``reserve`` is room the caller
    keeps for a header or footer on every piece.
    """
    budget = limit - reserve
    if budget <= 0:
        raise ValueError("the reserve leaves no room for text")
    if measure(text) <= budget:
        return [text]
    pieces: list[str] = []
    current = ""
    for unit in _units(text, budget, measure):
        candidate = unit if not current else current + unit
        if measure(candidate) <= budget:
            current = candidate
        else:
            if current.strip():
                pieces.append(current.strip("\n"))
            current = unit.lstrip("\n")
    if current.strip():
        pieces.append(current.strip("\n"))
    return pieces


_SENTENCE_ENDS = "。！？；!?;\n᠃᠉"


def _units(text: str, budget: int, measure) -> list[str]:  # type: ignore[no-untyped-def]
    """Paragraphs (with their trailing blank line); oversized ones broken further."""
    out: list[str] = []
    paragraphs = text.split("\n\n")
    for i, para in enumerate(paragraphs):
        para = para + ("\n\n" if i < len(paragraphs) - 1 else "")
        if measure(para) <= budget:
            out.append(para)
            continue
        sentence = ""
        for ch in para:
            sentence += ch
            if ch in _SENTENCE_ENDS:
                out.extend(_hard_cut(sentence, budget, measure))
                sentence = ""
        if sentence:
            out.extend(_hard_cut(sentence, budget, measure))
    return out


def _hard_cut(text: str, budget: int, measure) -> list[str]:  # type: ignore[no-untyped-def]
    """Last resort for a sentence longer than a whole message: cut between characters,
    preferring an ordinary space, never U+202F."""
    if measure(text) <= budget:
        return [text]
    pieces: list[str] = []
    current = ""
    last_space = -1
    for ch in text:
        if measure(current + ch) > budget:
            if last_space > 0:
                pieces.append(current[: last_space + 1])
                current = current[last_space + 1 :]
            else:
                pieces.append(current)
                current = ""
            last_space = -1
        current += ch
        if ch == " ":
            last_space = len(current) - 1
    if current:
        pieces.append(current)
    return pieces


# --- Markdown -----------------------------------------------------------------------------

_MD = None


def render_markdown(text: str) -> str:
    """Markdown to safe HTML: raw HTML is escaped, javascript: links are refused."""
    global _MD
    if _MD is None:
        from markdown_it import MarkdownIt

        _MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
        _MD.enable("table")
    return _MD.render(text or "")
