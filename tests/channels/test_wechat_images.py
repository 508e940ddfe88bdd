"""Body images of a WeChat article against the fake WeChat API and a local image host."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest
from redis.asyncio import Redis

from gongkai.channels.wechat_mp import CHANNEL
from gongkai.sandbox.server import serve
from gongkai.sandbox.wechat_api import FakeWechatState
from tests.channels.wechat_cases import ITEM, PUBLIC, TARGET, context, wechat_server


@pytest.fixture
async def fake() -> AsyncIterator[tuple[str, FakeWechatState]]:
    async with wechat_server() as server:
        yield server


async def test_body_images_are_uploaded_and_the_rest_stay_links(
    fake: tuple[str, FakeWechatState], http: aiohttp.ClientSession, redis: Redis
) -> None:
    """WeChat keeps only images it hosts: a PNG is fetched, uploaded through uploadimg and
    shown; a missing one, a GIF and one from a host not allowed stay links, and the delivery
    says why. (The public site's host, 127.0.0.1 here, is allowed by default.)"""
    from aiohttp import web

    from gongkai.channels.wechat_article import default_cover

    png = default_cover()
    images = web.Application()
    images.router.add_get("/chart.png", lambda _: web.Response(body=png))
    images.router.add_get("/anim.gif", lambda _: web.Response(body=b"GIF89a" + b"\0" * 20))
    base, state = fake
    async with serve(images) as host:
        body = (
            f"见下图。\n\n![低保标准对比]({host}/chart.png)\n\n"
            f"![旧图]({host}/gone.png)\n\n![动图]({host}/anim.gif)\n\n"
            f"![内网]({host.replace('127.0.0.1', 'localhost')}/chart.png)"
        )
        item = replace(ITEM, body=body)
        part = CHANNEL.render(item, TARGET, PUBLIC).parts[0]
        sent = await CHANNEL.send(part, context(base, http, redis))
    (draft,) = state.calls_to("cgi-bin/draft/add")
    content = draft["articles"][0]["content"]
    (uploaded,) = state.body_images
    assert f'<img src="{uploaded}" alt="低保标准对比">' in content
    assert f'<a href="{host}/gone.png">[旧图]</a>' in content
    assert f'<a href="{host}/anim.gif">[动图]</a>' in content
    assert "data-gongkai-image" not in content
    assert "gone.png): HTTP 404" in sent.extra["note"]
    assert "anim.gif): WeChat takes only JPEG and PNG" in sent.extra["note"]
    assert "[内网]</a>" in content and "not in GONGKAI_IMAGE_HOSTS" in sent.extra["note"]
    publish_id = sent.provider_message_id.removeprefix("publish:")  # type: ignore[union-attr]
    state.finish_publish(publish_id)
    (article,) = [a for a in state.articles.values() if a["publish_id"] == publish_id]
    assert uploaded in article["articles"][0]["content"]  # WeChat kept the hosted image
