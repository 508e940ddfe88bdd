"""Applications in the console: a clerk registers a visit, the file goes through its steps with
forms, the list and the deadlines board show working days left, the letter prints, viewers see
applicants masked, and the yearly table renders as a page and CSV."""

from __future__ import annotations

import re

from tests.console.conftest import csrf_in


async def register_visit(publisher, **over: str) -> str:
    form = {
        "channel": "in_person",
        "applicant_type": "natural_person",
        "name": "巴特尔",
        "phone": "13912345678",
        "description": "2026年乌兰木伦镇低保名单",
        "purpose": "",
        "reply_channel": "post",
        "address": "伊金霍洛旗阿勒腾席热镇某街1号",
    }
    form.update(over)
    r = await publisher.post("/admin/applications/new", form, allow_redirects=False)
    assert r.status == 303, await r.text()
    return r.headers["Location"].rsplit("/", 1)[-1]


async def test_register_handle_answer_and_archive_from_the_console(site) -> None:
    publisher = await site.login("publisher")
    publisher.csrf = csrf_in(await publisher.text("/admin/applications/new"))
    number = await register_visit(publisher)
    page = await publisher.text(f"/admin/applications/{number}")
    assert "查询码" in page and "巴特尔" in page and "13912345678" in page
    assert "剩 20 个工作日" in page
    steps = f"/admin/applications/{number}/steps"
    await publisher.post(steps, {"step": "accept", "handler": "民政办小李"})
    r = await publisher.post(steps, {"step": "extend", "approver": "", "workdays": "5"})
    page = await r.text()  # the file again, after the redirect
    assert "未能办理" in page and "approver" in page  # refused by name, nothing recorded
    await publisher.post(steps, {"step": "extend", "approver": "张主任", "workdays": "5"})
    r = await publisher.post(
        steps,
        {
            "step": "answer",
            "outcome": "partial",
            "reason": "",
            "reply_text": "已隐去身份证号。",
            "attachments": "低保名单（删减） | /p/demo-ejhl-2026-0113",
        },
        allow_redirects=False,
    )
    assert r.status == 303
    page = await publisher.text(f"/admin/applications/{number}")
    assert "部分公开" in page and "已隐去身份证号" in page and "低保名单（删减）" in page
    letter = await publisher.text(f"/admin/applications/{number}/letter")
    assert "巴特尔" in letter and "第三十七条" in letter
    await publisher.post(steps, {"step": "archive"})
    page = await publisher.text(f"/admin/applications/{number}")
    assert "已归档" in page
    assert [m for m in re.findall(r"<td>(审核通过|延长答复期限|答复|归档)</td>", page)] == [
        "审核通过", "延长答复期限", "答复", "归档",
    ]  # fmt: skip


async def test_viewer_sees_masked_applicants_and_cannot_act(site) -> None:
    publisher = await site.login("publisher")
    publisher.csrf = csrf_in(await publisher.text("/admin/applications/new"))
    number = await register_visit(publisher)
    viewer = await site.login("viewer")
    listing = await viewer.text("/admin/applications")
    assert number in listing and "巴**" in listing and "139****5678" in listing
    assert "13912345678" not in listing and "巴特尔" not in listing
    page = await viewer.text(f"/admin/applications/{number}")
    assert "巴特尔" not in page and 'id="step-accept"' not in page
    viewer.csrf = csrf_in(page)
    r = await viewer.post(f"/admin/applications/{number}/steps", {"step": "accept", "handler": "x"})
    assert r.status == 403
    board = await viewer.text("/admin/deadlines")
    assert number in board and "剩 20" in board


async def test_refused_registration_names_the_fields(site) -> None:
    publisher = await site.login("publisher")
    publisher.csrf = csrf_in(await publisher.text("/admin/applications/new"))
    r = await publisher.post(
        "/admin/applications/new",
        {"channel": "web", "name": "", "description": "x", "reply_channel": "sms"},
    )
    assert r.status == 422
    page = await r.text()
    assert "<code>channel</code>" in page and "<code>name</code>" in page


async def test_the_yearly_table_page_and_csv(site) -> None:
    publisher = await site.login("publisher")
    publisher.csrf = csrf_in(await publisher.text("/admin/applications/new"))
    await register_visit(publisher, applicant_type="research")
    page = await publisher.text("/admin/applications/annual?year=2026")
    assert "三、收到和处理政府信息公开申请情况（2026年度）" in page
    r = await publisher.get("/admin/applications/annual?year=2026&format=csv")
    body = (await r.read()).decode("utf-8-sig")
    row = next(line for line in body.splitlines() if line.startswith("一、"))
    assert row.split(",")[1:] == ["0", "0", "1", "0", "0", "0", "1"]
    assert (await publisher.get("/admin/applications/annual?year=99999")).status == 400


async def test_many_applicants_one_document_becomes_a_published_item(site) -> None:
    publisher = await site.login("publisher")
    publisher.csrf = csrf_in(await publisher.text("/admin/applications/new"))
    numbers = [
        await register_visit(publisher, description=text)
        for text in ("2026年低保名单", "２０２６年 低保名单！", "2026年低保名单。")
    ]
    listing = await publisher.text("/admin/applications")
    assert "建议转为主动公开" in listing and "3 件" in listing
    assert "尚无予以公开或部分公开的答复" in listing
    steps = f"/admin/applications/{numbers[0]}/steps"
    await publisher.post(
        steps, {"step": "answer", "outcome": "granted", "reply_text": "名单见附件。"}
    )
    listing = await publisher.text("/admin/applications")
    assert f'action="/admin/applications/{numbers[0]}/publish"' in listing
    publish = f"/admin/applications/{numbers[0]}/publish"
    r = await publisher.post(publish, {"domain": "社会救助"}, allow_redirects=False)
    assert r.headers["Location"] == "/admin/applications"  # the secrecy box was not ticked
    r = await publisher.post(
        publish, {"domain": "社会救助", "secrecy_reviewed": "1"}, allow_redirects=False
    )
    assert r.status == 303, await r.text()
    item_id = f"ysq-{numbers[0].lower()}"
    assert r.headers["Location"] == f"/admin/items/{item_id}"
    page = await (await site.client.get(f"/p/{item_id}")).text()
    assert "名单见附件" in page and "巴特尔" not in page
