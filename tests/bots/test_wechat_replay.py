"""Replays and duplicates at the official-account callback: an exact request replayed within
the timestamp window, the same message under a new signature, a captured plain query with
another body, repeated events — each handled once, by every web process alike."""

from __future__ import annotations

import time

import pytest

from gongkai.bots.inbound import INBOUND
from gongkai.sandbox.wechat_push import event_xml, text_xml
from gongkai.storage.models import Follower
from tests.bot_support import DIBAO_ANSWER, BotEnv, bot_env, freeze, travel, until


@pytest.fixture
async def env(tmp_path, embedded_redis_url, redis):  # type: ignore[no-untyped-def]
    async with bot_env(tmp_path, embedded_redis_url) as e:
        yield e


async def test_a_duplicate_msgid_is_answered_once(env: BotEnv) -> None:
    push = env.push("safe")
    xml = text_xml("o-retry", "低保咋申请", msg_id=777)
    first, second = await push.send(xml), await push.send(xml)
    assert first.fields is not None and second.fields is not None
    assert second.fields["Content"] == first.fields["Content"]
    assert len(await env.questions()) == 1


@pytest.mark.parametrize("account", ["plain", "safe"])
async def test_a_replayed_request_is_refused_for_as_long_as_its_timestamp_is_accepted(
    env: BotEnv, account: str
) -> None:
    """The exact request, replayed after WeChat's retries are long over but while its
    timestamp still passes the window: never handled again, answered "success"."""
    push = env.push(account)
    clock = freeze(env)
    query, body = push.build(text_xml("o-replayed", "低保咋申请"), timestamp=str(int(clock())))
    first = await push.send_raw(query, body)
    assert first.fields is not None and first.fields["Content"].startswith(DIBAO_ANSWER)
    await travel(env, 62)
    again = await push.send_raw(query, body)
    assert (again.status, again.body) == (200, "success")
    await travel(env, 299 - 62)
    again = await push.send_raw(query, body)
    assert (again.status, again.body) == (200, "success")
    assert len(await env.questions()) == 1
    await travel(env, 2)  # 301 s: the timestamp itself is refused now
    assert (await push.send_raw(query, body)).status == 403
    fresh = await push.send(text_xml("o-replayed", "低保咋申请"), timestamp=str(int(clock())))
    assert fresh.fields is not None and fresh.fields["Content"].startswith(DIBAO_ANSWER)
    assert len(await env.questions()) == 2


async def test_a_replay_is_refused_by_every_web_process(env: BotEnv) -> None:
    """The memory is in Redis: a second web process on the same Redis refuses it too."""
    from gongkai.sandbox.wechat_push import WechatPush
    from tests.support import running_app

    push = env.push("safe")
    query, body = push.build(text_xml("o-two-servers", "低保咋申请"))
    assert (await push.send_raw(query, body)).fields is not None
    await travel(env, 120)
    async with running_app(env.settings, env.redis_url) as other:
        other.app[INBOUND].clock = env.client.app[INBOUND].clock
        twin = WechatPush(other, "safe", push.token, push.app_id, push.aes_key, "safe")
        replayed = await twin.send_raw(query, body)
        assert (replayed.status, replayed.body) == (200, "success")
        await other.app[INBOUND].flush()
    assert len(await env.questions()) == 1


async def test_a_message_retried_under_a_new_signature_is_handled_once(env: BotEnv) -> None:
    """The same MsgId in a freshly signed request (a retry, or a replay of one) after the reply
    cache is gone: remembered as long as the request carrying it could be accepted."""
    push = env.push("safe")
    xml = text_xml("o-retried", "低保咋申请", msg_id=8080)
    assert (await push.send(xml)).fields is not None
    clock = await travel(env, 62)
    later = await push.send(xml, timestamp=str(int(clock())))
    assert (later.status, later.body) == (200, "success")
    assert len(await env.questions()) == 1


async def test_a_captured_plain_query_with_another_body_is_not_processed(env: BotEnv) -> None:
    """In plain mode the signature covers the query only: reusing a seen one with a forged
    body (another sender, another MsgId) gets "success" and nothing else."""
    push = env.push("plain")
    query, body = push.build(text_xml("o-victim", "低保咋申请"))
    assert (await push.send_raw(query, body)).fields is not None
    forged = await push.send_raw(query, text_xml("o-victim", "低保标准是多少"))
    assert (forged.status, forged.body) == (200, "success")
    (q,) = await env.questions()
    assert q.text == "低保咋申请"


async def test_a_repeated_event_is_replayed_in_vain(env: BotEnv) -> None:
    """Events carry no MsgId; their replay after a minute is refused like a message's."""
    push = env.push("plain")
    query, body = push.build(event_xml("o-evt", "subscribe"))
    assert (await push.send_raw(query, body)).fields is not None
    await push.send(event_xml("o-evt", "unsubscribe", created=int(time.time()) + 1))
    await travel(env, 62)
    replayed = await push.send_raw(query, body)
    assert (replayed.status, replayed.body) == (200, "success")
    (f,) = await env.rows(Follower)
    assert not f.subscribed  # the replayed subscribe did not resubscribe


async def test_a_repeated_event_is_handled_once(env: BotEnv) -> None:
    """Events carry no MsgId: sender and CreateTime tell WeChat's retry from a new event.
    (On the slow account every handled event ends in one customer-service message.)"""
    push = env.push("slow")
    created = int(time.time())
    click = event_xml("o-twice", "CLICK", "faq:dibao-apply", created=created)
    assert (await push.send(click)).body == "success"
    assert (await push.send(click)).body == "success"
    await until(lambda: env.wechat.custom_messages)
    await push.send(event_xml("o-twice", "CLICK", "faq:dibao-apply", created=created + 1))
    await until(lambda: len(env.wechat.custom_messages) == 2)
    await until(lambda: env.client.app[INBOUND].pending == 0)
    assert len(env.wechat.custom_messages) == 2


def test_a_request_is_remembered_until_no_process_would_take_its_timestamp() -> None:
    from gongkai.bots.wechat_messages import CLOCK_SLACK, TIME_WINDOW, replay_ttl

    now = 1_800_000_000.0
    assert replay_ttl(str(int(now)), now) == TIME_WINDOW + CLOCK_SLACK
    assert replay_ttl(str(int(now) - 299), now) == 1 + CLOCK_SLACK
    assert replay_ttl(str(int(now) + 300), now) == 2 * TIME_WINDOW + CLOCK_SLACK


def _job_event(kind: str, job: str, at: int = 1_764_900_000) -> str:
    if kind == "PUBLISHJOBFINISH":
        body = (
            f"<PublishEventInfo><publish_id>{job}</publish_id>"
            "<publish_status>0</publish_status></PublishEventInfo>"
        )
    else:
        body = f"<MsgID>{job}</MsgID><Status><![CDATA[send success]]></Status>"
    return (
        "<xml><ToUserName><![CDATA[gh_fake]]></ToUserName>"
        "<FromUserName><![CDATA[oFakeSystem]]></FromUserName>"
        f"<CreateTime>{at}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{kind}]]></Event>{body}</xml>"
    )


@pytest.mark.parametrize("kind", ["PUBLISHJOBFINISH", "MASSSENDJOBFINISH"])
def test_two_jobs_finished_in_the_same_second_are_two_verdicts(kind: str) -> None:
    """WeChat pushes one verdict per job; two jobs of one account finishing in the same second
    arrive with the same sender and CreateTime, and the second must not be taken for a repeat
    (it would settle only at the next poll). The same verdict pushed again still is a repeat."""
    from gongkai.bots.wechat_messages import accept, dedup_key, read_message

    def key(job: str) -> str:
        return dedup_key("wx1", read_message(accept(_job_event(kind, job))))

    assert key("2247483001") != key("2247483002")
    assert key("2247483001") == key("2247483001")
