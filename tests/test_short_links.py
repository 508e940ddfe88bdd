"""Short links (/s/{code}) end to end: an SMS with the default template and a real public
address reaches residents on Aliyun and on Tencent through the fakes' real limits, a message a
provider would refuse is refused at planning instead, a code redirects to the page in its
language and counts the open, hostile codes are a quick 404, and codes never change."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest
from sqlmodel import select

from gongkai.domain.links import CODE_ALPHABET, CODE_MAX_LENGTH
from gongkai.sandbox import aliyun_sms, tencent_sms, wecom_robot
from gongkai.sandbox.server import serve
from gongkai.storage.db import make_engine, make_sessionmaker
from gongkai.storage.models import ShortLink
from gongkai.storage.short_links import codes_for
from tests.support import fetch_deliveries, ingest, item, prepare_db, run_workers, settings_for

PUBLIC = "https://zwgk.ejhl.gov.cn"
ALIYUN_VILLAGE = "150627100201"
TENCENT_VILLAGE = "150627100202"
DEFAULT_TEMPLATE = "您好，${title}已发布，详情：${link}"  # the issue's, and the demo county's
# Tencent's approved template holds the host; its variable holds the code (link_form: code).
TENCENT_TEMPLATE = "您好，{1}已发布，详情：https://zwgk.ejhl.gov.cn/s/{2}"

DIRECTORY = """
accounts:
  sms:
    - {name: county-sms, provider: aliyun, access_key_id: testid, access_key_secret: testsecret,
       sign_name: 伊金霍洛旗政务公开, template_code: SMS_000001,
       template_text: "您好，${title}已发布，详情：${link}"}
    - {name: county-tc, provider: tencent, secret_id: AKIDfakeSmsSecretId0001,
       secret_key: fake-tencent-secret-key, sdk_app_id: "1400000001",
       sign_name: 伊金霍洛旗政务公开, template_code: "1001",
       template_text: "您好，{title}已发布，详情：https://zwgk.ejhl.gov.cn/s/{link}"}
regions:
  - code: "150627"
    name: 伊金霍洛旗
    children:
      - code: "150627100"
        name: 乌兰木伦镇
        children:
          - code: "150627100201"
            name: 巴图塔嘎查
            targets:
              - {channel: sms, account: county-sms, phones: ["13800000000"]}
              - {channel: village_group, robot_key: robot-1}
          - code: "150627100202"
            name: 苏布尔嘎嘎查
            targets:
              - {channel: sms, account: county-tc, phones: ["13900000001"]}
"""


def notice(item_id: str, region: str, channels: list[str], **kw: Any) -> dict[str, Any]:
    return item(
        id=item_id,
        kind="notice",
        title="关于冬季停水检修的通知",
        doc_number=None,
        regions=[region],
        channels=channels,
        **kw,
    )


async def short_links(s: Any) -> list[ShortLink]:
    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            return list((await session.exec(select(ShortLink).order_by(ShortLink.code))).all())
    finally:
        await engine.dispose()


def code_in(text: str) -> str:
    match = re.search(r"https://zwgk\.ejhl\.gov\.cn/s/([A-Za-z0-9]+)", text)
    assert match, text
    return match.group(1)


async def test_the_default_template_with_a_real_address_reaches_an_aliyun_phone(
    tmp_path, embedded_redis_url, redis
) -> None:
    app, state = aliyun_sms.make_app(templates={"SMS_000001": DEFAULT_TEMPLATE})
    async with serve(app) as base:
        s = settings_for(tmp_path, public_url=PUBLIC, aliyun_sms_endpoint=base)
        await prepare_db(s, DIRECTORY)
        await ingest(s, embedded_redis_url, notice("ejhl-2026-0201", ALIYUN_VILLAGE, ["sms"]))
        await run_workers(s, embedded_redis_url)
        (d,), _ = await fetch_deliveries(s, "ejhl-2026-0201")
    assert d.status == "delivered", d.last_error
    (text,) = state.texts_to("13800000000")
    code = code_in(text)
    assert (
        text == f"【伊金霍洛旗政务公开】您好，关于冬季停水检修的通知已发布，详情：{PUBLIC}/s/{code}"
    )
    assert len(f"{PUBLIC}/s/{code}") <= 35 and all(c in CODE_ALPHABET for c in code)
    (link,) = await short_links(s)
    assert (link.code, link.item_id, link.channel, link.lang) == (
        code,
        "ejhl-2026-0201",
        "sms",
        "zh",
    )


async def test_the_tencent_template_holds_the_address_and_the_variable_only_the_code(
    tmp_path, embedded_redis_url, redis
) -> None:
    # the fake refuses any URL in a variable and any variable over 12 characters
    app, state = tencent_sms.make_app(templates={"1001": TENCENT_TEMPLATE})
    async with serve(app) as base:
        s = settings_for(tmp_path, public_url=PUBLIC, tencent_sms_endpoint=base)
        await prepare_db(s, DIRECTORY)
        await ingest(s, embedded_redis_url, notice("ejhl-2026-0201", TENCENT_VILLAGE, ["sms"]))
        await run_workers(s, embedded_redis_url)
        (d,), _ = await fetch_deliveries(s, "ejhl-2026-0201")
    assert d.status == "delivered", d.last_error
    (text,) = state.texts_to("+8613900000001")
    code = code_in(text)
    assert (
        text == f"【伊金霍洛旗政务公开】您好，关于冬季停水检修的通知已发布，详情：{PUBLIC}/s/{code}"
    )
    assert state.requests[0]["TemplateParamSet"] == ["关于冬季停水检修的通知", code]


async def test_a_message_a_provider_would_refuse_is_refused_at_planning(
    tmp_path, embedded_redis_url, redis
) -> None:
    """A long public address makes even the short link 50 characters: nothing goes to Aliyun,
    and the delivery says which variable, how long and the limit, from the moment it is
    planned; the village group beside it is delivered as usual."""
    app, state = aliyun_sms.make_app(templates={"SMS_000001": DEFAULT_TEMPLATE})
    robot_app, _ = wecom_robot.make_app(valid_keys={"robot-1"})
    long_url = "https://gongkai.ejinhoroqi.gov.cn/zhengwu"
    async with serve(app) as base, serve(robot_app) as robot_base:
        s = settings_for(
            tmp_path, public_url=long_url, aliyun_sms_endpoint=base, wecom_api_base=robot_base
        )
        await prepare_db(s, DIRECTORY)
        data = notice("ejhl-2026-0202", ALIYUN_VILLAGE, ["sms", "village_group"])
        result = await ingest(s, embedded_redis_url, data)
        planned = {d.channel: (d.status, d.last_error) for d in result.deliveries}
        await run_workers(s, embedded_redis_url)
        rows, _ = await fetch_deliveries(s, "ejhl-2026-0202")
    status, error = planned["sms"]
    assert status == "dead"
    assert error.startswith("variable link is 50 characters, over the aliyun limit of 35")
    by_channel = {d.channel: d for d in rows}
    assert by_channel["sms"].status == "dead" and by_channel["sms"].last_error == error
    assert by_channel["sms"].attempts == 0 and state.requests == []
    assert any(n.startswith("refused: variable link") for n in by_channel["sms"].notes)
    assert by_channel["village_group"].status == "delivered"


async def test_a_url_in_a_tencent_variable_is_refused_at_planning(
    tmp_path, embedded_redis_url, redis
) -> None:
    """A Tencent account whose directory entry says ``link_form: url`` (a template copied
    from Aliyun) would put a URL in a variable: refused before Tencent sees it."""
    directory = DIRECTORY.replace(
        'template_text: "您好，{title}已发布，详情：https://zwgk.ejhl.gov.cn/s/{link}"}',
        'template_text: "您好，{title}已发布，详情：{link}", link_form: url}',
    )
    app, state = tencent_sms.make_app(templates={"1001": "您好，{1}已发布，详情：{2}"})
    async with serve(app) as base:
        s = settings_for(tmp_path, public_url=PUBLIC, tencent_sms_endpoint=base)
        await prepare_db(s, directory)
        await ingest(s, embedded_redis_url, notice("ejhl-2026-0203", TENCENT_VILLAGE, ["sms"]))
        await run_workers(s, embedded_redis_url)
        (d,), _ = await fetch_deliveries(s, "ejhl-2026-0203")
    assert d.status == "dead" and state.requests == []
    assert "variable link" in d.last_error and "holds a URL" in d.last_error
    assert "over the tencent limit of 12" in d.last_error  # 33 characters, too
    engine = make_engine(s.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            from gongkai.storage.models import Item

            assert (await session.get(Item, "ejhl-2026-0203")).status == "published"
    finally:
        await engine.dispose()


async def test_a_code_redirects_to_the_page_in_its_language_and_counts_each_open(
    tmp_path, embedded_redis_url, redis
) -> None:
    from tests.support import running_app

    s = settings_for(tmp_path, public_url=PUBLIC)
    await prepare_db(s, DIRECTORY)
    data = notice(
        "ejhl:2026-0204",  # an id that needs quoting in the page's address
        ALIYUN_VILLAGE,
        ["sms", "village_group"],
        translations={"mn": {"title": "ᠤᠰᠤ ᠵᠤᠭᠰᠤᠭᠠᠬᠤ ᠮᠡᠳᠡᠭᠳᠡᠯ"}},
    )
    await ingest(s, embedded_redis_url, data)
    links = {(x.channel, x.lang): x.code for x in await short_links(s)}
    assert set(links) == {(ch, lang) for ch in ("sms", "village_group") for lang in ("zh", "mn")}
    assert len(set(links.values())) == 4  # one code per channel and language
    async with running_app(s, embedded_redis_url) as client:
        r = await client.get(f"/s/{links['sms', 'zh']}", allow_redirects=False)
        assert r.status == 302 and r.headers["Location"] == "/p/ejhl%3A2026-0204"
        r = await client.get(f"/s/{links['sms', 'mn']}", allow_redirects=False)
        assert r.headers["Location"] == "/p/ejhl%3A2026-0204?lang=mn"
        for _ in range(2):
            r = await client.get(f"/s/{links['village_group', 'zh']}")  # followed to the page
            assert r.status == 200 and "关于冬季停水检修的通知" in await r.text()
        r = await client.head(f"/s/{links['sms', 'zh']}", allow_redirects=False)
        assert r.status == 302  # a link checker's HEAD is answered, and not counted as an open

        wanted = {links["sms", "zh"]: 1, links["sms", "mn"]: 1, links["village_group", "zh"]: 2}
        deadline = time.monotonic() + 15
        while True:  # counts are written a moment after the redirect, in one statement
            opens = {x.code: x.opens for x in await short_links(s) if x.opens}
            if opens == wanted or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert opens == wanted


async def test_a_scheduled_items_code_names_nothing_until_it_is_published(
    tmp_path, embedded_redis_url, redis
) -> None:
    """Codes are drawn at planning, before the publish time: a guessed one must not reveal
    the item's id (its page is a 404 until then, and so is the code)."""
    from datetime import timedelta

    from sqlalchemy import update

    from gongkai.storage.models import Item
    from gongkai.storage.types import utcnow
    from tests.support import running_app

    s = settings_for(tmp_path, public_url=PUBLIC)
    await prepare_db(s, DIRECTORY)
    later = (utcnow() + timedelta(days=1)).isoformat()
    await ingest(
        s, embedded_redis_url, notice("ejhl:later", ALIYUN_VILLAGE, ["sms"], publish_at=later)
    )
    (link,) = [x for x in await short_links(s) if x.lang == "zh"]
    async with running_app(s, embedded_redis_url) as client:
        r = await client.get(f"/s/{link.code}", allow_redirects=False)
        assert r.status == 404 and "Location" not in r.headers
        assert await r.text() == "没有找到该信息 / not found"
        engine = make_engine(s.resolved_database_url)  # the publish time has come
        try:
            async with make_sessionmaker(engine)() as session:
                await session.execute(
                    update(Item).values(published_at=utcnow() - timedelta(seconds=1))
                )
                await session.commit()
        finally:
            await engine.dispose()
        r = await client.get(f"/s/{link.code}", allow_redirects=False)
        assert r.status == 302 and r.headers["Location"] == "/p/ejhl%3Alater"


async def test_unknown_and_hostile_codes_are_a_quick_404(
    tmp_path, embedded_redis_url, redis
) -> None:
    from tests.support import running_app

    s = settings_for(tmp_path, public_url=PUBLIC)
    await prepare_db(s, DIRECTORY)
    hostile = [
        "zzzzzz",  # well-formed, unknown
        "A" * (CODE_MAX_LENGTH + 1),
        "A" * 6000,
        "abc%0d%0aSet-Cookie:x",
        "%E4%BD%A0%E5%A5%BD",
        "..%2F..%2Fetc",
        "abc'--",
        "0O1lI",  # characters outside the alphabet
    ]
    async with running_app(s, embedded_redis_url) as client:
        started = time.monotonic()
        for code in hostile:
            r = await client.get(f"/s/{code}", allow_redirects=False)
            assert r.status == 404, code
            assert await r.text() == "没有找到该信息 / not found"  # as /p/ says it
            assert "Set-Cookie" not in r.headers
        r = await client.get("/s/%00abcd", allow_redirects=False)
        assert r.status == 400  # a NUL anywhere in a URL is refused before any route
        elapsed = time.monotonic() - started
    assert elapsed < 10, elapsed  # generous: a few milliseconds each on a quiet machine
    assert await short_links(s) == []


async def test_codes_are_drawn_once_and_survive_a_restart(
    tmp_path, embedded_redis_url, redis
) -> None:
    s = settings_for(tmp_path, public_url=PUBLIC)
    await prepare_db(s, DIRECTORY)
    for n in (1, 2):
        await ingest(s, embedded_redis_url, notice(f"item-{n}", ALIYUN_VILLAGE, ["sms"]))
    first = {(x.item_id, x.channel, x.lang): x.code for x in await short_links(s)}
    assert set(first) == {("item-1", "sms", "zh"), ("item-2", "sms", "zh")}
    assert len(set(first.values())) == 2
    await ingest(s, embedded_redis_url, notice("item-1", ALIYUN_VILLAGE, ["sms"]))  # again
    engine = make_engine(s.resolved_database_url)  # a new process, a new engine
    try:
        async with make_sessionmaker(engine)() as session:
            again = await codes_for(session, "item-1", [("sms", "zh"), ("sms", "mn")])
            await session.commit()
    finally:
        await engine.dispose()
    assert again["sms:zh"] == first["item-1", "sms", "zh"]
    assert set(again) == {"sms:zh", "sms:mn"}  # a language added later gets a code of its own
    assert again["sms:mn"] not in first.values()
    assert len(await short_links(s)) == 3


@pytest.mark.postgres
async def test_codes_and_counts_on_postgresql(
    tmp_path, postgres_url, embedded_redis_url, redis
) -> None:
    from tests.support import running_app

    s = settings_for(tmp_path, public_url=PUBLIC, database_url=postgres_url)
    await prepare_db(s, DIRECTORY)
    item_id = f"pg-short-{time.time_ns()}"  # the cluster is shared by the session's tests
    await ingest(s, embedded_redis_url, notice(item_id, ALIYUN_VILLAGE, ["sms"]))
    await ingest(s, embedded_redis_url, notice(item_id, ALIYUN_VILLAGE, ["sms"]))
    (link,) = [x for x in await short_links(s) if x.item_id == item_id]
    async with running_app(s, embedded_redis_url) as client:
        for _ in range(2):
            r = await client.get(f"/s/{link.code}", allow_redirects=False)
            assert r.headers["Location"] == f"/p/{item_id}"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            (link,) = [x for x in await short_links(s) if x.item_id == item_id]
            if link.opens == 2:
                break
            await asyncio.sleep(0.1)
    assert link.opens == 2
