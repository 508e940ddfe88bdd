"""The Telegram bot against the fake Bot API: the webhook's secret check, /start, questions,
commands, duplicate updates, and long polling for development."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gongkai.bots.inbound import INBOUND
from gongkai.storage.models import Follower, Subscription
from tests.bot_support import TG_SECRET, TG_TOKEN, BotEnv, bot_env, travel, until

_ids = itertools.count(1000)
CHAT = 424242


def update(text: str, chat_id: int = CHAT, update_id: int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": next(_ids),
        "date": int(time.time()),
        "chat": {"id": chat_id, "type": "private", "first_name": "Bayar"},
        "from": {"id": chat_id, "is_bot": False, "first_name": "Bayar"},
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0,
                                "length": len(text.split()[0])}]  # fmt: skip
    return {"update_id": next(_ids) if update_id is None else update_id, "message": message}


@pytest.fixture
async def env(tmp_path, embedded_redis_url, redis):  # type: ignore[no-untyped-def]
    async with bot_env(tmp_path, embedded_redis_url) as e:
        yield e


async def post(env: BotEnv, body: dict[str, Any], secret: str | None = TG_SECRET,
               bot: str = "ordos") -> int:  # fmt: skip
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    resp = await env.client.post(f"/telegram/{bot}", json=body, headers=headers)
    return resp.status


def shown(env: BotEnv, chat_id: int = CHAT) -> list[str]:
    return [m.text for m in env.telegram.visible(chat_id)]


async def test_a_wrong_or_missing_secret_gets_403_and_nothing_happens(env: BotEnv) -> None:
    assert await post(env, update("/start"), secret="guess") == 403
    assert await post(env, update("/start"), secret=None) == 403
    assert await post(env, update("/start"), bot="nobody") == 404
    assert env.telegram.messages == []
    assert await env.rows(Follower) == []


async def test_start_and_a_question_are_answered_through_the_bot_api(env: BotEnv) -> None:
    assert await post(env, update("/start")) == 200
    (welcome,) = await until(lambda: shown(env))
    assert "伊金霍洛旗政务公开" in welcome and "订阅" in welcome
    assert await post(env, update("低保咋申请")) == 200
    answers = await until(lambda: shown(env)[1:])
    assert answers[0].startswith("持户口簿、身份证")
    sent = [p for _, method, p in env.telegram.requests if method.lower() == "sendmessage"]
    assert all(not p.get("parse_mode") for p in sent)  # plain text: nothing typed becomes markup
    (q,) = await env.questions()
    assert (q.platform, q.faq_id, q.answered) == ("telegram", "dibao-apply", True)


async def test_a_resent_update_is_answered_once(env: BotEnv) -> None:
    body = update("低保咋申请", update_id=99)
    assert await post(env, body) == 200
    assert await post(env, body) == 200
    await until(lambda: shown(env))
    assert len(shown(env)) == 1 and len(await env.questions()) == 1


async def test_a_replayed_update_is_ignored_for_a_day(env: BotEnv) -> None:
    """Telegram keeps resending an update it got no 200 for, and a captured one can be
    replayed with the header: hours later it is still answered 200 and handled once."""
    body = update("低保咋申请", update_id=5150)
    assert await post(env, body) == 200
    await until(lambda: shown(env))
    for hours in (1, 22):
        await travel(env, hours * 3600)
        assert await post(env, body) == 200
    await until(lambda: env.client.app[INBOUND].pending == 0)
    assert len(shown(env)) == 1 and len(await env.questions()) == 1
    assert await post(env, update("低保咋申请", update_id=5151)) == 200  # the next one is new
    await until(lambda: len(shown(env)) == 2)


async def test_an_update_in_two_writes_is_read_whole(env: BotEnv) -> None:
    """Headers and the first half of the JSON in one TCP write, the rest in another once the
    handler is running with the half in hand: the update is read whole and answered."""
    from gongkai.web.app import create_app

    started: list[str] = []

    @web.middleware
    async def note(request: web.Request, handler: Any) -> web.StreamResponse:
        started.append(request.path)
        return await handler(request)

    app = create_app(env.settings, env.redis_url)
    app.middlewares.append(note)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    writer = None
    try:
        # A first request opens the bot's account, so the next handler goes straight from
        # the middleware to reading the body.
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(b"POST /telegram/ordos HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        assert (await reader.readuntil(b"\r\n")).startswith(b"HTTP/1.1 403")
        writer.close()
        body = json.dumps(update("低保咋申请"), ensure_ascii=False).encode()
        head = (
            "POST /telegram/ordos HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Telegram-Bot-Api-Secret-Token: {TG_SECRET}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        half = len(body) // 2
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(head + body[:half])
        await writer.drain()
        await until(lambda: len(started) == 2)
        writer.write(body[half:])
        await writer.drain()
        response = await reader.read()
        assert response.startswith(b"HTTP/1.1 200"), response
        (answer,) = await until(lambda: shown(env))
        assert answer.startswith("持户口簿、身份证")
    finally:
        if writer is not None:
            writer.close()
        await server.close()


async def test_an_oversized_update_is_refused(env: BotEnv) -> None:
    big = update("低保咋申请")
    big["message"]["text"] = "低" * 400_000  # 1.2 MB of UTF-8
    assert await post(env, big) == 413

    async def chunks() -> Any:  # no Content-Length: the cap holds while reading
        raw = json.dumps(big).encode()
        for start in range(0, len(raw), 64 * 1024):
            yield raw[start : start + 64 * 1024]

    headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET, "Content-Type": "application/json"}
    resp = await env.client.post("/telegram/ordos", data=chunks(), headers=headers)
    assert resp.status == 413
    assert env.telegram.messages == []


async def test_subscribe_language_and_bind_commands(env: BotEnv) -> None:
    await post(env, update("/subscribe 社会救助"))
    await until(lambda: shown(env))
    (sub,) = await env.rows(Subscription)
    assert sub.domain == "社会救助"
    await post(env, update("/bind 巴图塔嘎查"))
    await until(lambda: len(shown(env)) == 2)
    (f,) = await env.rows(Follower)
    assert f.region_code == "150627100201"
    await post(env, update("/lang mn"))
    await until(lambda: len(shown(env)) == 3)
    assert any("\u1800" <= ch <= "\u18af" for ch in shown(env)[2])
    (f,) = await env.rows(Follower)
    assert f.language == "mn"


async def test_long_polling_answers_without_a_webhook(env: BotEnv) -> None:
    from aiogram import Dispatcher

    from gongkai.bots.telegram_bot import poll_updates

    env.telegram.webhooks[TG_TOKEN] = {"url": "https://example.test/hook", "secret_token": "x"}
    running: list[Dispatcher] = []
    task = asyncio.create_task(
        poll_updates(
            env.settings, env.redis_url, "ordos", started=running.append, polling_timeout=1
        )
    )
    try:
        await until(lambda: running)
        await until(lambda: TG_TOKEN not in env.telegram.webhooks)  # removed, or Telegram 409s
        env.telegram.push_update(
            TG_TOKEN, {"message": update("低保咋申请", chat_id=777)["message"]}
        )
        (answer,) = await until(lambda: shown(env, 777))
        assert answer.startswith("持户口簿、身份证")
    finally:
        if running:
            await running[0].stop_polling()
        await asyncio.wait_for(task, 15)
