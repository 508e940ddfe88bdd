"""``GET /api/v1/questions/unanswered``: what residents asked that the FAQ could not answer,
grouped by normalised text, with counts, regions and when it was last asked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gongkai.sandbox.wechat_push import event_xml, text_xml
from tests.bot_support import BATUTA, BotEnv, bot_env


@pytest.fixture
async def env(tmp_path, embedded_redis_url, redis):  # type: ignore[no-untyped-def]
    async with bot_env(tmp_path, embedded_redis_url) as e:
        yield e


async def get(env: BotEnv, query: str = "", token: str | None = "viewer") -> tuple[int, dict]:  # type: ignore[type-arg]
    headers = {"Authorization": f"Bearer {env.viewer_token}"} if token else {}
    resp = await env.client.get(f"/api/v1/questions/unanswered{query}", headers=headers)
    return resp.status, (await resp.json() if resp.content_type == "application/json" else {})


async def test_unanswered_questions_grouped_with_counts_regions_and_time(env: BotEnv) -> None:
    push = env.push("plain")
    await push.send(event_xml("o-batuta", "subscribe", "qrscene_" + BATUTA))
    await push.send(text_xml("o-batuta", "食堂几点开饭？"))
    await push.send(text_xml("o-county", "食堂 几点开饭!!"))
    await push.send(text_xml("o-county2", "食堂几点开饭"))
    await push.send(text_xml("o-county", "草场什么时候围栏"))
    await push.send(text_xml("o-county", "低保咋申请"))  # answered: not listed
    assert len(await env.questions()) == 5  # written (the app batches question rows)
    status, body = await get(env)
    assert status == 200
    groups = body["groups"]
    assert [g["normalized"] for g in groups] == ["食堂几点开饭", "草场什么时候围栏"]
    top = groups[0]
    assert top["count"] == 3
    assert {r["code"]: r["count"] for r in top["regions"]} == {"150627": 2, BATUTA: 1}
    assert top["languages"] == ["zh"]
    last = datetime.fromisoformat(top["last_asked"])
    assert abs((datetime.now(UTC) - last).total_seconds()) < 60
    assert body["total"] == 4

    status, body = await get(env, f"?region={BATUTA}")
    assert [(g["normalized"], g["count"]) for g in body["groups"]] == [("食堂几点开饭", 1)]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    status, body = await get(env, "?since=" + future.replace("+", "%2B"))
    assert (status, body["groups"]) == (200, [])


async def test_the_list_needs_a_token(env: BotEnv) -> None:
    assert (await get(env, token=None))[0] == 401
    assert (await get(env, "?limit=lots"))[0] == 400
