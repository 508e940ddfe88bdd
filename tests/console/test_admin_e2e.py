"""The console in a real browser (Debian's headless Chromium through Playwright).

A publisher signs in, publishes from the form to the public page and a village group (the fake
WeCom robot), watches the progress reach "delivered" without reloading, filters the log,
exports it, and answers residents' question by adding it to the FAQ. A screenshot of each page
goes to artifacts/.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from gongkai.dispatch.worker import build_worker
from gongkai.faq.text import normalize_question
from gongkai.storage.models import FaqEntry, Question
from tests.console.conftest import PASSWORDS

VILLAGE = "150627100201"

pytestmark = [
    pytest.mark.browser,
]


@pytest.fixture
async def worker(site):  # type: ignore[no-untyped-def]
    """A long-running worker in this process, as ``gongkai run`` has one."""
    w = build_worker(site.settings, site.redis_url)
    task = asyncio.create_task(w.async_run())
    yield w
    await w.close()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


async def test_publish_watch_filter_export_and_answer(site, browser, worker, artifacts_dir) -> None:
    async with site.maker() as session:
        for text, region in (
            ("牧区饮水补贴怎么申请？", VILLAGE),
            ("牧区饮水补贴怎么申请", "150627101201"),
        ):
            session.add(
                Question(
                    platform="wechat",
                    region_code=region,
                    text=text,
                    normalized=normalize_question(text),
                )
            )
        await session.commit()
    context = await browser.new_context(
        base_url=site.base,
        locale="zh-CN",
        viewport={"width": 1280, "height": 900},
        accept_downloads=True,
    )
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    async def shot(name: str) -> None:
        await page.screenshot(path=str(artifacts_dir / f"admin-{name}.png"), full_page=True)

    # sign in
    await page.goto("/admin/")
    assert page.url.endswith("/admin/login?next=/admin/")
    await shot("login")
    await page.get_by_label("用户名").fill("publisher-user")
    await page.get_by_label("密码").fill(PASSWORDS["publisher"])
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_url("**/admin/")
    await page.keyboard.press("Tab")  # the first stop is "skip to the content"
    assert await page.evaluate("document.activeElement.textContent") == "跳到正文"
    await shot("dashboard")

    # publish from the form, after previewing every channel
    await page.get_by_role("link", name="发布", exact=True).click()
    await page.get_by_label("条目编号").fill("notice-e2e")
    await page.get_by_label("类别").select_option("notice")
    await page.locator("#f-title").fill("关于巴图塔嘎查停水的通知")
    await page.get_by_label("成文日期").fill("2026-11-20")
    await page.locator("#f-domain").select_option("市政服务")
    await page.get_by_label("公开属性").select_option("public")
    await page.locator("#f-regions").select_option(VILLAGE)
    await page.get_by_label("公开网页").check()
    await page.get_by_label("村民微信群（企业微信群机器人）").check()
    await page.get_by_label("摘要", exact=True).fill("11月25日全天停水，请提前储水。")
    await page.locator("#f-body").fill("因管网维修，11月25日8时至18时停水。")
    await page.get_by_text("蒙古文译文（可选）").click()
    await page.get_by_label("蒙古文标题").fill("ᠤᠰᠤ ᠵᠣᠭᠰᠣᠭᠠᠬᠤ ᠮᠡᠳᠡᠭᠳᠡᠯ")
    await shot("publish-form")
    # without the secrecy review the item is refused, the reason shown beside the checkbox
    await page.get_by_role("button", name="预览各渠道").click()
    error = page.locator("#f-secrecy_reviewed-err")
    assert "未经保密审查，不能发布" in await error.inner_text()
    assert await page.locator("#f-secrecy_reviewed").get_attribute("aria-invalid") == "true"
    assert await page.evaluate("document.activeElement.id") == "error-summary"
    assert await page.locator("#f-title").input_value() == "关于巴图塔嘎查停水的通知"  # kept
    await shot("publish-refused")
    await page.get_by_label("已通过保密审查").check()
    await page.get_by_role("button", name="预览各渠道").click()
    await page.wait_for_selector("#previews")
    previews = await page.locator("#previews").inner_text()
    assert "语言 mn+zh · 巴图塔嘎查 150627100201" in previews
    assert "ᠤᠰᠤ ᠵᠣᠭᠰᠣᠭᠠᠬᠤ ᠮᠡᠳᠡᠭᠳᠡᠯ" in previews and "11月25日8时至18时停水" in previews
    await shot("publish-preview")
    await page.get_by_role("button", name="确认发布").click()
    await page.wait_for_url("**/admin/items/notice-e2e")
    # planning runs after the publish answered: a page drawn before it ended reloads once
    await page.locator('#planning[data-planning="done"]').wait_for(timeout=30_000)
    assert "投递已全部规划：2 条" in await page.locator("#planning-text").inner_text()
    await page.evaluate("window.__samePage = true")
    progress = page.locator("#progress")
    await progress.and_(page.locator('[data-final="yes"]')).wait_for(timeout=30_000)
    assert await progress.get_attribute("data-delivered") == "2"
    assert (
        "全部结束：2 / 2 条已结束（已送达 2）" in await page.locator("#progress-text").inner_text()
    )
    assert await page.locator('[data-cell="village_group:delivered"]').inner_text() == "1"
    assert await page.locator("#item-status").inner_text() == "已发布"
    statuses = page.locator("[data-delivery-status]")
    await page.wait_for_function(
        "[...document.querySelectorAll('[data-delivery-status]')]"
        ".every(td => td.textContent.trim() === '已送达')"
    )
    assert await statuses.count() == 2
    assert await page.evaluate("window.__samePage === true")  # live updates, no reload
    assert len(site.robot.messages_for("robot-1")) == 1
    await shot("item")

    # the delivery log: filter, then export what the filter shows
    await page.get_by_role("link", name="投递日志").click()
    await page.get_by_label("渠道").select_option("village_group")
    await page.get_by_role("button", name="筛选").click()
    await page.wait_for_url("**/admin/deliveries?*channel=village_group*")
    rows = page.locator("main table tbody tr")
    assert await rows.count() == 1
    assert "已送达" in await rows.first.inner_text()
    await shot("deliveries")
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="导出 CSV（当前筛选的全部记录）").click()
    download = await download_info.value
    csv_text = await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8-sig")
    assert csv_text.splitlines()[0].startswith("id,item,channel")
    assert len(csv_text.splitlines()) == 2 and "notice-e2e,village_group" in csv_text

    # residents' questions: add the group to the FAQ
    await page.get_by_role("link", name="群众提问").click()
    assert "2</strong> 次" in await page.content()
    await shot("questions")
    await page.get_by_text("加入常见问题", exact=True).first.click()
    await page.get_by_label("关键词（空格或逗号分隔）").fill("饮水补贴 牧区")
    await page.get_by_label("答复").fill("携带户口本到嘎查村委会登记，每户每年补贴300元。")
    await page.get_by_role("button", name="加入常见问题").click()
    await page.wait_for_selector("text=2 条提问标记为已解答")
    await shot("questions-answered")
    async with site.maker() as session:
        assert (await session.get(FaqEntry, (await _entry_id(session)))).keywords == [
            "饮水补贴",
            "牧区",
        ]

    for name, path in (
        ("items", "/admin/items"),
        ("deadlines", "/admin/deadlines"),
        ("report", "/admin/report"),
    ):
        await page.goto(path)
        await shot(name)
    assert await page.locator("svg.chart").count() == 4

    await page.get_by_role("button", name="退出登录").click()
    await page.wait_for_url("**/admin/login")
    assert errors == []
    await context.close()


async def _entry_id(session) -> str:  # type: ignore[no-untyped-def]
    from sqlmodel import select

    return (await session.exec(select(FaqEntry.id))).one()
