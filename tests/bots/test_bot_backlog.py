"""What the bots write after the answer: a burst of newcomers, returning residents, a clean
stop, a database that is not there yet, and the per-resident minute shared with the limits
library. The answers never wait for these writes; the rows still all arrive."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import select

from gongkai.bots import backlog as backlog_module
from gongkai.bots.backlog import Backlog
from gongkai.bots.inbound import INBOUND
from gongkai.faq.store import CHECK_EVERY, import_faq_text
from gongkai.sandbox.wechat_push import WechatPush, text_xml
from gongkai.storage.db import make_engine, make_sessionmaker, upgrade
from gongkai.storage.models import Follower, Question
from gongkai.storage.types import utcnow
from tests.bot_support import BATUTA, DIBAO_ANSWER, BotEnv, bot_env, until
from tests.support import running_app

MONGOLIAN_DIBAO = "ᠠᠮᠢᠳᠤᠷᠠᠯ ᠤᠨ ᠳᠣᠣᠷᠠᠬᠢ"  # the demo FAQ's Mongolian answer to 低保咋申请, its start


@pytest.fixture
async def env(tmp_path, embedded_redis_url, redis):  # type: ignore[no-untyped-def]
    async with bot_env(tmp_path, embedded_redis_url) as e:
        yield e


async def test_a_burst_of_newcomers_is_answered_and_stored_with_their_followers(
    env: BotEnv,
) -> None:
    push = env.push("safe")
    who = [f"o-burst-{n}" for n in range(24)]
    got = await asyncio.gather(*(push.send(text_xml(w, "低保咋申请")) for w in who))
    assert all(g.fields and g.fields["Content"].startswith(DIBAO_ANSWER) for g in got)
    questions = await env.questions()
    followers = {f.id: f.external_id for f in await env.rows(Follower)}
    assert sorted(followers.values()) == sorted(who)
    assert sorted(followers[q.follower_id] for q in questions) == sorted(who)
    assert all(q.answered and q.faq_id == "dibao-apply" for q in questions)


async def test_known_residents_read_together_keep_their_own_language(env: BotEnv) -> None:
    """Residents Redis has no copy of are read from the database in one query; each still
    gets their own settings (a Mongolian speaker in Batuta, a Chinese one)."""

    async def make(session):  # type: ignore[no-untyped-def]
        for n in range(6):
            mongolian = n % 2 == 0
            session.add(
                Follower(
                    platform="wechat",
                    account="safe",
                    external_id=f"o-known-{n}",
                    language="mn" if mongolian else "zh",
                    region_code=BATUTA if mongolian else None,
                )
            )
        await session.commit()

    await env.session_do(make)
    push = env.push("safe")
    got = await asyncio.gather(
        *(push.send(text_xml(f"o-known-{n}", "低保咋申请")) for n in range(6))
    )
    for n, reply in enumerate(got):
        assert reply.fields is not None
        wanted = MONGOLIAN_DIBAO if n % 2 == 0 else DIBAO_ANSWER
        assert reply.fields["Content"].startswith(wanted), (n, reply.fields["Content"])
    assert len(await env.rows(Follower)) == 6  # nobody was taken for a newcomer


async def test_an_offer_read_from_the_database_is_still_answered_by_its_number(
    env: BotEnv,
) -> None:
    """A resident Redis has no copy of keeps what the row holds: here the numbered offer they
    were made (JSON state) is resolved by their "2", and they stay unsubscribed."""

    async def make(session):  # type: ignore[no-untyped-def]
        back = Follower(platform="wechat", account="plain", external_id="o-offered")
        back.subscribed = False
        back.last_seen_at = utcnow() - timedelta(minutes=3)
        back.state = {
            "pending": {
                "kind": "choose",
                "question_id": None,
                "options": [["no-such-entry", "别的", 0.9], ["dibao-apply", "低保", 0.9]],
            }
        }
        session.add(back)
        await session.commit()

    await env.session_do(make)
    got = await env.push("plain").send(text_xml("o-offered", "2"))
    assert got.fields is not None and got.fields["Content"].startswith(DIBAO_ANSWER)
    await env.questions()
    (follower,) = await env.rows(Follower)
    assert follower.subscribed is False
    assert not (follower.state or {}).get("pending")  # the offer is used up


async def test_a_resident_stored_after_earlier_reads_is_found_by_the_next(env: BotEnv) -> None:
    """Reads reuse one connection; it still sees rows committed after its last read."""
    push = env.push("safe")
    first = await push.send(text_xml("o-early", "低保咋申请"))  # a read that finds nobody
    assert first.fields is not None and first.fields["Content"].startswith(DIBAO_ANSWER)

    async def make(session):  # type: ignore[no-untyped-def]
        session.add(
            Follower(
                platform="wechat",
                account="safe",
                external_id="o-later",
                language="mn",
                region_code=BATUTA,
            )
        )
        await session.commit()

    await env.session_do(make)
    got = await push.send(text_xml("o-later", "低保咋申请"))
    assert got.fields is not None and got.fields["Content"].startswith(MONGOLIAN_DIBAO)


async def test_a_returning_resident_is_marked_seen_after_the_answer(env: BotEnv) -> None:
    long_ago = utcnow() - timedelta(hours=3)

    async def make(session):  # type: ignore[no-untyped-def]
        back = Follower(platform="wechat", account="plain", external_id="o-back")
        back.last_seen_at = long_ago
        session.add(back)
        await session.commit()

    await env.session_do(make)
    got = await env.push("plain").send(text_xml("o-back", "低保咋申请"))
    assert got.fields is not None and got.fields["Content"].startswith(DIBAO_ANSWER)
    await env.questions()  # the app has written what it queued
    (follower,) = await env.rows(Follower)
    assert follower.last_seen_at is not None
    assert follower.last_seen_at > long_ago + timedelta(hours=2)


async def test_nothing_queued_is_lost_when_the_app_stops_cleanly(
    env: BotEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second app answers and is stopped at once: its queued rows are written on the way out
    (its writer's interval is stretched so that nothing is written before the stop)."""
    monkeypatch.setattr(backlog_module, "FLUSH_EVERY", 3600.0)
    async with running_app(env.settings, env.redis_url) as other:
        push = WechatPush(other, "plain", "t0ken", "wx0000000000000001")
        for n in range(30):
            got = await push.send(text_xml(f"o-stop-{n}", "低保咋申请"))
            assert got.fields is not None
        assert len(other.app[INBOUND].backlog) == 60  # 30 newcomers, 30 questions: all queued
    rows = await env.rows(Question)
    assert len(rows) == 30 and all(q.follower_id is not None for q in rows)
    assert len(await env.rows(Follower)) == 30


async def test_the_callback_counts_the_minute_the_limits_library_reads(env: BotEnv) -> None:
    """The callback counts in its admission script; the Telegram bot and anything else that asks
    the limits library about the same resident sees the same count."""
    inbound = env.client.app[INBOUND]
    assert not await inbound.residents.spent("wechat", "plain", "o-counted")
    push = env.push("plain")
    for n in range(10):
        got = await push.send(text_xml("o-counted", f"低保咋申请{n}"))
        assert got.fields is not None and "太频繁" not in got.fields["Content"]
    assert await inbound.residents.spent("wechat", "plain", "o-counted")
    assert await inbound.allow("wechat", "plain", "o-counted") == "refuse"  # told once …
    got = await push.send(text_xml("o-counted", "低保咋申请"))
    assert got.body == "success"  # … so the callback stays silent


async def test_faq_changes_reach_the_bot_without_a_restart(env: BotEnv) -> None:
    push = env.push("plain")
    first = await push.send(text_xml("o-faq", "草场承包怎么续签"))
    assert first.fields is not None and "12345" in first.fields["Content"]  # the hotline

    async def add(session):  # type: ignore[no-untyped-def]
        text = (
            "entries:\n  - id: grassland-contract\n    question: 草场承包合同怎么续签？\n"
            "    keywords: [草场, 承包, 续签]\n    answer: 到苏木镇农牧业服务中心办理续签。\n"
        )
        await import_faq_text(session, text)

    await env.session_do(add)
    keeper = env.client.app[INBOUND].faq

    async def live() -> bool:  # swapped in by the keeper's own task, not by a request
        return (await keeper.index()).get("grassland-contract") is not None

    await until(live, within=CHECK_EVERY * 4)
    got = await push.send(text_xml("o-faq", "草场承包怎么续签"))
    assert got.fields is not None and got.fields["Content"] == "到苏木镇农牧业服务中心办理续签。"


async def test_rows_wait_for_a_database_that_is_not_ready_and_are_written_once_it_is(
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    """Refused writes are kept (up to the bound, the oldest questions dropped beyond it) and
    written by a later attempt."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'late.sqlite3'}"
    engine = make_engine(url)
    try:
        backlog = Backlog(make_sessionmaker(engine), bound=8)
        for n in range(10):
            backlog.question(
                {
                    "asked_at": utcnow(),
                    "platform": "wechat",
                    "follower_id": None,
                    "region_code": None,
                    "language": "zh",
                    "text": f"问题{n}",
                    "normalized": f"问题{n}",
                    "answered": False,
                    "faq_id": None,
                    "score": 0.0,
                },
                ("wechat", "plain", f"o-late-{n}"),
            )
        await backlog.flush()  # no tables yet: refused, kept
        assert len(backlog) == 8
        await upgrade(url)
        await backlog.close()
        assert len(backlog) == 0
        async with make_sessionmaker(engine)() as session:
            texts = sorted(q.text for q in (await session.exec(select(Question))).all())
        assert texts == [f"问题{n}" for n in range(2, 10)]  # the two oldest made room
    finally:
        await engine.dispose()
