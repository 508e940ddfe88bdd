"""The resident-facing Telegram bot: one aiogram router over the shared conversation.

Handlers only translate: a command or a text in, `gongkai.bots.conversation` decides, a plain
text (never parsed as HTML, so nothing a resident typed can become markup) goes out. The same
router serves the webhook (``telegram_webhook``) and long polling (``gongkai telegram poll``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramRetryAfter
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import Message
from redis.asyncio import Redis

from gongkai.bots import conversation as talk
from gongkai.bots.conversation import Context, Reply
from gongkai.bots.inbound import Inbound, resident_allowance
from gongkai.bots.phrases import say
from gongkai.config import Settings
from gongkai.storage.crypto import Sealer
from gongkai.storage.db import make_engine, make_sessionmaker, upgrade
from gongkai.storage.models import Follower

log = logging.getLogger(__name__)
TEXT_LIMIT = 4096
MAX_FLOOD_WAIT = 5  # seconds worth waiting for a reply; longer and the resident has moved on
Run = Callable[[Context, Follower], Awaitable[Reply]]
# Telegram command → conversation command (both languages' words reach the same place).
COMMANDS = {
    "subscribe": "subscribe",
    "unsubscribe": "unsubscribe",
    "mysubs": "subscriptions",
    "subscriptions": "subscriptions",
    "bind": "bind",
    "latest": "latest",
    "help": "help",
    "human": "human",
}


async def _converse(
    message: Message, inbound: Inbound, account: str, config: dict[str, Any], run: Run
) -> None:
    chat_id = str(message.chat.id)
    verdict = await inbound.allow("telegram", account, chat_id)
    if verdict == "silent":
        return
    if verdict == "refuse":
        await _send(message, say("zh", "too_many"))
        return
    async with inbound.conversation("telegram", account, config, chat_id) as (ctx, follower):
        reply = await run(ctx, follower)
    if reply.text:
        text = reply.text if len(reply.text) <= TEXT_LIMIT else reply.text[: TEXT_LIMIT - 1] + "…"
        await _send(message, text)


async def _send(message: Message, text: str) -> None:
    """Send a reply; on Telegram's flood control (about one message a second per chat) wait
    the few seconds it asks once — the resident is waiting for exactly this answer."""
    try:
        await message.answer(text, parse_mode=None)
    except TelegramRetryAfter as exc:
        if exc.retry_after > MAX_FLOOD_WAIT:
            log.warning("Telegram asks to wait %ss; reply to %s dropped", exc.retry_after,
                        message.chat.id)  # fmt: skip
            return
        await asyncio.sleep(exc.retry_after)
        await message.answer(text, parse_mode=None)


def make_router() -> Router:
    """A new router each time: aiogram attaches a router to one dispatcher only."""
    router = Router(name="gongkai-residents")
    private = F.chat.type == "private"

    @router.message(CommandStart())
    async def start(
        message: Message,
        command: CommandObject,
        inbound: Inbound,
        account: str,
        config: dict[str, Any],
    ) -> None:
        payload = (command.args or "").strip()

        async def run(ctx: Context, follower: Follower) -> Reply:
            follower.subscribed = True
            if payload.isdigit():  # a deep link t.me/<bot>?start=<division code>
                await talk.command(ctx, follower, "bind", payload, commit=False)
            reply = await talk.welcome(ctx, follower)
            ctx.session.add(follower)
            await ctx.session.commit()
            return reply

        await _converse(message, inbound, account, config, run)

    @router.message(Command("lang"))
    async def lang(
        message: Message,
        command: CommandObject,
        inbound: Inbound,
        account: str,
        config: dict[str, Any],
    ) -> None:
        code = (command.args or "").strip().lower()

        async def run(ctx: Context, follower: Follower) -> Reply:
            return await talk.command(ctx, follower, "language", code or follower.language)

        await _converse(message, inbound, account, config, run)

    @router.message(Command(*COMMANDS))
    async def named(
        message: Message,
        command: CommandObject,
        inbound: Inbound,
        account: str,
        config: dict[str, Any],
    ) -> None:
        name = COMMANDS[command.command.lower()]
        arg = (command.args or "").strip()

        async def run(ctx: Context, follower: Follower) -> Reply:
            return await talk.command(ctx, follower, name, arg)

        await _converse(message, inbound, account, config, run)

    @router.message(private, F.text)
    async def text(
        message: Message, inbound: Inbound, account: str, config: dict[str, Any]
    ) -> None:
        said = message.text or ""

        async def run(ctx: Context, follower: Follower) -> Reply:
            return await talk.respond(ctx, follower, said)

        await _converse(message, inbound, account, config, run)

    @router.message(private)
    async def other(
        message: Message, inbound: Inbound, account: str, config: dict[str, Any]
    ) -> None:
        async def run(ctx: Context, follower: Follower) -> Reply:
            return Reply(say(follower.language, "unsupported"), "refusal")

        await _converse(message, inbound, account, config, run)

    return router


def make_dispatcher(inbound: Inbound) -> Dispatcher:
    """Handlers receive ``inbound`` from here and ``account``/``config`` with each update."""
    dp = Dispatcher(inbound=inbound, disable_fsm=True)
    dp.include_router(make_router())
    return dp


def bot_for(settings: Settings, config: dict[str, Any]) -> Bot:
    """A bot of our own (its owner closes it), pointed at the configured Bot API server."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base))
    return Bot(str(config["token"]), session=session)


async def poll_updates(
    settings: Settings,
    redis_url: str,
    name: str,
    *,
    started: Callable[[Dispatcher], None] | None = None,
    polling_timeout: int = 30,
) -> None:
    """Long polling for development: no public URL needed. Removes the bot's webhook first,
    since Telegram refuses getUpdates while one is set."""
    await upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    redis = Redis.from_url(redis_url)
    try:
        inbound = Inbound(
            settings,
            make_sessionmaker(engine),
            Sealer(settings.resolved_secret_key()),
            redis,
            residents=resident_allowance(redis_url),
        )
        config = await inbound.account("telegram", name)
        if config is None or not config.get("token"):
            raise ValueError(f"no Telegram bot named {name!r} in the directory")
        bot = bot_for(settings, config)
        await bot.delete_webhook(drop_pending_updates=False)
        dp = make_dispatcher(inbound)
        if started is not None:
            started(dp)
        try:
            await dp.start_polling(
                bot,
                handle_signals=started is None,
                close_bot_session=False,
                polling_timeout=polling_timeout,
                account=name,
                config=config,
            )
        finally:
            await inbound.close()
            with contextlib.suppress(Exception):
                await bot.session.close()
    finally:
        await redis.aclose()
        await engine.dispose()
