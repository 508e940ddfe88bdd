"""An applicant who applied in WeChat or Telegram and chose "this chat" hears of the answer
there: a customer-service message through the fake WeChat API (which refuses with 45015 when
the 48-hour window is closed) or a bot message through the fake Telegram Bot API. Outside the
window the notice goes by SMS (the Aliyun fake), or is marked for a person to post."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from gongkai.bots.inbound import INBOUND
from gongkai.sandbox import aliyun_sms
from gongkai.sandbox.server import serve
from gongkai.sandbox.wechat_push import text_xml
from gongkai.storage.applications import Application, ApplicationEvent
from gongkai.storage.crypto import Sealer
from gongkai.storage.directory import import_directory, parse_directory
from gongkai.storage.models import Follower
from gongkai.storage.types import utcnow
from tests.bot_support import DIRECTORY, BotEnv, bot_env, until
from tests.bots.test_apply_in_chat import answer
from tests.bots.test_telegram_bot import CHAT, post, shown, update
from tests.support import ENV

TEMPLATE = "您的政府信息公开申请${number}${status}，请凭查询码查询。"
SMS_ACCOUNT = """  sms:
    - {name: county-sms, provider: aliyun, access_key_id: testid, access_key_secret: testsecret,
       sign_name: 伊金霍洛旗政务公开}
"""
OPENID = "o-applicant"


@asynccontextmanager
async def notice_env(tmp_path, redis_url: str, **settings: Any) -> AsyncIterator[BotEnv]:  # type: ignore[no-untyped-def]
    """The bots, plus the county's SMS account on the Aliyun fake with the notice template."""
    fake, sms = aliyun_sms.make_app(templates={"SMS_APPLY": TEMPLATE})
    async with serve(fake) as base:
        async with bot_env(
            tmp_path,
            redis_url,
            aliyun_sms_endpoint=base,
            applications_sms_template="SMS_APPLY",
            **settings,
        ) as e:
            directory = DIRECTORY.replace("  telegram:\n", SMS_ACCOUNT + "  telegram:\n")

            async def add_sms(session):  # type: ignore[no-untyped-def]
                sealer = Sealer(e.settings.resolved_secret_key())
                await import_directory(session, parse_directory(directory, ENV), sealer)

            await e.session_do(add_sms)
            e.sms = sms  # type: ignore[attr-defined]
            yield e


@pytest.fixture
async def env(tmp_path, embedded_redis_url, redis):  # type: ignore[no-untyped-def]
    async with notice_env(tmp_path, embedded_redis_url) as e:
        yield e


async def apply_in_wechat(env: BotEnv, phone: str = "13912340000") -> str:
    push = env.push("safe")
    for text in ("申请公开", "2026年巴图塔嘎查草场补贴发放名单", "跳过", "1", "宝音", phone):
        got = await push.send(text_xml(OPENID, text))
        assert got.status == 200
    got = await push.send(text_xml(OPENID, "1"))
    assert got.fields is not None and "申请编号：YSQ-" in got.fields["Content"]
    await env.client.app[INBOUND].flush()  # the resident's last message is on record
    (app,) = await env.rows(Application)
    assert app.reply_channel == "wechat"
    return app.number


async def notices(env: BotEnv) -> list[dict]:
    rows = await env.rows(ApplicationEvent, ApplicationEvent.step == "notice")
    return [r.detail for r in rows]


async def test_the_answer_reaches_a_wechat_applicant_in_their_chat(env: BotEnv) -> None:
    from gongkai.storage.models import Role
    from tests.support import token

    number = await apply_in_wechat(env)
    auth = {"Authorization": f"Bearer {await token(env.settings, Role.publisher, '办理人')}"}
    for body in (
        {"step": "register"},
        {"step": "extend", "approver": "张主任", "workdays": 10},
        {"step": "answer", "outcome": "granted"},
    ):
        r = await env.client.post(f"/api/v1/applications/{number}/steps", json=body, headers=auth)
        assert r.status == 200, await r.text()
    extended, answered = env.wechat.custom_messages
    for message in (extended, answered):
        assert message["touser"] == OPENID and message["msgtype"] == "text"
        assert f"查看答复 {number}" in message["text"]["content"]
    assert f"{number} 已延长答复期限" in extended["text"]["content"]
    assert f"{number} 已答复" in answered["text"]["content"]
    assert env.sms.messages == []  # type: ignore[attr-defined]
    assert await notices(env) == [
        {"status": status, "channel": "wechat", "message_id": None}
        for status in ("已延长答复期限", "已答复")
    ]


async def test_outside_the_48_hour_window_the_notice_goes_by_sms(env: BotEnv) -> None:
    number = await apply_in_wechat(env, phone="13912340002")

    async def go_quiet(session):  # type: ignore[no-untyped-def]
        follower = (
            await session.exec(select(Follower).where(Follower.external_id == OPENID))
        ).one()
        follower.last_seen_at = utcnow() - timedelta(hours=49)
        session.add(follower)
        await session.commit()

    await env.session_do(go_quiet)
    await answer(env, number)
    assert env.wechat.custom_messages == []  # not even tried: WeChat would refuse (45015)
    sms = env.sms  # type: ignore[attr-defined]
    assert sms.texts_to("13912340002") == [
        f"【伊金霍洛旗政务公开】您的政府信息公开申请{number}已答复，请凭查询码查询。"
    ]
    (detail,) = await notices(env)
    assert detail["channel"] == "sms" and detail["fallback_from"] == "wechat"
    assert detail["message_id"] == sms.messages[0].biz_id


async def test_a_window_wechat_closed_without_sms_is_left_for_post(env: BotEnv) -> None:
    number = await apply_in_wechat(env)
    env.wechat.closed_windows.add(OPENID)  # WeChat says the window is closed: 45015
    env.sms.templates.clear()  # type: ignore[attr-defined]  # and SMS is refused too
    await answer(env, number)
    assert env.wechat.custom_messages == []
    (detail,) = await notices(env)
    assert "45015" in detail["chat_error"]
    assert detail["channel"] == "post" and detail["needs_post"] is True
    (app,) = await env.rows(Application)
    assert app.status == "answered"  # the step stands


async def test_the_answer_reaches_a_telegram_applicant_by_bot_message(env: BotEnv) -> None:
    texts = ("申请公开", "旗政府2026年第12号文件", "用于办理营业执照", "1", "巴雅尔",
             "+86 139 1234 0001", "1")  # fmt: skip
    for text in texts:
        assert await post(env, update(text)) == 200
    await until(lambda: any("申请编号：YSQ-" in t for t in shown(env, CHAT)))
    (app,) = await env.rows(Application)
    assert app.reply_channel == "telegram"
    before = len(shown(env, CHAT))
    later = env.telegram.clock() + 2  # the office answers later than Telegram's 1 a second
    env.telegram.clock = lambda: later
    await answer(env, app.number)
    (notice,) = shown(env, CHAT)[before:]
    assert app.number in notice and "已答复" in notice and f"查看答复 {app.number}" in notice
    (detail,) = await notices(env)
    assert detail["channel"] == "telegram" and detail["message_id"].startswith(f"{CHAT}:")
