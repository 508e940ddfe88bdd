"""Applying for disclosure in the chat: ``申请公开`` through the WeChat callback (wechatpy
building and reading the messages on the test side) and the Telegram webhook, ``我的申请``
in the same chat with the reply letter, wrong answers asked again, and ``取消``. A guided
application fits in the bots' ten messages a minute per resident."""

from __future__ import annotations

import pytest

from gongkai.sandbox.wechat_push import text_xml
from gongkai.storage.applications import Application
from tests.bot_support import BotEnv, bot_env, until
from tests.bots.test_telegram_bot import CHAT, post, shown, update


async def answer(env: BotEnv, number: str) -> None:
    """The office registers and answers it through the API."""
    from gongkai.storage.models import Role
    from tests.support import token

    auth = {"Authorization": f"Bearer {await token(env.settings, Role.publisher, '办理人')}"}
    for body in ({"step": "register"}, {"step": "answer", "outcome": "granted"}):
        r = await env.client.post(f"/api/v1/applications/{number}/steps", json=body, headers=auth)
        assert r.status == 200, await r.text()


@pytest.fixture
async def env(tmp_path, embedded_redis_url, redis):  # type: ignore[no-untyped-def]
    async with bot_env(tmp_path, embedded_redis_url) as e:
        yield e


async def test_apply_in_wechat_then_follow_in_the_same_chat(env: BotEnv) -> None:
    push = env.push("safe")

    async def say(text: str, openid: str = "o-applicant") -> str:
        got = await push.send(text_xml(openid, text))
        assert got.status == 200 and got.fields is not None
        return got.fields["Content"]

    assert "政府信息" in await say("申请公开")
    assert "用途" in await say("2026年巴图塔嘎查草场补贴发放名单")
    assert "怎样收到答复" in await say("跳过")
    assert "姓名" in await say("1")
    assert "手机" in await say("宝音")
    summary = await say("13912340000")
    assert "139****0000" in summary and "本对话" in summary and "13912340000" not in summary
    done = await say("1")
    assert "申请编号：YSQ-" in done and "查询码：" in done
    (app,) = await env.rows(Application)
    assert (app.channel, app.reply_channel, app.status) == ("wechat", "wechat", "submitted")
    assert app.description == "2026年巴图塔嘎查草场补贴发放名单" and app.follower_id
    assert app.number in done
    mine = await say("我的申请")
    assert f"{app.number} 待确认" in mine
    await answer(env, app.number)
    assert f"{app.number} 已答复，予以公开" in await say("我的申请")
    letter = await say(f"查看答复 {app.number}")
    assert "宝音" in letter and "予以公开" in letter
    assert "没有找到" in await say(f"查看答复 {app.number}", "o-stranger")  # not their chat
    # the FAQ answers as before (another resident: ten messages a minute each)
    assert "持户口簿" in await say("低保咋申请", "o-neighbour")


async def test_apply_in_telegram_and_cancel(env: BotEnv) -> None:
    texts = ("申请公开", "旗政府2026年第12号文件", "用于办理营业执照", "4", "3",
             "某某科技有限公司", "12345", "+86 139 1234 0001", "1")  # fmt: skip
    for text in texts:
        assert await post(env, update(text)) == 200
    replies = await until(lambda: shown(env, CHAT)[len(texts) - 1 :] or None)
    assert "申请编号：YSQ-" in replies[0]
    asked = shown(env, CHAT)
    assert "1、2 或 3" in asked[3] and "不像一个手机号码" in asked[6]
    (app,) = await env.rows(Application)
    assert (app.channel, app.reply_channel) == ("telegram", "online")
    assert await post(env, update("申请公开", chat_id=CHAT + 1)) == 200
    assert await post(env, update("取消", chat_id=CHAT + 1)) == 200
    cancelled = await until(lambda: shown(env, CHAT + 1)[1:] or None)
    assert "已取消" in cancelled[0]
    assert len(await env.rows(Application)) == 1
