"""The items API: roles, refusals by field, idempotent re-ingest, deadlines, pages and links."""

from __future__ import annotations

from tests.support import item, planned


async def test_tokens_and_roles_are_enforced(gk) -> None:
    r = await gk.post("/api/v1/items", json=item())
    assert r.status == 401
    r = await gk.post("/api/v1/items", json=item(), headers={"Authorization": "Bearer nope"})
    assert r.status == 401
    r = await gk.post("/api/v1/items", json=item(), headers=gk.auth("viewer"))
    assert r.status == 403
    r = await gk.get("/api/v1/items/x", headers=gk.auth("viewer"))
    assert r.status == 404
    r = await gk.post("/api/v1/deliveries/1/retry", headers=gk.auth("publisher"))
    assert r.status == 403
    r = await gk.get("/api/v1/deliveries")
    assert r.status == 401


async def test_invalid_item_gets_422_naming_each_field(gk) -> None:
    r = await gk.post(
        "/api/v1/items",
        json=item(disclosure="not_public", approved_by=None),
        headers=gk.auth("publisher"),
    )
    assert r.status == 422
    body = await r.json()
    assert {e["field"] for e in body["errors"]} == {"disclosure", "approved_by"}
    r = await gk.post("/api/v1/items", data=b"{not json", headers=gk.auth("publisher"))
    assert r.status == 422


async def test_personal_numbers_are_refused_in_every_field_by_name(gk) -> None:
    """A mobile number in the issuer, a valid ID-card number in the document number, in a
    catalog entry, the id and a translation: each refused, each named, none echoed."""
    mobile, id_number = "13812345678", "11010519491231002X"
    data = item(
        id=f"gk-{mobile}",
        issuer=f"水务局 {mobile}",
        doc_number=f"伊政发{id_number}",
        catalog={"联系人": f"李四 {mobile}"},
        translations={"mn": {"title": f"ᠮᠡᠳᠡᠭᠳᠡᠯ {mobile}"}},
    )
    r = await gk.post("/api/v1/items", json=data, headers=gk.auth("publisher"))
    assert r.status == 422
    text = await r.text()
    assert mobile not in text and id_number not in text
    fields = [e["field"] for e in (await r.json())["errors"]]
    assert sorted(fields) == sorted(
        ["id", "issuer", "doc_number", "catalog.联系人", "translations.mn.title"]
    )
    r = await gk.get(f"/p/gk-{mobile}")
    assert r.status == 404  # nothing was stored


async def test_unknown_region_and_unknown_policy_are_refused(gk) -> None:
    r = await gk.post("/api/v1/items", json=item(regions=["150628"]), headers=gk.auth("publisher"))
    assert r.status == 422
    assert [e["field"] for e in (await r.json())["errors"]] == ["regions[0]"]
    r = await gk.post(
        "/api/v1/items",
        json=item(id="jd-1", kind="interpretation", interprets="nope"),
        headers=gk.auth("publisher"),
    )
    assert r.status == 422
    assert [e["field"] for e in (await r.json())["errors"]] == ["interprets"]


async def test_post_answers_before_planning_and_the_item_follows_the_job(gk) -> None:
    """The 201 carries the item with its planning pending and no deliveries yet; the planning
    job writes them and the item says how far it got."""
    data = item(regions=["150627100"], channels=["village_group", "web"])
    r = await gk.post("/api/v1/items", json=data, headers=gk.auth("publisher"))
    assert r.status == 201
    body = await r.json()
    assert body["planning"] == {"status": "pending", "planned": 0, "total": None, "error": None}
    assert body["planned"] == [] and body["status"] == "publishing"
    shown = await (await gk.get("/api/v1/items/ejhl-2026-0113", headers=gk.auth("viewer"))).json()
    assert shown["planning"]["status"] == "pending" and shown["deliveries"] == {}
    (answer,) = await planned(gk)
    assert answer.startswith("planned 3 of 3 in ")
    shown = await (await gk.get("/api/v1/items/ejhl-2026-0113", headers=gk.auth("viewer"))).json()
    assert shown["planning"] == {"status": "done", "planned": 3, "total": 3, "error": None}
    assert shown["deliveries"] == {"village_group": {"queued": 2}, "web": {"queued": 1}}
    assert shown["status"] == "publishing"  # planned, not yet sent


async def test_same_id_again_is_idempotent_and_changed_content_conflicts(gk) -> None:
    r1 = await gk.post("/api/v1/items", json=item(), headers=gk.auth("publisher"))
    assert r1.status == 201
    first = await r1.json()
    assert first["planned"] == [] and first["planning"]["status"] == "pending"
    r2 = await gk.post("/api/v1/items", json=item(), headers=gk.auth("publisher"))
    assert r2.status == 200  # before planning: nothing listed, nothing queued twice
    assert (await r2.json())["planned"] == []
    await planned(gk)
    r2 = await gk.post("/api/v1/items", json=item(), headers=gk.auth("publisher"))
    assert r2.status == 200
    second = await r2.json()
    assert [p["channel"] for p in second["planned"]] == ["web"]
    assert second["planning"] == {"status": "done", "planned": 1, "total": 1, "error": None}
    first = second
    r = await gk.get("/api/v1/deliveries?item=ejhl-2026-0113", headers=gk.auth("viewer"))
    assert len((await r.json())["deliveries"]) == 1
    r3 = await gk.post("/api/v1/items", json=item(title="改过的标题"), headers=gk.auth("publisher"))
    assert r3.status == 409
    r = await gk.get("/api/v1/deliveries?item=ejhl-2026-0113&format=csv", headers=gk.auth("viewer"))
    header, row = (await r.text()).strip().splitlines()
    assert r.content_type == "text/csv" and header.startswith("id,item,channel,region,target")
    assert row.startswith(f"{first['planned'][0]['id']},ejhl-2026-0113,web,")


async def test_deadlines_are_stored_on_the_item(gk) -> None:
    r = await gk.post(
        "/api/v1/items", json=item(issued_at="2025-09-05"), headers=gk.auth("publisher")
    )
    body = await r.json()
    # 20 working days after 2025-09-05 cross the National Day holiday and its make-up days.
    assert body["publish_due"] == "2025-10-10"  # Sep 28 and Oct 9-10 count; Oct 1-8 do not
    assert any("after the 20-working-day deadline" in w for w in body["deadline_warnings"])
    assert body["interpretation_due"] is not None


async def test_policy_and_interpretation_pages_link_to_each_other(gk) -> None:
    await gk.post("/api/v1/items", json=item(), headers=gk.auth("publisher"))
    jd = item(
        id="ejhl-2026-0113-jd",
        kind="interpretation",
        interprets="ejhl-2026-0113",
        title="一图读懂低保标准调整",
        doc_number=None,
    )
    r = await gk.post("/api/v1/items", json=jd, headers=gk.auth("publisher"))
    assert r.status == 201, await r.text()
    policy_page = await (await gk.get("/p/ejhl-2026-0113")).text()
    assert 'href="http://gongkai.test/p/ejhl-2026-0113-jd"' in policy_page
    assert "一图读懂低保标准调整" in policy_page
    jd_page = await (await gk.get("/p/ejhl-2026-0113-jd")).text()
    assert 'href="http://gongkai.test/p/ejhl-2026-0113"' in jd_page
    assert "关于2026年城乡低保标准调整的通知" in jd_page
    feed = await (await gk.get("/feed.xml")).text()
    assert feed.count("<entry>") == 2 and "<id>http://gongkai.test/p/ejhl-2026-0113-jd</id>" in feed


async def test_page_escapes_html_in_the_body(gk) -> None:
    await gk.post(
        "/api/v1/items",
        json=item(body="<script>alert(1)</script> **要点**"),
        headers=gk.auth("publisher"),
    )
    page = await (await gk.get("/p/ejhl-2026-0113")).text()
    assert "<script>alert(1)</script>" not in page
    assert "<strong>要点</strong>" in page


async def test_scheduled_item_is_not_public_yet(gk) -> None:
    r = await gk.post(
        "/api/v1/items",
        json=item(publish_at="2099-01-01T08:00:00+08:00"),
        headers=gk.auth("publisher"),
    )
    body = await r.json()
    assert body["status"] == "scheduled"
    await planned(gk)
    r = await gk.get("/api/v1/items/ejhl-2026-0113/deliveries", headers=gk.auth("viewer"))
    assert [d["status"] for d in (await r.json())["deliveries"]] == ["scheduled"]
    assert (await gk.get("/p/ejhl-2026-0113")).status == 404


async def test_recall_replaces_the_page_with_a_withdrawal_notice(gk) -> None:
    await gk.post("/api/v1/items", json=item(), headers=gk.auth("publisher"))
    r = await gk.post("/api/v1/items/ejhl-2026-0113/recall", headers=gk.auth("viewer"))
    assert r.status == 403
    r = await gk.post("/api/v1/items/ejhl-2026-0113/recall", headers=gk.auth("publisher"))
    assert r.status == 200
    page = await gk.get("/p/ejhl-2026-0113")
    assert page.status == 410
    text = await page.text()
    assert "本信息已撤回" in text and "城乡低保标准每人每月提高60元" not in text
    assert "<entry>" not in await (await gk.get("/feed.xml")).text()


async def test_healthz_metrics_and_openapi(gk) -> None:
    r = await gk.get("/healthz")
    assert r.status == 200 and (await r.json())["checks"] == {"database": "ok", "redis": "ok"}
    await gk.post("/api/v1/items", json=item(), headers=gk.auth("publisher"))
    assert "gongkai_queue_depth 1.0" in await (await gk.get("/metrics")).text()  # its planning
    await planned(gk)
    metrics = await (await gk.get("/metrics")).text()
    assert 'gongkai_deliveries{channel="web",status="queued"} 1.0' in metrics
    assert "gongkai_queue_depth 1.0" in metrics  # its one delivery job
    spec = await (await gk.get("/api/v1/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/items" in spec["paths"] and "Item" in spec["components"]["schemas"]
