"""An application walked through in a real browser (Debian's headless Chromium): a resident
applies on a phone-sized screen in Mongolian and Chinese, a publisher takes it through the
console, and the resident reads the reply letter with the code. Screenshots go to artifacts/;
any Content-Security-Policy violation or script error fails the walk."""

from __future__ import annotations

import pytest

from tests.console.conftest import PASSWORDS

pytestmark = [pytest.mark.browser]


async def test_apply_on_a_phone_then_handle_it_in_the_console(site, browser, artifacts_dir) -> None:
    phone = await browser.new_context(
        base_url=site.base, locale="zh-CN", viewport={"width": 375, "height": 740}, is_mobile=True
    )
    page = await phone.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on(
        "console",
        lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None,
    )

    async def shot(p, name: str) -> None:  # type: ignore[no-untyped-def]
        await p.screenshot(path=str(artifacts_dir / f"apply-{name}.png"), full_page=True)

    await page.goto("/apply?lang=mn")
    assert await page.get_attribute("html", "lang") == "mn-Mong"
    await shot(page, "form-mn")
    await page.get_by_role("link", name="中文").click()
    await page.wait_for_url("**/apply?lang=zh")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the form is wider than the phone: {width}px"
    await page.get_by_label("短信通知（需手机号）").check()
    await page.get_by_label("姓名或单位名称").fill("其木格")
    await page.get_by_role("button", name="提交申请").click()
    await page.wait_for_selector(".errors")  # no phone for an SMS reply, no description
    await shot(page, "form-refused")
    await page.get_by_label("手机号码").fill("13700001111")
    await page.get_by_label("所需政府信息的名称").fill("苏布尔嘎镇2026年草原生态补奖发放明细")
    await page.get_by_role("button", name="提交申请").click()
    await page.wait_for_selector("#code")
    number = (await page.text_content("#number")).strip()
    code = (await page.text_content("#code")).strip()
    await shot(page, "received")

    desk = await browser.new_context(base_url=site.base, viewport={"width": 1280, "height": 900})
    console = await desk.new_page()
    console.on("pageerror", lambda exc: problems.append(str(exc)))
    await console.goto("/admin/login")
    await console.get_by_label("用户名").fill("publisher-user")
    await console.get_by_label("密码").fill(PASSWORDS["publisher"])
    await console.get_by_role("button", name="登录").click()
    await console.wait_for_url("**/admin/")
    await console.get_by_role("link", name="依申请公开").click()
    await console.wait_for_url("**/admin/applications")
    await shot(console, "console-list")
    await console.get_by_role("link", name=number).click()
    await console.get_by_role("button", name="登记（确认收到）").click()
    await console.wait_for_selector("#step-accept")
    await console.get_by_role("button", name="审核通过").click()
    await console.wait_for_selector("#step-answer")
    await console.select_option("#step-answer select[name=outcome]", "granted")
    await console.fill("#step-answer textarea[name=reply_text]", "明细见附件。")
    await console.get_by_role("button", name="答复", exact=True).click()
    await console.wait_for_selector("#reply-letter")
    assert "其木格" in await console.text_content("#reply-letter")
    await shot(console, "console-answered")
    await console.goto("/admin/deadlines")
    await shot(console, "deadlines")

    await page.goto(f"/apply/{number}")
    await page.get_by_label("查询码").fill(code)
    await page.get_by_role("button", name="查询办理进度").click()
    await page.wait_for_selector("#reply-letter")
    assert "予以公开" in await page.text_content("#outcome")
    await shot(page, "status-answered")
    assert problems == []
    await phone.close()
    await desk.close()
