"""One request must never freeze or crash the service: every input found by probing is refused
with a 4xx naming what is wrong, within a second, storing nothing — and the rest of the service
keeps answering meanwhile. (The console's share is in tests/console/test_admin_hostile.py.)

The ``gk`` fixture fails any of these tests on teardown if a request ended in an unhandled
exception, so "not a 500" is checked twice.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func
from sqlmodel import select

from gongkai.storage.db import make_engine, make_sessionmaker
from gongkai.storage.models import Delivery, Item
from gongkai.web import errors
from tests.support import item

SECOND = 1.0


async def timed(request: Awaitable[aiohttp.ClientResponse]) -> tuple[aiohttp.ClientResponse, bytes]:
    """The response and its body, asserting the whole exchange took under a second."""
    started = time.monotonic()
    r = await request
    body = await r.read()
    elapsed = time.monotonic() - started
    assert elapsed < SECOND, f"{r.method} {r.url} took {elapsed:.2f} s"
    return r, body


async def stored(gk: Any) -> tuple[int, int]:
    """(items, deliveries) in the database."""
    engine = make_engine(gk.settings.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            items = (await session.exec(select(func.count()).select_from(Item))).one()
            deliveries = (await session.exec(select(func.count()).select_from(Delivery))).one()
            return items, deliveries
    finally:
        await engine.dispose()


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


HOSTILE_ITEMS = [
    ("issued_at", item(issued_at="9999-12-31")),
    ("issued_at", item(issued_at="0001-01-01")),
    ("approved_at", item(approved_at="0001-01-01T00:00:00+14:00")),
    ("approved_at", item(approved_at="2100-12-31T23:00:00-14:00")),  # 2101 in UTC
    ("publish_at", item(publish_at="3000-01-01T00:00:00+08:00")),
    ("wechat.tag_id", item(wechat={"mass_send": True, "tag_id": 10**30})),
    ("title", item(title="停水\x00通知")),
    ("issuer", item(issuer="水务局\n抄送")),
    ("body", item(body="正文\x1b[31m")),
    ("body", item(body="长" * 200_001)),
    ("summary", item(summary="短" * 5001)),
    ("regions", item(regions=["150627"] * 1001)),
    ("catalog", item(catalog={"basis": "《办法》", "extra": [["nested"]]})),
]


@pytest.mark.parametrize(("field", "data"), HOSTILE_ITEMS, ids=[f for f, _ in HOSTILE_ITEMS])
async def test_an_out_of_bounds_item_is_a_422_naming_the_field(
    gk: Any, field: str, data: dict[str, Any]
) -> None:
    r, body = await timed(gk.post("/api/v1/items", json=data, headers=gk.auth("publisher")))
    assert r.status == 422, body[:500]
    answer = json.loads(body)
    assert answer["error"] == "invalid item"
    assert field in {e["field"] for e in answer["errors"]}, answer
    assert await stored(gk) == (0, 0)


RAW_BODIES = [
    ("fifty thousand brackets", b"[" * 50_000, 422),
    ("a catalog 900 deep", json.dumps(item(catalog=nested(900))).encode(), 422),
    ("balanced but 33 deep", b"[" * 33 + b"]" * 33, 422),
    ("infinity", json.dumps(item(urgent=True)).replace("true}", "1e400}").encode(), 422),
    ("NaN", b'{"id": NaN}', 422),
    ("not UTF-8", json.dumps(item(), ensure_ascii=False).encode().replace(b"\xe5", b"\xff"), 400),
]


@pytest.mark.parametrize(("name", "raw", "status"), RAW_BODIES, ids=[n for n, _, _ in RAW_BODIES])
async def test_a_hostile_body_is_refused_by_the_body_field(
    gk: Any, name: str, raw: bytes, status: int
) -> None:
    headers = {**gk.auth("publisher"), "Content-Type": "application/json"}
    r, body = await timed(gk.post("/api/v1/items", data=raw, headers=headers))
    assert r.status == status, body[:500]
    answer = json.loads(body)
    assert answer["errors"][0]["field"] == "(body)"
    assert await stored(gk) == (0, 0)


async def test_a_body_over_the_cap_is_a_413(gk: Any) -> None:
    headers = {**gk.auth("publisher"), "Content-Type": "application/json"}
    r, _ = await timed(gk.post("/api/v1/items", data=b" " * (4 * 1024 * 1024 + 1), headers=headers))
    assert r.status == 413
    assert await stored(gk) == (0, 0)


async def test_the_body_is_utf8_whatever_the_charset_claims(gk: Any) -> None:
    headers = {**gk.auth("publisher"), "Content-Type": "application/json; charset=bogus"}
    raw = json.dumps(item(), ensure_ascii=False).encode("utf-8")
    r, body = await timed(gk.post("/api/v1/items", data=raw, headers=headers))
    assert r.status == 201, body[:500]
    assert json.loads(body)["title"] == item()["title"]
    headers["Content-Type"] = "application/json; charset=latin-1"  # a lie: it is UTF-8
    r, _ = await timed(gk.post("/api/v1/items", data=raw, headers=headers))
    assert r.status == 200  # the very same item again, not a garbled conflicting one


DELIVERY_QUERIES = [
    ("after", "after=99999999999999999999"),
    ("after", "after=-1"),
    ("after", "after=2147483648"),
    ("after", "after=" + "9" * 5000),
    ("limit", "limit=99999999999999999999"),
    ("limit", "limit=-1"),
    ("limit", "limit=0"),
    ("limit", "limit=10001"),
    ("since", "since=0001-01-01"),
    ("since", "since=1948-12-31T23:59:59%2B00:00"),
    ("until", "until=9999-12-31T23:59:59-14:00"),
    ("until", "until=2100-12-31T23:59:59-14:00"),
    ("until", "until=9999-12-31&format=csv"),
    ("item", "item=" + "x" * 201),
]


@pytest.mark.parametrize(("field", "query"), DELIVERY_QUERIES)
async def test_delivery_log_query_out_of_bounds_is_a_400_naming_it(
    gk: Any, field: str, query: str
) -> None:
    r, body = await timed(gk.get(f"/api/v1/deliveries?{query}", headers=gk.auth("viewer")))
    assert r.status == 400, body[:500]
    answer = json.loads(body)
    assert answer["error"] == "invalid query"
    assert answer["errors"][0]["field"] == field


async def test_the_edges_of_the_window_are_accepted(gk: Any) -> None:
    for query in (
        "since=1949-01-01",
        "until=2100-12-31T23:59:59",
        "since=1949-01-01T00:00:00%2B00:00",
        "until=2100-12-31T23:59:59%2B00:00",
        "limit=10000&after=2147483647",
        "limit=1",
    ):
        r, body = await timed(gk.get(f"/api/v1/deliveries?{query}", headers=gk.auth("viewer")))
        assert r.status == 200, (query, body[:300])
        assert json.loads(body)["deliveries"] == []


async def test_ids_past_the_columns_range_are_not_found(gk: Any) -> None:
    for delivery_id in ("99999999999999999999", "2147483648", "0"):
        r, _ = await timed(
            gk.post(f"/api/v1/deliveries/{delivery_id}/retry", headers=gk.auth("admin"))
        )
        assert r.status == 404


async def test_unanswered_questions_since_year_one_is_a_400(gk: Any) -> None:
    for query, field in (
        ("since=0001-01-01", "since"),
        ("since=1948-12-31", "since"),
        ("since=9999-12-31T23:59:59-14:00", "since"),
        ("limit=99999999999999999999", "limit"),
    ):
        r, body = await timed(
            gk.get(f"/api/v1/questions/unanswered?{query}", headers=gk.auth("viewer"))
        )
        assert r.status == 400, body[:300]
        assert json.loads(body)["errors"][0]["field"] == field
    r, body = await timed(
        gk.get("/api/v1/questions/unanswered?since=1949-01-01", headers=gk.auth("viewer"))
    )
    assert r.status == 200, body[:300]  # the window's first day, on the county's clock


TELEGRAM = {"X-Telegram-Bot-Api-Secret-Token": "hook-secret"}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"update_id": 1e400}',
        b'{"update_id": 99999999999999999999999}',
        b'{"update_id": "1"}',
        b"[" * 100_000,
        b'{"update_id": 1, "message": ' + b"[" * 1000 + b"]" * 1000 + b"}",
        b"\xff\xfe",
    ],
    ids=["1e400", "past 64 bits", "a string", "100k brackets", "1000 deep", "not UTF-8"],
)
async def test_telegram_bodies_that_cannot_be_updates_are_a_400(gk: Any, raw: bytes) -> None:
    r, _ = await timed(gk.post("/telegram/ordos", data=raw, headers=TELEGRAM))
    assert r.status == 400


async def test_health_answers_while_hostile_requests_are_processed(gk: Any) -> None:
    """The loop is never held: /healthz answers in under a second while the worst bodies and
    dates are in flight."""
    headers = {**gk.auth("publisher"), "Content-Type": "application/json"}
    hostile = [
        gk.post("/api/v1/items", data=b"[" * (4 * 1024 * 1024 - 1), headers=headers),
        gk.post("/api/v1/items", json=item(issued_at="0001-01-01"), headers=headers),
        gk.post(
            "/api/v1/items", json=item(publish_at="3000-01-01T00:00:00+08:00"), headers=headers
        ),
        gk.get("/api/v1/deliveries?since=0001-01-01", headers=gk.auth("viewer")),
    ]
    tasks = [asyncio.ensure_future(h) for h in hostile]
    started = time.monotonic()
    health = await gk.get("/healthz")
    await health.read()
    assert time.monotonic() - started < SECOND
    assert health.status == 200
    for task in tasks:
        r = await task
        await r.read()
        assert 400 <= r.status < 500


async def test_every_answer_carries_a_request_id(gk: Any) -> None:
    ids = set()
    for r in (
        await gk.get("/healthz"),
        await gk.get("/api/v1/deliveries?limit=-1", headers=gk.auth("viewer")),
        await gk.get("/api/v1/items/nope", headers=gk.auth("viewer")),
        await gk.get("/no/such/page"),
    ):
        assert len(r.headers["X-Request-Id"]) >= 8
        ids.add(r.headers["X-Request-Id"])
    assert len(ids) == 4
    r = await gk.get("/healthz", headers={"X-Request-Id": "proxy-1234abcd"})
    assert r.headers["X-Request-Id"] == "proxy-1234abcd"
    r = await gk.get("/healthz", headers={"X-Request-Id": "<script>"})
    assert r.headers["X-Request-Id"] != "<script>"


async def test_an_unhandled_exception_is_a_500_with_its_request_id_and_is_recorded() -> None:
    app = web.Application()
    errors.install(app)

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("secret detail")

    app.router.add_get("/api/v1/broken", broken)
    app.router.add_get("/p/broken", broken)
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/api/v1/broken")
        body = await r.json()
        assert r.status == 500
        assert body == {"error": "internal error", "request_id": r.headers["X-Request-Id"]}
        r = await client.get("/p/broken")
        text = await r.text()
        assert r.status == 500 and r.content_type == "text/plain"
        assert r.headers["X-Request-Id"] in text
        assert "secret detail" not in text and "Traceback" not in text
    assert [(m, p) for m, p, _, _ in app[errors.UNHANDLED]] == [
        ("GET", "/api/v1/broken"),
        ("GET", "/p/broken"),
    ]


async def test_a_nul_in_the_url_is_a_400_before_any_query(gk: Any) -> None:
    for path in (
        "/api/v1/items/a%00b",
        "/api/v1/deliveries?item=a%00b",
        "/p/a%00b",
        "/admin/items?q=%00",
    ):
        r, body = await timed(gk.get(path, headers=gk.auth("viewer")))
        assert r.status == 400, (path, body[:300])


@pytest.mark.postgres
async def test_the_bounds_hold_on_postgresql(
    tmp_path: Any, postgres_url: str, embedded_redis_url: str, redis: object
) -> None:
    """PostgreSQL is stricter than SQLite: 32-bit ids and no NUL in text. What SQLite shrugs off
    would be a driver error there, so the same hostile requests are run against it."""
    import uuid

    from sqlalchemy import text

    from gongkai.storage.models import Role
    from tests.support import prepare_db, running_app, settings_for, token

    name = f"hostile_{uuid.uuid4().hex[:8]}"  # its own database: others share this server
    engine = make_engine(postgres_url)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f"CREATE DATABASE {name}"))
    await engine.dispose()
    s = settings_for(tmp_path, database_url=postgres_url.rsplit("/", 1)[0] + "/" + name)
    await prepare_db(s)
    auth = {role: {"Authorization": f"Bearer {await token(s, role)}"} for role in Role}
    async with running_app(s, embedded_redis_url) as client:
        for path, status in (
            ("/api/v1/deliveries?after=2147483647&limit=10000", 200),
            ("/api/v1/deliveries?after=2147483648", 400),
            ("/api/v1/deliveries?since=1949-01-01&until=2100-12-31", 200),
            ("/api/v1/items/a%00b", 400),
            ("/api/v1/deliveries?region=%00", 400),
        ):
            r, body = await timed(client.get(path, headers=auth[Role.viewer]))
            assert r.status == status, (path, body[:300])
        r, _ = await timed(
            client.post("/api/v1/deliveries/2147483648/retry", headers=auth[Role.admin])
        )
        assert r.status == 404
        r, body = await timed(
            client.post(
                "/api/v1/items", json=item(title="停水\x00通知"), headers=auth[Role.publisher]
            )
        )
        assert r.status == 422 and b"title" in body
        r, _ = await timed(
            client.post("/admin/login", data={"name": "a\x00b", "password": "x", "csrf": "x"})
        )
        assert r.status == 400


async def test_running_app_fails_a_test_whose_request_ended_unhandled(
    tmp_path: Any, embedded_redis_url: str, redis: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard every app-level test relies on: an unhandled exception in any request fails
    the test on teardown even though the test itself was satisfied with the 500."""
    from gongkai.web import api
    from tests.support import prepare_db, running_app, settings_for

    def boom(server: str) -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(api, "openapi_document", boom)
    s = settings_for(tmp_path)
    await prepare_db(s, directory=None)
    with pytest.raises(AssertionError, match="unhandled exception"):
        async with running_app(s, embedded_redis_url) as client:
            r = await client.get("/api/v1/openapi.json")
            assert r.status == 500
            assert (await r.json())["request_id"] == r.headers["X-Request-Id"]
