"""An applicant's notice that a provider refuses for now (an outage, a 5xx, WeChat's "system
busy", a Telegram flood wait) is tried again by the workers until it goes, each try an event of
its own; one refused for good is not; the last refusal leaves it for a person to post; and a
retry whose job Redis lost is queued again by reconciliation.

The first try is the web request's (the office takes the step through the API); the retries are
real arq workers' (``tests.support.run_workers``) against the Aliyun, WeChat and Telegram fakes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gongkai.dispatch.notice_retry import GRACE, notice_retry_job
from gongkai.dispatch.notice_try import notice_job
from gongkai.dispatch.queue import QUEUE_NAME
from gongkai.dispatch.worker import close_deps, open_deps
from gongkai.sandbox import aliyun_sms
from gongkai.storage.applications import Application, ApplicationEvent
from gongkai.storage.models import Role
from tests.bot_support import BotEnv, until
from tests.bots.test_application_chat_notice import OPENID, apply_in_wechat, notice_env
from tests.bots.test_apply_in_chat import answer
from tests.bots.test_telegram_bot import CHAT, post, shown, update
from tests.support import run_workers, token, workers_until

PHONE = "13600002222"
CUSTOM_SEND = "cgi-bin/message/custom/send"


@pytest.fixture
async def env(request, tmp_path, embedded_redis_url, redis):  # type: ignore[no-untyped-def]
    """The bots and the county's SMS account on the Aliyun fake; retries a moment apart (a
    test's ``indirect`` parameter adds settings)."""
    async with notice_env(
        tmp_path,
        embedded_redis_url,
        applications_notice_retry_seconds="0.05,0.05",
        **getattr(request, "param", {}),
    ) as e:
        e.redis = redis  # type: ignore[attr-defined]
        yield e


async def tries(env: BotEnv) -> list[ApplicationEvent]:
    """The application's notice events, oldest first."""
    rows = await env.rows(ApplicationEvent, ApplicationEvent.step == "notice")
    return sorted(rows, key=lambda e: e.id)


async def apply_for_sms(env: BotEnv) -> str:
    r = await env.client.post(
        "/api/v1/applications",
        json={"name": "乌云", "phone": PHONE, "description": "嘎查草场确权名册",
              "reply_channel": "sms"},
    )  # fmt: skip
    assert r.status == 201, await r.text()
    return str((await r.json())["number"])


def provider_down(sms: aliyun_sms.AliyunState) -> None:
    """Aliyun's gateway answers the next send with 503 (come back in 5 s, the channel says)."""
    sms.fail_next("ServiceUnavailable", "The request has failed due to a temporary failure "
                  "of the server.", status=503)  # fmt: skip


def throttled(sms: aliyun_sms.AliyunState, times: int = 1) -> None:
    """Aliyun's flow control refuses the next ``times`` sends (retry in a second)."""
    for _ in range(times):
        sms.fail_next("Throttling.User", "Request was denied due to user flow control.", 400)


async def workers(env: BotEnv) -> None:
    await run_workers(env.settings, env.redis_url)


async def test_an_sms_notice_met_by_a_5xx_is_delivered_by_a_workers_retry(env: BotEnv) -> None:
    sms = env.sms  # type: ignore[attr-defined]
    number = await apply_for_sms(env)
    provider_down(sms)
    await answer(env, number)
    assert sms.messages == []
    (first,) = await tries(env)
    assert first.detail["try"] == 1 and "ServiceUnavailable" in first.detail["error"]
    assert first.detail["channel"] == "sms"
    waited = datetime.fromisoformat(first.detail["retry_at"]) - first.at
    assert waited.total_seconds() >= 5  # the channel's wait for a 503, longer than our 0.05 s

    await workers(env)  # the provider is back
    assert sms.texts_to(PHONE) == [
        f"【伊金霍洛旗政务公开】您的政府信息公开申请{number}已答复，请凭查询码查询。"
    ]
    assert sms.accepted_requests == 1
    first_again, second = await tries(env)
    assert first_again.detail == first.detail  # the log is appended to, never rewritten
    assert second.detail == {
        "status": "已答复",
        "channel": "sms",
        "message_id": sms.messages[0].biz_id,
        "notice": first.id,
        "try": 2,
    }

    # the same retry run again (a job queued twice, had Redis allowed it) sends nothing
    deps, engine = open_deps(env.settings, env.redis_url)
    try:
        assert await notice_retry_job({"deps": deps}, first.id) == "already tried again"
    finally:
        await close_deps(deps, engine)
    assert sms.accepted_requests == 1 and len(await tries(env)) == 2


async def test_a_wechat_notice_met_by_system_busy_is_sent_again(env: BotEnv) -> None:
    number = await apply_in_wechat(env)
    env.wechat.fail_next(CUSTOM_SEND, -1)  # WeChat: "system busy"
    await answer(env, number)
    assert env.wechat.custom_messages == []
    (first,) = await tries(env)
    assert first.detail["channel"] == "wechat" and "-1" in first.detail["error"]

    await workers(env)
    (message,) = env.wechat.custom_messages
    assert message["touser"] == OPENID and f"{number} 已答复" in message["text"]["content"]
    _, second = await tries(env)
    assert second.detail["channel"] == "wechat" and second.detail["try"] == 2
    assert "error" not in second.detail and "retry_at" not in second.detail
    assert env.sms.messages == []  # type: ignore[attr-defined]


async def test_a_telegram_flood_wait_is_respected_then_the_notice_goes(env: BotEnv) -> None:
    texts = ("申请公开", "旗政府2026年第12号文件", "用于办理营业执照", "1", "巴雅尔",
             "+86 139 1234 0001", "1")  # fmt: skip
    for text in texts:
        assert await post(env, update(text)) == 200
    await until(lambda: any("申请编号：YSQ-" in t for t in shown(env, CHAT)))
    (app,) = await env.rows(Application)
    number = app.number
    before = len(shown(env, CHAT))
    # the answer comes within a second of the bot's last reply in this chat
    frozen = max(max(times) for key, times in env.telegram.windows.items() if str(CHAT) in key[1])
    env.telegram.clock = lambda: frozen
    await answer(env, number)
    (first,) = await tries(env)
    assert first.detail["channel"] == "telegram" and "flood" in first.detail["error"].lower()
    waited = datetime.fromisoformat(first.detail["retry_at"]) - first.at
    assert waited.total_seconds() >= 1  # Telegram's retry_after, not our 0.05 s

    env.telegram.clock = lambda: frozen + 2
    await workers(env)
    (notice,) = shown(env, CHAT)[before:]
    assert number in notice and "已答复" in notice
    _, second = await tries(env)
    assert second.detail["message_id"].startswith(f"{CHAT}:") and second.detail["try"] == 2


async def test_a_permanent_refusal_is_not_tried_again(env: BotEnv) -> None:
    sms = env.sms  # type: ignore[attr-defined]
    number = await apply_for_sms(env)
    sms.fail_next("isv.SMS_TEMPLATE_ILLEGAL", "模板不合法")  # only this send is refused
    await answer(env, number)
    await workers(env)  # a retry, had one been queued, would now go through
    assert sms.messages == []
    (only,) = await tries(env)
    assert "SMS_TEMPLATE_ILLEGAL" in only.detail["error"]
    assert "retry_at" not in only.detail and "try" not in only.detail
    assert await env.redis.zcard(QUEUE_NAME) == 0  # type: ignore[attr-defined]


async def test_after_the_last_retry_the_notice_is_left_for_post(env: BotEnv) -> None:
    sms = env.sms  # type: ignore[attr-defined]
    number = await apply_for_sms(env)
    throttled(sms, times=3)  # the first try and both retries
    await answer(env, number)
    await workers(env)
    assert sms.messages == []
    events = await tries(env)
    assert [e.detail["try"] for e in events] == [1, 2, 3]
    assert all("Throttling.User" in e.detail["error"] for e in events)
    assert ["retry_at" in e.detail for e in events] == [True, True, False]
    assert events[-1].detail["needs_post"] is True
    assert [e.detail.get("notice") for e in events] == [None, events[0].id, events[0].id]
    # the console shows the person what to post
    viewer = {"Authorization": f"Bearer {await token(env.settings, Role.viewer, 'v')}"}
    r = await env.client.get(f"/api/v1/applications/{number}/record", headers=viewer)
    assert r.status == 200
    shown_events = [e for e in (await r.json())["events"] if e["step"] == "notice"]
    assert shown_events[-1]["detail"]["needs_post"] is True


def _quiet_now() -> dict[str, str]:
    """Quiet hours from an hour ago to an hour from now, county time."""
    local = datetime.now(ZoneInfo("Asia/Shanghai"))
    start, end = local - timedelta(hours=1), local + timedelta(hours=1)
    return {"quiet_hours": f"{start:%H:%M}-{end:%H:%M}"}


@pytest.mark.parametrize("env", [_quiet_now()], indirect=True)
async def test_a_retry_falling_in_quiet_hours_waits_for_their_end(env: BotEnv) -> None:
    sms = env.sms  # type: ignore[attr-defined]
    number = await apply_for_sms(env)
    throttled(sms)
    await answer(env, number)
    (first,) = await tries(env)
    end = env.settings.quiet_hours.split("-")[1]
    due = datetime.fromisoformat(first.detail["retry_at"])
    assert f"{due.astimezone(env.settings.tz):%H:%M}" == end  # not in 0.05 s, nor 1 s
    queued = await env.redis.zscore(QUEUE_NAME, notice_job(first.id))  # type: ignore[attr-defined]
    assert queued is not None and abs(queued / 1000 - due.timestamp()) < 2


async def test_a_retry_redis_lost_is_queued_again_by_reconciliation(env: BotEnv) -> None:
    from gongkai.dispatch.reconcile import reconcile

    sms = env.sms  # type: ignore[attr-defined]
    number = await apply_for_sms(env)
    throttled(sms)
    await answer(env, number)
    (first,) = await tries(env)
    deps, engine = open_deps(env.settings, env.redis_url)
    try:
        due = datetime.fromisoformat(first.detail["retry_at"]) + GRACE
        await until(lambda: due < _now())
        assert (await reconcile(deps))["notices"] == 0  # its job is waiting: left alone
        await env.redis.flushall()  # type: ignore[attr-defined]  # Redis restarted empty
        assert (await reconcile(deps))["notices"] == 1
        assert (await reconcile(deps))["notices"] == 0  # queued once, never twice
    finally:
        await close_deps(deps, engine)
    await workers(env)
    assert sms.texts_to(PHONE) == [
        f"【伊金霍洛旗政务公开】您的政府信息公开申请{number}已答复，请凭查询码查询。"
    ]
    _, second = await tries(env)
    assert second.detail["try"] == 2 and second.detail["notice"] == first.id


def _now() -> datetime:
    from gongkai.storage.types import utcnow

    return utcnow()


async def test_running_workers_find_a_lost_retry_by_themselves(env: BotEnv) -> None:
    """No one calls reconciliation here: the workers' own background round does."""
    sms = env.sms  # type: ignore[attr-defined]
    number = await apply_for_sms(env)
    throttled(sms)
    await answer(env, number)
    await env.redis.flushall()  # type: ignore[attr-defined]  # Redis restarted empty

    async def delivered() -> bool:
        return bool(sms.messages)

    often = env.settings.model_copy(update={"reconcile_seconds": 0.2})
    await workers_until(often, env.redis_url, delivered)
    assert sms.texts_to(PHONE) == [
        f"【伊金霍洛旗政务公开】您的政府信息公开申请{number}已答复，请凭查询码查询。"
    ]
    assert [e.detail["try"] for e in await tries(env)] == [1, 2]
