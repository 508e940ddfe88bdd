"""The loudspeaker script: what the committee reads or plays, and how it reaches them."""

from __future__ import annotations

import io
import re
import shutil
import wave
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gongkai.channels.base import (
    ItemView,
    PermanentError,
    SendContext,
    TargetView,
    TransientError,
)
from gongkai.channels.loudspeaker import (
    CHANNEL,
    ScriptUnavailable,
    duration_words,
    render_script_text,
)
from gongkai.channels.spoken import assert_speakable
from gongkai.channels.tts import (
    EspeakEngine,
    SpeechUnavailable,
    audio_for,
    engine_from_spec,
)
from gongkai.channels.village_group import CHANNEL as VILLAGE_GROUP
from gongkai.config import Settings
from gongkai.sandbox import aliyun_sms, wecom_robot
from gongkai.sandbox.server import serve
from tests.servers import free_port

PUBLIC = "https://gk.example.cn"
NNBSP = "\u202f"
MN_WORD = f"ᠠᠮᠢᠳᠤᠷᠠᠯ{NNBSP}ᠤᠨ"
MN_SENTENCE = f"ᠬᠣᠲᠠ ᠬᠥᠳᠡᠭᠡ{NNBSP}ᠶᠢᠨ {MN_WORD} ᠳᠣᠣᠷ\u180eᠠ ᠬᠡᠮᠵᠢᠶ\u180eᠡ{NNBSP}ᠶᠢ ᠨᠡᠮᠡᠨ᠎ᠡ᠃"
MN_TITLE = f"ᠬᠣᠲᠠ ᠬᠥᠳᠡᠭᠡ{NNBSP}ᠶᠢᠨ ᠠᠮᠢᠳᠤᠷᠠᠯ ᠤᠨ ᠳᠣᠣᠷ\u180eᠠ ᠬᠡᠮᠵᠢᠶ\u180eᠡ"
MN_OPENING = "ᠬᠦᠨᠳᠦᠲᠦ ᠠᠷᠠᠳ ᠣᠯᠠᠨ ᠠᠩᠬᠠᠷᠤᠭᠠᠷᠠᠢ"
MN_REPEAT = "ᠳᠠᠬᠢᠨ ᠨᠢᠭᠡ ᠤᠳᠠᠭ᠎ᠠ ᠨᠡᠪᠲᠡᠷᠡᠭᠦᠯᠦᠨ᠎ᠡ"
# The audio is made by the espeak-ng program; without it these tests have nothing to hear.
needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not on PATH: no audio can be made"
)
BODY = (
    "# 关于2026年城乡低保标准调整的通知\n\n"
    "自2026年12月1日起，城乡低保标准每人每月提高**60元**。\n\n"
    "| 类别 | 新标准 |\n|---|---|\n| 城市低保 | 900元/人/月 |\n\n"
    "详见 https://www.yjhl.gov.cn/zwgk/41.html 。"
)


def make_item(**changes: Any) -> ItemView:
    fields: dict[str, Any] = {
        "id": "ejhl-2026-0113",
        "kind": "notice",
        "title": "关于2026年城乡低保标准调整的通知",
        "summary": "城乡低保标准每人每月提高60元，12月起执行。",
        "body": BODY,
        "doc_number": "伊政办发〔2026〕41号",
        "issuer": "伊金霍洛旗人民政府办公室",
        "issued_at": date(2026, 11, 2),
        "published_at": None,
        "domain": "社会救助",
        "urgent": False,
        "catalog": {"subject": "伊金霍洛旗民政局", "hotline": "12345"},
        "translations": {"mn": {"title": MN_TITLE, "summary": MN_SENTENCE, "body": MN_SENTENCE}},
    }
    fields.update(changes)
    return ItemView(**fields)


def make_target(languages: tuple[str, ...] = ("mn", "zh"), **changes: Any) -> TargetView:
    fields: dict[str, Any] = {
        "id": 3,
        "channel": "loudspeaker",
        "region_code": "150627100201",
        "region_name": "巴图塔嘎查",
        "region_names": {"mn": "ᠪᠠᠭᠠᠲᠤᠷ ᠲᠠᠭ᠎ᠠ"},
        "languages": languages,
        "address": {"robot_key": "committee-1"},
    }
    fields.update(changes)
    return TargetView(**fields)


def ctx_for(
    http: aiohttp.ClientSession, target: TargetView, data_dir: Path, **urls: str
) -> SendContext:
    return SendContext(
        http=http,
        settings=Settings(data_dir=data_dir, **urls),
        redis=None,
        target=target,
        item_id="ejhl-2026-0113",
        delivery_id=1,
        part_index=0,
    )


def parts_of(kind: str, rendered_parts: list[dict[str, Any]], lang: str | None = None) -> list:
    return [p for p in rendered_parts if p["kind"] == kind and lang in (None, p.get("lang"))]


# --- render ------------------------------------------------------------------------------------


def test_chinese_script_opens_reads_twice_and_says_whom_to_ask() -> None:
    rendered = CHANNEL.render(make_item(), make_target(), PUBLIC)
    (audio,) = parts_of("audio", rendered.parts, "zh")
    script = audio["text"]
    lines = script.split("\n")
    assert lines[0] == "各位村民请注意！现在播送一则通知。"
    assert lines[1] == "关于二〇二六年城乡低保标准调整的通知。"
    reading = [
        "关于二〇二六年城乡低保标准调整的通知。",
        "自二〇二六年十二月一日起。",  # cut at the comma: 29 characters is too long to hear
        "城乡低保标准每人每月提高六十元。",
        "城市低保，九百元每人每月。",
        "详情请看村务公开栏。",
    ]
    first = lines.index(reading[0])
    repeat = lines.index("下面再播送一遍。")
    assert lines[first : first + 5] == reading
    assert lines[repeat + 2 : repeat + 7] == reading  # a blank line, then the same reading
    assert lines[-3:] == [
        "如有疑问，请咨询伊金霍洛旗民政局。",
        "咨询电话：幺二三四五。",
        "播送完毕，谢谢大家。",
    ]
    assert_speakable(script)


def test_the_markdown_message_carries_the_script_and_its_reading_time() -> None:
    rendered = CHANNEL.render(make_item(), make_target(("zh",)), PUBLIC)
    (message,) = parts_of("markdown", rendered.parts)
    (audio,) = parts_of("audio", rendered.parts)
    assert message["content"].startswith("**广播稿**　巴图塔嘎查\n> 关于2026年")
    assert f"约需{duration_words(rendered.meta['read_seconds']['zh'])}" in message["content"]
    assert message["content"].endswith(audio["text"])
    assert rendered.parts.index(message) < rendered.parts.index(audio)  # script, then audio


def test_read_time_is_sensible() -> None:
    rendered = CHANNEL.render(make_item(), make_target(("zh",)), PUBLIC)
    script = parts_of("audio", rendered.parts)[0]["text"]
    spoken_chars = len(re.findall(r"[\u4e00-\u9fff〇]", script))
    seconds = rendered.meta["read_seconds"]["zh"]
    assert spoken_chars / 5 <= seconds <= spoken_chars / 3  # about four characters a second
    assert 30 <= seconds <= 180


@pytest.mark.parametrize(
    ("seconds", "words"), [(3, "五秒"), (44, "四十五秒"), (90, "一分三十秒"), (120, "两分钟")]
)
def test_duration_words(seconds: int, words: str) -> None:
    assert duration_words(seconds) == words


def test_mongolian_script_comes_first_with_the_same_shape() -> None:
    rendered = CHANNEL.render(make_item(), make_target(("mn", "zh")), PUBLIC)
    assert [p["lang"] for p in rendered.parts] == ["mn", "zh", "zh"]
    mn = rendered.parts[0]["content"]
    assert mn.startswith("**ᠨᠡᠪᠲᠡᠷᠡᠭᠦᠯᠬᠦ ᠪᠢᠴᠢᠭ**　ᠪᠠᠭᠠᠲᠤᠷ ᠲᠠᠭ᠎ᠠ")
    script = mn.split("\n\n", 1)[1]
    assert script.startswith(MN_OPENING)
    assert script.count(MN_SENTENCE) == 2 and script.count(f"{MN_TITLE}᠃") == 2
    assert script.index(MN_REPEAT) > script.index(MN_SENTENCE)
    assert MN_WORD in script  # the suffix joiner survived rendering
    assert "ᠯᠠᠪᠯᠠᠬᠤ ᠤᠲᠠᠰᠤ᠄ 12345᠃" in script
    assert not re.search(r"[\u4e00-\u9fff]", script)  # no Chinese words inside it
    assert "audio unavailable: mn" in rendered.notes
    assert rendered.meta["read_seconds"]["mn"] > 0


def test_missing_translation_sends_chinese_and_says_so() -> None:
    rendered = CHANNEL.render(make_item(translations={}), make_target(("mn", "zh")), PUBLIC)
    assert {p["lang"] for p in rendered.parts} == {"zh"}
    assert "translation missing: mn" in rendered.notes
    with pytest.raises(ScriptUnavailable):
        render_script_text(make_item(translations={}), "mn")


def test_a_language_without_loudspeaker_templates_is_noted_not_garbled() -> None:
    item = make_item(translations={"ug": {"title": "ئۇقتۇرۇش", "body": "مەزمۇن"}})
    rendered = CHANNEL.render(item, make_target(("ug", "zh")), PUBLIC)
    assert {p["lang"] for p in rendered.parts} == {"zh"}
    assert "no loudspeaker templates for ug" in rendered.notes


def test_a_long_body_is_summarised_and_listeners_are_pointed_to_the_board() -> None:
    long_body = "自2026年12月1日起，城乡低保标准每人每月提高60元，农村牧区同步调整。\n\n" * 40
    script = render_script_text(make_item(body=long_body))
    assert "城乡低保标准每人每月提高六十元，十二月起执行。" in script
    assert script.count("详细内容请到村委会查询，或看村务公开栏。") == 2
    assert "农村牧区同步调整" not in script
    assert_speakable(script)


def test_the_letters_addressees_are_not_read_to_villagers() -> None:
    body = "各苏木镇人民政府、旗直各有关部门：\n\n各村要注意以下事项：\n\n按时领取。"
    script = render_script_text(make_item(body=body))
    assert "苏木镇人民政府" not in script
    assert "各村要注意以下事项：\n按时领取。" in script


def test_urgent_items_say_so() -> None:
    assert render_script_text(make_item(urgent=True)).startswith(
        "各位村民请注意！现在播送一则紧急通知。"
    )


def test_every_markdown_part_fits_the_robot() -> None:
    run_on = MN_SENTENCE.replace("᠃", "") * 80  # one enormous Mongolian sentence
    item = make_item(translations={"mn": {"title": MN_TITLE, "body": run_on}})
    rendered = CHANNEL.render(item, make_target(("mn",)), PUBLIC)
    mn = parts_of("markdown", rendered.parts, "mn")
    assert len(mn) > 1
    # the committee's WeCom robot takes markdown of at most 4096 bytes (providers.md)
    assert all(len(p["content"].encode()) <= 4096 for p in mn)
    assert all(not p["content"].endswith(NNBSP) for p in mn)


def test_rate_limit_is_shared_with_the_village_group_robot() -> None:
    target = make_target()
    village = VILLAGE_GROUP.rate_limits(target, {})
    for part in CHANNEL.render(make_item(), target, PUBLIC).parts:
        assert CHANNEL.rate_limits(target, part) == village
    assert village[0].rate == "20/minute" and village[0].key.startswith("wecom:")


# fmt: off
SCRIPT_TEXT = st.lists(
    st.sampled_from(
        ["# 标题\n", "**", "2026年12月1日", "30%", "0477-8612345", "12345", "https://a.cn/x",
         "[原文](http://b.cn)", "| 项目 | 金额 |\n|---|---|\n| 补贴 | 1,200元 |\n", "第3条",
         "，", "。", "\n\n", "低保", "村民", "- ", "> ", "`", "3-5天", "8:30"]
    ),
    max_size=30,
).map("".join)
# fmt: on


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=SCRIPT_TEXT, body=SCRIPT_TEXT, summary=SCRIPT_TEXT)
def test_any_chinese_script_is_speakable(title: str, body: str, summary: str) -> None:
    script = render_script_text(make_item(title=title or "通知", body=body, summary=summary))
    assert_speakable(script)


# --- send --------------------------------------------------------------------------------------


@needs_espeak
async def test_script_and_audio_reach_the_committee(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    app, state = wecom_robot.make_app({"committee-1"})
    target = make_target(("mn", "zh"))
    rendered = CHANNEL.render(make_item(), target, PUBLIC)
    async with serve(app) as base:
        for part in rendered.parts:
            await CHANNEL.send(part, ctx_for(http, target, tmp_path, wecom_api_base=base))
    markdown = parts_of("markdown", rendered.parts)
    assert [m.msgtype for m in state.messages] == ["markdown", "markdown", "file"]
    assert [m.content for m in state.messages[:2]] == [p["content"] for p in markdown]
    assert NNBSP in state.messages[0].content
    ((media_id, upload),) = state.uploads.items()
    assert upload.type == "file" and upload.filename == "ejhl-2026-0113-zh.wav"
    assert state.messages[2].body == {"msgtype": "file", "file": {"media_id": media_id}}
    with wave.open(io.BytesIO(upload.data)) as wav:
        assert wav.getnframes() / wav.getframerate() > 5  # a real reading, not a click
    assert state.rejected == []


@needs_espeak
async def test_audio_is_made_once_per_item_and_language(tmp_path: Path) -> None:
    engine = EspeakEngine()
    first = await audio_for("ejhl-2026-0113", "zh", "各位村民请注意。", tmp_path, engine)
    made, audio = first.stat().st_mtime_ns, first.read_bytes()
    again = await audio_for("ejhl-2026-0113", "zh", "各位村民请注意。", tmp_path, engine)
    assert again == first == tmp_path / "ejhl-2026-0113.zh.wav"
    assert again.stat().st_mtime_ns == made  # not synthesised twice
    corrected = await audio_for(
        "ejhl-2026-0113", "zh", "各位村民请注意，更正如下。", tmp_path, engine
    )
    assert corrected == first and corrected.read_bytes() != audio  # a corrected item is re-read
    with wave.open(str(corrected)) as wav, wave.open(io.BytesIO(audio)) as old:
        assert wav.getnframes() > old.getnframes()


async def test_espeak_has_no_mongolian_voice() -> None:
    engine = engine_from_spec("espeak")
    assert engine.supports("zh") and not engine.supports("mn")
    with pytest.raises(SpeechUnavailable):
        await engine.synthesize(MN_SENTENCE, "mn")


def test_engine_spec_names_a_class_or_is_refused() -> None:
    assert isinstance(engine_from_spec("gongkai.channels.tts:EspeakEngine"), EspeakEngine)
    with pytest.raises(ValueError):
        engine_from_spec("no-colon-here")


@needs_espeak
async def test_invalid_robot_key_is_permanent(http: aiohttp.ClientSession, tmp_path: Path) -> None:
    app, state = wecom_robot.make_app({"someone-else"})
    target = make_target(("zh",))
    markdown, audio = CHANNEL.render(make_item(), target, PUBLIC).parts
    # a short reading keeps the refused upload small (the server answers before reading it)
    audio = {**audio, "text": "各位村民请注意。"}
    async with serve(app) as base:
        for part in (markdown, audio):  # the script message and the audio upload alike
            with pytest.raises(PermanentError) as caught:
                await CHANNEL.send(part, ctx_for(http, target, tmp_path, wecom_api_base=base))
            assert caught.value.deactivate_target
    assert [code for code, _ in state.rejected] == [93000, 93000]
    assert state.uploads == {} and state.messages == []


@needs_espeak
async def test_robot_rate_limit_is_transient(http: aiohttp.ClientSession, tmp_path: Path) -> None:
    app, state = wecom_robot.make_app({"committee-1"}, rate_per_minute=1)
    target = make_target(("zh",))
    markdown, audio = CHANNEL.render(make_item(), target, PUBLIC).parts
    async with serve(app) as base:
        ctx = ctx_for(http, target, tmp_path, wecom_api_base=base)
        await CHANNEL.send(markdown, ctx)
        with pytest.raises(TransientError) as caught:
            await CHANNEL.send(audio, ctx)
    assert caught.value.retry_after == 60 and state.rate_limited == 1


async def test_server_errors_are_transient(http: aiohttp.ClientSession, tmp_path: Path) -> None:
    app, state = wecom_robot.make_app({"committee-1"})
    state.fail_next = [502]
    target = make_target(("zh",))
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    async with serve(app) as base:
        with pytest.raises(TransientError):
            await CHANNEL.send(part, ctx_for(http, target, tmp_path, wecom_api_base=base))
    assert state.messages == []


async def test_unreachable_robot_is_transient(http: aiohttp.ClientSession, tmp_path: Path) -> None:
    target = make_target(("zh",))
    part = CHANNEL.render(make_item(), target, PUBLIC).parts[0]
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(TransientError):
        await CHANNEL.send(part, ctx_for(http, target, tmp_path, wecom_api_base=dead))


# --- a committee without a robot: SMS ----------------------------------------------------------


async def test_a_committee_without_a_robot_gets_an_sms(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    app, state = aliyun_sms.make_app(variable_max_len=60)
    account = {
        "name": "county-sms",
        "provider": "aliyun",
        "access_key_id": "testid",
        "access_key_secret": "testsecret",
        "sign_name": "伊金霍洛旗政务公开",
        "template_code": "SMS_000001",
        "template_text": "${region}政务公开：${title}，详情见${link}",
        "variable_max_len": 60,
    }
    target = make_target(
        ("zh",), address={"phones": ["13800000000"]}, account=account, account_name="county-sms"
    )
    rendered = CHANNEL.render(make_item(), target, PUBLIC)
    (part,) = rendered.parts
    assert part["kind"] == "sms_link" and part["url"] == f"{PUBLIC}/p/ejhl-2026-0113/script"
    assert part["phones"] == ["13800000000"]  # top level, where the planner seals numbers
    async with serve(app) as base:
        ctx = ctx_for(http, target, tmp_path, aliyun_sms_endpoint=base)
        await CHANNEL.send(part, ctx)
    (text,) = state.texts_to("13800000000")
    assert "巴图塔嘎查政务公开" in text


def test_a_committee_sms_the_provider_would_refuse_is_refused_at_planning() -> None:
    account = {
        "name": "county-sms",
        "provider": "aliyun",
        "sign_name": "伊金霍洛旗政务公开",
        "template_code": "SMS_000001",
        "template_text": "您好，${title}已发布，详情：${link}",
    }
    target = make_target(
        ("zh",), address={"phones": ["13800000000"]}, account=account, account_name="county-sms"
    )
    long_public = "https://gongkai.ejinhoroqi.gov.cn/zhengwu"
    rendered = CHANNEL.render(make_item(), target, long_public)
    assert rendered.refused is not None
    assert rendered.refused.startswith("variable link is 50 characters, over the aliyun limit")
    assert CHANNEL.render(make_item(), target, PUBLIC).refused is None
