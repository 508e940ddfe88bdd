"""Publishing from the console: the form, the upload, previews, the API's refusals, schedules."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import aiohttp
import yaml

from gongkai.storage.models import Item
from tests.support import fetch_deliveries, item, plan_now

VILLAGE = "150627100201"


def form(**overrides: Any) -> list[tuple[str, str]]:
    """The form as a browser posts it: one pair per input; unchecked boxes are absent."""
    fields = {
        "id": "notice-7",
        "kind": "notice",
        "title": "关于巴图塔嘎查停水的通知",
        "issued_at": "2026-11-20",
        "domain": "市政服务",
        "disclosure": "public",
        "approved_by": "王某",
        "approved_at": "2026-11-20T09:30",
        "secrecy_reviewed": "on",
        "summary": "11月25日全天停水。",
        "body": "因管网维修，\r\n11月25日全天停水。",
        "tr.mn.title": "ᠤᠰᠤ ᠵᠣᠭᠰᠣᠭᠠᠬᠤ ᠮᠡᠳᠡᠭᠳᠡᠯ",
    }
    fields.update({k: v for k, v in overrides.items() if v is not None and k != "channels"})
    for k, v in overrides.items():
        if v is None:
            fields.pop(k, None)
    pairs = [(k, v) for k, v in fields.items() if not isinstance(v, list)]
    pairs.append(("regions", VILLAGE))
    for channel in overrides.get("channels", ["web", "village_group"]):
        pairs.append(("channels", channel))
    return pairs


def errors_on_page(page: str) -> set[tuple[str, str]]:
    found = re.findall(r'data-field="([^"]+)"><code>[^<]*</code>：([^<]*)</a>', page)
    return {(html.unescape(f), html.unescape(m)) for f, m in found}


def preview_hash(page: str) -> str:
    match = re.search(r'name="preview_hash" value="([0-9a-f]+)"', page)
    assert match, "no publish button: the preview did not succeed"
    return match.group(1)


async def test_preview_every_channel_and_language_then_publish(site) -> None:
    publisher = await site.login("publisher")
    page = await publisher.text("/admin/publish")
    assert 'value="publisher-user"' in page  # the approver defaults to the signed-in user
    r = await publisher.post("/admin/publish", [*form(), ("action", "preview")])
    page = await r.text()
    assert r.status == 200, errors_on_page(page)
    assert "公开 页面" not in page and "语言 zh · 公开页面" in page
    assert (
        "村民微信群（企业微信群机器人）" in page and "语言 mn+zh · 巴图塔嘎查 150627100201" in page
    )
    assert "ᠤᠰᠤ ᠵᠣᠭᠰᠣᠭᠠᠬᠤ ᠮᠡᠳᠡᠭᠳᠡᠯ" in page and 'class="message has-mong"' in page
    assert "http://gongkai.test/p/notice-7" in page
    async with site.maker() as session:
        assert await session.get(Item, "notice-7") is None  # a preview sends nothing
    digest = preview_hash(page)
    r = await publisher.post(
        "/admin/publish", [*form(), ("action", "publish"), ("preview_hash", digest)]
    )
    assert r.status == 200 and r.url.path == "/admin/items/notice-7"
    page = await r.text()
    assert "已开始发送：正在规划投递" in page and 'data-planning="pending"' in page
    assert "等待规划投递（排队中）" in page
    await plan_now(site.settings, site.redis_url)
    page = await (await publisher.get("/admin/items/notice-7")).text()
    assert 'data-planning="done"' in page and "投递已全部规划：2 条" in page
    rows, _ = await fetch_deliveries(site.settings, "notice-7")
    assert sorted(d.channel for d in rows) == ["village_group", "web"]
    vg = next(d for d in rows if d.channel == "village_group")
    content = vg.payload["parts"][0]["markdown"]["content"]
    assert html.escape(content, quote=False).split("\n")[0] in page  # previewed = stored
    async with site.maker() as session:
        stored = await session.get(Item, "notice-7")
    assert stored.body == "因管网维修，\n11月25日全天停水。"  # the browser's CRLF is not kept
    assert stored.approved_at.isoformat() == "2026-11-20T01:30:00+00:00"  # 09:30 in Shanghai
    assert stored.created_by == "publisher-user"


async def test_a_changed_form_is_previewed_again_not_sent(site) -> None:
    publisher = await site.login("publisher")
    page = await (await publisher.post("/admin/publish", [*form(), ("action", "preview")])).text()
    digest = preview_hash(page)
    r = await publisher.post(
        "/admin/publish",
        [*form(title="改过的标题"), ("action", "publish"), ("preview_hash", digest)],
    )
    page = await r.text()
    assert r.status == 200 and "内容在预览后有改动" in page and "改过的标题" in page
    async with site.maker() as session:
        assert await session.get(Item, "notice-7") is None


async def test_refusals_are_the_apis_shown_next_to_each_input(site) -> None:
    publisher = await site.login("publisher")
    bad = form(
        disclosure="not_public",
        approved_by=None,
        secrecy_reviewed=None,
        body="联系人电话13812345678",
    )
    r = await publisher.post("/admin/publish", [*bad, ("action", "preview")])
    page = await r.text()
    assert r.status == 422
    shown = errors_on_page(page)
    # the same item through the API
    data = item(
        id="notice-7",
        kind="notice",
        title="关于巴图塔嘎查停水的通知",
        issued_at="2026-11-20",
        domain="市政服务",
        disclosure="not_public",
        approved_by=None,
        secrecy_reviewed=False,
        approved_at="2026-11-20T09:30:00+08:00",
        summary="11月25日全天停水。",
        body="联系人电话13812345678",
        regions=[VILLAGE],
        channels=["web", "village_group"],
        doc_number=None,
        issuer=None,
        translations={"mn": {"title": "ᠤᠰᠤ ᠵᠣᠭᠰᠣᠭᠠᠬᠤ ᠮᠡᠳᠡᠭᠳᠡᠯ"}},
    )
    api = await publisher.http.post(
        "/api/v1/items", json=data, headers={"X-CSRF-Token": publisher.csrf}
    )
    assert api.status == 422
    assert shown == {(e["field"], e["message"]) for e in (await api.json())["errors"]}
    assert {f for f, _ in shown} == {"disclosure", "approved_by", "secrecy_reviewed", "body"}
    for name in ("disclosure", "approved_by", "secrecy_reviewed", "body"):
        assert f'aria-describedby="f-{name}-err"' in page
        assert f'id="f-{name}-err"' in page
    assert "138****5678" in page  # the refusal itself never repeats the number
    assert 'id="publish-button"' not in page


async def test_the_preview_refuses_personal_numbers_in_every_field_by_name(site) -> None:
    """Issuer, document number, catalog (a form input and an extra key riding in the hidden
    JSON) and a translation: the preview names each field, as the API does, and sends nothing."""
    publisher = await site.login("publisher")
    extra = json.dumps({"catalog": {"联系人": "李四 13812345678"}}, ensure_ascii=False)
    bad = form(
        issuer="水务局 13812345678",
        doc_number="伊政发11010519491231002X",
        **{
            "catalog.subject": "联系 13912345678",
            "tr.mn.title": "ᠮᠡᠳᠡᠭᠳᠡᠯ 13812345678",
            "extra_json": extra,
        },
    )
    r = await publisher.post("/admin/publish", [*bad, ("action", "preview")])
    assert r.status == 422
    page = await r.text()
    shown = errors_on_page(page)
    assert {f for f, _ in shown} == {"issuer", "doc_number", "catalog.subject", "catalog.联系人",
                                     "translations.mn.title"}  # fmt: skip
    for name in ("issuer", "doc_number", "catalog-subject", "tr-mn-title"):
        assert f'id="f-{name}-err"' in page  # next to its input, too
    assert all("13812345678" not in m and "11010519491231002X" not in m for _, m in shown)
    assert 'id="publish-button"' not in page
    async with site.maker() as session:
        assert await session.get(Item, "notice-7") is None


async def test_unknown_region_and_taken_id_are_refused_before_sending(site) -> None:
    publisher = await site.login("publisher")
    r = await publisher.post(
        "/admin/publish", [*form(), ("regions", "150699"), ("action", "preview")]
    )
    assert r.status == 422
    page = await r.text()
    assert ("regions[1]", "区划 150699 不在目录中 / unknown region") in errors_on_page(page)
    assert "150699（不在目录中）" in page and 'aria-describedby="f-regions-err"' in page
    await publisher.http.post(
        "/api/v1/items", json=item(id="notice-7"), headers={"X-CSRF-Token": publisher.csrf}
    )
    r = await publisher.post("/admin/publish", [*form(), ("action", "preview")])
    assert r.status == 422 and "编号 notice-7 已被另一条目使用" in await r.text()


async def test_an_uploaded_file_fills_the_form_and_is_previewed_first(site) -> None:
    publisher = await site.login("publisher")
    data = item(
        id="upload-1",
        regions=[VILLAGE],
        channels=["village_group"],
        catalog={"basis": "《社会救助暂行办法》", "extra_field": "kept"},
        translations={
            "mn": {"title": "ᠮᠣᠩᠭᠣᠯ"},
            "ug": {"title": "ئۇيغۇرچە"},
            "ko": {"title": "조선어"},
        },
    )
    upload = aiohttp.FormData()
    upload.add_field(
        "item_file",
        yaml.safe_dump(data, allow_unicode=True).encode(),
        filename="item.yaml",
        content_type="application/yaml",
    )
    r = await publisher.post("/admin/publish", upload)
    page = await r.text()
    assert r.status == 200, errors_on_page(page)
    assert "已读取文件 <code>item.yaml</code>" in page
    assert 'name="id" type="text" value="upload-1"' in page
    assert 'value="150627100201" selected' in page
    assert "《社会救助暂行办法》" in page and "ئۇيغۇرچە" in page
    extra = json.loads(
        html.unescape(re.search(r'name="extra_json" value="([^"]*)"', page).group(1))
    )
    assert extra == {
        "catalog": {"extra_field": "kept"},
        "translations": {"ko": {"title": "조선어"}},
    }
    async with site.maker() as session:
        assert await session.get(Item, "upload-1") is None
    # the browser posts the filled form back: it publishes what the file said
    posted = [
        ("id", "upload-1"),
        ("kind", "policy"),
        ("title", data["title"]),
        ("doc_number", data["doc_number"]),
        ("issuer", data["issuer"]),
        ("issued_at", "2026-11-02"),
        ("domain", "社会救助"),
        ("disclosure", "public"),
        ("approved_by", "王某"),
        ("approved_at", "2026-11-20T09:30"),
        ("secrecy_reviewed", "on"),
        ("regions", VILLAGE),
        ("channels", "village_group"),
        ("summary", data["summary"]),
        ("body", data["body"].replace("\n", "\r\n")),
        ("tr.mn.title", "ᠮᠣᠩᠭᠣᠯ"),
        ("tr.ug.title", "ئۇيغۇرچە"),
        ("catalog.basis", "《社会救助暂行办法》"),
        ("extra_json", json.dumps(extra)),
        ("action", "publish"),
        ("preview_hash", preview_hash(page)),
    ]
    r = await publisher.post("/admin/publish", posted)
    assert r.url.path == "/admin/items/upload-1", errors_on_page(await r.text())
    async with site.maker() as session:
        stored = await session.get(Item, "upload-1")
    assert stored.translations["ko"] == {"title": "조선어"}
    assert stored.catalog == {"basis": "《社会救助暂行办法》", "extra_field": "kept"}


async def test_a_bad_file_is_refused_by_name(site) -> None:
    publisher = await site.login("publisher")
    for content, field in (
        (b"id: [unclosed", "(file)"),
        (b"- a list", "(file)"),
        (yaml.safe_dump({**item(), "colour": "red"}).encode(), "colour"),
    ):
        upload = aiohttp.FormData()
        upload.add_field("item_file", content, filename="bad.yaml")
        r = await publisher.post("/admin/publish", upload)
        assert r.status == 422
        assert field in {f for f, _ in errors_on_page(await r.text())}


async def test_a_scheduled_item_waits(site) -> None:
    publisher = await site.login("publisher")
    pairs = [*form(publish_at="2099-01-01T08:00"), ("action", "preview")]
    page = await (await publisher.post("/admin/publish", pairs)).text()
    assert "确认发布（定时，2099-01-01 08:00）" in page
    r = await publisher.post(
        "/admin/publish", [*pairs[:-1], ("action", "publish"), ("preview_hash", preview_hash(page))]
    )
    assert "已定时：正在规划投递" in await r.text()
    await plan_now(site.settings, site.redis_url)
    rows, _ = await fetch_deliveries(site.settings, "notice-7")
    assert {d.status for d in rows} == {"scheduled"}


async def test_viewers_cannot_publish(site) -> None:
    viewer = await site.login("viewer")
    assert (await viewer.get("/admin/publish")).status == 403
    r = await viewer.post("/admin/publish", [*form(), ("action", "preview")])
    assert r.status == 403
    assert 'href="/admin/publish"' not in await viewer.text("/admin/")
