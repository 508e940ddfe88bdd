"""A Telegram Bot API server (core.telegram.org/bots/api) speaking what aiogram 3 sends.

Routes ``/bot{token}/{method}`` with JSON, urlencoded or multipart bodies. It is as strict
as the real one where it matters to us: HTML parse mode accepts only the documented tags and
entities ("can't parse entities"), text is 1..4096 UTF-16 units after parsing, flood limits
answer 429 with ``retry_after`` (1 message/s per chat, 20/min per group, 30/s per bot), a bot
kicked from a group gets 403, an unknown token 401. The HTML checker is written here, apart
from the renderer it judges. The clock is injectable so tests move time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ALLOWED_TAGS = {"b", "i", "u", "s", "a", "code", "pre", "blockquote", "tg-spoiler"}
NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
TEXT_LIMIT = 4096
DELETE_WINDOW = 48 * 3600.0
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*?)?)\s*(/?)>")
_ATTR = re.compile(r"""([a-zA-Z-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_ENTITY = re.compile(r"&(#[0-9]{1,7}|#x[0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]*);")


class BadHTML(ValueError):
    pass


def parse_html(text: str) -> str:
    """The plain text Telegram would show, or BadHTML with Telegram's own wording."""
    out: list[str] = []
    open_tags: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "<":
            match = _TAG.match(text, i)
            offset = len(text[:i].encode("utf-8"))
            if match is None:
                raise BadHTML(f'Unsupported start tag "" at byte offset {offset}')
            closing, name, attrs = match.group(1), match.group(2).lower(), match.group(3)
            if name not in ALLOWED_TAGS:
                kind = "end" if closing else "start"
                raise BadHTML(f'Unsupported {kind} tag "{name}" at byte offset {offset}')
            if closing:
                if not open_tags or open_tags[-1] != name:
                    expected = f'"</{open_tags[-1]}>"' if open_tags else "nothing"
                    raise BadHTML(
                        f"Unmatched end tag at byte offset {offset}, expected {expected}, "
                        f'found "</{name}>"'
                    )
                open_tags.pop()
            else:
                _check_attributes(name, attrs, offset)
                open_tags.append(name)
            i = match.end()
        elif ch == ">":
            out.append(ch)  # Telegram tolerates a bare ">"
            i += 1
        elif ch == "&":
            match = _ENTITY.match(text, i)
            if match is None:
                out.append(ch)  # a lone ampersand is kept as text
                i += 1
                continue
            out.append(_entity(match.group(1), len(text[:i].encode("utf-8"))))
            i = match.end()
        else:
            out.append(ch)
            i += 1
    if open_tags:
        raise BadHTML(f'Can\'t find end tag corresponding to start tag "{open_tags[-1]}"')
    return "".join(out)


def _check_attributes(name: str, attrs: str, offset: int) -> None:
    found = {
        m.group(1).lower(): m.group(2) or m.group(3) or m.group(4) or ""
        for m in _ATTR.finditer(attrs)
    }
    if name == "a" and not found.get("href"):
        raise BadHTML(f'Can\'t find href attribute of tag "a" at byte offset {offset}')


def _entity(body: str, offset: int) -> str:
    if body.startswith("#x"):
        return chr(int(body[2:], 16))
    if body.startswith("#"):
        return chr(int(body[1:]))
    if body in NAMED_ENTITIES:
        return NAMED_ENTITIES[body]
    raise BadHTML(f'Unsupported HTML entity "&{body};" at byte offset {offset}')


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class SentMessage:
    token: str
    chat_id: int | str
    message_id: int
    text: str  # as shown, after parsing
    raw: str  # as sent
    parse_mode: str | None
    sent_at: float
    deleted: bool = False
    at: float = field(default_factory=time.time)  # wall clock, for the sandbox page


@dataclass
class TelegramState:
    tokens: set[str]
    clock: Callable[[], float] = time.monotonic
    messages: list[SentMessage] = field(default_factory=list)
    kicked: set[int | str] = field(default_factory=set)
    known_chats: set[int | str] | None = None  # None: every chat exists
    flood_rejections: int = 0
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    updates: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    fail_next: list[int] = field(default_factory=list)  # HTTP statuses to answer next
    windows: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    _update_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _arrived: asyncio.Event | None = None

    def visible(self, chat_id: int | str) -> list[SentMessage]:
        """What members of the chat see now."""
        return [m for m in self.messages if m.chat_id == chat_id and not m.deleted]

    def push_update(self, token: str, update: dict[str, Any]) -> int:
        """Queue an update for getUpdates; returns its update_id."""
        update_id = next(self._update_ids)
        self.updates.setdefault(token, []).append({"update_id": update_id, **update})
        if self._arrived is not None:
            self._arrived.set()
        return update_id


def make_app(
    tokens: Iterable[str] = ("123456:TEST-token",),
    clock: Callable[[], float] | None = None,
) -> tuple[web.Application, TelegramState]:
    state = TelegramState(tokens=set(tokens))
    if clock is not None:
        state.clock = clock
    message_ids: dict[tuple[str, int | str], itertools.count[int]] = {}

    async def handle(request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"]
        if state.fail_next:
            return _fail(state.fail_next.pop(0), "Internal Server Error")
        if token not in state.tokens:
            return _fail(401, "Unauthorized")
        params = await _params(request)
        state.requests.append((token, method, params))
        handler = METHODS.get(method.lower())
        if handler is None:
            return _fail(404, "Not Found")
        return await handler(token, params)

    async def get_me(token: str, params: dict[str, Any]) -> web.Response:
        return _ok(_bot_user(token))

    async def send_message(token: str, params: dict[str, Any]) -> web.Response:
        chat_id = _chat_id(params.get("chat_id"))
        if chat_id is None:
            return _fail(400, "Bad Request: chat_id is empty")
        if state.known_chats is not None and chat_id not in state.known_chats:
            return _fail(400, "Bad Request: chat not found")
        if chat_id in state.kicked:
            return _fail(403, _forbidden(chat_id))
        raw = str(params.get("text", ""))
        mode = params.get("parse_mode") or None
        if mode not in (None, "HTML"):
            return _fail(400, f"Bad Request: unsupported parse_mode {mode}")
        try:
            shown = parse_html(raw) if mode == "HTML" else raw
        except BadHTML as exc:
            return _fail(400, f"Bad Request: can't parse entities: {exc}")
        shown = shown.strip()
        if not shown:
            return _fail(400, "Bad Request: message text is empty")
        if utf16_len(shown) > TEXT_LIMIT:
            return _fail(400, "Bad Request: message is too long")
        wait = _flood_wait(state, token, chat_id)
        if wait:
            state.flood_rejections += 1
            return web.json_response(
                {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {wait}",
                    "parameters": {"retry_after": wait},
                },
                status=429,
            )
        counter = message_ids.setdefault((token, chat_id), itertools.count(1))
        msg = SentMessage(token, chat_id, next(counter), shown, raw, mode, state.clock())
        state.messages.append(msg)
        return _ok(
            {
                "message_id": msg.message_id,
                "from": _bot_user(token),
                "chat": _chat(chat_id),
                "date": int(time.time()),
                "text": shown,
            }
        )

    async def delete_message(token: str, params: dict[str, Any]) -> web.Response:
        chat_id = _chat_id(params.get("chat_id"))
        message_id = int(params.get("message_id") or 0)
        if chat_id in state.kicked:
            return _fail(403, _forbidden(chat_id))
        for msg in state.messages:
            if (msg.token, msg.chat_id, msg.message_id) == (token, chat_id, message_id):
                if msg.deleted:
                    break
                if state.clock() - msg.sent_at > DELETE_WINDOW:
                    return _fail(400, "Bad Request: message can't be deleted for everyone")
                msg.deleted = True
                return _ok(True)
        return _fail(400, "Bad Request: message to delete not found")

    async def set_webhook(token: str, params: dict[str, Any]) -> web.Response:
        url = str(params.get("url", ""))
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            return _fail(400, "Bad Request: secret token contains unallowed characters")
        if not url:
            state.webhooks.pop(token, None)
            return _ok(True, description="Webhook was deleted")
        if not url.startswith("https://") and not url.startswith("http://127.0.0.1"):
            return _fail(400, "Bad Request: bad webhook: An HTTPS URL must be provided")
        state.webhooks[token] = {"url": url, "secret_token": secret}
        return _ok(True, description="Webhook was set")

    async def delete_webhook(token: str, params: dict[str, Any]) -> web.Response:
        state.webhooks.pop(token, None)
        return _ok(True, description="Webhook was deleted")

    async def get_webhook_info(token: str, params: dict[str, Any]) -> web.Response:
        hook = state.webhooks.get(token, {})
        return _ok(
            {
                "url": hook.get("url", ""),
                "has_custom_certificate": False,
                "pending_update_count": len(state.updates.get(token, [])),
            }
        )

    async def get_updates(token: str, params: dict[str, Any]) -> web.Response:
        if token in state.webhooks:
            return _fail(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        queue = state.updates.setdefault(token, [])
        if offset:
            queue[:] = [u for u in queue if u["update_id"] >= offset]
        if not queue and timeout > 0:
            state._arrived = asyncio.Event()
            try:
                await asyncio.wait_for(state._arrived.wait(), timeout)
            except TimeoutError:
                pass
        return _ok(queue[:limit])

    METHODS = {
        "getme": get_me,
        "sendmessage": send_message,
        "deletemessage": delete_message,
        "setwebhook": set_webhook,
        "deletewebhook": delete_webhook,
        "getwebhookinfo": get_webhook_info,
        "getupdates": get_updates,
    }
    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", handle)
    return app, state


def _flood_wait(state: TelegramState, token: str, chat_id: int | str) -> int:
    """Seconds to wait, 0 when the message may go; only accepted messages take a slot."""
    now = state.clock()
    rules = [((token, "bot"), 30, 1.0), ((token, f"chat:{chat_id}"), 1, 1.0)]
    if not (isinstance(chat_id, int) and chat_id > 0):
        rules.append(((token, f"group:{chat_id}"), 20, 60.0))
    wait = 0.0
    for key, count, window in rules:
        times = state.windows.setdefault(key, deque())
        while times and now - times[0] >= window:
            times.popleft()
        if len(times) >= count:
            wait = max(wait, times[0] + window - now)
    if wait:
        return max(1, math.ceil(wait))
    for key, _, _ in rules:
        state.windows[key].append(now)
    return 0


async def _params(request: web.Request) -> dict[str, Any]:
    """aiogram posts urlencoded (or multipart) forms; other clients post JSON or a query."""
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            params.update(body)
    elif request.can_read_body:
        form = await request.post()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


def _chat_id(value: Any) -> int | str | None:
    if value is None or value == "":
        return None
    text = str(value)
    return int(text) if text.lstrip("-").isdigit() else text


def _chat(chat_id: int | str) -> dict[str, Any]:
    if isinstance(chat_id, str):
        return {
            "id": -1000000000000 - abs(hash(chat_id)) % 10**9,
            "type": "channel",
            "title": chat_id,
            "username": chat_id.lstrip("@"),
        }
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": "Resident"}
    kind = "supergroup" if str(chat_id).startswith("-100") else "group"
    return {"id": chat_id, "type": kind, "title": f"Village group {chat_id}"}


def _forbidden(chat_id: int | str) -> str:
    if isinstance(chat_id, int) and chat_id > 0:
        return "Forbidden: bot was blocked by the user"
    kind = "supergroup" if str(chat_id).startswith("-100") else "group"
    return f"Forbidden: bot was kicked from the {kind} chat"


def _bot_user(token: str) -> dict[str, Any]:
    bot_id = int(token.split(":", 1)[0])
    return {"id": bot_id, "is_bot": True, "first_name": "Gongkai", "username": f"gk{bot_id}_bot"}


def _ok(result: Any, **extra: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result, **extra})


def _fail(status: int, description: str) -> web.Response:
    return web.json_response(
        {"ok": False, "error_code": status, "description": description}, status=status
    )
