"""The platform-neutral conversation: subscriptions, binding a village, language, the latest
notices, numbered choices, and who gets a precise push (``followers_for``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from gongkai.bots.conversation import Context, Reply, follower_for, respond
from gongkai.bots.subscriptions import followers_for
from gongkai.faq import store as faq_store
from gongkai.faq.store import export_faq_text, get_index, import_faq_text
from gongkai.storage.db import make_engine, make_sessionmaker
from gongkai.storage.models import Follower, Item, Question, Subscription
from gongkai.storage.types import utcnow
from tests.bot_support import BATUTA, COUNTY, DIRECTORY, SUBUER, load_faq, until
from tests.support import ingest, item, prepare_db, settings_for


@dataclass
class Talk:
    maker: async_sessionmaker[AsyncSession]
    redis_url: str
    settings: object

    async def say(self, who: str, text: str, platform: str = "wechat") -> Reply:
        index = await get_index(self.maker)
        async with self.maker() as session:
            follower = await follower_for(session, platform, "plain", who)
            ctx = Context(
                session,
                index,
                platform,
                "http://gongkai.test",
                account_region=COUNTY,
                languages=("zh",),
                title="伊金霍洛旗政务公开",
            )
            return await respond(ctx, follower, text)

    async def follower(self, who: str) -> Follower:
        async with self.maker() as session:
            return (await session.exec(select(Follower).where(Follower.external_id == who))).one()


@pytest.fixture
async def talk(tmp_path, embedded_redis_url, redis) -> AsyncIterator[Talk]:  # type: ignore[no-untyped-def]
    s = settings_for(tmp_path)
    await prepare_db(s, DIRECTORY)
    await load_faq(s)
    engine = make_engine(s.resolved_database_url)
    try:
        yield Talk(make_sessionmaker(engine), embedded_redis_url, s)
    finally:
        await engine.dispose()


async def test_subscribe_list_and_unsubscribe(talk: Talk) -> None:
    assert "已订阅“社会救助”" in (await talk.say("o1", "订阅 社会救助")).text
    assert "已订阅" in (await talk.say("o1", "订阅低保")).text  # everyday word → 社会救助
    assert "社会救助" in (await talk.say("o1", "我的订阅")).text
    assert "已退订“社会救助”" in (await talk.say("o1", "退订 社会救助")).text
    assert "还没有订阅" in (await talk.say("o1", "我的订阅")).text


async def test_an_ambiguous_domain_is_offered_as_a_numbered_choice(talk: Talk) -> None:
    offer = (await talk.say("o2", "订阅 服务")).text  # 养老服务, 市政服务, 公共法律服务 …
    assert "1." in offer and "养老服务" in offer
    lines = [line for line in offer.splitlines() if line[:1].isdigit()]
    n = next(i for i, line in enumerate(lines, 1) if "养老服务" in line)
    assert "已订阅“养老服务”" in (await talk.say("o2", str(n))).text


@pytest.mark.parametrize("words", ["绑定 巴图塔嘎查", "绑定 150627100201", "绑定巴图塔",
                                   "绑定 batuta", "绑定 巴图他"])  # fmt: skip
async def test_binding_a_village_by_name_code_pinyin_or_homophone(talk: Talk, words: str) -> None:
    reply = await talk.say("o3", words)
    assert "巴图塔嘎查" in reply.text, reply.text
    assert (await talk.follower("o3")).region_code == BATUTA


async def test_an_ambiguous_place_is_asked_back(talk: Talk) -> None:
    """Villages of one name in two townships: the township tells them apart."""
    offer = (await talk.say("o4", "绑定 巴音")).text
    assert "巴音嘎查（札萨克镇）" in offer and "巴音嘎查（乌兰木伦镇）" in offer
    pick = next(line[0] for line in offer.splitlines() if "（札萨克镇）" in line)
    await talk.say("o4", pick)
    assert (await talk.follower("o4")).region_code == "150627101202"
    assert "没有找到" in (await talk.say("o4", "绑定 火星村")).text


async def test_language_choice_changes_the_answers(talk: Talk) -> None:
    switched = await talk.say("o5", "ᠮᠣᠩᠭᠣᠯ")
    assert any("\u1800" <= ch <= "\u18af" for ch in switched.text)
    assert (await talk.follower("o5")).language == "mn"
    answer = await talk.say("o5", "低保咋申请")
    assert answer.faq_id == "dibao-apply" and answer.text.startswith("ᠠᠮᠢᠳᠤᠷᠠᠯ")
    await talk.say("o5", "汉文")
    assert (await talk.say("o5", "低保咋申请")).text.startswith("持户口簿")
    await talk.say("o6", "蒙古文")
    assert (await talk.follower("o6")).language == "mn"


async def test_latest_lists_items_covering_the_village(talk: Talk) -> None:
    s = talk.settings
    await ingest(s, talk.redis_url, item(id="county-1", title="全旗通知", channels=["web"]))
    for ident, title, region in [
        ("batuta-1", "巴图塔嘎查停水通知", BATUTA),
        ("subuer-1", "苏布尔嘎嘎查通知", SUBUER),
    ]:
        notice = item(
            id=ident,
            title=title,
            kind="notice",
            doc_number=None,
            regions=[region],
            channels=["web"],
        )
        await ingest(s, talk.redis_url, notice)
    await talk.say("o7", "绑定 巴图塔嘎查")
    latest = (await talk.say("o7", "最新")).text
    assert "全旗通知" in latest and "巴图塔嘎查停水通知" in latest
    assert "苏布尔嘎嘎查通知" not in latest
    assert "http://gongkai.test/p/batuta-1" in latest
    async with talk.maker() as session:  # a recalled item disappears
        row = await session.get(Item, "batuta-1")
        assert row is not None
        row.status, row.recalled_at = "recalled", utcnow()
        session.add(row)
        await session.commit()
    assert "巴图塔嘎查停水通知" not in (await talk.say("o7", "最新")).text


async def test_followers_for_an_item(talk: Talk) -> None:
    await talk.say("batuta-fan", "绑定 巴图塔嘎查")
    await talk.say("batuta-fan", "订阅 社会救助")
    await talk.say("subuer-fan", "绑定 苏布尔嘎嘎查")
    await talk.say("subuer-fan", "订阅 全部")
    await talk.say("unplaced", "订阅 社会救助")
    await talk.say("other-domain", "订阅 义务教育")
    s = talk.settings
    county = (await ingest(s, talk.redis_url, item(id="c1", channels=["web"]))).item
    village = (
        await ingest(s, talk.redis_url, item(id="v1", regions=[BATUTA], channels=["web"]))
    ).item
    async with talk.maker() as session:
        names = lambda rows: sorted(f.external_id for f in rows)  # noqa: E731
        assert names(await followers_for(session, county)) == [
            "batuta-fan",
            "subuer-fan",
            "unplaced",
        ]
        assert names(await followers_for(session, village)) == ["batuta-fan"]
        fan = (
            await session.exec(select(Follower).where(Follower.external_id == "batuta-fan"))
        ).one()
        fan.subscribed = False  # unfollowed the account
        session.add(fan)
        await session.commit()
        assert names(await followers_for(session, village)) == []
        assert len((await session.exec(select(Subscription))).all()) == 4


async def test_every_question_is_stored_and_a_pick_marks_it_answered(talk: Talk) -> None:
    await talk.say("o8", "你们食堂几点开饭")  # nothing in the FAQ
    choose = await talk.say("o8", "低保")  # several 低保 entries are close
    assert choose.kind == "choose", choose
    picked = await talk.say("o8", "1")
    assert picked.kind == "answer" and picked.faq_id
    async with talk.maker() as session:
        rows = (await session.exec(select(Question).order_by(Question.id))).all()
    assert [(q.normalized, q.answered) for q in rows] == [
        ("你们食堂几点开饭", False),
        ("低保", True),
    ]
    assert rows[1].faq_id == picked.faq_id and rows[0].faq_id is None


async def test_a_new_faq_goes_live_without_a_restart(talk: Talk) -> None:
    assert (await talk.say("o9", "草场承包怎么续签")).kind == "fallback"
    async with talk.maker() as session:
        before = await export_faq_text(session)
        text = (
            "entries:\n  - id: grassland-contract\n    question: 草场承包合同怎么续签？\n"
            "    keywords: [草场, 承包, 续签]\n    answer: 到苏木镇农牧业服务中心办理续签。\n"
        )
        report = await import_faq_text(session, text)  # an upsert: the others stay
        assert report.added == ["grassland-contract"] and report.removed == []
        after = await export_faq_text(session)
    assert before.count("- id:") + 1 == after.count("- id:")

    async def answered() -> bool:
        return (await get_index(talk.maker)).ask("草场承包怎么续签").id == "grassland-contract"

    await until(answered, within=faq_store.CHECK_EVERY * 3)
    assert (await talk.say("o9", "草场承包怎么续签")).faq_id == "grassland-contract"
