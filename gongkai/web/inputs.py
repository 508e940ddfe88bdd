"""Reading what a request carries — query values, path ids, JSON bodies, redirect targets — within
bounds, so no value reaches the database, the calendar or a response header unchecked.

Every parser here refuses by naming the parameter: ``QueryRefused`` becomes a 400 (JSON on the
API, a page in the console, see ``gongkai.web.errors`` and the console gate) and ``BodyRefused``
carries its own status. Handlers call these instead of ``int()`` and ``fromisoformat()``, so a
new route gets the same bounds by using them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import date, datetime, tzinfo
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from gongkai.domain.bounds import MAX_ROW_ID, day_problem, moment_problem

MAX_JSON_BYTES = 4 * 1024 * 1024  # the app's client_max_size: an item with long translations
MAX_JSON_DEPTH = 32
MAX_PARAM_CHARS = 200  # ids, codes and names in a query string


class QueryRefused(Exception):
    """A query-string value is malformed or out of bounds; ``field`` names the parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class BodyRefused(Exception):
    """The request body cannot be read as what the route expects (too large, not UTF-8, not
    JSON, nested too deep); ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --- query strings ------------------------------------------------------------------------


def int_param(
    q: Mapping[str, str], name: str, *, default: int | None, lo: int, hi: int
) -> int | None:
    """An integer in ``lo..hi``; the digits are checked before ``int()`` so a thousand-digit
    value costs nothing."""
    raw = q.get(name, "").strip()
    if not raw:
        return default
    digits = raw[1:] if raw[:1] in "+-" else raw
    if not digits.isascii() or not digits.isdigit():
        raise QueryRefused(name, "应为整数 / not a whole number")
    if len(digits) > 20:
        raise QueryRefused(name, f"应在 {lo}–{hi} 之间 / must be within {lo}..{hi}")
    value = int(raw)
    if not lo <= value <= hi:
        raise QueryRefused(name, f"应在 {lo}–{hi} 之间 / must be within {lo}..{hi}")
    return value


def text_param(q: Mapping[str, str], name: str, *, max_chars: int = MAX_PARAM_CHARS) -> str | None:
    """A short one-line value (an id, a code, a name), or None when absent."""
    value = q.get(name, "").strip()
    if not value:
        return None
    if len(value) > max_chars:
        raise QueryRefused(name, f"超过 {max_chars} 个字符 / longer than {max_chars} characters")
    if any(ch < " " or ch == "\x7f" for ch in value):
        raise QueryRefused(name, "含控制字符 / contains a control character")
    return value


def window_day(name: str, value: date) -> date:
    """``value`` when it is inside the input window, else refused naming ``name``."""
    problem = day_problem(value)
    if problem:
        raise QueryRefused(name, problem)
    return value


def date_param(q: Mapping[str, str], name: str) -> date | None:
    """A ``YYYY-MM-DD`` day inside the window."""
    raw = q.get(name, "").strip()
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw[:32])
    except ValueError:
        raise QueryRefused(name, "日期格式应为 YYYY-MM-DD / not a YYYY-MM-DD date") from None
    return window_day(name, day)


def datetime_param(q: Mapping[str, str], name: str, tz: tzinfo | None) -> datetime | None:
    """An ISO date or time inside the window; a value without an offset is read in ``tz``
    (``None``: the machine's local zone)."""
    raw = q.get(name, "").strip()
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw[:64])
    except ValueError:
        raise QueryRefused(name, "应为 ISO 日期或时间 / not an ISO date or time") from None
    if moment.tzinfo is None:
        # a wall-clock value is judged by its day, so since=1949-01-01 is accepted in a zone
        # east of UTC; within the window the conversion cannot overflow
        problem = day_problem(moment.date())
        if problem:
            raise QueryRefused(name, problem)
        return moment.replace(tzinfo=tz) if tz is not None else moment.astimezone()
    problem = moment_problem(moment)
    if problem:
        raise QueryRefused(name, problem)
    return moment


def row_id(request: web.Request, name: str = "id") -> int:
    """A path segment naming a row: anything but a stored row id's range is simply not found."""
    raw = request.match_info.get(name, "")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or not 1 <= int(raw) <= MAX_ROW_ID:
        if request.path.startswith("/api/"):
            raise web.HTTPNotFound(text='{"error": "not found"}', content_type="application/json")
        raise web.HTTPNotFound(text="没有这一行 / not found")
    return int(raw)


# --- bodies ---------------------------------------------------------------------------------


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The whole body, or 413 past ``max_bytes`` (``content.read(n)`` alone may stop short
    at a chunk boundary)."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise BodyRefused(413, f"请求体超过 {max_bytes} 字节 / body larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(65536)
        if not chunk:
            break
        size += len(chunk)
        if size > max_bytes:
            raise BodyRefused(
                413, f"请求体超过 {max_bytes} 字节 / body larger than {max_bytes} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def parse_json(raw: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """UTF-8 JSON whatever charset the request claimed (JSON is UTF-8, RFC 8259), without
    NaN or infinities, nested at most ``max_depth`` levels."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyRefused(400, "请求体不是 UTF-8 文本 / body is not UTF-8") from None
    if too_deep(text, max_depth):
        raise BodyRefused(422, f"嵌套超过 {max_depth} 层 / nested more than {max_depth} levels")
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, RecursionError):
        raise BodyRefused(422, "不是有效的 JSON / not valid JSON") from None


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_ONE_KIND = str.maketrans("{}", "[]")


def too_deep(text: str, max_depth: int) -> bool:
    """Whether the brackets of a JSON text nest deeper than ``max_depth``, judged before parsing
    so that neither the parser's recursion nor a walk of a million values ever starts.

    Strings are cut out, everything but brackets deleted, and innermost pairs removed once per
    level: at most ``max_depth`` passes of C-speed string operations over the text.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return False
    brackets = _STRING.sub("", text)
    for separator in ",: \n\r\t":  # plain replaces first: one regex match per comma is slow
        brackets = brackets.replace(separator, "")
    # one kind of bracket, so that each pass removes exactly one level ("{[]}" is two passes)
    brackets = _NOT_BRACKET.sub("", brackets).translate(_ONE_KIND)
    for _ in range(max_depth):
        shorter = brackets.replace("[]", "")
        if shorter == brackets:
            return False  # unbalanced: the parser says what is wrong with it
        brackets = shorter
        if not brackets:
            return False
    return "[]" in brackets


async def read_json(
    request: web.Request, *, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH
) -> Any:
    return parse_json(await read_body(request, max_bytes), max_depth=max_depth)


# --- redirects ------------------------------------------------------------------------------

_URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"<>\\^`{|}')


def local_target(value: object, default: str, *, prefix: str = "/admin/") -> str:
    """A redirect target only when it is a path on this site under ``prefix``.

    A CR or LF would split the Location header (aiohttp then drops the connection after the
    action has happened); a scheme, a host, ``//`` or a backslash would leave the site. Anything
    else outside printable ASCII is percent-encoded rather than refused, so a console page with
    a Chinese search term still comes back.
    """
    text = value if isinstance(value, str) else ""
    if (
        not text.startswith(prefix)
        or text.startswith("//")
        or "\\" in text
        or any(ch < " " or ch == "\x7f" for ch in text)
        or len(text) > 2000
    ):
        return default
    encoded = quote(text, safe=_URL_SAFE + "%")
    parts = urlsplit(encoded)
    if parts.scheme or parts.netloc:
        return default
    return encoded
