"""The SMS channel: what residents would receive, what it costs, and how it goes over the wire.

Sends go to the fake Aliyun and Tencent servers (gongkai/sandbox), which check signatures and the
providers' limits on their own; what they record is what a phone would have shown.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from gongkai.channels import registry
from gongkai.channels.sms import CHANNEL, shorten
from gongkai.dispatch.ratelimit import RateLimiter
from gongkai.sandbox import aliyun_sms
from gongkai.sandbox.server import serve
from tests.channels.sms_cases import (
    CODES,
    MN_TITLE,
    PUBLIC,
    SIGN,
    aliyun_account,
    ctx_for,
    make_item,
    make_target,
    phones,
    tencent_account,
)

# --- render ------------------------------------------------------------------------------------


def test_sms_is_registered() -> None:
    # that an SMS waits out the night is shown in test_quiet_hours.py
    assert registry.get("sms") is CHANNEL


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
    rendered = CHANNEL.render(make_item(short_codes=CODES), target, PUBLIC)
    part = rendered.parts[0]
    assert part["template_code"] == "SMS_2" and part["lang"] == "mn"
    title = part["params"]["title"]
    assert len(title) <= 60 and title.endswith("…") and MN_TITLE.startswith(title[:-1])
    assert part["params"]["link"] == f"{PUBLIC}/s/Mn7abc"  # the Mongolian page's own code
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
    rendered = CHANNEL.render(make_item(short_codes=CODES), target, PUBLIC)
    assert rendered.parts[0]["lang"] == "zh"
    assert "no mn template: Chinese sent" in rendered.notes
    title = "关于2026年城乡低保标准调整的通知"
    assert (
        rendered.meta["text"] == f"【{SIGN}】巴图塔嘎查政务公开：{title}，详情见{PUBLIC}/s/Zh7abc"
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


def test_a_link_longer_than_the_variable_limit_is_refused_not_truncated() -> None:
    public = "https://gongkai.ejinhoroqi.gov.cn/zhengwu"
    target = make_target(aliyun_account(), ["13800000000"])
    rendered = CHANNEL.render(make_item(short_codes=CODES), target, public)
    assert rendered.parts[0]["params"]["link"] == f"{public}/s/Zh7abc"
    assert rendered.refused is not None
    assert "variable link is 50 characters, over the aliyun limit of 35" in rendered.refused
    assert rendered.parts[0]["refused"] == rendered.refused
    assert f"refused: {rendered.refused}" in rendered.notes  # the preview says so too


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


def test_on_tencent_link_is_only_the_code_and_the_template_must_hold_the_address() -> None:
    held = tencent_account(template_text="{title}，详情：https://zwgk.ejhl.gov.cn/s/{link}")
    rendered = CHANNEL.render(
        make_item(short_codes=CODES), make_target(held, ["13800000000"]), PUBLIC
    )
    assert rendered.parts[0]["params"] == ["关于2026年城乡低保…", "Zh7abc"]
    assert rendered.meta["text"].endswith("详情：https://zwgk.ejhl.gov.cn/s/Zh7abc")
    assert rendered.refused is None and not any("link_form" in n for n in rendered.notes)
    bare = tencent_account(template_text="{title}，详情：{link}")
    rendered = CHANNEL.render(
        make_item(short_codes=CODES), make_target(bare, ["13800000000"]), PUBLIC
    )
    assert f"the approved template must hold {PUBLIC}/s/ right before {{link}}" in " ".join(
        rendered.notes
    )
