"""Showing a stored part as a person reads it, next to the exact JSON the provider receives.

The JSON is the truth (it is what goes out, with phone numbers replaced by their masked copy);
the readable text is a convenience for the eye, taken from where each channel keeps its words.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gongkai.channels.rendering import utf8_len

_TEXT_KEYS = ("text", "content", "script", "caption", "body")


@dataclass
class ShownPart:
    number: int
    text: str
    raw: str
    bytes: int
    chars: int
    mongolian: bool


def _find_text(value: Any, depth: int = 0) -> str | None:
    if isinstance(value, str):
        return value
    if depth > 3:
        return None
    if isinstance(value, dict):
        for key in _TEXT_KEYS:
            if isinstance(value.get(key), str) and value[key].strip():
                return value[key]
        for key in ("markdown", "text", "news", "articles", "mpnews", "voice", "file"):
            if key in value:
                found = _find_text(value[key], depth + 1)
                if found:
                    return found
    if isinstance(value, list):
        texts = [t for t in (_find_text(v, depth + 1) for v in value) if t]
        return "\n\n".join(texts) or None
    return None


def part_text(part: dict[str, Any], meta: dict[str, Any] | None = None) -> str:
    """Readable words of a part; an SMS template's final wording lives in the payload's meta."""
    found = _find_text(part)
    if found:
        return found
    if meta and isinstance(meta.get("text"), str):
        return meta["text"]
    if "articles" in part:
        return "\n".join(str(a.get("title", "")) for a in part["articles"])
    return " · ".join(
        f"{k}={v}" for k, v in part.items() if k != "sealed" and not isinstance(v, dict | list)
    )


def has_mongolian(text: str) -> bool:
    return any("\u1800" <= ch <= "\u18af" for ch in text)


def shown_parts(payload: dict[str, Any]) -> list[ShownPart]:
    """Every part of a stored payload; the sealed phone numbers never leave the database."""
    meta = payload.get("meta") or {}
    out = []
    for n, part in enumerate(payload.get("parts") or [], 1):
        visible = {k: v for k, v in part.items() if k != "sealed"}
        text = part_text(visible, meta)
        out.append(
            ShownPart(
                number=n,
                text=text,
                raw=json.dumps(visible, ensure_ascii=False, indent=2),
                bytes=utf8_len(text),
                chars=len(text),
                mongolian=has_mongolian(text),
            )
        )
    return out
