"""精准推送 and 群发 end to end: an item asks for them, planning finds the subscribed followers,
the worker pushes through the fake WeChat API, and a follower who left stops no one else."""

from __future__ import annotations

import pytest

from gongkai.sandbox import wechat_api
from gongkai.sandbox.server import serve
from gongkai.storage.db import make_engine, make_sessionmaker
from gongkai.storage.models import Follower, Subscription
from tests.support import (
    fetch_deliveries,
    hurry_polls,
    ingest,
    item,
    prepare_db,
    run_workers,
    settings_for,
    workers_until,
)

APP_ID, SECRET = "wx0000000000000001", "s3cret-app"
DIRECTORY = f"""
accounts:
  wechat_mp:
    - {{name: ejhl, app_id: {APP_ID}, app_secret: {SECRET}, token: t0ken, region: "150627",
       template_id: TPL1}}
regions:
  - code: "150627"
    name: 伊金霍洛旗
    children:
      - code: "150627100"
        name: 乌兰木伦镇
        children:
          - {{code: "150627100201", name: 巴图塔嘎查}}
          - {{code: "150627100202", name: 苏布尔嘎嘎查}}
"""


@pytest.fixture
async def wechat(tmp_path, embedded_redis_url, redis):  # type: ignore[no-untyped-def]
    app, state = wechat_api.make_app({APP_ID: SECRET})
    async with serve(app) as url:
        s = settings_for(tmp_path, wechat_api_base=url)
        await prepare_db(s, DIRECTORY)
        yield s, state


async def add_follower(s, openid: str, region: str, domain: str) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(s.resolved_database_url)
    async with make_sessionmaker(engine)() as session:
        f = Follower(platform="wechat", account="ejhl", external_id=openid, region_code=region)
        session.add(f)
        await session.flush()
        session.add(Subscription(follower_id=f.id, domain=domain))  # type: ignore[arg-type]
        await session.commit()
    await engine.dispose()


async def test_template_push_reaches_the_subscribed_followers_of_the_place(
    wechat, embedded_redis_url
) -> None:
    s, state = wechat
    await add_follower(s, "o-batuta", "150627100201", "社会救助")
    await add_follower(s, "o-other-village", "150627100202", "社会救助")
    await add_follower(s, "o-other-domain", "150627100201", "义务教育")
    await add_follower(s, "o-left", "150627100201", "社会救助")
    state.unsubscribed.add("o-left")
    result = await ingest(
        s,
        embedded_redis_url,
        item(regions=["150627100201"], channels=["wechat_mp"], wechat={"template_push": True}),
    )
    kinds = sorted(d.payload["parts"][0]["kind"] for d in result.deliveries)
    assert kinds == ["article", "template"]

    async def pushed() -> bool:
        rows, _ = await fetch_deliveries(s)
        return any(
            d.payload["parts"][0]["kind"] == "template" and d.status == "delivered" for d in rows
        )

    # the article waits for WeChat's review verdict; the push does not wait for it
    await workers_until(s, embedded_redis_url, pushed)
    assert sorted(t["touser"] for t in state.templates_sent) == ["o-batuta"]
    rows, _ = await fetch_deliveries(s)
    push = next(d for d in rows if d.payload["parts"][0]["kind"] == "template")
    assert push.status == "delivered"
    assert any("o-left" in n for n in push.notes)


async def test_mass_send_replaces_the_article_and_counts_the_quota(
    wechat, embedded_redis_url
) -> None:
    s, state = wechat
    await ingest(
        s, embedded_redis_url, item(channels=["wechat_mp"], wechat={"mass_send": True, "tag_id": 7})
    )
    first = item()["id"]

    async def status_of(item_id: str) -> str:
        rows, _ = await fetch_deliveries(s, item_id)
        return rows[0].status

    async def delivered() -> bool:
        await hurry_polls(embedded_redis_url)  # WeChat's verdict is polled a minute later
        return await status_of(first) == "delivered"

    await workers_until(s, embedded_redis_url, delivered)
    (d,), attempts = await fetch_deliveries(s, first)
    assert d.provider_message_ids[0].startswith("mass:")
    assert [a.outcome for a in attempts[d.id]] == ["pending"]  # accepted, then judged
    (body,) = state.calls_to("cgi-bin/message/mass/sendall")
    assert body["filter"] == {"is_to_all": False, "tag_id": 7}
    assert len(state.calls_to("cgi-bin/message/mass/get")) == 2  # "SENDING", then the verdict
    # a second item the same day: the subscription account's one mass send is spent
    await ingest(
        s,
        embedded_redis_url,
        item(id="ejhl-2026-0114", channels=["wechat_mp"], wechat={"mass_send": True}),
    )
    await run_workers(s, embedded_redis_url)
    rows, _ = await fetch_deliveries(s, "ejhl-2026-0114")
    assert rows[0].status == "dead" and "quota used up" in rows[0].last_error
    assert len(state.calls_to("cgi-bin/message/mass/sendall")) == 1


async def test_a_mass_send_wechat_refuses_in_review_is_dead_with_the_reason(
    wechat, embedded_redis_url
) -> None:
    s, state = wechat
    state.mass_outcome, state.mass_polls = "err(10001)", 0
    await ingest(s, embedded_redis_url, item(channels=["wechat_mp"], wechat={"mass_send": True}))

    async def judged() -> bool:
        await hurry_polls(embedded_redis_url)
        rows, _ = await fetch_deliveries(s, item()["id"])
        return rows[0].status == "dead"

    await workers_until(s, embedded_redis_url, judged)
    (d,), _ = await fetch_deliveries(s, item()["id"])
    assert "did not carry out the mass send: SEND_FAIL" in d.last_error
