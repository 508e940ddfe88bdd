"""The Telegram bot against the fake Bot API: the webhook's secret check, /start, questions,
commands, duplicate updates, and long polling for development."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from gongkai.storage.models import Follower, Subscription
from tests.bot_support import TG_SECRET, TG_TOKEN, BotEnv, bot_env, until

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

    from gongkai.bot.telegram_bot import poll_updates

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
