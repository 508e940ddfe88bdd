"""Telegram groups and chats, through a bot (aiogram 3).

Telegram's HTML parse mode is strict (an unknown tag rejects the whole message) and counts
its 4096-character limit after parsing, so rendering writes only the allowed tags and cuts
between self-contained blocks. aiogram's typed errors map straight onto retry-or-give-up.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import LinkPreviewOptions

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
from gongkai.channels.html_text import (
    TelegramDialect,
    escape_html,
    split_plain_html,
    visible_length,
)

TEXT_LIMIT = 4096  # characters after entity parsing; we count UTF-16 units, never fewer
PRIVATE_CHAT_RATE = "1/second"
GROUP_RATE = "20/minute"
BOT_RATE = "30/second"

# One Bot (and its HTTP connection pool) per API server and token, for the running loop.
_bots: dict[tuple[str, str], tuple[Bot, asyncio.AbstractEventLoop]] = {}


def token_hash(token: str) -> str:
    return hashlib.sha1(token.encode("utf-8")).hexdigest()[:16]


def get_bot(api_base: str, token: str) -> Bot:
    """The cached bot for (server, token); a bot made under another event loop is dropped,
    since its connection pool belongs to that loop."""
    loop = asyncio.get_running_loop()
    cached = _bots.get((api_base, token))
    if cached is not None and cached[1] is loop:
        return cached[0]
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_base))
    bot = Bot(token, session=session)
    _bots[(api_base, token)] = (bot, loop)
    return bot


async def close_bots() -> None:
    """Close every bot opened under the running loop (worker shutdown, test teardown)."""
    loop = asyncio.get_running_loop()
    for key, (bot, bot_loop) in list(_bots.items()):
        del _bots[key]
        if bot_loop is loop:
            await bot.session.close()


class TelegramChannel(Channel):
    name = "telegram"
    title = "Telegram"
    quiet_hours_apply = False
    can_recall = True

    def render(self, item: ItemView, target: TargetView, public_url: str) -> Rendered:
        comp = compose(
            item,
            target,
            public_url,
            channel=self.name,
            ext="html",
            dialect=TelegramDialect(),
            escape=escape_html,
        )
        texts = fit_parts(
            comp.blocks,
            comp.footer,
            prefix=comp.prefix,
            limit=TEXT_LIMIT,
            measure=visible_length,
            oversized=split_plain_html,
        )
        parts = [
            {"text": t, "parse_mode": "HTML", "disable_web_page_preview": False} for t in texts
        ]
        chars = [visible_length(t) for t in texts]
        return Rendered(parts=parts, notes=comp.notes, meta={"chars": chars, "parts": len(parts)})

    def rate_limits(self, target: TargetView, part: dict[str, Any]) -> list[RateLimit]:
        token = (target.account or {}).get("token")
        chat_id = target.address.get("chat_id")
        if not token or chat_id is None:
            return []
        bot = token_hash(str(token))
        chat_key = f"tg:chat:{bot}:{chat_id}"
        limits = [RateLimit(PRIVATE_CHAT_RATE, chat_key)]
        if not _is_private(chat_id):
            # A group takes ~1 message a second in a burst and 20 a minute over time.
            limits.append(RateLimit(GROUP_RATE, chat_key))
        limits.append(RateLimit(BOT_RATE, f"tg:bot:{bot}"))
        return limits

    async def send(self, part: dict[str, Any], ctx: SendContext) -> SentPart:
        bot, chat_id = _bot_and_chat(ctx)
        try:
            message = await bot.send_message(
                chat_id=chat_id,
                text=part["text"],
                parse_mode=part.get("parse_mode"),
                link_preview_options=LinkPreviewOptions(
                    is_disabled=bool(part.get("disable_web_page_preview", False))
                ),
            )
        except TelegramAPIError as exc:
            raise _translate(exc) from exc
        except ClientDecodeError as exc:  # a proxy's HTML error page instead of the API
            raise TransientError(f"Telegram answer unreadable: {exc}") from exc
        return SentPart(provider_message_id=f"{message.chat.id}:{message.message_id}")

    async def recall(self, provider_message_ids: list[str], ctx: SendContext) -> str:
        bot, _ = _bot_and_chat(ctx)
        deleted = gone = 0
        refused: list[str] = []
        for pmid in provider_message_ids:
            chat_id, _, message_id = pmid.rpartition(":")
            try:
                await bot.delete_message(chat_id=_chat(chat_id), message_id=int(message_id))
                deleted += 1
            except TelegramBadRequest as exc:
                if "not found" in exc.message:
                    gone += 1  # already deleted (by a group admin, or by an earlier recall)
                else:
                    refused.append(exc.message)
            except TelegramAPIError as exc:
                raise _translate(exc) from exc
        if refused and not deleted and not gone:
            raise PermanentError(f"Telegram refused to delete: {refused[0]}")
        note = f"deleted {deleted} Telegram messages"
        if gone:
            note += f"; {gone} already gone"
        if refused:
            note += f"; {len(refused)} could not be deleted ({refused[0]})"
        return note


def _translate(exc: TelegramAPIError) -> Exception:
    """aiogram's typed errors → the dispatcher's two outcomes."""
    if isinstance(exc, TelegramRetryAfter):
        return TransientError(f"Telegram flood limit: {exc.message}", retry_after=exc.retry_after)
    if isinstance(exc, TelegramMigrateToChat):
        return PermanentError(
            f"group became a supergroup, new chat_id {exc.migrate_to_chat_id}",
            deactivate_target=True,
        )
    if isinstance(exc, TelegramForbiddenError):
        return PermanentError(f"bot cannot post here: {exc.message}", deactivate_target=True)
    if isinstance(exc, TelegramUnauthorizedError):
        return PermanentError(f"bot token rejected: {exc.message}")
    if isinstance(exc, TelegramEntityTooLarge):
        return PermanentError(f"Telegram refused the size: {exc.message}")
    if isinstance(exc, TelegramServerError | TelegramNetworkError):
        return TransientError(f"Telegram unavailable: {exc.message}")
    if isinstance(exc, TelegramBadRequest | TelegramNotFound):
        return PermanentError(f"Telegram refused the message: {exc.message}")
    return TransientError(f"Telegram error: {exc.message}")


def _bot_and_chat(ctx: SendContext) -> tuple[Bot, int | str]:
    token = (ctx.target.account or {}).get("token")
    chat_id = ctx.target.address.get("chat_id")
    if not token:
        raise PermanentError("telegram target has no bot token")
    if chat_id is None:
        raise PermanentError("telegram target has no chat_id", deactivate_target=True)
    return get_bot(ctx.settings.telegram_api_base, str(token)), _chat(chat_id)


def _chat(chat_id: Any) -> int | str:
    """Numeric ids as int; "@channelname" stays a string."""
    text = str(chat_id)
    return int(text) if text.lstrip("-").isdigit() else text


def _is_private(chat_id: Any) -> bool:
    chat = _chat(chat_id)
    return isinstance(chat, int) and chat > 0


CHANNEL = TelegramChannel()
