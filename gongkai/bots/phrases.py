"""What the bots say, per language, from ``templates/bot/<lang>.yaml`` (editable, overridable).

A county rewords a reply by dropping a file into ``<data dir>/templates/bot/``; a language is
added by adding a file. A phrase missing in a language falls back to Chinese, so a partial
translation never leaves a resident without an answer.

Residents' own words are echoed only through `safe_echo`: a reply must never carry markup a
resident typed (WeChat shows it verbatim, Telegram may parse it, a console may render it).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from gongkai.channels.rendering import PACKAGE_TEMPLATES, _override_dir

_MARKUP = re.compile(r"<[^>]*>|[<>&\"'`\\]")
# Bidi overrides and isolates could reorder a reply around the quote; other format characters
# (ZWJ, the Mongolian vowel separator) belong to the text.
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _printable(ch: str) -> bool:
    category = unicodedata.category(ch)
    return ch not in _BIDI and category not in ("Cc", "Cs", "Co", "Cn")


@lru_cache(maxsize=16)
def _phrasebook(lang: str, override: str | None) -> dict[str, str]:
    data: dict[str, str] = {}
    for base in (PACKAGE_TEMPLATES, Path(override) if override else None):
        if base is None:
            continue
        path = base / "bot" / f"{lang}.yaml"
        if path.is_file():
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            data.update({str(k): str(v) for k, v in loaded.items()})
    return data


def available_languages() -> list[str]:
    dirs = [PACKAGE_TEMPLATES / "bot"]
    override = _override_dir()
    if override:
        dirs.append(override / "bot")
    return sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.yaml")})


def say(lang: str, key: str, **values: Any) -> str:
    """The phrase ``key`` in ``lang`` (else Chinese), with ``{placeholders}`` filled in."""
    override = _override_dir()
    text = _phrasebook(lang, str(override) if override else None).get(key)
    if text is None:
        text = _phrasebook("zh", str(override) if override else None).get(key, key)
    return text.format(**values) if values else text


def safe_echo(text: str, limit: int = 24) -> str:
    """A resident's words, fit to quote back: no markup, no control characters, short."""
    text = _MARKUP.sub("", text)
    text = "".join(ch for ch in text if _printable(ch))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
