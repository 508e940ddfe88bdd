"""The official-account channel against the fake WeChat API: render limits, publish, review
verdicts, mass-send quota, template pushes, recall."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest
import xmltodict
from redis.asyncio import Redis

from gongkai.channels.base import PermanentError, TransientError
from gongkai.channels.wechat_mp import CHANNEL, render_mass_send, render_template_push
from gongkai.channels.wechat_verdicts import outcome_from_event, poll_publish
from gongkai.sandbox.wechat_api import FakeWechatState
from tests.channels.wechat_cases import (
    APP_ID,
    ITEM,
    PUBLIC,
    TARGET,
    api,
    context,
    publish,
    wechat_server,
)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[str, FakeWechatState]]:
    async with wechat_server() as server:
        yield server


# --- render ---------------------------------------------------------------------------------


def test_render_keeps_wechat_limits_and_says_what_it_cut() -> None:
    item = replace(
        ITEM,
        title="关于" + "城乡最低生活保障" * 6 + "的通知",
        summary="摘要" * 100,
        issuer="伊金霍洛旗人民政府办公室民政事务与社会救助服务中心",
        body=(
            '第一段<script>alert("x")</script>\n\n'
            "[点我](javascript:alert(1)) <img src=x onerror=alert(1)>"
        ),
    )
    rendered = CHANNEL.render(item, TARGET, PUBLIC)
    article = rendered.parts[0]["article"]
    assert len(article["title"]) == 32 and article["title"].endswith("…")
    assert len(article["author"]) <= 16
    assert len(article["digest"]) == 128
    assert "<script" not in article["content"] and 'href="javascript' not in article["content"]
    assert "<img" not in article["content"] and "onerror=" not in article["content"].replace(
        "&lt;img src=x onerror=alert(1)&gt;", ""
    )
    assert "&lt;script&gt;" in article["content"]  # shown as text, not run
    assert article["content_source_url"] == f"{PUBLIC}/p/{ITEM.id}"
    assert article["need_open_comment"] == 0
    assert {"title cut to 32 characters", "digest cut to 128 characters"} <= set(rendered.notes)
    assert any("author shortened" in n for n in rendered.notes)


def test_long_body_is_cut_at_a_paragraph_with_a_read_more_link() -> None:
    paragraphs = [f"第{i}段。" + "政策内容说明" * 160 for i in range(40)]
    rendered = CHANNEL.render(replace(ITEM, body="\n\n".join(paragraphs)), TARGET, PUBLIC)
    content = rendered.parts[0]["article"]["content"]
    assert len(content) < 20_000 and len(content.encode()) < 1_000_000
    assert f'<a href="{PUBLIC}/p/{ITEM.id}">阅读全文</a>' in content
    kept = [i for i in range(40) if f"第{i}段。" in content]
    assert kept == list(range(len(kept))) and 0 < len(kept) < 40  # whole paragraphs, in order
    assert rendered.meta["truncated"] is True
    assert any("阅读全文" in n for n in rendered.notes)


def test_mongolian_target_gets_mongolian_first_and_missing_languages_are_noted() -> None:
    target = replace(TARGET, languages=("mn", "zh", "ug"))
    rendered = CHANNEL.render(ITEM, target, PUBLIC)
    content = rendered.parts[0]["article"]["content"]
    mn_at = content.index(ITEM.translations["mn"]["title"])
    assert 'lang="mn-Mong"' in content and "vertical-lr" in content
    assert mn_at < content.index("为进一步保障困难群众基本生活")
    assert rendered.parts[0]["article"]["digest"].startswith(ITEM.translations["mn"]["summary"])
    assert rendered.notes == ["translation missing: ug"]

    no_mn = CHANNEL.render(replace(ITEM, translations={}), target, PUBLIC)
    assert "translation missing: mn" in no_mn.notes
    assert 'lang="mn-Mong"' not in no_mn.parts[0]["article"]["content"]


def test_rate_limits_declare_the_daily_caps() -> None:
    part = CHANNEL.render(ITEM, TARGET, PUBLIC).parts[0]
    limits = {(r.rate, r.key) for r in CHANNEL.rate_limits(TARGET, part)}
    assert ("100/day", f"wechat:submit:{APP_ID}") in limits
    assert ("1000/day", f"wechat:draft:{APP_ID}") in limits


# --- publishing -----------------------------------------------------------------------------


async def test_article_is_drafted_submitted_and_confirmed_by_polling(
    fake: tuple[str, FakeWechatState], http: aiohttp.ClientSession, redis: Redis
) -> None:
    base, state = fake
    ctx = context(base, http, redis)
    publish_id, part = await publish(ITEM, ctx)

    (draft,) = state.calls_to("cgi-bin/draft/add")
    sent_article = draft["articles"][0]
    assert sent_article["title"] == part["article"]["title"] == ITEM.title
    assert state.materials[sent_article["thumb_media_id"]]["content"].startswith(b"\x89PNG")
    assert state.calls_to("cgi-bin/freepublish/submit") == [
        {"media_id": state.jobs[publish_id].media_id}
    ]
    assert not state.drafts  # a submitted draft leaves the draft box

    client = api(base, http, redis)
    assert (await poll_publish(client, publish_id)).status == "pending"
    assert await CHANNEL.poll(f"publish:{publish_id}", ctx) is not None  # second poll: settled
    outcome = await poll_publish(client, publish_id)
    assert outcome.status == "delivered"
    assert outcome.article_id == state.jobs[publish_id].article_id
    assert outcome.article_url and outcome.article_url.startswith("https://mp.weixin.qq.com/s/")

    # A second item reuses the cover already in the account's library.
    await publish(replace(ITEM, id="ejhl-2026-0114"), context(base, http, redis))
    assert len(state.calls_to("cgi-bin/material/add_material")) == 1


async def test_publish_event_from_the_callback_settles_the_delivery(
    fake: tuple[str, FakeWechatState], http: aiohttp.ClientSession, redis: Redis
) -> None:
    base, state = fake
    publish_id, _ = await publish(ITEM, context(base, http, redis))
    fields = xmltodict.parse(state.publish_event_xml(publish_id))["xml"]
    outcome = outcome_from_event(fields)
    assert outcome.status == "delivered"
    assert outcome.article_id == state.jobs[publish_id].article_id
    assert outcome.article_url == state.jobs[publish_id].article_url


async def test_rejection_in_review_fails_the_delivery_with_the_reason(
    fake: tuple[str, FakeWechatState], http: aiohttp.ClientSession, redis: Redis
) -> None:
    base, state = fake
    state.publish_outcome = 4
    ctx = context(base, http, redis)
    publish_id, _ = await publish(ITEM, ctx)
    assert await CHANNEL.poll(f"publish:{publish_id}", ctx) is None  # still in review
    with pytest.raises(PermanentError, match="rejected in platform review"):
        await CHANNEL.poll(f"publish:{publish_id}", ctx)
    event = outcome_from_event(xmltodict.parse(state.publish_event_xml(publish_id))["xml"])
    assert event.status == "failed" and "rejected" in (event.reason or "")


async def test_a_failed_submit_is_retried_with_the_same_draft(
    fake: tuple[str, FakeWechatState], http: aiohttp.ClientSession, redis: Redis
) -> None:
    base, state = fake
    ctx = context(base, http, redis)
    part = CHANNEL.render(ITEM, TARGET, PUBLIC).parts[0]
    state.fail_next("cgi-bin/freepublish/submit", -1)  # system busy
    with pytest.raises(TransientError):
        await CHANNEL.send(part, ctx)
    sent = await CHANNEL.send(part, ctx)
    assert sent.pending
    assert len(state.calls_to("cgi-bin/draft/add")) == 1  # no second draft piles up
    assert len(state.jobs) == 1


async def test_a_cover_deleted_from_the_library_is_uploaded_again(
    fake: tuple[str, FakeWechatState], http: aiohttp.ClientSession, redis: Redis
) -> None:
    base, state = fake
    await publish(ITEM, context(base, http, redis))
    state.materials.clear()  # someone tidied the material library in the console
    await publish(replace(ITEM, id="ejhl-2026-0115"), context(base, http, redis))
    assert len(state.calls_to("cgi-bin/material/add_material")) == 2
    assert len(state.jobs) == 2


async def test_a_script_that_reached_wechat_would_be_refused(
    fake: tuple[str, FakeWechatState], http: aiohttp.ClientSession, redis: Redis
) -> None:
    """The fake refuses what our renderer must never send: guards the guard."""
    base, _ = fake
    part = CHANNEL.render(ITEM, TARGET, PUBLIC).parts[0]
    part["article"]["content"] += '<p onclick="steal()">x</p>'
    with pytest.raises(PermanentError, match="45166"):
        await CHANNEL.send(part, context(base, http, redis))


# --- mass send and template push ----------------------------------------------------------


async def test_mass_send_quota_is_refused_up_front_and_retries_are_free(
    fake: tuple[str, FakeWechatState], http: aiohttp.ClientSession, redis: Redis
) -> None:
    base, state = fake
    state.mass_quota = 5  # WeChat would allow more: our own count must stop us first
    part = render_mass_send(ITEM, TARGET, PUBLIC, tag_id=2).parts[0]
    first = await CHANNEL.send(part, context(base, http, redis))
    assert first.provider_message_id and first.provider_message_id.startswith("mass:")
    (body,) = state.calls_to("cgi-bin/message/mass/sendall")
    assert body["filter"] == {"is_to_all": False, "tag_id": 2}
    assert body["clientmsgid"] == part["clientmsgid"] and body["msgtype"] == "mpnews"

    # The same send again (a retry after a lost answer) is deduplicated, not refused.
    again = await CHANNEL.send(part, context(base, http, redis))
    assert again.provider_message_id == first.provider_message_id
    assert not state.drafts  # the retry's own draft is not left behind

    other = render_mass_send(replace(ITEM, id="ejhl-2026-0116"), TARGET, PUBLIC).parts[0]
    with pytest.raises(PermanentError, match="quota used up for today"):
        await CHANNEL.send(other, context(base, http, redis))
    assert len([m for m in state.mass_sends.values() if not m["deleted"]]) == 1
    assert len(state.calls_to("cgi-bin/message/mass/sendall")) == 2  # never a third


async def test_provider_quota_refusal_is_permanent(
    fake: tuple[str, FakeWechatState], http: aiohttp.ClientSession, redis: Redis
) -> None:
    base, state = fake
    state.mass_quota = 0
    target = replace(TARGET, account={**TARGET.account, "account_type": "service"})  # type: ignore[dict-item]
    part = render_mass_send(ITEM, target, PUBLIC).parts[0]
    with pytest.raises(PermanentError, match="mass send quota used up"):
        await CHANNEL.send(part, context(base, http, redis, target))
    assert state.calls_to("cgi-bin/message/mass/sendall")[0]["filter"] == {"is_to_all": True}


async def test_template_push_reaches_each_follower_once(
    fake: tuple[str, FakeWechatState], http: aiohttp.ClientSession, redis: Redis
) -> None:
    base, state = fake
    state.unsubscribed.add("o-gone")
    rendered = render_template_push(
        ITEM, TARGET, PUBLIC, openids=["o-1", "o-2", "o-gone"], template_id="TPL1"
    )
    ctx = context(base, http, redis)
    first = await CHANNEL.send(rendered.parts[0], ctx)
    await CHANNEL.send(rendered.parts[1], ctx)
    assert (
        await CHANNEL.send(rendered.parts[0], ctx)
    ).provider_message_id == first.provider_message_id
    # a follower who left is noted, and does not stop the push to the others
    gone = await CHANNEL.send(rendered.parts[2], ctx)
    assert gone.provider_message_id is None and "43004" in gone.extra["note"]
    assert [t["touser"] for t in state.templates_sent] == ["o-1", "o-2"]
    values = state.templates_sent[0]["data"]
    assert all(len(v["value"]) <= 20 for v in values.values())
    assert state.templates_sent[0]["url"] == f"{PUBLIC}/p/{ITEM.id}"


# --- recall ---------------------------------------------------------------------------------


async def test_recall_deletes_the_published_article(
    fake: tuple[str, FakeWechatState], http: aiohttp.ClientSession, redis: Redis
) -> None:
    base, state = fake
    state.publish_polls = 0
    ctx = context(base, http, redis)
    publish_id, _ = await publish(ITEM, ctx)
    final = await CHANNEL.poll(f"publish:{publish_id}", ctx)
    assert final is not None and final.provider_message_id
    article_id = state.jobs[publish_id].article_id
    assert final.provider_message_id == f"article:{article_id}"

    note = await CHANNEL.recall([f"publish:{publish_id}", final.provider_message_id], ctx)
    assert state.articles[article_id]["deleted"] is True
    assert note == f"deleted article {article_id}"
    assert len(state.calls_to("cgi-bin/freepublish/delete")) == 1


async def test_recall_while_in_review_asks_to_try_later_and_drafts_can_go(
    fake: tuple[str, FakeWechatState], http: aiohttp.ClientSession, redis: Redis
) -> None:
    base, state = fake
    state.publish_polls = 5
    ctx = context(base, http, redis)
    publish_id, _ = await publish(ITEM, ctx)
    with pytest.raises(TransientError, match="still in review"):
        await CHANNEL.recall([f"publish:{publish_id}"], ctx)

    client = api(base, http, redis)
    thumb = next(iter(state.materials))
    media_id = await client.add_draft(
        [{**CHANNEL.render(ITEM, TARGET, PUBLIC).parts[0]["article"], "thumb_media_id": thumb}]
    )
    assert await CHANNEL.recall([f"draft:{media_id}"], ctx) == f"deleted draft {media_id}"
    assert media_id not in state.drafts


# --- what the WeChat callback helper relies on ----------------------------------------------


async def test_customer_service_window_and_autoreply_rules(
    fake: tuple[str, FakeWechatState], http: aiohttp.ClientSession, redis: Redis
) -> None:
    base, state = fake
    client = api(base, http, redis)
    text = {"touser": "o-1", "msgtype": "text", "text": {"content": "您好"}}
    for _ in range(5):
        await client.send_custom(text)
    with pytest.raises(PermanentError, match="45047"):
        await client.send_custom(text)
    state.closed_windows.add("o-2")
    with pytest.raises(PermanentError, match="45015"):
        await client.send_custom({**text, "touser": "o-2"})
    assert len(state.custom_messages) == 5

    rules = (await client.autoreply_rules())["keyword_autoreply_info"]["list"]
    first = rules[0]
    assert {k["match_mode"] for r in rules for k in r["keyword_list_info"]} == {"contain", "equal"}
    assert first["reply_list_info"][0]["type"] == "text" and first["rule_name"]
