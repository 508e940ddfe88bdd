"""Village WeChat groups through a WeCom robot: what residents see, and what the robot refuses."""

from __future__ import annotations

import hashlib
import re
from datetime import date
from typing import Any

import aiohttp
import pytest

from gongkai.channels.base import (
    ItemView,
    PermanentError,
    SendContext,
    TargetView,
    TransientError,
)
from gongkai.channels.village_group import CHANNEL
from gongkai.config import Settings
from gongkai.sandbox import wecom_robot
from gongkai.sandbox.server import ManualClock, serve
from tests.servers import free_port

PUBLIC = "https://gk.example.cn"
NNBSP = "\u202f"
# "raise the minimum living standard of town and country" — with suffixes joined by U+202F
MN_WORD = f"ᠠᠮᠢᠳᠤᠷᠠᠯ{NNBSP}ᠤᠨ"
MN_SENTENCE = f"ᠬᠣᠲᠠ ᠬᠥᠳᠡᠭᠡ{NNBSP}ᠶᠢᠨ {MN_WORD} ᠳᠣᠣᠷ\u180eᠠ ᠬᠡᠮᠵᠢᠶ\u180eᠡ{NNBSP}ᠶᠢ ᠨᠡᠮᠡᠨ᠎ᠡ᠃ "
MN_TITLE = f"ᠬᠣᠲᠠ ᠬᠥᠳᠡᠭᠡ{NNBSP}ᠶᠢᠨ ᠠᠮᠢᠳᠤᠷᠠᠯ ᠤᠨ ᠳᠣᠣᠷ\u180eᠠ ᠬᠡᠮᠵᠢᠶ\u180eᠡ"
ZH_TITLE = "关于2026年城乡低保标准调整的通知"


def make_item(**overrides: Any) -> ItemView:
    data: dict[str, Any] = {
        "id": "ejhl-2026-0113",
        "kind": "notice",
        "title": ZH_TITLE,
        "summary": "城乡低保标准每人每月提高60元，12月起执行。",
        "body": "各苏木镇人民政府：\n\n自2026年12月1日起，城乡低保标准每人每月提高60元。",
        "doc_number": "伊政办发〔2026〕3号",
        "issuer": "伊金霍洛旗人民政府办公室",
        "issued_at": date(2026, 11, 2),
        "published_at": None,
        "domain": "社会救助",
        "urgent": False,
        "catalog": {},
        "translations": {
            "mn": {"title": MN_TITLE, "summary": MN_SENTENCE, "body": MN_SENTENCE * 3}
        },
    }
    data.update(overrides)
    return ItemView(**data)


def make_target(languages: tuple[str, ...] = ("mn", "zh"), **overrides: Any) -> TargetView:
    data: dict[str, Any] = {
        "id": 7,
        "channel": "village_group",
        "region_code": "150627100201",
        "region_name": "巴图塔嘎查",
        "region_names": {},
        "languages": languages,
        "address": {"robot_key": "robot-1"},
    }
    data.update(overrides)
    return TargetView(**data)


def long_item() -> ItemView:
    """Well past 4096 bytes in each language, with one Mongolian paragraph bigger than a part."""
    run_on = MN_SENTENCE.replace("᠃", "") * 60  # no sentence end: cut between words
    mn_body = "\n\n".join([MN_SENTENCE * 6] * 8 + [run_on])
    zh_para = "自2026年12月1日起，城乡低保标准每人每月提高60元，农村牧区同步调整。" * 8
    zh_body = "## 一、调整标准\n\n" + "\n\n".join([zh_para] * 10)
    return make_item(
        body=zh_body,
        translations={"mn": {"title": MN_TITLE, "summary": MN_SENTENCE, "body": mn_body}},
    )


def content(part: dict[str, Any]) -> str:
    return part[part["msgtype"]]["content"]


def ctx_for(http: aiohttp.ClientSession, base: str, target: TargetView) -> SendContext:
    return SendContext(
        http=http,
        settings=Settings(wecom_api_base=base, telegram_api_base=base),
        redis=None,
        target=target,
        item_id="ejhl-2026-0113",
        delivery_id=1,
        part_index=0,
    )


def test_short_bilingual_item_is_one_message_mongolian_first() -> None:
    rendered = CHANNEL.render(make_item(), make_target(), PUBLIC)
    assert len(rendered.parts) == 1 and rendered.meta["parts"] == 1
    text = content(rendered.parts[0])
    assert rendered.parts[0]["msgtype"] == "markdown"
    assert text.index(MN_TITLE) < text.index(ZH_TITLE)
    assert f"**{ZH_TITLE}**" in text and "伊政办发〔2026〕3号" in text and "2026年11月2日" in text
    assert text.endswith(f"[查看全文]({PUBLIC}/p/ejhl-2026-0113)")
    assert f"({PUBLIC}/p/ejhl-2026-0113?lang=mn)" in text
    assert rendered.meta["bytes"] == [len(text.encode("utf-8"))]
    assert rendered.notes == []


def test_long_bilingual_item_becomes_numbered_parts_that_each_fit() -> None:
    item = long_item()
    rendered = CHANNEL.render(item, make_target(), PUBLIC)
    texts = [content(p) for p in rendered.parts]
    total = len(texts)
    assert total >= 3 and rendered.meta["parts"] == total
    zh_link = f"[查看全文]({PUBLIC}/p/{item.id})"
    for i, text in enumerate(texts, start=1):
        assert len(text.encode("utf-8")) <= 4096
        assert text.startswith(f"（{i}/{total}）\n")
        assert text.endswith(zh_link) and f"/p/{item.id}?lang=mn)" in text
        inner = text.split("\n", 1)[1].rsplit("\n\n[", 1)[0]
        assert not inner.startswith(NNBSP) and not inner.endswith(NNBSP)
    assert rendered.meta["bytes"] == [len(t.encode("utf-8")) for t in texts]
    # Mongolian first, and no Mongolian word torn at its U+202F suffix joint
    assert MN_TITLE in texts[0]
    first_zh = next(i for i, t in enumerate(texts) if ZH_TITLE in t)
    assert all(MN_WORD not in t for t in texts[first_zh + 1 :])
    wanted = item.text("mn", "body").count(MN_WORD) + item.text("mn", "summary").count(MN_WORD)
    assert sum(t.count(MN_WORD) for t in texts) == wanted
    assert sum(t.count("农村牧区同步调整") for t in texts) == item.body.count("农村牧区同步调整")


def test_missing_translation_sends_chinese_once_and_says_so() -> None:
    rendered = CHANNEL.render(make_item(translations={}), make_target(("mn", "zh")), PUBLIC)
    text = content(rendered.parts[0])
    assert rendered.notes == ["translation missing: mn"]
    assert text.count(ZH_TITLE) == 1 and "?lang=mn" not in text
    assert not re.search("[\u1800-\u18af]", text)


def test_urgent_item_is_marked_on_every_part() -> None:
    short = CHANNEL.render(make_item(urgent=True), make_target(("zh",)), PUBLIC)
    assert content(short.parts[0]).startswith("【紧急】")
    item = long_item()
    long = CHANNEL.render(
        ItemView(**{**item.__dict__, "urgent": True}), make_target(("zh", "mn")), PUBLIC
    )
    assert len(long.parts) > 1
    assert all(content(p).startswith("【紧急】【ᠶᠠᠭᠠᠷᠠᠯᠲᠠᠢ】（") for p in long.parts)


def test_body_markdown_is_simplified_to_what_wecom_shows() -> None:
    body = (
        "## 一、标准\n\n*注意*：**每人每月**提高~~50~~60元，详见[民政局](https://mz.example.cn)。\n\n"
        "| 类别 | 标准 |\n| --- | --- |\n| 城市 | 860元 |\n| 农村 | 700元 |\n\n> 咨询电话 12345"
    )
    text = content(CHANNEL.render(make_item(body=body), make_target(("zh",)), PUBLIC).parts[0])
    assert "## 一、标准" in text and "**每人每月**" in text
    assert "[民政局](https://mz.example.cn)" in text and "> 咨询电话 12345" in text
    assert "类别: 城市 · 标准: 860元" in text and "类别: 农村 · 标准: 700元" in text
    assert "|" not in text and "~~" not in text and "*注意*" not in text


def test_a_language_with_templates_needs_no_code() -> None:
    item = make_item(translations={"ug": {"title": "تۆۋەن تۇرمۇش كاپالىتى", "summary": "ئۇقتۇرۇش"}})
    text = content(CHANNEL.render(item, make_target(("ug", "zh")), PUBLIC).parts[0])
    assert text.index("تۆۋەن تۇرمۇش كاپالىتى") < text.index(ZH_TITLE)
    assert f"[تولۇق تېكىستنى كۆرۈش]({PUBLIC}/p/{item.id}?lang=ug)" in text


def test_robot_budget_key_is_shared_with_the_loudspeaker_channel() -> None:
    limits = CHANNEL.rate_limits(make_target(), {})
    expected = "wecom:" + hashlib.sha1(b"robot-1").hexdigest()[:16]
    assert [(lim.rate, lim.key) for lim in limits] == [("20/minute", expected)]


async def test_every_part_of_a_long_item_is_accepted_by_the_robot(
    http: aiohttp.ClientSession,
) -> None:
    app, state = wecom_robot.make_app({"robot-1"})
    rendered = CHANNEL.render(long_item(), make_target(), PUBLIC)
    async with serve(app) as base:
        for part in rendered.parts:
            sent = await CHANNEL.send(part, ctx_for(http, base, make_target()))
            assert sent.provider_message_id is None and not sent.pending
    assert [m.content for m in state.messages] == [content(p) for p in rendered.parts]
    assert {m.msgtype for m in state.messages} == {"markdown"} and state.rejected == []


async def test_mentions_go_in_a_text_message_after_the_notice(http: aiohttp.ClientSession) -> None:
    app, state = wecom_robot.make_app({"robot-1"})
    target = make_target(("zh",), options={"mentioned_list": ["@all"]})
    rendered = CHANNEL.render(make_item(), target, PUBLIC)
    async with serve(app) as base:
        for part in rendered.parts:
            await CHANNEL.send(part, ctx_for(http, base, target))
    assert [m.msgtype for m in state.messages] == ["markdown", "text"]
    assert state.messages[1].body["text"]["mentioned_list"] == ["@all"]
    assert ZH_TITLE in state.messages[1].content
    assert state.messages[1].content.endswith(f"{PUBLIC}/p/ejhl-2026-0113")


async def test_invalid_robot_key_deactivates_the_target(http: aiohttp.ClientSession) -> None:
    app, state = wecom_robot.make_app({"robot-1"})
    target = make_target(address={"robot_key": "removed-robot"})
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    async with serve(app) as base:
        with pytest.raises(PermanentError) as err:
            await CHANNEL.send(part, ctx_for(http, base, target))
    assert err.value.deactivate_target and "robot key invalid" in str(err.value)
    assert state.messages == []


async def test_the_21st_message_in_a_minute_is_retried_later(http: aiohttp.ClientSession) -> None:
    clock = ManualClock()
    app, state = wecom_robot.make_app({"robot-1"}, clock=clock)
    part = CHANNEL.render(make_item(), make_target(), PUBLIC).parts[0]
    async with serve(app) as base:
        ctx = ctx_for(http, base, make_target())
        for _ in range(20):
            await CHANNEL.send(part, ctx)
            clock.advance(1)
        with pytest.raises(TransientError) as err:
            await CHANNEL.send(part, ctx)
        assert err.value.retry_after == 60
        clock.advance(41)  # the first message of the window is now 61 s old
        await CHANNEL.send(part, ctx)
    assert len(state.messages) == 21 and state.rate_limited == 1


async def test_content_over_4096_bytes_is_a_permanent_error(http: aiohttp.ClientSession) -> None:
    app, state = wecom_robot.make_app({"robot-1"})
    part = {"msgtype": "markdown", "markdown": {"content": "低保" * 700}}  # 4200 bytes
    async with serve(app) as base:
        with pytest.raises(PermanentError) as err:
            await CHANNEL.send(part, ctx_for(http, base, make_target()))
    assert "content too long" in str(err.value) and not err.value.deactivate_target
    assert state.rejected[0][0] == 40058


async def test_server_errors_and_unreachable_robots_are_transient(
    http: aiohttp.ClientSession,
) -> None:
    app, state = wecom_robot.make_app({"robot-1"})
    part = CHANNEL.render(make_item(), make_target(), PUBLIC).parts[0]
    state.fail_next = [502]
    async with serve(app) as base:
        with pytest.raises(TransientError):
            await CHANNEL.send(part, ctx_for(http, base, make_target()))
        await CHANNEL.send(part, ctx_for(http, base, make_target()))
    with pytest.raises(TransientError):
        await CHANNEL.send(part, ctx_for(http, f"http://127.0.0.1:{free_port()}", make_target()))
    assert len(state.messages) == 1


async def test_a_robot_message_cannot_be_taken_back(http: aiohttp.ClientSession) -> None:
    """A WeCom robot has no recall: asking for one is refused, and the message stays."""
    app, state = wecom_robot.make_app({"robot-1"})
    part = CHANNEL.render(make_item(), make_target(), PUBLIC).parts[0]
    async with serve(app) as base:
        ctx = ctx_for(http, base, make_target())
        sent = await CHANNEL.send(part, ctx)
        with pytest.raises(PermanentError, match="cannot be recalled"):
            await CHANNEL.recall([sent.provider_message_id or ""], ctx)
    assert len(state.messages_for("robot-1")) == 1


async def test_fake_robot_files_must_be_uploaded_first(http: aiohttp.ClientSession) -> None:
    """The loudspeaker channel posts audio as a file message; the fake holds it to the docs."""
    app, state = wecom_robot.make_app({"robot-1"})
    async with serve(app) as base:
        url = f"{base}/cgi-bin/webhook"
        form = aiohttp.FormData()
        form.add_field("media", b"RIFF0000WAVEfmt ", filename="script.wav")
        async with http.post(f"{url}/upload_media?key=robot-1&type=file", data=form) as r:
            media_id = (await r.json())["media_id"]
        voice = aiohttp.FormData()
        voice.add_field("media", b"RIFF0000WAVEfmt ", filename="script.wav")
        async with http.post(f"{url}/upload_media?key=robot-1&type=voice", data=voice) as r:
            assert (await r.json())["errcode"] == 40005  # voice must be AMR
        for mid, errcode in ((media_id, 0), ("never-uploaded", 40007)):
            body = {"msgtype": "file", "file": {"media_id": mid}}
            async with http.post(f"{url}/send?key=robot-1", json=body) as r:
                assert (await r.json())["errcode"] == errcode
    assert [m.content for m in state.messages] == [media_id]
    assert state.uploads[media_id].filename == "script.wav"
