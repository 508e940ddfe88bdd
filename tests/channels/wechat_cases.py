"""What the WeChat official-account tests share: an item, a target, a send context and the
fake WeChat API serving one account."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import aiohttp
from redis.asyncio import Redis

from gongkai.channels.base import ItemView, SendContext, TargetView
from gongkai.channels.wechat_api import WechatApi
from gongkai.channels.wechat_mp import CHANNEL
from gongkai.config import Settings
from gongkai.sandbox.server import serve
from gongkai.sandbox.wechat_api import FakeWechatState, make_app

APP_ID, SECRET = "wx0000000000000001", "s3cret"
PUBLIC = "http://127.0.0.1:8080"
_delivery_ids = itertools.count(1)

ITEM = ItemView(
    id="ejhl-2026-0113",
    kind="policy",
    title="关于2026年城乡低保标准调整的通知",
    summary="城乡低保标准每人每月提高60元，12月起执行。",
    body="为进一步保障困难群众基本生活，现将有关事项通知如下。\n\n一、城市低保标准提高到每人每月900元。",
    doc_number="伊政办发〔2026〕3号",
    issuer="伊金霍洛旗人民政府办公室",
    issued_at=date(2026, 11, 2),
    published_at=None,
    domain="社会救助",
    urgent=False,
    catalog={},
    translations={"mn": {"title": "ᠠᠮᠢᠳᠤᠷᠠᠯ ᠤᠨ ᠪᠠᠲᠤᠯᠠᠭ᠎ᠠ", "summary": "ᠰᠠᠷ᠎ᠠ ᠪᠦᠷᠢ ᠶᠢᠨ ᠲᠡᠭᠦᠯᠳᠦᠷ"}},
)
TARGET = TargetView(
    id=1,
    channel="wechat_mp",
    region_code="150627",
    region_name="伊金霍洛旗",
    region_names={},
    languages=("zh",),
    address={},
    account={"app_id": APP_ID, "app_secret": SECRET, "token": "t0ken", "region": "150627"},
    account_name="ejhl",
)


def context(
    base: str, http: aiohttp.ClientSession, redis: Redis, target: TargetView = TARGET
) -> SendContext:
    return SendContext(
        http=http,
        settings=Settings(wechat_api_base=base),
        redis=redis,
        target=target,
        item_id=ITEM.id,
        delivery_id=next(_delivery_ids),
        part_index=0,
    )


def api(base: str, http: aiohttp.ClientSession, redis: Redis) -> WechatApi:
    return WechatApi(base, APP_ID, SECRET, http, redis)


async def publish(
    item: ItemView, ctx: SendContext, target: TargetView = TARGET
) -> tuple[str, dict[str, Any]]:
    rendered = CHANNEL.render(item, target, PUBLIC)
    sent = await CHANNEL.send(rendered.parts[0], ctx)
    assert sent.pending and sent.provider_message_id
    return sent.provider_message_id.removeprefix("publish:"), rendered.parts[0]


@asynccontextmanager
async def wechat_server(**options: Any) -> AsyncIterator[tuple[str, FakeWechatState]]:
    """The fake WeChat API serving the one account; ``options`` set its limits."""
    app, state = make_app({APP_ID: SECRET}, **options)
    async with serve(app) as base:
        yield base, state
