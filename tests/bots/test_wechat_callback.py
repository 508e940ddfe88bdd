"""The official-account callback driven as WeChat drives it: signed (and in compatible and safe
mode encrypted) pushes built with wechatpy on the test side, replies decrypted and their
signatures checked there. Credentials are the official test vectors."""

from __future__ import annotations

import time
from typing import Any

import pytest

from gongkai.bots.inbound import INBOUND
from gongkai.bots.wechat_messages import Refused, check_signed
from gongkai.faq.store import get_index
from gongkai.sandbox.wechat_push import (
    VECTOR_ENCRYPT,
    VECTOR_MSG_SIGNATURE,
    VECTOR_NONCE,
    VECTOR_TIMESTAMP,
    VECTOR_TOKEN,
    event_xml,
    sha1_sorted,
    text_xml,
    voice_xml,
)
from gongkai.storage.models import Follower
from gongkai.web.keys import MAKER
from tests.bot_support import DIBAO_ANSWER, BotEnv, Clock, bot_env, until


@pytest.fixture
async def env(tmp_path, embedded_redis_url, redis):  # type: ignore[no-untyped-def]
    async with bot_env(tmp_path, embedded_redis_url) as e:
        yield e


def test_our_signature_check_accepts_the_official_vector_and_nothing_else() -> None:
    """The query's signature (wechatpy's check) inside our timestamp window; the
    msg_signature over the ciphertext is wechatpy's to check while decrypting (see
    `test_the_official_sample_push_is_accepted_at_its_own_time`)."""
    at = int(VECTOR_TIMESTAMP)
    signed = sha1_sorted(VECTOR_TOKEN, VECTOR_TIMESTAMP, VECTOR_NONCE)
    check_signed(VECTOR_TOKEN, VECTOR_TIMESTAMP, VECTOR_NONCE, signed, now=at)
    with pytest.raises(Refused) as bad:
        check_signed(VECTOR_TOKEN, VECTOR_TIMESTAMP, "1320562133", signed, now=at)
    assert bad.value.status == 403
    with pytest.raises(Refused, match="stale"):
        check_signed(VECTOR_TOKEN, VECTOR_TIMESTAMP, VECTOR_NONCE, signed, now=at + 301)


async def test_url_verification_echoes_only_a_signed_fresh_request(env: BotEnv) -> None:
    push = env.push("safe")
    assert await push.verify_url("echo-4711") == (200, "echo-4711")
    assert (await push.verify_url("echo-4711", bad=True))[0] == 403
    stale = str(int(time.time()) - 3600)
    assert (await push.verify_url("echo-4711", timestamp=stale))[0] == 403
    resp = await env.client.get("/wechat/nobody", params={"echostr": "x"})
    assert resp.status == 404


@pytest.mark.parametrize("account", ["plain", "compat", "safe"])
async def test_a_question_is_answered_in_every_mode(env: BotEnv, account: str) -> None:
    push = env.push(account)
    got = await push.send(text_xml("o-resident-1", "低保咋申请"))
    assert got.status == 200 and got.fields is not None
    assert got.encrypted == (account != "plain")
    assert got.fields["ToUserName"] == "o-resident-1"
    assert got.fields["FromUserName"] == "gh_county"
    assert got.fields["MsgType"] == "text"
    assert got.fields["Content"].startswith(DIBAO_ANSWER)
    if account == "safe":  # nothing readable travels in safe mode
        assert "低保" not in got.body and "Content" not in got.body
    (q,) = await env.questions()
    assert (q.answered, q.faq_id, q.platform, q.region_code) == (
        True,
        "dibao-apply",
        "wechat",
        "150627",
    )


async def test_a_safe_mode_account_refuses_plain_pushes(env: BotEnv) -> None:
    got = await env.push("safe", mode="plain").send(text_xml("o-x", "低保咋申请"))
    assert got.status == 403
    assert await env.questions() == []


def _official_sample() -> tuple[dict[str, str], str]:
    """Tencent's "消息加解密" sample push, as its WXBizMsgCrypt sample and wechatpy's
    tests/test_crypto.py publish it (safe mode: the ciphertext alone in the body)."""
    query = {
        "signature": sha1_sorted(VECTOR_TOKEN, VECTOR_TIMESTAMP, VECTOR_NONCE),
        "timestamp": VECTOR_TIMESTAMP, "nonce": VECTOR_NONCE, "encrypt_type": "aes",
        "msg_signature": VECTOR_MSG_SIGNATURE,
    }  # fmt: skip
    body = f"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt><![CDATA[{VECTOR_ENCRYPT}]]></Encrypt></xml>"  # noqa: E501
    return query, body


async def test_the_official_sample_push_is_accepted_at_its_own_time(env: BotEnv) -> None:
    """With the app's clock set to the sample's 2014 timestamp, the sample is fresh: it is
    decrypted to its documented plaintext (text "abcdteT" from oyORnuP8q7ou2gfYjqLzSIWZf0rs
    to gh_10f6c3c3ac5a) and answered as the FAQ answers that text, in an encrypted reply."""
    env.client.app[INBOUND].clock = Clock(float(VECTOR_TIMESTAMP))
    got = await env.push("safe").send_raw(*_official_sample())
    assert got.status == 200 and got.encrypted and got.fields is not None, got.body
    assert got.fields["ToUserName"] == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    assert got.fields["FromUserName"] == "gh_10f6c3c3ac5a"
    assert got.fields["MsgType"] == "text"
    (q,) = await env.questions()
    assert (q.platform, q.text, q.answered) == ("wechat", "abcdteT", False)
    index = await get_index(env.client.app[MAKER], hotline=env.settings.hotline)
    faq = index.ask("abcdteT", q.region_code, "zh", hotline=env.settings.hotline)
    assert got.fields["Content"] == faq.answer
    (f,) = await env.rows(Follower)
    assert f.external_id == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"


async def test_the_official_sample_push_is_refused_as_a_replay(env: BotEnv) -> None:
    """Tencent's sample is validly signed and encrypted, but from 2014: a replay."""
    push = env.push("safe")
    query = {
        "signature": sha1_sorted(VECTOR_TOKEN, VECTOR_TIMESTAMP, VECTOR_NONCE),
        "timestamp": VECTOR_TIMESTAMP, "nonce": VECTOR_NONCE, "encrypt_type": "aes",
        "msg_signature": VECTOR_MSG_SIGNATURE,
    }  # fmt: skip
    body = f"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt><![CDATA[{VECTOR_ENCRYPT}]]></Encrypt></xml>"  # noqa: E501
    got = await push.send_raw(query, body)
    assert got.status == 403
    assert await env.questions() == [] and await env.rows(Follower) == []


@pytest.mark.parametrize("forgery", ["signature", "msg_signature", "stale", "other_key"])
async def test_forged_or_stale_pushes_get_403_and_are_not_processed(
    env: BotEnv, forgery: str
) -> None:
    push = env.push("safe")
    kw = {"timestamp": str(int(time.time()) - 400)} if forgery == "stale" else {}
    query, body = push.build(text_xml("o-mallory", "低保咋申请"), **kw)
    if forgery == "signature":
        query["signature"] = sha1_sorted("not-the-token", query["timestamp"], query["nonce"])
    elif forgery == "msg_signature":
        query["msg_signature"] = sha1_sorted(VECTOR_TOKEN, query["timestamp"], "1", "x")
    elif forgery == "other_key":  # correctly signed ciphertext, sealed for another app id
        other = env.push("safe")
        other.app_id = "wx0000000000000bad"
        query, body = other.build(text_xml("o-mallory", "低保咋申请"))
    got = await push.send_raw(query, body)
    assert got.status == 403, got.body
    assert await env.questions() == [] and await env.rows(Follower) == []


BOMB = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    + "]><xml><ToUserName>gh</ToUserName><FromUserName>o-bomb</FromUserName>"
    "<MsgType>text</MsgType><Content>&lol9;</Content><MsgId>1</MsgId></xml>"
)


@pytest.mark.parametrize("account", ["plain", "safe"])
async def test_an_xml_bomb_is_rejected_quickly(env: BotEnv, account: str) -> None:
    push = env.push(account)
    started = time.perf_counter()
    got = await push.send(BOMB)
    assert got.status == 400
    assert time.perf_counter() - started < 0.5
    assert await env.questions() == []


def _nested(levels: int) -> str:
    return text_xml("o-odd", "x").replace("</xml>", "<a>" * levels + "</a>" * levels + "</xml>")


MALFORMED = [
    pytest.param(text_xml("o-odd", "低保").replace("<MsgId>", "<MsgId>x"), "MsgId is malformed",
                 id="MsgId"),
    pytest.param(text_xml("o-odd", "低保").replace("<![CDATA[低保]]>", "<b>低保</b>"),
                 "Content is not text", id="Content"),
    pytest.param("<xml><FromUserName>o-odd</FromUserName><MsgId>5</MsgId></xml>",
                 "not a WeChat message", id="no-MsgType"),
    pytest.param(_nested(7), "XML nested too deeply", id="deep"),
    pytest.param(_nested(5000), "XML nested too deeply", id="very-deep"),
]  # fmt: skip


@pytest.mark.parametrize(("xml", "reason"), MALFORMED)
@pytest.mark.parametrize("account", ["plain", "safe"])
async def test_a_malformed_push_gets_400_naming_what_is_wrong(
    env: BotEnv, account: str, xml: str, reason: str
) -> None:
    """wechatpy reads fields lazily and trusts their shape: ours are checked before a
    handler sees them, in the plaintext of an encrypted push too."""
    got = await env.push(account).send(xml)
    assert (got.status, got.body) == (400, reason)
    assert await env.questions() == [] and await env.rows(Follower) == []


async def test_an_oversized_body_is_refused_before_parsing(env: BotEnv) -> None:
    got = await env.push("plain").send(text_xml("o-big", "低" * 40_000))
    assert got.status == 413
    assert await env.questions() == []


async def test_an_account_stored_with_a_broken_aes_key_answers_503_not_500(env: BotEnv) -> None:
    """A key mistyped before imports checked it: WeChat hears 'misconfigured', every time."""
    from sqlmodel import select

    from gongkai.storage.crypto import Sealer
    from gongkai.storage.models import Account

    sealer = Sealer(env.settings.resolved_secret_key())

    async def break_key(session):  # type: ignore[no-untyped-def]
        row = (await session.exec(select(Account).where(Account.name == "safe"))).one()
        secrets = sealer.open(row.secrets_sealed)
        row.secrets_sealed = sealer.seal({**secrets, "encoding_aes_key": "!" * 43})
        session.add(row)
        await session.commit()

    await env.session_do(break_key)
    for n in range(2):
        got = await env.push("safe").send(text_xml("o-someone", "低保咋申请", msg_id=777 + n))
        assert (got.status, got.body) == (503, "this official account is misconfigured")
    assert await env.questions() == []


async def test_a_slow_answer_follows_through_the_customer_service_api(env: BotEnv) -> None:
    push = env.push("slow")  # its reply budget is 0 s: every answer is "too slow"
    xml = text_xml("o-patient", "低保咋申请", msg_id=4242)
    got = await push.send(xml)
    assert (got.status, got.body) == (200, "success")
    sent = await until(lambda: env.wechat.custom_messages)
    assert sent[0]["touser"] == "o-patient" and sent[0]["msgtype"] == "text"
    assert sent[0]["text"]["content"].startswith(DIBAO_ANSWER)
    again = await push.send(xml)  # WeChat's retry of the same message
    assert again.body == "success"
    await until(lambda: env.client.app[INBOUND].pending == 0)
    assert len(env.wechat.custom_messages) == 1
    assert len(await env.questions()) == 1


async def test_subscribe_welcomes_and_unsubscribe_stops_pushes(env: BotEnv) -> None:
    push = env.push("plain")
    got = await push.send(event_xml("o-new", "subscribe"))
    assert got.fields is not None and "伊金霍洛旗政务公开" in got.fields["Content"]
    assert "订阅" in got.fields["Content"]  # the short how-to
    (f,) = await env.rows(Follower)
    assert f.subscribed
    gone = await push.send(event_xml("o-new", "unsubscribe"))
    assert gone.body == "success"
    (f,) = await env.rows(Follower)
    assert not f.subscribed


async def test_a_village_qr_code_binds_the_follower(env: BotEnv) -> None:
    await env.push("plain").send(event_xml("o-qr", "subscribe", "qrscene_150627100201"))
    (f,) = await env.rows(Follower)
    assert f.region_code == "150627100201"


async def test_menu_clicks_answer_an_entry_or_list_the_latest(env: BotEnv) -> None:
    from tests.support import ingest, item

    await ingest(env.settings, env.redis_url, item(channels=["web"]))
    push = env.push("plain")
    got = await push.send(event_xml("o-menu", "CLICK", "faq:dibao-apply"))
    assert got.fields is not None and got.fields["Content"].startswith(DIBAO_ANSWER)
    got = await push.send(event_xml("o-menu", "CLICK", "latest", created=int(time.time()) + 1))
    assert got.fields is not None
    assert "关于2026年城乡低保标准调整的通知" in got.fields["Content"]
    assert "http://gongkai.test/p/ejhl-2026-0113" in got.fields["Content"]


async def test_voice_is_answered_from_its_recognition(env: BotEnv) -> None:
    push = env.push("plain")
    heard = await push.send(voice_xml("o-voice", "低保咋申请"))
    assert heard.fields is not None and heard.fields["Content"].startswith(DIBAO_ANSWER)
    unclear = await push.send(voice_xml("o-voice", None))
    assert unclear.fields is not None and "语音" in unclear.fields["Content"]
    image = (
        "<xml><ToUserName>gh</ToUserName><FromUserName>o-voice</FromUserName><CreateTime>1"
        "</CreateTime><MsgType>image</MsgType><PicUrl>http://x/y.jpg</PicUrl><MsgId>99</MsgId></xml>"
    )
    polite = await push.send(image)
    assert polite.fields is not None and "文字" in polite.fields["Content"]


async def test_replies_never_carry_markup_a_resident_typed(env: BotEnv) -> None:
    push = env.push("plain")
    for text in ("绑定 <script>alert(1)</script>]]></Content><Evil/>", "订阅 <b>领域</b>"):
        got = await push.send(text_xml("o-markup", text.replace("]]>", "]]]]><![CDATA[>")))
        assert got.status == 200 and got.fields is not None, got.body
        assert "<" not in got.fields["Content"] and "script" not in got.fields["Content"]
        assert "Evil" not in got.body


async def test_rate_limit_and_length_cap(env: BotEnv) -> None:
    push = env.push("plain")
    long = await push.send(text_xml("o-chatty", "低保" * 300))
    assert long.fields is not None and "太长" in long.fields["Content"]
    answers = [await push.send(text_xml("o-chatty", f"低保咋申请{n}")) for n in range(10)]
    assert answers[-1].fields is not None and "太频繁" in answers[-1].fields["Content"]
    assert (await push.send(text_xml("o-chatty", "低保"))).body == "success"  # silent after
    assert len(await env.questions()) == 9  # the long one is no question


async def _pending_at_plain(env: BotEnv, **wishes: Any) -> Any:
    """Ingest a WeChat item and run a real worker until the "plain" account's delivery waits
    for WeChat's verdict (the fake answers "publishing" / "SENDING" at first)."""
    from gongkai.storage.models import Delivery, Target
    from tests.support import ingest, item, workers_until

    await ingest(env.settings, env.redis_url, item(channels=["wechat_mp"], **wishes))
    (target,) = await env.rows(
        Target, Target.channel == "wechat_mp", Target.account_name == "plain"
    )
    waiting: list[Delivery] = []

    async def pending() -> bool:
        (d,) = await env.rows(Delivery, Delivery.target_id == target.id)
        if d.status == "sending" and d.provider_message_ids:
            waiting.append(d)
        return bool(waiting)

    await workers_until(env.settings, env.redis_url, pending)
    return waiting[0]


async def test_publishjobfinish_settles_the_pending_article(env: BotEnv) -> None:
    """A real worker submits the article; the verdict then arrives as WeChat's PUBLISHJOBFINISH
    push, not by polling."""
    from gongkai.storage.models import Delivery

    d = await _pending_at_plain(env)
    publish_id = d.provider_message_ids[-1].removeprefix("publish:")
    got = await env.push("plain").send(env.wechat.publish_event_xml(publish_id))
    assert got.body == "success"
    (d,) = await env.rows(Delivery, Delivery.id == d.id)
    assert d.status == "delivered"
    assert d.provider_message_ids[-1].startswith("article:")


@pytest.mark.parametrize("status", ["send success", "err(20013)"])
async def test_masssendjobfinish_settles_the_mass_send_and_keeps_its_reach(
    env: BotEnv, status: str
) -> None:
    """WeChat's MASSSENDJOBFINISH push (not a poll) says how the mass send went: delivered with
    how many followers it reached, or dead with the review's reason."""
    from gongkai.storage.models import Delivery

    d = await _pending_at_plain(env, wechat={"mass_send": True})
    msg_id = d.provider_message_ids[-1].removeprefix("mass:")
    env.wechat.mass_reach, env.wechat.mass_outcome = 1200, status
    got = await env.push("plain").send(env.wechat.mass_event_xml(msg_id))
    assert got.body == "success"
    (d,) = await env.rows(Delivery, Delivery.id == d.id)
    if status == "send success":
        assert d.status == "delivered"
        assert any("群发送达 1197 人" in n and "过滤后 1200 人" in n for n in d.notes), d.notes
    else:
        assert d.status == "dead" and d.last_error.endswith("err(20013) (涉嫌版权)")
