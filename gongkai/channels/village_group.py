"""Village WeChat groups, reached through a WeCom group robot's webhook.

A robot posts into one group; it takes at most 20 messages a minute, markdown up to 4096
bytes, and cannot take a message back. So an item becomes as few messages as possible — one
bilingual markdown message when it fits — and the 20-a-minute budget is shared (same key)
with the loudspeaker channel, which posts the committee's script through the same robots.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from gongkai.channels.base import (
    Channel,
    ItemView,
    PermanentError,
    RateLimit,
    Rendered,
    SendContext,
    SentPart,
    TargetView,
    TransientError,
)
from gongkai.channels.chat_parts import compose, fit_parts
from gongkai.channels.html_text import WeComDialect, split_markdown
from gongkai.channels.rendering import render, utf8_len
from gongkai.storage.json_codec import dumps_bytes, loads

MARKDOWN_LIMIT = 4096  # bytes of UTF-8, per WeCom's documentation
TEXT_LIMIT = 2048
ROBOT_RATE = "20/minute"
SEND_TIMEOUT = aiohttp.ClientTimeout(total=15)
_JSON = {"Content-Type": "application/json; charset=utf-8"}
_URL_SAFE = re.compile(r"[A-Za-z0-9_.~-]+")  # a robot key as WeCom issues it: nothing to quote

# errcode → what the dispatcher should do about it
_INVALID_KEY = 93000
_FREQUENCY = 45009
_TOO_LONG = 40058
_SYSTEM_BUSY = -1


def robot_limit_key(robot_key: str) -> str:
    """The rate-limit key of one robot, shared by every channel that posts through it."""
    return "wecom:" + hashlib.sha1(robot_key.encode("utf-8")).hexdigest()[:16]


class VillageGroupChannel(Channel):
    name = "village_group"
    title = "村民微信群（企业微信群机器人）"
    quiet_hours_apply = False
    can_recall = False

    def render(self, item: ItemView, target: TargetView, public_url: str) -> Rendered:
        comp = compose(
            item,
            target,
            public_url,
            channel=self.name,
            ext="md",
            dialect=WeComDialect(),
            escape=lambda s: s,
        )
        texts = fit_parts(
            comp.blocks,
            comp.footer,
            prefix=comp.prefix,
            limit=MARKDOWN_LIMIT,
            measure=utf8_len,
            oversized=split_markdown,
        )
        parts: list[dict[str, Any]] = [
            {"msgtype": "markdown", "markdown": {"content": t}} for t in texts
        ]
        mentioned = [str(m) for m in target.options.get("mentioned_list") or []]
        if mentioned:
            # Only the text type can @mention; one short extra message does it.
            lang = comp.langs[0]
            content = render(
                self.name,
                lang,
                "mention.txt",
                title=item.text(lang, "title") or item.title,
                page_url=item.page_link(public_url, self.name),
                lang_url=item.page_link(public_url, self.name, lang, pin_lang=True),
            )
            parts.append(
                {
                    "msgtype": "text",
                    "text": {"content": _clip(content, TEXT_LIMIT), "mentioned_list": mentioned},
                }
            )
        sizes = [utf8_len(_content(p)) for p in parts]
        return Rendered(parts=parts, notes=comp.notes, meta={"bytes": sizes, "parts": len(parts)})

    def rate_limits(self, target: TargetView, part: dict[str, Any]) -> list[RateLimit]:
        key = target.address.get("robot_key")
        return [RateLimit(ROBOT_RATE, robot_limit_key(str(key)))] if key else []

    async def send(self, part: dict[str, Any], ctx: SendContext) -> SentPart:
        return await post_to_robot(
            ctx.http, ctx.settings.wecom_api_base, _robot_key(ctx.target), part
        )


async def post_to_robot(
    http: aiohttp.ClientSession, api_base: str, robot_key: str, payload: dict[str, Any]
) -> SentPart:
    """POST one message to a robot and turn WeCom's errcode into retry-or-give-up.

    Public so the loudspeaker channel, posting through the same robots, maps errors the same.
    """
    key = robot_key if _URL_SAFE.fullmatch(robot_key) else quote(robot_key, safe="")
    url = URL(  # already encoded: yarl need not parse and re-encode it for every message
        f"{api_base.rstrip('/')}/cgi-bin/webhook/send?key={key}", encoded=True
    )
    body = dumps_bytes(payload)
    answer = await call_robot(
        http.post(url, data=body, headers=_JSON, timeout=SEND_TIMEOUT), "WeCom robot"
    )
    if answer.get("errcode") == _TOO_LONG:
        raise PermanentError(f"content too long: {answer.get('errmsg', '')}")
    return SentPart(provider_message_id=None)


async def call_robot(request: Any, what: str) -> dict[str, Any]:
    """Await one robot API call and map WeCom's answer to success, retry or give up.

    Shared by message sends and media uploads: both speak the same errcodes.
    """
    try:
        async with request as resp:
            raw, status = await resp.read(), resp.status  # JSON is UTF-8: no charset sniffing
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise TransientError(f"{what} unreachable: {type(exc).__name__}: {exc}") from exc
    if status >= 500:
        raise TransientError(f"{what} answered HTTP {status}")
    try:
        answer = loads(raw)
        errcode = int(answer.get("errcode", -1))
    except (ValueError, AttributeError, TypeError) as exc:
        raise TransientError(f"{what} answered HTTP {status} without JSON") from exc
    errmsg = str(answer.get("errmsg", ""))
    if errcode in (0, _TOO_LONG):
        return answer
    if errcode == _INVALID_KEY:
        raise PermanentError("robot key invalid", deactivate_target=True)
    if errcode == _FREQUENCY:
        raise TransientError(f"{what} rate limit: {errmsg}", retry_after=60)
    if errcode == _SYSTEM_BUSY:
        raise TransientError(f"{what} busy: {errmsg}")
    raise PermanentError(f"{what} errcode {errcode}: {errmsg}")


def _robot_key(target: TargetView) -> str:
    key = target.address.get("robot_key")
    if not key:
        raise PermanentError("target has no robot_key", deactivate_target=True)
    return str(key)


def _content(part: dict[str, Any]) -> str:
    return str(part[part["msgtype"]].get("content", ""))


def _clip(text: str, limit: int) -> str:
    while utf8_len(text) > limit:
        text = text[:-1]
    return text


CHANNEL = VillageGroupChannel()
