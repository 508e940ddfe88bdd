"""The console's share of hostile input: filters, ids and quarters out of bounds are refused
naming the parameter, a "billion laughs" upload is refused small and fast, and a redirect target
with CR/LF never reaches a header. (The API's share: tests/web/test_hostile_input.py.)"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func
from sqlmodel import select

from gongkai.storage.models import Item
from tests.console.conftest import csrf_in
from tests.support import fetch_deliveries, ingest, item, run_workers

SECOND = 1.0

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


async def timed(request: Awaitable[aiohttp.ClientResponse]) -> tuple[aiohttp.ClientResponse, str]:
    started = time.monotonic()
    r = await request
    text = await r.text()
    elapsed = time.monotonic() - started
    assert elapsed < SECOND, f"{r.method} {r.url} took {elapsed:.2f} s"
    return r, text


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/admin/deliveries?after=99999999999999999999", "after"),
        ("/admin/deliveries?after=2147483648", "after"),
        ("/admin/deliveries?since=0001-01-01", "since"),
        ("/admin/deliveries?until=9999-12-31", "until"),
        ("/admin/deliveries.csv?since=0001-01-01", "since"),
        ("/admin/deliveries.csv?until=9999-12-31", "until"),
        ("/admin/deliveries.csv?after=99999999999999999999", "after"),
        ("/admin/items?until=9999-12-31", "until"),
        ("/admin/items?since=0001-01-01", "since"),
        ("/admin/items?page=99999999999999999999", "page"),
        ("/admin/items?page=100001", "page"),
    ],
)
async def test_console_filters_out_of_bounds_are_a_400_naming_them(
    site: Any, path: str, field: str
) -> None:
    viewer = await site.login("viewer")
    r, page = await timed(viewer.get(path))
    assert r.status == 400, page[:500]
    assert f"{field}：" in page
    assert "1949-01-01" in page or "1–" in page  # says what the bounds are


async def test_quarters_and_ids_out_of_bounds(site: Any) -> None:
    viewer = await site.login("viewer")
    for path in ("/admin/report?quarter=9999Q4", "/admin/report?quarter=1948Q4"):
        r, page = await timed(viewer.get(path))
        assert r.status == 400 and "季度" in page
    r, _ = await timed(viewer.get("/admin/report.csv?quarter=9999Q4"))
    assert r.status == 400
    for delivery_id in ("99999999999999999999", "2147483648"):
        r, _ = await timed(viewer.get(f"/admin/deliveries/{delivery_id}"))
        assert r.status == 404
    r, page = await timed(viewer.get("/admin/report?quarter=2100Q4"))
    assert r.status == 200, page[:300]


async def test_a_billion_laughs_upload_is_refused_small_and_fast(site: Any) -> None:
    publisher = await site.login("publisher")
    upload = aiohttp.FormData()
    upload.add_field(
        "item_file", BILLION_LAUGHS.encode(), filename="bomb.yaml", content_type="application/yaml"
    )
    r, page = await timed(publisher.post("/admin/publish", upload))
    assert r.status == 422
    assert len(page.encode()) < 200_000, len(page.encode())
    assert "aliases are expanded" in page
    async with site.maker() as session:
        assert (await session.exec(select(func.count()).select_from(Item))).one() == 0


async def test_an_upload_with_a_far_date_or_a_deep_catalog_is_refused_by_field(site: Any) -> None:
    publisher = await site.login("publisher")
    for content, field in (
        (b"id: x\nissued_at: 0001-01-01\napproved_at: 0001-01-01T00:00:00+14:00\n", "issued_at"),
        (b"catalog: " + b"[" * 40 + b"]" * 40 + b"\n", "(file)"),
        (b"issued_at: 2026-13-45\n", "(file)"),
    ):
        upload = aiohttp.FormData()
        upload.add_field("item_file", content, filename="item.yaml")
        r, page = await timed(publisher.post("/admin/publish", upload))
        assert r.status == 422, page[:300]
        assert field in page
    async with site.maker() as session:
        assert (await session.exec(select(func.count()).select_from(Item))).one() == 0


async def test_a_deep_hidden_json_field_is_ignored_not_a_crash(site: Any) -> None:
    publisher = await site.login("publisher")
    r, page = await timed(
        publisher.post("/admin/publish", {"extra_json": "[" * 100_000, "action": "preview"})
    )
    assert r.status == 422 and "id" in page


@pytest.mark.parametrize(
    "target",
    [
        "/admin/items\r\nSet-Cookie: owned=1",
        "/admin/items\nX-Injected: 1",
        "https://evil.example/admin/",
        "//evil.example/admin/",
        "/admin/\\evil",
    ],
)
async def test_login_next_never_leaves_the_console_or_splits_a_header(
    site: Any, target: str
) -> None:
    http = site.browser()
    r = await http.get("/admin/login", params={"next": target})
    form = await r.text()
    assert r.status == 200
    r = await http.post(
        "/admin/login",
        data={
            "name": "viewer-user",
            "password": "viewer-pass-1",
            "csrf": csrf_in(form),
            "next": target,
        },
        allow_redirects=False,
    )
    assert r.status == 303
    assert r.headers["Location"] == "/admin/"
    assert "owned" not in r.headers.get("Set-Cookie", "") and "X-Injected" not in r.headers


async def test_login_next_keeps_a_console_path_with_a_chinese_query(site: Any) -> None:
    http = site.browser()
    form = await (await http.get("/admin/login")).text()
    r = await http.post(
        "/admin/login",
        data={
            "name": "viewer-user",
            "password": "viewer-pass-1",
            "csrf": csrf_in(form),
            "next": "/admin/items?q=低保",
        },
        allow_redirects=False,
    )
    assert r.status == 303
    assert r.headers["Location"] == "/admin/items?q=%E4%BD%8E%E4%BF%9D"


async def test_retry_back_with_crlf_goes_to_the_delivery_instead(site: Any) -> None:
    site.robot.fail_next = [500, 500]  # max_attempts is 2: the delivery dies
    await ingest(
        site.settings, site.redis_url, item(regions=["150627100202"], channels=["village_group"])
    )
    await run_workers(site.settings, site.redis_url)
    (d,), _ = await fetch_deliveries(site.settings)
    assert d.status == "dead"
    admin = await site.login("admin")
    r = await admin.post(
        f"/admin/deliveries/{d.id}/retry",
        {"back": "/admin/\r\nSet-Cookie: owned=1"},
        allow_redirects=False,
    )
    assert r.status == 303
    assert r.headers["Location"] == f"/admin/deliveries/{d.id}"
    assert "owned" not in r.headers.get("Set-Cookie", "")


async def test_faq_text_from_the_console_has_the_item_text_rules(site: Any) -> None:
    from gongkai.faq.text import normalize_question
    from gongkai.storage.models import Question

    async with site.maker() as session:
        session.add(
            Question(
                platform="wechat",
                language="zh",
                text="低保怎么申请",
                normalized=normalize_question("低保怎么申请"),
            )
        )
        await session.commit()
    publisher = await site.login("publisher")
    r, page = await timed(
        publisher.post(
            "/admin/questions/faq",
            {
                "normalized": normalize_question("低保怎么申请"),
                "question": "低保怎么申请",
                "keywords": "低保 申请",
                "answer": "到乡镇政府申请\x07",
                "domain": "",
            },
        )
    )
    assert r.status == 422 and "U+0007" in page
    r, page = await timed(
        publisher.post("/admin/questions/faq", {"normalized": "a\x00b", "question": "q"})
    )
    assert r.status == 400


async def test_the_publish_form_with_far_dates_is_refused_by_field(site: Any) -> None:
    publisher = await site.login("publisher")
    form = {
        k: v
        for k, v in item(regions=None, channels=None).items()
        if isinstance(v, str) and k not in ("approved_at",)
    }
    form.update(
        issued_at="0001-01-01",
        approved_at="0001-01-01T00:00",
        publish_at="9999-12-31T23:59",
        regions="150627",
        action="preview",
    )
    r, page = await timed(publisher.post("/admin/publish", form))
    assert r.status == 422, page[:300]
    for field in ("f-issued_at", "f-approved_at", "f-publish_at"):
        assert f'id="{field}-err"' in page, field
    async with site.maker() as session:
        assert (await session.exec(select(func.count()).select_from(Item))).one() == 0
