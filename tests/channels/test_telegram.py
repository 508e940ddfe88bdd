"""Telegram through aiogram against a fake Bot API server that is as strict as the real one."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from gongkai.channels.base import ItemView, PermanentError, SendContext, TargetView, TransientError
from gongkai.channels.telegram import CHANNEL, close_bots
from gongkai.config import Settings
from gongkai.sandbox import telegram_api
from gongkai.sandbox.server import ManualClock, serve
from tests.channels.test_village_group import (
    MN_TITLE,
    MN_WORD,
    NNBSP,
    PUBLIC,
    ZH_TITLE,
    long_item,
    make_item,
)
from tests.servers import free_port

TOKEN = "123456:TEST-token"
GROUP = -1001234567890
PRIVATE = 55501


def make_target(chat_id: int = GROUP, languages: tuple[str, ...] = ("mn", "zh")) -> TargetView:
    return TargetView(
        id=9,
        channel="telegram",
        region_code="150627100201",
        region_name="巴图塔嘎查",
        region_names={},
        languages=languages,
        address={"chat_id": chat_id},
        account={"name": "ordos", "token": TOKEN, "webhook_secret": "hook-secret"},
        account_name="ordos",
    )


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


@pytest.fixture(autouse=True)
async def _close_bots() -> AsyncIterator[None]:
    yield
    await close_bots()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[tuple[str, telegram_api.TelegramState]]:
    app, state = telegram_api.make_app([TOKEN], clock=clock)
    async with serve(app) as base:
        yield base, state


def shown(part: dict[str, Any]) -> str:
    """The text as Telegram shows it (the fake's own parser, not the renderer's)."""
    return telegram_api.parse_html(part["text"])


def test_short_bilingual_item_is_one_html_message_mongolian_first() -> None:
    rendered = CHANNEL.render(make_item(), make_target(), PUBLIC)
    assert len(rendered.parts) == 1
    part = rendered.parts[0]
    assert part["parse_mode"] == "HTML" and part["disable_web_page_preview"] is False
    assert f"<b>{ZH_TITLE}</b>" in part["text"]
    text = shown(part)
    assert text.index(MN_TITLE) < text.index(ZH_TITLE)
    assert part["text"].endswith(f'<a href="{PUBLIC}/p/ejhl-2026-0113">查看全文</a>')
    assert f'href="{PUBLIC}/p/ejhl-2026-0113?lang=mn"' in part["text"]
    assert rendered.meta == {"chars": [telegram_api.utf16_len(text)], "parts": 1}


def test_long_item_is_cut_into_numbered_parts_within_4096_characters() -> None:
    item = long_item()
    rendered = CHANNEL.render(item, make_target(), PUBLIC)
    total = len(rendered.parts)
    assert total >= 2
    texts = [shown(p) for p in rendered.parts]
    for i, (part, text) in enumerate(zip(rendered.parts, texts, strict=True), start=1):
        assert 0 < telegram_api.utf16_len(text) <= 4096
        assert text.startswith(f"（{i}/{total}）\n")
        assert part["text"].endswith(f'<a href="{PUBLIC}/p/{item.id}">查看全文</a>')
        inner = text.split("\n", 1)[1].rsplit("\n\n", 1)[0]
        assert not inner.startswith(NNBSP) and not inner.endswith(NNBSP)
    assert MN_TITLE in texts[0]
    wanted = item.text("mn", "body").count(MN_WORD) + item.text("mn", "summary").count(MN_WORD)
    assert sum(t.count(MN_WORD) for t in texts) == wanted
    first_zh = next(i for i, t in enumerate(texts) if ZH_TITLE in t)
    assert all(MN_WORD not in t for t in texts[first_zh + 1 :])


async def test_awkward_markdown_renders_to_html_telegram_accepts(
    http: aiohttp.ClientSession, fake: tuple[str, telegram_api.TelegramState], clock: ManualClock
) -> None:
    body = (
        "# 标题 <script>alert(1)</script>\n\n"
        "a < b && c > d \"quoted\" 'single' &nbsp; &#169; **粗*斜*体** ~~删~~ `x<y>` "
        '[链接](https://mz.example.cn/?a=1&b="2") [相对](/p/1) ![图](https://i.example.cn/1.png)'
        "<br>换行 <span style='x'>span</span> <div>div</div>\n\n"
        "| 类别 | 标准 |\n| --- | --- |\n| 城市<b> | 860&元 |\n\n"
        "> 引用 **一**\n>\n> 引用二\n\n- 一\n- 二\n  1. 三\n\n"
        "```python\nif a < b:\n\n    pass\n```\n\n"
        "<table><tr><td>html 块</td></tr></table>\n\n---"
    )
    item = make_item(body=body, summary="第一段 <x>\n\n第二段", translations={})
    rendered = CHANNEL.render(item, make_target(), PUBLIC)
    base, state = fake
    for part in rendered.parts:
        await CHANNEL.send(part, ctx_for(http, base, make_target()))
        clock.advance(3)
    text = state.messages[0].text
    # Markdown's own rules: entities decode, raw HTML tags are dropped, their text stays
    assert "a < b && c > d \"quoted\" 'single' \xa0 ©" in text
    assert "标题 alert(1)" in text and "类别: 城市 · 标准: 860&元" in text
    assert "if a < b:\n\n    pass" in text and "第一段 <x>\n第二段" in text
    raw = state.messages[0].raw
    assert '<a href="https://mz.example.cn/?a=1&amp;b=%222%22">链接</a>' in raw
    assert (
        "<b>粗<i>斜</i>体</b>" in raw and "<blockquote>引用 <b>一</b>\n引用二</blockquote>" in raw
    )


async def test_the_fake_refuses_html_telegram_would_refuse(
    http: aiohttp.ClientSession, fake: tuple[str, telegram_api.TelegramState]
) -> None:
    base, state = fake
    for bad in ("<div>x</div>", "a < b", "<b>open", "<b><i>x</b></i>", "&nbsp;"):
        part = {"text": bad, "parse_mode": "HTML", "disable_web_page_preview": False}
        with pytest.raises(PermanentError) as err:
            await CHANNEL.send(part, ctx_for(http, base, make_target()))
        assert "can't parse entities" in str(err.value) and not err.value.deactivate_target
    assert state.messages == []


async def test_send_returns_chat_and_message_id(
    http: aiohttp.ClientSession, fake: tuple[str, telegram_api.TelegramState], clock: ManualClock
) -> None:
    base, state = fake
    rendered = CHANNEL.render(make_item(), make_target(), PUBLIC)
    first = await CHANNEL.send(rendered.parts[0], ctx_for(http, base, make_target()))
    clock.advance(1)
    second = await CHANNEL.send(rendered.parts[0], ctx_for(http, base, make_target()))
    assert first.provider_message_id == f"{GROUP}:1" and second.provider_message_id == f"{GROUP}:2"
    assert state.visible(GROUP)[0].text == shown(rendered.parts[0])
    sent = [p for t, m, p in state.requests if m == "sendMessage"]
    assert sent[0]["parse_mode"] == "HTML" and '"is_disabled":false' in sent[0][
        "link_preview_options"
    ].replace(" ", "")


async def test_flood_limit_becomes_transient_with_retry_after(
    http: aiohttp.ClientSession, fake: tuple[str, telegram_api.TelegramState], clock: ManualClock
) -> None:
    base, state = fake
    part = CHANNEL.render(make_item(), make_target(PRIVATE), PUBLIC).parts[0]
    await CHANNEL.send(part, ctx_for(http, base, make_target(PRIVATE)))
    with pytest.raises(TransientError) as err:
        await CHANNEL.send(part, ctx_for(http, base, make_target(PRIVATE)))
    assert err.value.retry_after == 1
    # a group: 20 a minute even when spaced a second apart
    for _ in range(20):
        clock.advance(1)
        await CHANNEL.send(part, ctx_for(http, base, make_target(GROUP)))
    clock.advance(1)
    with pytest.raises(TransientError) as err:
        await CHANNEL.send(part, ctx_for(http, base, make_target(GROUP)))
    assert err.value.retry_after == 40  # the first of the 20 left the window 40 s from now
    assert state.flood_rejections == 2 and len(state.visible(GROUP)) == 20


async def test_kicked_bot_deactivates_the_target(
    http: aiohttp.ClientSession, fake: tuple[str, telegram_api.TelegramState]
) -> None:
    base, state = fake
    state.kicked.add(GROUP)
    part = CHANNEL.render(make_item(), make_target(), PUBLIC).parts[0]
    with pytest.raises(PermanentError) as err:
        await CHANNEL.send(part, ctx_for(http, base, make_target()))
    assert err.value.deactivate_target and "kicked" in str(err.value)


async def test_recall_deletes_every_part(
    http: aiohttp.ClientSession, fake: tuple[str, telegram_api.TelegramState], clock: ManualClock
) -> None:
    base, state = fake
    ctx = ctx_for(http, base, make_target())
    ids = []
    for part in CHANNEL.render(long_item(), make_target(), PUBLIC).parts[:2]:
        ids.append((await CHANNEL.send(part, ctx)).provider_message_id)
        clock.advance(3)
    other = await CHANNEL.send({"text": "别的通知", "parse_mode": "HTML"}, ctx)
    assert await CHANNEL.recall(ids, ctx) == "deleted 2 Telegram messages"
    assert [m.message_id for m in state.visible(GROUP)] == [3]
    assert other.provider_message_id == f"{GROUP}:3"
    assert "already gone" in await CHANNEL.recall(ids, ctx)  # a retried recall is harmless


async def test_messages_older_than_48_hours_cannot_be_recalled(
    http: aiohttp.ClientSession, fake: tuple[str, telegram_api.TelegramState], clock: ManualClock
) -> None:
    base, state = fake
    ctx = ctx_for(http, base, make_target())
    sent = await CHANNEL.send({"text": "旧通知", "parse_mode": "HTML"}, ctx)
    clock.advance(49 * 3600)
    with pytest.raises(PermanentError):
        await CHANNEL.recall([sent.provider_message_id or ""], ctx)
    assert len(state.visible(GROUP)) == 1


async def test_bad_token_is_permanent_but_keeps_the_target(
    http: aiohttp.ClientSession, fake: tuple[str, telegram_api.TelegramState]
) -> None:
    base, _ = fake
    target = make_target()
    target = dataclasses.replace(target, account={"token": "999:revoked"})
    with pytest.raises(PermanentError) as err:
        await CHANNEL.send({"text": "x", "parse_mode": "HTML"}, ctx_for(http, base, target))
    assert not err.value.deactivate_target


async def test_server_and_network_errors_are_transient(
    http: aiohttp.ClientSession, fake: tuple[str, telegram_api.TelegramState]
) -> None:
    base, state = fake
    state.fail_next = [502]
    with pytest.raises(TransientError):
        await CHANNEL.send({"text": "x", "parse_mode": "HTML"}, ctx_for(http, base, make_target()))
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(TransientError):
        await CHANNEL.send({"text": "x"}, ctx_for(http, closed, make_target()))
    assert state.messages == []


def test_rate_limits_follow_telegrams_flood_rules() -> None:
    bot = hashlib.sha1(TOKEN.encode()).hexdigest()[:16]
    private = CHANNEL.rate_limits(make_target(PRIVATE), {})
    group = CHANNEL.rate_limits(make_target(GROUP), {})
    assert [(x.rate, x.key) for x in private] == [
        ("1/second", f"tg:chat:{bot}:{PRIVATE}"),
        ("30/second", f"tg:bot:{bot}"),
    ]
    assert ("20/minute", f"tg:chat:{bot}:{GROUP}") in [(x.rate, x.key) for x in group]
    assert ("30/second", f"tg:bot:{bot}") in [(x.rate, x.key) for x in group]


def test_missing_translation_is_noted() -> None:
    rendered = CHANNEL.render(make_item(translations={}), make_target(), PUBLIC)
    assert rendered.notes == ["translation missing: mn"]
    assert "?lang=mn" not in rendered.parts[0]["text"]


def test_urgent_marker_leads_the_message() -> None:
    item = ItemView(**{**make_item().__dict__, "urgent": True})
    rendered = CHANNEL.render(item, make_target(languages=("zh",)), PUBLIC)
    assert shown(rendered.parts[0]).startswith("【紧急】")


async def test_fake_serves_webhooks_and_long_polling_to_aiogram(
    fake: tuple[str, telegram_api.TelegramState],
) -> None:
    """The inbound bot will be built on these; the fake answers them as Telegram does."""
    from aiogram.exceptions import TelegramConflictError

    from gongkai.channels.telegram import get_bot

    base, state = fake
    bot = get_bot(base, TOKEN)
    assert (await bot.get_me()).id == 123456
    await bot.set_webhook("https://gk.example.cn/telegram/ordos", secret_token="hook-secret")
    assert state.webhooks[TOKEN]["secret_token"] == "hook-secret"
    with pytest.raises(TelegramConflictError):
        await bot.get_updates()
    await bot.delete_webhook()
    chat = {"id": PRIVATE, "type": "private", "first_name": "巴特尔"}
    first = state.push_update(
        TOKEN, {"message": {"message_id": 1, "date": 0, "chat": chat, "text": "怎么申请低保？"}}
    )
    updates = await bot.get_updates(offset=0, timeout=5)
    assert [(u.update_id, u.message.text) for u in updates if u.message] == [
        (first, "怎么申请低保？")
    ]
    assert await bot.get_updates(offset=first + 1, timeout=0) == []
