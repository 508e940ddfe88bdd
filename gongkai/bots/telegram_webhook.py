"""``POST /telegram/{bot}``: Telegram's webhook, for the bots in the directory.

The ``X-Telegram-Bot-Api-Secret-Token`` header must equal the bot's ``webhook_secret`` (set
with ``setWebhook(secret_token=…)``; ``gongkai telegram webhook`` does it): without it anyone
who guesses the URL could speak as any resident. The body is read only after that check, and
read whole: an update may arrive in several TCP segments, so what has arrived so far is not
the update (up to ``MAX_BODY``; more is a 413).

Telegram resends an update it got no 200 for, for hours, and an update captured on the way
could be replayed with the secret header: each bot's update ids are remembered in Redis for
``UPDATE_TTL``, shared by every web process, and a repeat is answered 200 (so Telegram stops
resending it) without being handled again.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

from gongkai.bots.inbound import INBOUND, install
from gongkai.bots.telegram_bot import bot_for, make_dispatcher
from gongkai.domain.bounds import MAX_INT64
from gongkai.web.inputs import BodyRefused, parse_json, read_body
from gongkai.web.keys import SETTINGS

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
DISPATCHER = web.AppKey("telegram_dispatcher", Dispatcher)
BOTS = web.AppKey("telegram_bots", dict)
MAX_BODY = 1024 * 1024  # an update is a few KB; a long message with entities, tens
MAX_DEPTH = 64  # an update nests a message in a reply in a chat…, never this deep
UPDATE_TTL = 24 * 3600  # Telegram gives up on an undelivered update within a day
ANSWER_WAIT = 3.0  # seconds we hold Telegram's request while the answer goes out


@routes.post("/telegram/{bot}")
async def webhook(request: web.Request) -> web.Response:
    app = request.app
    inbound = app[INBOUND]
    name = request.match_info["bot"]
    config = await inbound.account("telegram", name)
    if config is None:
        return web.Response(status=404, text="no such bot")
    secret = str(config.get("webhook_secret") or "")
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
    if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
        return web.Response(status=403, text="bad secret token")
    try:
        data = parse_json(await read_body(request, MAX_BODY), max_depth=MAX_DEPTH)
    except BodyRefused as exc:
        return web.Response(status=413 if exc.status == 413 else 400, text=exc.message)
    update_id = data.get("update_id") if isinstance(data, dict) else None
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        return web.Response(status=400, text="not an update")
    if not 0 <= update_id <= MAX_INT64:
        return web.Response(status=400, text="update_id out of range")
    bot = _bot(app, config)
    try:
        update = Update.model_validate(data, context={"bot": bot})
    except ValidationError:
        return web.Response(status=400, text="not an update")
    if not await inbound.first_time(f"telegram:{_bot_id(config, name)}:{update_id}", UPDATE_TTL):
        return web.Response(text="ok")
    work = inbound.spawn(
        app[DISPATCHER].feed_update(bot, update, account=name, config=config),
        name=f"telegram {name} {update_id}",
    )
    # Answering within the request keeps replies in order for one chat; a slow answer still
    # goes out, after Telegram has had its 200.
    await asyncio.wait({work}, timeout=ANSWER_WAIT)
    return web.Response(text="ok")


def _bot_id(config: dict[str, Any], name: str) -> str:
    """Update ids count per bot, and a bot is its token's numeric prefix (two directory
    entries for one bot share its updates); the directory name when the token has none."""
    prefix = str(config.get("token") or "").partition(":")[0]
    return prefix if prefix.isdigit() else name


def _bot(app: web.Application, config: dict[str, Any]) -> Bot:
    """One bot (one connection pool) per token for the app's lifetime."""
    token = str(config["token"])
    if token not in app[BOTS]:
        app[BOTS][token] = bot_for(app[SETTINGS], config)
    return app[BOTS][token]


async def _dispatcher(app: web.Application) -> AsyncIterator[None]:
    app[DISPATCHER] = make_dispatcher(app[INBOUND])
    app[BOTS] = {}
    yield
    await app[INBOUND].close()  # answers still being sent need their bot
    for bot in app[BOTS].values():
        await bot.session.close()


def setup(app: web.Application) -> None:
    install(app)  # before our context: the dispatcher is built on the app's Inbound
    app.cleanup_ctx.append(_dispatcher)
    app.add_routes(routes)
