"""The SMS channel: what residents would receive, what it costs, and how it goes over the wire.

Sends go to the fake Aliyun and Tencent servers (tests/fakes), which check signatures and the
providers' limits on their own; what they record is what a phone would have shown.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import aiohttp
import pytest

from gongkai.bot.settings import Settings
from gongkai.channels import registry
from gongkai.channels.base import (
    ItemView,
    PermanentError,
    SendContext,
    TargetView,
    TransientError,
)
from gongkai.channels.sms import CHANNEL, shorten
from gongkai.dispatch.ratelimit import RateLimiter
from tests.conftest import free_port
from tests.fakes import aliyun_sms, tencent_sms
from tests.fakes.server import serve

PUBLIC = "http://127.0.0.1:8080"
SIGN = "伊金霍洛旗政务公开"
MN_TITLE = "ᠬᠣᠲᠠ ᠬᠥᠳᠡᠭᠡ ᠶᠢᠨ ᠠᠮᠢᠳᠤᠷᠠᠯ ᠤᠨ ᠳᠤᠤᠷ\u202fᠠ ᠬᠡᠮᠵᠢᠶ\u202fᠡ ᠶᠢ ᠳᠡᠭᠡᠭᠰᠢᠯᠡᠭᠦᠯᠬᠦ ᠲᠤᠬᠠᠢ"


def make_item(**changes: Any) -> ItemView:
    fields: dict[str, Any] = {
        "id": "2026-0113",
        "kind": "notice",
        "title": "关于2026年城乡低保标准调整的通知",
        "summary": "城乡低保标准每人每月提高60元，12月起执行。",
        "body": "正文",
        "doc_number": "伊政办发〔2026〕3号",
        "issuer": "伊金霍洛旗人民政府办公室",
        "issued_at": date(2026, 11, 2),
        "published_at": None,
        "domain": "社会救助",
        "urgent": False,
        "catalog": {},
        "translations": {"mn": {"title": MN_TITLE, "summary": "ᠰᠠᠷ\u202fᠠ ᠪᠦᠷᠢ"}},
    }
    fields.update(changes)
    return ItemView(**fields)


def aliyun_account(**changes: Any) -> dict[str, Any]:
    account = {
        "name": "county-sms",
        "provider": "aliyun",
        "access_key_id": "testid",
        "access_key_secret": "testsecret",
        "sign_name": SIGN,
        "template_code": "SMS_000001",
        "template_text": "${region}政务公开：${title}，详情见${link}",
    }
    account.update(changes)
    return account


def tencent_account(**changes: Any) -> dict[str, Any]:
    account = {
        "name": "county-tc",
        "provider": "tencent",
        "secret_id": "AKIDfakeSmsSecretId0001",
        "secret_key": "fake-tencent-secret-key",
        "sdk_app_id": "1400000001",
        "sign_name": SIGN,
        "template_code": "1001",
        "template_text": "{region}政务公开：{title}，详情请登录政府网站查看（{item_id}）",
    }
    account.update(changes)
    return account


def make_target(account: dict[str, Any], phones: list[str], languages=("zh",)) -> TargetView:
    return TargetView(
        id=1,
        channel="sms",
        region_code="150627100201",
        region_name="巴图塔嘎查",
        region_names={"mn": "ᠪᠠᠲᠤᠲᠠᠭ\u202fᠠ"},
        languages=tuple(languages),
        address={"phones": phones},
        account=account,
        account_name=account["name"],
    )


def phones(n: int, start: int = 0) -> list[str]:
    return [f"139{start + i:08d}" for i in range(n)]


def ctx_for(http: aiohttp.ClientSession, target: TargetView, base: str, index: int = 0):
    settings = Settings(aliyun_sms_endpoint=base, tencent_sms_endpoint=base)
    return SendContext(
        http=http,
        settings=settings,
        redis=None,
        target=target,
        item_id="2026-0113",
        delivery_id=42,
        part_index=index,
    )


# --- render ------------------------------------------------------------------------------------


def test_sms_is_registered_and_keeps_quiet_hours() -> None:
    assert registry.get("sms") is CHANNEL
    assert CHANNEL.quiet_hours_apply is True


def test_title_is_cut_to_the_variable_limit_with_an_ellipsis() -> None:
    long_title = (
        "关于进一步做好2026年度城乡居民最低生活保障标准调整及资金发放工作的补充通知（第二批）"
    )
    target = make_target(aliyun_account(), ["13800000000"])
    part = CHANNEL.render(make_item(title=long_title), target, PUBLIC).parts[0]
    title = part["params"]["title"]
    assert len(title) == 35 and title.endswith("…")
    assert long_title.startswith(title[:-1])


def test_tencent_default_limit_is_twelve_characters() -> None:
    target = make_target(tencent_account(), ["13800000000"])
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    assert part["params"] == ["巴图塔嘎查", "关于2026年城乡低保…", "2026-0113"]
    assert all(len(p) <= 12 for p in part["params"])


def test_a_mongolian_cut_never_ends_on_a_suffix_joiner_or_orphans_a_variant_selector() -> None:
    word = "ᠳᠤᠤᠷ\u202fᠠ"
    assert shorten(word + " ᠬᠡᠮᠵᠢᠶ\u202fᠡ", 6) == "ᠳᠤᠤᠷ…"  # cut would land after U+202F
    with_fvs = "ᠠᠮ\u180bᠢᠳᠤᠷᠠᠯ"
    assert shorten(with_fvs, 3) == "ᠠ…"  # ᠮ and its selector U+180B stay together or go together
    assert shorten("  公开\n\n通知  ", 10) == "公开 通知"


@pytest.mark.parametrize(
    ("title_len", "chars", "count"), [(64, 70, 1), (65, 71, 2), (128, 134, 2), (129, 135, 3)]
)
def test_segments_follow_the_70_then_67_rule_with_the_sign_included(
    title_len: int, chars: int, count: int
) -> None:
    account = aliyun_account(sign_name="政务公开", template_text="${title}", variable_max_len=500)
    target = make_target(account, ["13800000000", "13800000001", "13800000002"])
    rendered = CHANNEL.render(make_item(title="公" * title_len), target, PUBLIC)
    assert rendered.meta["text"].startswith("【政务公开】")
    assert rendered.meta["chars"] == chars
    assert rendered.meta["segments"] == count
    assert rendered.meta["recipients"] == 3
    assert rendered.meta["cost_units"] == 3 * count


def test_mongolian_template_is_used_when_the_item_and_the_account_have_one() -> None:
    account = aliyun_account(
        template_codes={"mn": "SMS_2"},
        template_texts={"mn": "${region} ᠮᠡᠳᠡᠭᠳᠡᠯ᠄ ${title} ${link}"},
        variable_max_len=60,
    )
    target = make_target(account, ["13800000000"], languages=("mn", "zh"))
    rendered = CHANNEL.render(make_item(), target, PUBLIC)
    part = rendered.parts[0]
    assert part["template_code"] == "SMS_2" and part["lang"] == "mn"
    title = part["params"]["title"]
    assert len(title) <= 60 and title.endswith("…") and MN_TITLE.startswith(title[:-1])
    assert part["params"]["link"] == f"{PUBLIC}/p/2026-0113?lang=mn"
    assert rendered.notes == []
    text = rendered.meta["text"]
    assert "ᠮᠡᠳᠡᠭᠳᠡᠯ" in text and "ᠪᠠᠲᠤᠲᠠᠭ\u202fᠠ" in text
    assert rendered.meta["chars"] == len(text) and rendered.meta["chars"] > 70
    assert rendered.meta["segments"] == math.ceil(len(text) / 67)


async def test_a_mongolian_message_arrives_intact(http) -> None:
    mn_template = "${region} ᠮᠡᠳᠡᠭᠳᠡᠯ᠄ ${title} ${link}"
    app, state = aliyun_sms.make_app(templates={"SMS_2": mn_template}, variable_max_len=60)
    account = aliyun_account(
        template_codes={"mn": "SMS_2"}, template_texts={"mn": mn_template}, variable_max_len=60
    )
    target = make_target(account, ["13800000000"], languages=("mn", "zh"))
    rendered = CHANNEL.render(make_item(), target, PUBLIC)
    async with serve(app) as base:
        await CHANNEL.send(rendered.parts[0], ctx_for(http, target, base))
    assert state.texts_to("13800000000") == [rendered.meta["text"]]
    assert "\u202f" in rendered.meta["text"]


def test_missing_mongolian_translation_sends_chinese_and_says_so() -> None:
    account = aliyun_account(template_codes={"mn": "SMS_2"})
    target = make_target(account, ["13800000000"], languages=("mn", "zh"))
    rendered = CHANNEL.render(make_item(translations={}), target, PUBLIC)
    assert rendered.parts[0]["template_code"] == "SMS_000001"
    assert rendered.parts[0]["lang"] == "zh"
    assert "translation missing: mn" in rendered.notes


def test_no_mongolian_template_sends_chinese_and_says_so() -> None:
    target = make_target(aliyun_account(), ["13800000000"], languages=("mn", "zh"))
    rendered = CHANNEL.render(make_item(), target, PUBLIC)
    assert rendered.parts[0]["lang"] == "zh"
    assert "no mn template: Chinese sent" in rendered.notes
    title = "关于2026年城乡低保标准调整的通知"
    assert (
        rendered.meta["text"]
        == f"【{SIGN}】巴图塔嘎查政务公开：{title}，详情见{PUBLIC}/p/2026-0113"
    )


def test_2500_numbers_make_3_aliyun_requests_and_13_tencent_requests() -> None:
    numbers = phones(2500)
    ali = CHANNEL.render(make_item(), make_target(aliyun_account(), numbers), PUBLIC)
    assert [len(p["phones"]) for p in ali.parts] == [1000, 1000, 500]
    assert [n for p in ali.parts for n in p["phones"]] == numbers
    tc = CHANNEL.render(make_item(), make_target(tencent_account(), numbers), PUBLIC)
    assert [len(p["phones"]) for p in tc.parts] == [200] * 12 + [100]
    assert tc.parts[0]["phones"][0] == "+8613900000000"
    assert tc.meta["recipients"] == 2500 and tc.meta["requests"] == 13


def test_bad_and_repeated_numbers_are_left_out_with_a_note() -> None:
    target = make_target(aliyun_account(), ["13800000000", "+86 138-0000-0000", "12345", "86139"])
    rendered = CHANNEL.render(make_item(), target, PUBLIC)
    assert rendered.parts[0]["phones"] == ["13800000000"]
    assert any("left out" in n for n in rendered.notes)
    assert any("duplicate" in n for n in rendered.notes)
    assert not any("12345" in n for n in rendered.notes)  # numbers appear masked only


def test_a_link_longer_than_the_variable_limit_is_noted_not_truncated() -> None:
    public = "https://gongkai.ejinhoroqi.gov.cn/zhengwu"
    rendered = CHANNEL.render(make_item(), make_target(aliyun_account(), ["13800000000"]), public)
    assert rendered.parts[0]["params"]["link"] == f"{public}/p/2026-0113"
    assert any("over the variable limit of 35" in n for n in rendered.notes)


def test_rate_limits_are_per_number_and_hold_no_phone_number() -> None:
    target = make_target(aliyun_account(requests_per_second=5), phones(3))
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    limits = CHANNEL.rate_limits(target, part)
    assert limits[0].rate == "5/second"
    assert [x.rate for x in limits[1:]] == ["50/day"] * 3
    assert len({x.key for x in limits}) == 4
    assert not any("1390000" in x.key for x in limits)
    tc_target = make_target(tencent_account(), phones(2))
    tc_part = CHANNEL.render(make_item(), tc_target, PUBLIC).parts[0]
    assert [x.rate for x in CHANNEL.rate_limits(tc_target, tc_part)] == [
        "20/second",
        "1/30 seconds",
        "1/30 seconds",
    ]


async def test_the_limiter_holds_back_the_same_tencent_message_to_the_same_number(
    embedded_redis_url: str, redis: Any
) -> None:
    limiter = RateLimiter(embedded_redis_url)
    target = make_target(tencent_account(), ["13800000000"])
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    assert await limiter.acquire(CHANNEL.rate_limits(target, part)) is None
    wait = await limiter.acquire(CHANNEL.rate_limits(target, part))
    assert wait is not None and 0 < wait <= 30
    other = CHANNEL.render(make_item(id="2026-0114"), target, PUBLIC).parts[0]
    assert await limiter.acquire(CHANNEL.rate_limits(target, other)) is None


# --- send: Aliyun ------------------------------------------------------------------------------


async def test_aliyun_delivers_the_rendered_text_to_every_number_in_one_request(http) -> None:
    app, state = aliyun_sms.make_app()
    target = make_target(aliyun_account(), phones(3))
    rendered = CHANNEL.render(make_item(), target, PUBLIC)
    async with serve(app) as base:
        sent = await CHANNEL.send(rendered.parts[0], ctx_for(http, target, base))
    assert len(state.requests) == 1
    assert sent.provider_message_id == state.messages[0].biz_id
    assert sent.extra["accepted"] == 3
    for number in phones(3):
        assert state.texts_to(number) == [rendered.meta["text"]]
    assert {m.out_id for m in state.messages} == {"42-0"}


async def test_aliyun_wrong_secret_is_permanent(http) -> None:
    app, state = aliyun_sms.make_app()
    target = make_target(aliyun_account(access_key_secret="not-the-secret"), ["13800000000"])
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    async with serve(app) as base:
        with pytest.raises(PermanentError, match="SignatureDoesNotMatch"):
            await CHANNEL.send(part, ctx_for(http, target, base))
    assert state.messages == []


@pytest.mark.parametrize(
    ("code", "status"),
    [("Throttling.User", 400), ("ServiceUnavailable", 503), ("isp.SYSTEM_ERROR", 200)],
)
async def test_aliyun_throttling_and_outages_are_transient(http, code: str, status: int) -> None:
    app, state = aliyun_sms.make_app()
    state.fail_next(code, status=status)
    target = make_target(aliyun_account(), ["13800000000"])
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    async with serve(app) as base:
        with pytest.raises(TransientError, match=code):
            await CHANNEL.send(part, ctx_for(http, target, base))
        await CHANNEL.send(part, ctx_for(http, target, base))  # the retry goes through
    assert state.texts_to("13800000000") and len(state.messages) == 1


async def test_aliyun_per_number_daily_limit(http) -> None:
    app, state = aliyun_sms.make_app(per_number_daily_limit=1)
    target = make_target(aliyun_account(), ["13800000000", "13800000001"])
    first = CHANNEL.render(make_item(), make_target(aliyun_account(), ["13800000000"]), PUBLIC)
    both = CHANNEL.render(make_item(id="2026-0114"), target, PUBLIC)
    async with serve(app) as base:
        await CHANNEL.send(first.parts[0], ctx_for(http, target, base))
        with pytest.raises(TransientError, match="BUSINESS_LIMIT_CONTROL") as exc:
            await CHANNEL.send(first.parts[0], ctx_for(http, target, base))
        assert exc.value.retry_after is not None and exc.value.retry_after >= 3600
        sent = await CHANNEL.send(both.parts[0], ctx_for(http, target, base))
    assert sent.provider_message_id
    assert len(state.texts_to("13800000000")) == 1  # over its limit: reported in a receipt
    assert len(state.texts_to("13800000001")) == 1
    assert [r["PhoneNum"] for r in state.receipts] == ["13800000000"]


@pytest.mark.parametrize(
    ("fake", "account", "message"),
    [
        ({"balance": 0}, {}, "out of credit"),
        ({}, {"template_code": "SMS_999"}, "SMS_TEMPLATE_ILLEGAL"),
        ({}, {"sign_name": "别的签名"}, "SMS_SIGNATURE_ILLEGAL"),
        ({}, {"access_key_id": "nobody"}, "InvalidAccessKeyId.NotFound"),
        ({}, {"variable_max_len": 60}, "PARAM_LENGTH_LIMIT"),
        ({"templates": {"SMS_000001": "${title}${doc_number}"}}, {}, "TEMPLATE_MISSING_PARAMETERS"),
    ],
)
async def test_aliyun_refusals_that_retrying_cannot_fix_are_permanent(
    http, fake: dict, account: dict, message: str
) -> None:
    app, state = aliyun_sms.make_app(**fake)
    target = make_target(aliyun_account(**account), ["13800000000"])
    title = "关于进一步做好2026年度城乡居民最低生活保障标准调整及资金发放工作的补充通知"
    part = CHANNEL.render(make_item(title=title), target, PUBLIC).parts[0]
    async with serve(app) as base:
        with pytest.raises(PermanentError, match=message):
            await CHANNEL.send(part, ctx_for(http, target, base))
    assert state.messages == []


async def test_an_unreachable_provider_is_transient(http) -> None:
    target = make_target(aliyun_account(), ["13800000000"])
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    with pytest.raises(TransientError, match="unreachable"):
        await CHANNEL.send(part, ctx_for(http, target, f"http://127.0.0.1:{free_port()}"))


async def test_aliyun_fake_refuses_stale_timestamps_and_replayed_nonces(http) -> None:
    from gongkai.channels.sms_providers import aliyun_send_params

    app, _ = aliyun_sms.make_app()
    target = make_target(aliyun_account(), ["13800000000"])
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    async with serve(app) as base:
        old = aliyun_send_params(aliyun_account(), part, out_id="1", timestamp=1e9, nonce="n")
        async with http.post(base + "/", data=old) as resp:
            assert (await resp.json())["Code"] == "InvalidTimeStamp.Expired"
        import time

        fresh = aliyun_send_params(
            aliyun_account(), part, out_id="1", timestamp=time.time(), nonce="n2"
        )
        for expected in ("OK", "SignatureNonceUsed"):
            async with http.post(base + "/", data=fresh) as resp:
                assert (await resp.json())["Code"] == expected


# --- send: Tencent -----------------------------------------------------------------------------


async def test_tencent_delivers_in_e164_with_a_signed_request(http) -> None:
    app, state = tencent_sms.make_app()
    target = make_target(tencent_account(), phones(3))
    rendered = CHANNEL.render(make_item(), target, PUBLIC)
    async with serve(app) as base:
        sent = await CHANNEL.send(rendered.parts[0], ctx_for(http, target, base, index=2))
    assert len(state.requests) == 1
    assert state.requests[0]["PhoneNumberSet"] == [f"+86{p}" for p in phones(3)]
    assert state.requests[0]["SessionContext"] == "42-2"
    assert sent.extra["accepted"] == 3 and "failed" not in sent.extra
    for number in phones(3):
        assert state.texts_to(number) == [rendered.meta["text"]]
    assert rendered.meta["text"] == (
        f"【{SIGN}】巴图塔嘎查政务公开：关于2026年城乡低保…，详情请登录政府网站查看（2026-0113）"
    )


async def test_tencent_wrong_secret_is_permanent(http) -> None:
    app, state = tencent_sms.make_app()
    target = make_target(tencent_account(secret_key="wrong"), ["13800000000"])
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    async with serve(app) as base:
        with pytest.raises(PermanentError, match=r"AuthFailure\.SignatureFailure"):
            await CHANNEL.send(part, ctx_for(http, target, base))
    assert state.messages == []


async def test_tencent_request_throttling_is_transient(http) -> None:
    app, state = tencent_sms.make_app()
    state.fail_next("RequestLimitExceeded")
    target = make_target(tencent_account(), ["13800000000"])
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    async with serve(app) as base:
        with pytest.raises(TransientError, match="RequestLimitExceeded"):
            await CHANNEL.send(part, ctx_for(http, target, base))
    assert state.messages == []


async def test_tencent_daily_limit_fails_one_number_and_the_others_are_sent_once(http) -> None:
    app, state = tencent_sms.make_app(daily_limit_per_number=1)
    numbers = ["13800000000", "13800000001", "13800000002"]
    earlier = CHANNEL.render(
        make_item(id="2026-0100"), make_target(tencent_account(), ["13800000001"]), PUBLIC
    )
    target = make_target(tencent_account(), numbers)
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    async with serve(app) as base:
        await CHANNEL.send(earlier.parts[0], ctx_for(http, target, base))
        before = len(state.requests)
        sent = await CHANNEL.send(part, ctx_for(http, target, base))
    assert len(state.requests) == before + 1
    assert sent.extra["accepted"] == 2
    assert sent.extra["failed"] == ["138****0001 LimitExceeded.PhoneNumberDailyLimit"]
    assert sent.extra["failed_index"] == [1]
    assert "1 of 3 numbers refused" in sent.extra["note"]
    assert len(state.texts_to("13800000000")) == 1 and len(state.texts_to("13800000002")) == 1
    assert len(state.texts_to("13800000001")) == 1  # only the earlier notice


async def test_tencent_same_content_within_30s_is_transient_when_nothing_was_accepted(http) -> None:
    app, state = tencent_sms.make_app()
    target = make_target(tencent_account(), ["13800000000"])
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    async with serve(app) as base:
        await CHANNEL.send(part, ctx_for(http, target, base))
        with pytest.raises(TransientError, match="PhoneNumberThirtySecondLimit") as exc:
            await CHANNEL.send(part, ctx_for(http, target, base))
        assert exc.value.retry_after == 30
        state.advance(31)
        await CHANNEL.send(part, ctx_for(http, target, base))
    assert len(state.texts_to("13800000000")) == 2


async def test_tencent_refuses_a_url_in_a_variable_and_render_warns(http) -> None:
    app, state = tencent_sms.make_app(templates={"1002": "{1}：{2}"}, variable_max_len=None)
    account = tencent_account(
        template_code="1002", template_text="{title}：{link}", variable_max_len=40
    )
    target = make_target(account, ["13800000000"])
    rendered = CHANNEL.render(make_item(), target, PUBLIC)
    assert any("tencent refuses URLs" in n for n in rendered.notes)
    async with serve(app) as base:
        with pytest.raises(PermanentError, match="ProhibitedUseUrlInTemplateParameter"):
            await CHANNEL.send(rendered.parts[0], ctx_for(http, target, base))
    assert state.messages == []


async def test_tencent_refuses_more_than_200_numbers(http) -> None:
    app, state = tencent_sms.make_app()
    target = make_target(tencent_account(), ["13800000000"])
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    part = dict(part, phones=[f"+86{p}" for p in phones(201)])
    async with serve(app) as base:
        with pytest.raises(PermanentError, match="PhoneNumberCountLimit"):
            await CHANNEL.send(part, ctx_for(http, target, base))
    assert state.messages == []


async def test_an_account_without_credentials_fails_permanently_before_any_request(http) -> None:
    app, state = tencent_sms.make_app()
    account = tencent_account()
    del account["sdk_app_id"]
    target = make_target(account, ["13800000000"])
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    async with serve(app) as base:
        with pytest.raises(PermanentError, match="sdk_app_id missing"):
            await CHANNEL.send(part, ctx_for(http, target, base))
    assert state.requests == []
