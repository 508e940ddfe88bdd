"""A WeCom group robot webhook, as documented (developer.work.weixin.qq.com/document/path/91770).

It enforces what the real one does: the key must be a robot's, each message type has its
shape and byte limit (text 2048, markdown 4096 → 40058), a robot takes 20 messages a minute
in a sliding window (45009), and files must be uploaded first (upload_media → media_id).
The clock is injectable so tests move time instead of sleeping.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TEXT_LIMIT = 2048
MARKDOWN_LIMIT = 4096
IMAGE_LIMIT = 2 * 1024 * 1024
FILE_LIMIT = 20 * 1024 * 1024
VOICE_LIMIT = 2 * 1024 * 1024
AMR_MAGIC = b"#!AMR\n"
WINDOW = 60.0


@dataclass
class RobotMessage:
    key: str
    msgtype: str
    content: str  # text/markdown content; media_id for file/voice; "" otherwise
    body: dict[str, Any]
    at: float = field(default_factory=time.time)  # wall clock, for the sandbox page


@dataclass
class Upload:
    key: str
    type: str
    filename: str
    data: bytes


@dataclass
class RobotState:
    valid_keys: set[str] | None
    rate_per_minute: int
    clock: Callable[[], float] = time.monotonic
    messages: list[RobotMessage] = field(default_factory=list)
    uploads: dict[str, Upload] = field(default_factory=dict)
    rate_limited: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (errcode, errmsg)
    sent_at: dict[str, deque[float]] = field(default_factory=dict)
    fail_next: list[int] = field(default_factory=list)  # HTTP statuses to answer next, in order

    def messages_for(self, key: str) -> list[RobotMessage]:
        return [m for m in self.messages if m.key == key]


class _Reject(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


def make_app(
    valid_keys: set[str] | None = None,
    rate_per_minute: int = 20,
    clock: Callable[[], float] | None = None,
) -> tuple[web.Application, RobotState]:
    """The robot server; ``valid_keys=None`` accepts any non-empty key."""
    state = RobotState(valid_keys=valid_keys, rate_per_minute=rate_per_minute)
    if clock is not None:
        state.clock = clock
    media_ids = (f"3a{n:032x}" for n in itertools.count(1))
    app = web.Application(client_max_size=FILE_LIMIT + 1024 * 1024)

    def reply(errcode: int = 0, errmsg: str = "ok", **extra: Any) -> web.Response:
        if errcode:
            state.rejected.append((errcode, errmsg))
        return web.json_response({"errcode": errcode, "errmsg": errmsg, **extra})

    def check_key(request: web.Request) -> str:
        key = request.query.get("key", "")
        if not key or (state.valid_keys is not None and key not in state.valid_keys):
            raise _Reject(93000, "invalid webhook url, hint: [fake] key not found")
        return key

    async def send(request: web.Request) -> web.Response:
        if state.fail_next:
            return web.Response(status=state.fail_next.pop(0), text="upstream error")
        try:
            key = check_key(request)
            try:
                body = await request.json()
            except ValueError as exc:
                raise _Reject(40016, "invalid json, hint: [fake] body is not JSON") from exc
            msgtype, content = _validate(body, key, state)
            _take_slot(state, key)
        except _Reject as exc:
            return reply(exc.errcode, exc.errmsg)
        state.messages.append(RobotMessage(key, msgtype, content, body))
        return reply()

    async def upload_media(request: web.Request) -> web.Response:
        try:
            key = check_key(request)
            kind = request.query.get("type", "")
            if kind not in ("file", "voice"):
                raise _Reject(40004, "invalid media type")
            media = await _read_media(request)
            if media is None:
                raise _Reject(40035, "invalid args, hint: [fake] multipart field media missing")
            filename, data = media
            _validate_upload(kind, filename, data)
        except _Reject as exc:
            return reply(exc.errcode, exc.errmsg)
        media_id = next(media_ids)
        state.uploads[media_id] = Upload(key, kind, filename, data)
        return reply(type=kind, media_id=media_id, created_at=str(int(time.time())))

    app.router.add_post("/cgi-bin/webhook/send", send)
    app.router.add_post("/cgi-bin/webhook/upload_media", upload_media)
    return app, state


def _take_slot(state: RobotState, key: str) -> None:
    """The sliding window: at most ``rate_per_minute`` accepted messages in any 60 s."""
    now = state.clock()
    window = state.sent_at.setdefault(key, deque())
    while window and now - window[0] >= WINDOW:
        window.popleft()
    if len(window) >= state.rate_per_minute:
        state.rate_limited += 1
        raise _Reject(45009, "api freq out of limit")
    window.append(now)


def _validate(body: Any, key: str, state: RobotState) -> tuple[str, str]:
    if not isinstance(body, dict):
        raise _Reject(40035, "invalid args")
    msgtype = body.get("msgtype")
    inner = body.get(msgtype) if isinstance(msgtype, str) else None
    if msgtype not in ("text", "markdown", "image", "news", "file", "voice"):
        raise _Reject(40008, "invalid message type")
    if not isinstance(inner, dict):
        raise _Reject(40035, f"invalid args, hint: [fake] missing {msgtype} object")
    if msgtype in ("text", "markdown"):
        content = inner.get("content")
        if not isinstance(content, str) or not content:
            raise _Reject(44004, "empty content")
        limit = TEXT_LIMIT if msgtype == "text" else MARKDOWN_LIMIT
        if len(content.encode("utf-8")) > limit:
            raise _Reject(40058, f"{msgtype}.content exceed max length {limit}")
        for name in ("mentioned_list", "mentioned_mobile_list"):
            value = inner.get(name, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise _Reject(40035, f"invalid args, hint: [fake] {name} must be strings")
        return msgtype, content
    if msgtype == "image":
        try:
            data = base64.b64decode(inner.get("base64", ""), validate=True)
        except (binascii.Error, TypeError) as exc:
            raise _Reject(40009, "invalid image size") from exc
        if not data or len(data) > IMAGE_LIMIT:
            raise _Reject(40009, "invalid image size")
        if hashlib.md5(data).hexdigest() != inner.get("md5"):
            raise _Reject(40035, "invalid args, hint: [fake] md5 does not match")
        return msgtype, ""
    if msgtype == "news":
        articles = inner.get("articles")
        if not isinstance(articles, list) or not 1 <= len(articles) <= 8:
            raise _Reject(40035, "invalid args, hint: [fake] 1 to 8 articles")
        for art in articles:
            if not isinstance(art, dict) or not art.get("title") or not art.get("url"):
                raise _Reject(40035, "invalid args, hint: [fake] article needs title and url")
        return msgtype, ""
    media_id = inner.get("media_id")
    upload = state.uploads.get(media_id) if isinstance(media_id, str) else None
    if upload is None or upload.key != key or upload.type != msgtype:
        raise _Reject(40007, "invalid media_id")
    return msgtype, media_id


async def _read_media(request: web.Request) -> tuple[str, bytes] | None:
    if not request.content_type.startswith("multipart/"):
        return None
    reader = await request.multipart()
    async for part in reader:
        if getattr(part, "name", None) == "media":
            data = await part.read()  # type: ignore[union-attr]
            return part.filename or "media", bytes(data)  # type: ignore[union-attr]
    return None


def _validate_upload(kind: str, filename: str, data: bytes) -> None:
    if kind == "file":
        if not 5 < len(data) <= FILE_LIMIT:
            raise _Reject(40006, "invalid media size")
        return
    if len(data) > VOICE_LIMIT or not data.startswith(AMR_MAGIC):
        raise _Reject(40005, "invalid file type, hint: [fake] voice must be AMR ≤ 2MB")
